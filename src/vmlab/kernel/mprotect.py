"""mprotect(2): do_mprotect_pkey() and mprotect_fixup() (mm/mprotect.c).

Checks, in order: both PROT_GROWSDOWN and PROT_GROWSUP -> EINVAL; start not page aligned ->
EINVAL; len 0 -> success; start+len wraps -> ENOMEM; unknown prot bits -> EINVAL; no VMA at
or after start, or start in a hole -> ENOMEM; PROT_GROWSDOWN on a VMA without VM_GROWSDOWN ->
EINVAL (the range then starts at the VMA's start).

Then VMA by VMA: the new flags keep everything but the access bits; asking for an access the
VMA may not have (VM_MAY*) -> EACCES; mprotect_fixup() charges the commit when a private
mapping first becomes writable (VM_ACCOUNT), drops VM_ACCOUNT when an anonymous VMA that never
had a page turns read-only, splits or merges through vma_modify(), and rewrites the PTEs
through the design's change_protection(). A hole after the first VMA ends the walk with
ENOMEM *after* the VMAs before it were changed — Linux does exactly that, so does the model.
"""

from __future__ import annotations

import errno

from ..constants import PAGE_SIZE, PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ, PROT_SEM, PROT_WRITE
from ..errors import syscall_error
from ..mm.vma import VM_ACCESS_FLAGS, VM_PKEY_MASK, calc_vm_prot_bits, pkey_bits
from ..mm.vmflags import (VM_ACCOUNT, VM_GROWSDOWN, VM_HUGETLB, VM_LOCKED, VM_NORESERVE,
                          VM_SHARED, VM_WRITE)
from .vma_ops import vma_modify

_U64 = (1 << 64) - 1


def do_mprotect(kernel, task, start: int, length: int, prot: int) -> None:
    mm = task.mm
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == (PROT_GROWSDOWN | PROT_GROWSUP):
        raise syscall_error(errno.EINVAL, "mprotect: both PROT_GROWSDOWN and PROT_GROWSUP")
    if start & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "mprotect: address not page aligned")
    if length == 0:
        return
    length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & _U64
    end = (start + length) & _U64
    if end <= start:
        raise syscall_error(errno.ENOMEM, "mprotect: range wraps around")
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):
        raise syscall_error(errno.EINVAL, "mprotect: unknown protection bits")
    vma = mm.vmas.find(start)
    if vma is None or vma.vm_start >= end:
        raise syscall_error(errno.ENOMEM, "mprotect: range is not mapped")
    if grows & PROT_GROWSDOWN:
        start = vma.vm_start
        if not vma.vm_flags & VM_GROWSDOWN:
            raise syscall_error(errno.EINVAL, "mprotect: PROT_GROWSDOWN on a VMA that does not grow down")
    else:
        if vma.vm_start > start:
            raise syscall_error(errno.ENOMEM, "mprotect: start address is not mapped")
        if grows & PROT_GROWSUP:
            raise syscall_error(errno.EINVAL, "mprotect: PROT_GROWSUP: no VMA grows up on x86")
    nstart = start
    v = vma
    while True:
        # arch_override_mprotect_pkey(): exec-only gets the execute-only key, anything else
        # leaves it for the default key 0 (other keys need pkey_mprotect, not modelled)
        newflags = (calc_vm_prot_bits(prot) | pkey_bits(prot, kernel.sys.config.pkeys)
                    | (v.vm_flags & ~(VM_ACCESS_FLAGS | VM_PKEY_MASK)))
        if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:
            raise syscall_error(errno.EACCES, "mprotect: protection not allowed for this mapping")
        tmp = min(v.vm_end, end)
        res = mprotect_fixup(kernel, mm, v, nstart, tmp, newflags)
        nstart = res.vm_end               # vma_iter_end(): a merge may have grown the VMA
        if nstart >= end:
            return
        # re-find: the fixup may have merged VMAs away (for_each_vma_range re-walks the tree)
        v = mm.vmas.find(nstart)
        if v is None or v.vm_start != nstart:
            raise syscall_error(errno.ENOMEM, "mprotect: range has a hole")


def mprotect_fixup(kernel, mm, vma, start: int, end: int, newflags: int):
    """Returns the VMA covering [start, end) afterwards."""
    oldflags = vma.vm_flags
    if newflags == oldflags:
        return vma
    nrpages = (end - start) >> 12
    charged = 0
    if newflags & VM_WRITE:
        if not oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE):
            charged = nrpages
            newflags |= VM_ACCOUNT
    elif oldflags & VM_ACCOUNT and vma.is_anonymous() and not kernel.design.vma_has_anon(vma):
        newflags &= ~VM_ACCOUNT
    vma = vma_modify(kernel.design, vma, start, end, newflags)
    vma.vm_flags = newflags
    kernel.committed_pages += charged
    kernel.design.change_protection(mm, vma, start, end)
    if oldflags & VM_ACCOUNT and not newflags & VM_ACCOUNT:
        kernel.committed_pages -= nrpages
    if (oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED and newflags & VM_WRITE:
        from .uaccess import populate_vma_page_range
        populate_vma_page_range(kernel, _task_of(kernel, mm), vma, start, end)
    mm.vm_stat_account(oldflags, -nrpages)
    mm.vm_stat_account(newflags, nrpages)
    return vma


def _task_of(kernel, mm):
    for t in kernel.tasks.values():
        if t.mm is mm:
            return t
    return None
