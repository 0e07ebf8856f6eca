"""Event counters of /proc/vmstat (include/linux/vm_event_item.h, mm/vmstat.c).

Only *events* live here (pgfault, pgmajfault, pgreuse, ...): counts of things that happened,
which nothing else can reconstruct. Gauges (nr_anon_pages, nr_mapped, nr_shmem, Mlocked, the
LRU sizes) are functions of the frame table and are computed from it when /proc is read
(proc/), so they cannot drift; Machine.check() verifies the state they are computed from.

Counting rules follow the kernel (see docs/notes/procfs.md): pgfault once per
handle_mm_fault() call, pgmajfault when the fault had to wait for I/O, pgreuse when
do_wp_page() reuses the page instead of copying, pgalloc_normal/pgfree in the allocator.
"""

from __future__ import annotations

from collections import Counter

EVENTS = (
    "pgpgin", "pgpgout", "pswpin", "pswpout",
    "pgfault", "pgmajfault", "pgreuse", "pglazyfree", "pglazyfreed",
    "pgactivate", "pgdeactivate", "pgrefill",
    "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct",
    "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
    "pginodesteal", "kswapd_inodesteal", "pageoutrun", "pgrotated", "allocstall_normal",
    "oom_kill", "swap_ra", "swap_ra_hit", "swpin_zero", "swpout_zero",
    "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon",
    "workingset_activate_file", "workingset_restore_anon", "workingset_restore_file",
    "unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
    "unevictable_pgs_stranded", "cow_ksm", "nr_dirtied", "nr_written", "nr_vmscan_write",
    "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "drop_pagecache",
)


class VMEvents(Counter):
    """count_vm_event(): ``ev["pgfault"] += 1``. Unknown names are a bug, so they raise."""

    def count(self, name: str, n: int = 1) -> None:
        assert name in _KNOWN, f"VMEvents.count: unknown event {name!r}"
        self[name] += n


_KNOWN = frozenset(EVENTS)
