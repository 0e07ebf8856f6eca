"""brk(2) (mm/mmap.c: SYSCALL_DEFINE1(brk), mm/vma.c: do_brk_flags()).

The raw system call never fails with an errno: it returns the new break, or the current one
when the request cannot be met (glibc's sbrk turns that into ENOMEM). Rules (syscalls.md §8):

  below start_brk                  refused
  same page as the current break   just record the (unaligned) value
  shrink                           munmap [PAGE_ALIGN(brk), PAGE_ALIGN(old brk)); refused
                                   when no VMA is left in that range
  grow                             the next VMA must leave one page free above the new break
                                   (more below a grows-down VMA: its guard gap), the commit
                                   charge must fit; then the last brk VMA is extended in place
                                   (only if it ends exactly at the old break and has the same
                                   flags; never merged with the next VMA) or a new anonymous
                                   VMA is created with vm_pgoff = addr >> PAGE_SHIFT.
                                   MCL_FUTURE locks and populates it.
"""

from __future__ import annotations

from ..constants import PAGE_SIZE
from ..mm.vma import VMA
from ..mm.vmflags import (VM_ACCOUNT, VM_DATA_DEFAULT_FLAGS, VM_LOCKED, VM_SOFTDIRTY)
from .layout import vm_start_gap
from .mmap import vm_enough_memory
from .unmap import do_munmap_range
from .vma_ops import MergeRange, vma_merge_new_range


def _align(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def sys_brk(kernel, task, brk: int) -> int:
    mm = task.mm
    cfg = kernel.sys.config
    origbrk = mm.brk
    if brk < mm.start_brk:
        return origbrk
    # check_data_rlimit(): the heap (plus the program's data, none here) within RLIMIT_DATA
    if brk - mm.start_brk > cfg.rlimit_data:
        return origbrk
    newbrk = _align(brk)
    oldbrk = _align(mm.brk)
    if oldbrk == newbrk:
        mm.brk = brk
        return brk
    if brk <= mm.brk:
        # vma_find(newbrk, oldbrk): with no VMA left in the range (the heap's tail was
        # munmap'd) the call fails and the break stays where it was
        vma = mm.vmas.find(newbrk)
        if vma is None or vma.vm_start >= oldbrk:
            return origbrk
        do_munmap_range(kernel, mm, newbrk, oldbrk)
        mm.brk = brk
        return brk
    nxt = mm.vmas.find(oldbrk)
    if nxt is not None and newbrk + PAGE_SIZE > vm_start_gap(nxt, cfg.stack_guard_gap):
        return origbrk
    from .mlock import mlock_future_ok
    if mm.def_flags & VM_LOCKED and not mlock_future_ok(kernel, mm, newbrk - oldbrk):
        return origbrk
    if mm.map_count > cfg.max_map_count:
        return origbrk
    npages = (newbrk - oldbrk) >> 12
    if not vm_enough_memory(kernel, npages):
        return origbrk
    flags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | mm.def_flags
    if cfg.soft_dirty:
        flags |= VM_SOFTDIRTY
    prev = mm.vmas.prev_of(oldbrk)
    merged = None
    if prev is not None and prev.vm_end == oldbrk:
        # vma_merge_new_range() with just_expand: prev only, never next
        g = MergeRange(mm, oldbrk, newbrk, flags, oldbrk >> 12, None, prev, None)
        merged = vma_merge_new_range(kernel.design, g)
    if merged is None:
        mm.vmas.insert(VMA(mm, oldbrk, newbrk, flags, oldbrk >> 12))
    kernel.committed_pages += npages
    mm.vm_stat_account(flags, npages)
    if flags & VM_LOCKED:
        mm.locked_vm += npages
    mm.update_hiwater_vm()
    mm.brk = brk
    if flags & VM_LOCKED:
        from .mlock import mm_populate
        mm_populate(kernel, task, oldbrk, newbrk - oldbrk)
    return brk
