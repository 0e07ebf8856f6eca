"""The address space of a process: struct mm_struct.

Models include/linux/mm_types.h (struct mm_struct) and the accounting helpers of
include/linux/mm.h and mm/mmap.c: the RSS counters (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS,
MM_SHMEMPAGES), vm_stat_account() (total_vm, data_vm, exec_vm, stack_vm), locked_vm, the
high-water marks, and the page-table counters behind VmPTE.

Fields (tags: (o) owned by kernel/ and the designs, (d) derived, recounted by check):

    pgd                 row of the top-level table in the machine's PageTables (o)
    vmas                VMATree (o)
    rss[4]              resident pages by kind, updated as PTEs come and go (d)
    hiwater_rss/_vm     peaks, updated before memory is unmapped (update_hiwater_*) (o)
    total_vm, data_vm, exec_vm, stack_vm, locked_vm, pinned_vm   in pages (d / o)
    nr_ptes, nr_pmds, nr_puds   page tables allocated for this mm (d)
    start_brk, brk      the heap (o); mmap_base, start_stack (c)
    def_flags           VM_* added to every new VMA (VM_LOCKED after mlockall(MCL_FUTURE)) (o)
    design_state        per-mm state a design may keep (anonmm's family anchor, ...) (o)
    unmerged_ok         addresses of VMA boundaries fork left between VMAs that dup_mmap made
                        compatible in place (it clears VM_LOCKED in the child) without trying
                        to merge them; Linux keeps such a boundary until a merge is attempted
                        across it, so Machine.check() does not demand that merge until then (o)
"""

from __future__ import annotations

from ..constants import PAGE_SHIFT
from .vmatree import VMATree
from .vmflags import is_data_mapping, is_exec_mapping, is_stack_mapping

MM_FILEPAGES = 0
MM_ANONPAGES = 1
MM_SWAPENTS = 2
MM_SHMEMPAGES = 3
NR_MM_COUNTERS = 4
RSS_NAMES = ("MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES")

class MM:
    def __init__(self, pgd: int, mmap_base: int, start_brk: int, start_stack: int):
        self.pgd = pgd
        self.vmas = VMATree()
        self.rss = [0] * NR_MM_COUNTERS
        self.hiwater_rss = 0
        self.hiwater_vm = 0
        self.total_vm = 0
        self.data_vm = 0
        self.exec_vm = 0
        self.stack_vm = 0
        self.locked_vm = 0
        self.pinned_vm = 0
        self.nr_ptes = 0
        self.nr_pmds = 0
        self.nr_puds = 0
        self.mmap_base = mmap_base
        self.start_brk = start_brk
        self.brk = start_brk
        self.start_stack = start_stack
        self.def_flags = 0
        self.design_state = None
        self.unmerged_ok: set[int] = set()
        self.dead = False

    # --- include/linux/mm.h ----------------------------------------------------------------------
    def get_mm_rss(self) -> int:
        return self.rss[MM_FILEPAGES] + self.rss[MM_ANONPAGES] + self.rss[MM_SHMEMPAGES]

    def update_hiwater_rss(self) -> None:
        self.hiwater_rss = max(self.hiwater_rss, self.get_mm_rss())

    def update_hiwater_vm(self) -> None:
        self.hiwater_vm = max(self.hiwater_vm, self.total_vm)

    def pgtables_bytes(self) -> int:
        """mm_pgtables_bytes(): PTE, PMD and PUD tables (the PGD is not counted)."""
        return (self.nr_ptes + self.nr_pmds + self.nr_puds) << PAGE_SHIFT

    def vm_stat_account(self, flags: int, npages: int) -> None:
        """mm/mmap.c: vm_stat_account()."""
        self.total_vm += npages
        if is_exec_mapping(flags):
            self.exec_vm += npages
        elif is_stack_mapping(flags):
            self.stack_vm += npages
        elif is_data_mapping(flags):
            self.data_vm += npages

    @property
    def map_count(self) -> int:
        return len(self.vmas)
