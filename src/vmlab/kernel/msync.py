"""msync(2) (mm/msync.c).

Checks: unknown flags, an unaligned start, or MS_ASYNC with MS_SYNC -> EINVAL; the end
wrapping -> ENOMEM; len 0 -> success. Then VMA by VMA: a hole is skipped but makes the result
ENOMEM (and stops at once for a plain MS_ASYNC); MS_INVALIDATE on a VM_LOCKED VMA -> EBUSY;
MS_SYNC on a shared file mapping writes the range back (vfs_fsync_range). MS_ASYNC has done
nothing since Linux 2.6.19: dirty pages are tracked and written by writeback anyway.
"""

from __future__ import annotations

import errno

from ..constants import MS_ASYNC, MS_INVALIDATE, MS_SYNC, PAGE_SIZE
from ..errors import syscall_error
from ..mm.vmflags import VM_LOCKED, VM_SHARED
from .files import writeback_range

_U64 = (1 << 64) - 1


def do_msync(kernel, task, start: int, length: int, flags: int) -> None:
    mm = task.mm
    if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
        raise syscall_error(errno.EINVAL, "msync: unknown flags")
    if start & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "msync: address not page aligned")
    if flags & MS_ASYNC and flags & MS_SYNC:
        raise syscall_error(errno.EINVAL, "msync: MS_ASYNC and MS_SYNC together")
    length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & _U64
    end = start + length
    if end > _U64:
        raise syscall_error(errno.ENOMEM, "msync: range wraps around")
    if end == start:
        return
    unmapped = False
    vma = mm.vmas.find(start)
    while True:
        if vma is None:
            raise syscall_error(errno.ENOMEM, "msync: range is not mapped")
        if start < vma.vm_start:
            if flags == MS_ASYNC:
                raise syscall_error(errno.ENOMEM, "msync: range is not mapped")
            start = vma.vm_start
            if start >= end:
                raise syscall_error(errno.ENOMEM, "msync: range is not mapped")
            unmapped = True
        if flags & MS_INVALIDATE and vma.vm_flags & VM_LOCKED:
            raise syscall_error(errno.EBUSY, "msync: MS_INVALIDATE on a locked mapping")
        seg_end = min(end, vma.vm_end)
        if flags & MS_SYNC and vma.vm_file is not None and vma.vm_flags & VM_SHARED:
            writeback_range(kernel, vma.vm_file, vma.linear_page_index(start),
                            vma.linear_page_index(seg_end - 1) + 1)
        start = vma.vm_end
        if start >= end:
            break
        vma = mm.vmas.find(start)
    if unmapped:
        raise syscall_error(errno.ENOMEM, "msync: range has unmapped holes")
