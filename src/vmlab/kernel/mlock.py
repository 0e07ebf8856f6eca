"""mlock(2), mlock2(2), munlock(2), mlockall(2), munlockall(2) (mm/mlock.c) and mm_populate.

do_mlock(): start rounded down and len rounded up to pages; start+len wrapping -> EINVAL;
without CAP_IPC_LOCK and over RLIMIT_MEMLOCK -> ENOMEM (EPERM when the limit is 0); then
apply_vma_lock_flags(): no VMA at start -> ENOMEM; VMA by VMA mlock_fixup() (split/merge
through vma_modify, locked_vm accounting, and the design's pages mlocked or munlocked); a hole
ends the walk with ENOMEM after the earlier VMAs changed. Finally __mm_populate() faults the
range in (read faults for shared or read-only VMAs, write faults to break COW in private
writable ones); populate errors map EFAULT -> ENOMEM, ENOMEM -> EAGAIN
(__mlock_posix_error_return). MLOCK_ONFAULT sets VM_LOCKONFAULT and populates nothing.

VMAs that cannot be locked (VM_SPECIAL, hugetlb) are skipped without error.
"""

from __future__ import annotations

import errno


from ..constants import MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT, PAGE_SIZE, TASK_SIZE
from ..errors import syscall_error
from ..hw import pte as P
from ..hw.frames import ZERO_PFN
from ..mm.vmflags import (VM_DROPPABLE, VM_HUGETLB, VM_IO, VM_LOCKED, VM_LOCKONFAULT, VM_PFNMAP)
from .vma_ops import VM_SPECIAL, vma_modify

VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT
_U64 = (1 << 64) - 1


def can_do_mlock(kernel) -> bool:
    cfg = kernel.sys.config
    return cfg.capable_ipc_lock or cfg.rlimit_memlock != 0


def mlock_future_ok(kernel, mm, nbytes: int) -> bool:
    """mlock_future_ok(): would locking ``nbytes`` more stay under RLIMIT_MEMLOCK?"""
    cfg = kernel.sys.config
    if cfg.capable_ipc_lock:
        return True
    return (mm.locked_vm << 12) + nbytes <= cfg.rlimit_memlock


