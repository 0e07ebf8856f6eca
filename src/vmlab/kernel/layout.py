"""Where things go in an address space: mmap_base, the stack, the heap, and free-area search.

Models arch/x86/mm/mmap.c (mmap_base, arch_pick_mmap_layout) and
arch/x86/kernel/sys_x86_64.c (arch_get_unmapped_area_topdown), mm/mmap.c
(__get_unmapped_area, unmapped_area_topdown, unmapped_area) and mm/huge_memory.c
(thp_get_unmapped_area: private anonymous mappings whose length is a multiple of 2 MiB are
placed 2 MiB-aligned when no hint is given, since Linux 6.7/6.8).

The simulated process runs without address-space randomization (like ``setarch -R``), so
layouts are deterministic:
    mmap_base = TASK_SIZE - max(128 MiB, min(rlimit_stack + stack_guard_gap, 5/6 TASK_SIZE))
              = 0x7ffff7fff000 with the default 8 MiB stack rlimit
    [stack]   = the 132 KiB just below TASK_SIZE (what a no-ASLR process typically shows)
    heap      = starts at 0x555555559000, where a small no-ASLR PIE program's brk starts
"""

from __future__ import annotations

from ..constants import MAP_32BIT, MAP_FIXED, MAP_SHARED, PAGE_SIZE, TASK_SIZE
from ..mm.vmflags import VM_GROWSDOWN

SIZE_128M = 128 << 20
PMD_SIZE = 2 << 20
STACK_VMA_SIZE = 132 << 10
START_BRK = 0x555555559000
MMAP_MIN_ADDR = 4096            # vm.mmap_min_addr on the reference host
DEFAULT_MAP_WINDOW = TASK_SIZE  # 4-level paging: the whole 47-bit space


def mmap_base(rlimit_stack: int, stack_guard_gap: int, task_size: int = TASK_SIZE) -> int:
    """arch/x86/mm/mmap.c: mmap_base() with no randomization."""
    gap = rlimit_stack
    pad = stack_guard_gap
    if gap + pad > gap:
        gap += pad
    gap_min = SIZE_128M
    gap_max = (task_size // 6) * 5
    gap = max(gap_min, min(gap, gap_max))
    return (task_size - gap + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def vm_start_gap(vma, stack_guard_gap: int) -> int:
    """vm_start_gap(): a VM_GROWSDOWN VMA reserves the guard gap below itself."""
    start = vma.vm_start
    if vma.vm_flags & VM_GROWSDOWN:
        start = max(start - stack_guard_gap, 0)
    return start


class NoSpace(Exception):
    """vm_unmapped_area() found no gap: -ENOMEM."""


def unmapped_area_topdown(tree, length: int, low_limit: int, high_limit: int,
                          align_mask: int = 0, align_offset: int = 0,
                          stack_guard_gap: int = 1 << 20) -> int:
    """mm/mmap.c: unmapped_area_topdown(): the highest gap that fits, aligned down."""
    search = length + align_mask
    while True:
        found = None
        for gap_start, gap_end, below, above in tree.gaps_topdown(low_limit, high_limit):
            if gap_end - gap_start >= search:
                found = (gap_start, gap_end, below, above)
                break
        if found is None:
            raise NoSpace()
        gap_start, gap_end, below, above = found
        gap = gap_end - length
        gap -= (gap - align_offset) & align_mask
        if above is not None and above.vm_flags & VM_GROWSDOWN:
            if vm_start_gap(above, stack_guard_gap) < gap_end:
                high_limit = vm_start_gap(above, stack_guard_gap)
                continue
        return gap


def unmapped_area(tree, length: int, low_limit: int, high_limit: int,
                  align_mask: int = 0, align_offset: int = 0,
                  stack_guard_gap: int = 1 << 20) -> int:
    """mm/mmap.c: unmapped_area(): the lowest gap that fits (bottom-up, MAP_32BIT & fallback)."""
    search = length + align_mask
    for gap_start, gap_end, below, above in tree.gaps_bottomup(low_limit, high_limit):
        if above is not None and above.vm_flags & VM_GROWSDOWN:
            gap_end = min(gap_end, vm_start_gap(above, stack_guard_gap))
        gap = gap_start + ((align_offset - gap_start) & align_mask)
        if gap + length <= gap_end and gap_end - gap_start >= search:
            return gap
    raise NoSpace()


def get_unmapped_area(mm, addr: int, length: int, pgoff: int, flags: int, anonymous: bool,
                      stack_guard_gap: int = 1 << 20, mmap_min_addr: int = MMAP_MIN_ADDR) -> int:
    """__get_unmapped_area() + arch_get_unmapped_area_topdown() for x86-64.

    Returns a page-aligned address or raises NoSpace. ``addr`` is a hint unless MAP_FIXED.
    """
    if length > TASK_SIZE:
        raise NoSpace()
    if flags & MAP_FIXED:
        return addr
    private_anon = anonymous and not flags & MAP_SHARED
    if private_anon and not addr and length % PMD_SIZE == 0 and not flags & MAP_32BIT:
        # thp_get_unmapped_area_vmflags(): search with one extra PMD, then align
        len_pad = length + PMD_SIZE
        try:
            ret = _topdown(mm, 0, len_pad, flags, stack_guard_gap, mmap_min_addr)
        except NoSpace:
            return _topdown(mm, 0, length, flags, stack_guard_gap, mmap_min_addr)
        off_sub = (0 - ret) & (PMD_SIZE - 1)
        if not off_sub:
            return ret + PMD_SIZE
        return ret + off_sub
    return _topdown(mm, addr, length, flags, stack_guard_gap, mmap_min_addr)


def _topdown(mm, addr: int, length: int, flags: int, stack_guard_gap: int,
             mmap_min_addr: int = MMAP_MIN_ADDR) -> int:
    tree = mm.vmas
    if flags & MAP_32BIT:
        return unmapped_area(tree, length, 0x40000000, 0x80000000, stack_guard_gap=stack_guard_gap)
    if addr:
        addr &= ~(PAGE_SIZE - 1)
        if addr + length <= TASK_SIZE:                              # mmap_address_hint_valid
            vma = tree.find(addr)
            if vma is None or addr + length <= vm_start_gap(vma, stack_guard_gap):
                return addr
    try:
        return unmapped_area_topdown(tree, length, max(PAGE_SIZE, mmap_min_addr), mm.mmap_base,
                                     stack_guard_gap=stack_guard_gap)
    except NoSpace:
        # arch_get_unmapped_area(): bottom-up from TASK_UNMAPPED_BASE (mmap_legacy_base)
        return unmapped_area(tree, length, TASK_SIZE // 3, TASK_SIZE, stack_guard_gap=stack_guard_gap)
