"""Model bugs that `vmlab verify` found and that are not fixed yet, as signatures of mismatch rows.

Each entry names the bug, says what the host does, and says which mismatch rows it explains:
either every row of the listed corpus scenarios, or the rows a predicate accepts in any
scenario. The golden tests xfail a scenario whose *only* mismatches are explained here (any
other row still fails), and `test_known_bugs_still_reproduce` fails once a bug no longer
shows anywhere, so that its entry is removed when the model is fixed.

KNOWN_MODEL_BUGS are bugs to fix. RECORDED_DEVIATIONS are deliberate differences that
docs/deviations.md describes and that a corpus scenario shows on purpose.
"""

from __future__ import annotations

import re

_PAGE_ITEM = re.compile(r"^page \d+ (\w+)")


def _page_field(row) -> str | None:
    """The field of a per-page row ("state", "pagemap", "mapcount", "kpageflags", "frame")."""
    m = _PAGE_ITEM.match(row.item)
    return m.group(1) if m else None


def _flag_diff(row) -> tuple[set, set]:
    """(flags only the host has, flags only the model has) of a kpageflags row."""
    h = set(row.host.split(",")) - {"-"}
    m = set(row.model.split(",")) - {"-"}
    return h - m, m - h


def _extra_pages_mapped(row, extra_side: str) -> bool:
    """A row that only says one side (extra_side: "host" or "model") has more pages of the
    region mapped: a page present there and not mapped (no PTE) on the other side, the smaps
    sums that follow from it, and for pages the two then map differently often, the exclusive
    bit and mapcount."""
    other = "model" if extra_side == "host" else "host"
    fld = _page_field(row)
    if fld == "state":
        return getattr(row, extra_side) == "present" and getattr(row, other) == "none"
    if fld in ("pagemap", "mapcount"):
        return True
    return row.item.startswith("smaps ")


KNOWN_MODEL_BUGS = {
    "sysv-shm-fault-around": {
        "reason": "a read fault on a SysV shm attach maps the whole cached fault-around window "
                  "in the model; the host maps only the faulting page: shm_vm_ops (ipc/shm.c) "
                  "has no .map_pages, so should_fault_around() (mm/memory.c) is false for "
                  "SysV segments (tmpfs files and shared anonymous memory do have it)",
        "rows": lambda r: (r.scenario in {"shm-attach-fork", "shm-rmid-attached"}
                           and _extra_pages_mapped(r, "model")),
    },
    "shm-lock-new-pages-evictable": {
        "reason": "after shmctl(SHM_LOCK) pages the segment gets later are on the evictable LRU in "
                  "the model (it only culls them when reclaim scans); on the host they are "
                  "PG_unevictable at once: shmem_lock() sets AS_UNEVICTABLE "
                  "(mapping_set_unevictable) and lru_add() (mm/swap.c) puts a folio for which "
                  "folio_evictable() (mm/internal.h) is false on the unevictable list",
        "rows": lambda r: (r.scenario == "shm-lock" and _page_field(r) == "kpageflags"
                           and _flag_diff(r) == ({"unevictable"}, set())),
    },
    "wp-reuse-swapcache-copies": {
        "reason": "a write to a read-only PTE of an anonymous page that is in the swap cache and "
                  "mapped once (after fork, once the child copied its own) copies the page in the "
                  "model, whose reuse test needs no reference besides the mapping; the host "
                  "reuses it: wp_can_reuse_anon_folio() (mm/memory.c) allows one extra reference "
                  "for the swap cache, calls folio_free_swap() (mm/swapfile.c), which takes the "
                  "page out of the swap cache and sets PG_dirty, and the page stays mapped "
                  "(KPF_DIRTY on the host, clean in the model's copy)",
        "rows": lambda r: (r.scenario == "swap-cache-read-then-fork"
                           and _page_field(r) == "kpageflags"
                           and _flag_diff(r) == ({"dirty"}, set())),
    },
    "zeromap-swapin-inactive": {
        "reason": "a zero-filled page swapped out (swap zeromap, no I/O) and faulted back lands on "
                  "the active LRU on the host (KPF_ACTIVE); the model puts it on the inactive list "
                  "like a page read from the swap device",
        "scenarios": {"swap-pageout-read-write"},
    },
}


# Deliberate differences recorded in docs/deviations.md that a corpus scenario shows on purpose.
RECORDED_DEVIATIONS = {
    "deviation-1a-mlock-batch-referenced": {
        "reason": "docs/deviations.md #1a: a page faulted in by mlock keeps PG_referenced in the "
                  "model (per-CPU mlock batch timing inside one system call)",
        "scenarios": {"shared-anon-mlock-in-child"},
    },
}


def explain(scenario: str, rows) -> tuple[list, set[str]]:
    """Split mismatch rows into (rows nothing here explains, names of the bugs and recorded
    deviations that explain the others)."""
    left, bugs = [], set()
    for r in rows:
        for name, bug in {**KNOWN_MODEL_BUGS, **RECORDED_DEVIATIONS}.items():
            if scenario in bug.get("scenarios", ()) or ("rows" in bug and bug["rows"](r)):
                bugs.add(name)
                break
        else:
            left.append(r)
    return left, bugs
