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
}


# Deliberate differences recorded in docs/deviations.md that a corpus scenario shows on purpose.
RECORDED_DEVIATIONS = {
    "deviation-1b-refault-workingset-size": {
        "reason": "docs/deviations.md #1b: workingset_refault() activates a refaulting page when "
                  "its refault distance fits the workingset, which counts the file LRU; the "
                  "host has gigabytes of page cache, the model machine only what the scenario "
                  "made, so a zero-filled page swapped out and faulted straight back is active "
                  "on the host and inactive in the model",
        "scenarios": {"swap-pageout-read-write"},
    },
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