def _round(start: int, length: int) -> tuple[int, int]:
    """len = PAGE_ALIGN(len + offset_in_page(start)); start &= PAGE_MASK."""
    length = (length + (start & (PAGE_SIZE - 1)) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & _U64
    start &= ~(PAGE_SIZE - 1)
    return start, length


def count_mm_mlocked_page_nr(mm, start: int, length: int) -> int:
    """Pages of [start, start+len) that are already VM_LOCKED (not charged twice)."""
    end = start + length
    n = 0
    for v in mm.vmas.intersecting(start, end):
        if v.vm_flags & VM_LOCKED:
            n += (min(end, v.vm_end) - max(start, v.vm_start)) >> 12
    return n


def do_mlock(kernel, task, start: int, length: int, flags: int) -> None:
    mm = task.mm
    cfg = kernel.sys.config
    if not can_do_mlock(kernel):
        raise syscall_error(errno.EPERM, "mlock: RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK")
    start, length = _round(start, length)
    end = start + length
    if end > _U64 or end < start:
        raise syscall_error(errno.EINVAL, "mlock: range wraps around")
    if not cfg.capable_ipc_lock:
        locked = (length >> 12) + mm.locked_vm - count_mm_mlocked_page_nr(mm, start, length)
        if locked > cfg.rlimit_memlock >> 12:
            raise syscall_error(errno.ENOMEM, "mlock: over RLIMIT_MEMLOCK")
    apply_vma_lock_flags(kernel, task, start, length, flags)
    if flags & VM_LOCKONFAULT:
        return
    err = mm_populate(kernel, task, start, length, ignore_errors=False)
    if err == errno.EFAULT:
        raise syscall_error(errno.ENOMEM, "mlock: part of the range could not be faulted in")
    if err == errno.ENOMEM:
        raise syscall_error(errno.EAGAIN, "mlock: out of memory while faulting in")


def sys_mlock2(kernel, task, start: int, length: int, flags: int) -> None:
    if flags & ~MLOCK_ONFAULT:
        raise syscall_error(errno.EINVAL, "mlock2: unknown flags")
    vm_flags = VM_LOCKED | (VM_LOCKONFAULT if flags & MLOCK_ONFAULT else 0)
    do_mlock(kernel, task, start, length, vm_flags)


def do_munlock(kernel, task, start: int, length: int) -> None:
    start, length = _round(start, length)
    apply_vma_lock_flags(kernel, task, start, length, 0)


def apply_vma_lock_flags(kernel, task, start: int, length: int, flags: int) -> None:
    """apply_vma_lock_flags(): VMA by VMA, re-finding the next one after each fixup (a fixup
    may merge VMAs away). A hole ends the walk with ENOMEM after the VMAs before it changed."""
    mm = task.mm
    end = (start + length) & _U64
    if end < start:
        raise syscall_error(errno.EINVAL, "mlock: range wraps around")
    if end == start:
        return
    vma = mm.vmas.lookup(start)
    if vma is None:
        raise syscall_error(errno.ENOMEM, "mlock: start address is not mapped")
    nstart = start
    while True:
        newflags = (vma.vm_flags & ~VM_LOCKED_MASK) | flags
        tmp = min(vma.vm_end, end)
        res = mlock_fixup(kernel, task, vma, nstart, tmp, newflags)
        nstart = res.vm_end                   # vma_iter_end(): the end of the VMA now there
        if nstart >= end:
            return
        vma = mm.vmas.find(nstart)
        if vma is None or vma.vm_start != nstart:
            raise syscall_error(errno.ENOMEM, "mlock: range has a hole")


def mlock_fixup(kernel, task, vma, start: int, end: int, newflags: int):
    """mlock_fixup(): flags, split/merge, locked_vm, and the pages' mlock state. Returns the
    VMA that covers [start, end) afterwards."""
    mm = task.mm
    oldflags = vma.vm_flags
    if newflags == oldflags or oldflags & (VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE):
        return vma                   # don't set VM_LOCKED or VM_LOCKONFAULT, don't count
    vma = vma_modify(kernel.design, vma, start, end, newflags)
    nr = (end - start) >> 12
    if not newflags & VM_LOCKED:
        nr = -nr
    elif oldflags & VM_LOCKED:
        nr = 0
    mm.locked_vm += nr
    if (newflags & VM_LOCKED) and (oldflags & VM_LOCKED):
        # VM_LOCKED <-> VM_LOCKED|VM_LOCKONFAULT: only the flag changes
        vma.vm_flags = newflags
        return vma
    vma.vm_flags = newflags
    kernel.design.mlock_range(mm, vma, start, end)
    mlock_vma_pages_range(kernel, mm, vma, start, end, newflags)
    return vma


def mlock_vma_pages_range(kernel, mm, vma, start: int, end: int, newflags: int) -> None:
    """mlock_pte_range() over the present pages: mlock_folio or munlock_folio each."""
    pt = kernel.sys.pagetables
    lru = kernel.sys.lru
    rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
    for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
        vals = pt.rows[row, lo:hi]
        present = P.np_present(vals)
        if not present.any():
            continue
        pfn = P.np_pfn(vals[present])
        pfn = pfn[pfn != ZERO_PFN]
        if newflags & VM_LOCKED:
            lru.mlock(pfn)
        else:
            lru.munlock(pfn)


def do_mlockall(kernel, task, flags: int) -> None:
    mm = task.mm
    cfg = kernel.sys.config
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise syscall_error(errno.EINVAL, "mlockall: bad flags")
    if not can_do_mlock(kernel):
        raise syscall_error(errno.EPERM, "mlockall: RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK")
    if flags & MCL_CURRENT and not cfg.capable_ipc_lock and mm.total_vm > cfg.rlimit_memlock >> 12:
        raise syscall_error(errno.ENOMEM, "mlockall: address space over RLIMIT_MEMLOCK")
    apply_mlockall_flags(kernel, task, flags)
    if flags & MCL_CURRENT and not flags & MCL_ONFAULT:
        mm_populate(kernel, task, 0, TASK_SIZE, ignore_errors=True)


def apply_mlockall_flags(kernel, task, flags: int) -> None:
    mm = task.mm
    mm.def_flags &= ~VM_LOCKED_MASK
    to_add = 0
    if flags & MCL_FUTURE:
        mm.def_flags |= VM_LOCKED
        if flags & MCL_ONFAULT:
            mm.def_flags |= VM_LOCKONFAULT
        if not flags & MCL_CURRENT:
            return
    if flags & MCL_CURRENT:
        to_add |= VM_LOCKED
        if flags & MCL_ONFAULT:
            to_add |= VM_LOCKONFAULT
    for v in mm.vmas.as_list():
        if v not in mm.vmas.as_list():
            continue
        newflags = (v.vm_flags & ~VM_LOCKED_MASK) | to_add
        mlock_fixup(kernel, task, v, v.vm_start, v.vm_end, newflags)


def do_munlockall(kernel, task) -> None:
    apply_mlockall_flags(kernel, task, 0)


def mm_populate(kernel, task, start: int, length: int, ignore_errors: bool = True) -> int:
    """__mm_populate(): fault in each VMA of the range (populate_vma_page_range).

    Returns 0 or the errno of the first failure (when not ignoring errors).
    """
    from .uaccess import populate_vma_page_range, vma_is_accessible
    mm = task.mm
    end = start + length
    for v in mm.vmas.intersecting(start, end):
        if v not in mm.vmas.as_list():
            continue
        if v.vm_flags & (VM_IO | VM_PFNMAP):
            continue
        s, e = max(start, v.vm_start), min(end, v.vm_end)
        if not vma_is_accessible(v):
            if ignore_errors:
                continue
            return errno.EFAULT
        err = populate_vma_page_range(kernel, task, v, s, e)
        if err and not ignore_errors:
            return err
    return 0
