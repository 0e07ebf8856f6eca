"""Model bugs that `vmlab verify` found and that are not fixed yet, as signatures of mismatch rows.

Each entry names the bug, says what the host does, and says which mismatch rows it explains:
either every row of the listed corpus scenarios, or the rows a predicate accepts in any
scenario. The golden tests xfail a scenario whose *only* mismatches are explained here (any
other row still fails), and `test_known_bugs_still_reproduce` fails once a bug no longer
shows anywhere, so that its entry is removed when the model is fixed.

These are bugs to fix, not deviations: deliberate differences belong in docs/deviations.md.
"""

from __future__ import annotations


def _zero_page_uptodate(row) -> bool:
    if not row.item.endswith("kpageflags of the zero page"):
        return False
    h = set(row.host.split(",")) - {"-"}
    m = set(row.model.split(",")) - {"-"}
    return h ^ m == {"uptodate"}


def _check_merge_after_fork(row) -> bool:
    if not row.item.startswith("model Machine.check()"):
        return False
    lines = [ln for ln in row.model.splitlines()[1:] if ln.strip()]
    return bool(lines) and all("should have been merged" in ln for ln in lines)


KNOWN_MODEL_BUGS = {
    "zero-page-uptodate": {
        "reason": "the model's zero page has KPF_UPTODATE in /proc/kpageflags; the host's reads "
                  "0x101000000 (KPF_ZERO_PAGE | KPF_RESERVED only)",
        "rows": _zero_page_uptodate,
    },
    "check-merge-after-fork": {
        "reason": "Machine.check() demands that adjacent VMAs with equal flags be merged, but "
                  "fork (dup_mmap) copies VMAs one by one: after fork drops VM_LOCKED the child "
                  "keeps separate VMAs, on the host and in the model alike",
        "rows": _check_merge_after_fork,
    },
    "pageout-keeps-young": {
        "reason": "MADV_PAGEOUT clears the PTE young bits in the model; 6.18 leaves them "
                  "(madvise_cold_or_pageout_pte_range clears young only for MADV_COLD), so smaps "
                  "Referenced stays",
        "scenarios": {"madv-cold-pageout"},
    },
    "mremap-shrink-spanning": {
        "reason": "a shrinking mremap whose kept part spans two VMAs or a hole fails with EFAULT "
                  "in the model; the host just unmaps the tail (mm/mremap.c shrink_vma)",
        "scenarios": {"mremap-shrink-across-vmas"},
    },
    "lockonfault-mprotect-populates": {
        "reason": "mprotect(PROT_WRITE) of a VM_LOCKONFAULT range populates it in the model; "
                  "populate_vma_page_range() returns early for VM_LOCKONFAULT on the host",
        "scenarios": {"mlock-onfault-mprotect"},
    },
    "gup-write-dirties-lazyfree": {
        "reason": "MADV_POPULATE_WRITE and mlock over MADV_FREE'd pages leave them clean and "
                  "lazy-free in the model; on the host GUP with FOLL_WRITE|FOLL_TOUCH marks the "
                  "folio dirty (mm/gup.c follow_page_pte), so they are Private_Dirty",
        "scenarios": {"madv-free-then-populate"},
    },
}


def explain(scenario: str, rows) -> tuple[list, set[str]]:
    """Split mismatch rows into (rows no known bug explains, names of the bugs that explain the
    others)."""
    left, bugs = [], set()
    for r in rows:
        for name, bug in KNOWN_MODEL_BUGS.items():
            if scenario in bug.get("scenarios", ()) or ("rows" in bug and bug["rows"](r)):
                bugs.add(name)
                break
        else:
            left.append(r)
    return left, bugs
