"""Removing a range of an address space: do_vmi_align_munmap() and its helpers (mm/vma.c).

Used by munmap, by mmap over existing mappings (MAP_FIXED), by mremap and brk, and (with
``remove_all``) by exit_mmap. Steps, in Linux's order:

  1. gather (vms_gather_munmap_vmas): split the first VMA at ``start`` and the last at ``end``
     if they straddle them — refusing with ENOMEM first if splitting the first one would put
     the mm over max_map_count — then detach every VMA inside [start, end) from the tree;
  2. clear (vms_clear_ptes): update_hiwater_rss, zap every detached VMA's PTEs through the
     design, unlink its anon state and file, and free page tables with free_pgtables(),
     floor = end of the VMA before the range, ceiling = start of the VMA after it;
  3. complete (vms_complete_munmap_vmas): update_hiwater_vm, then lower total_vm,
     locked_vm, exec/stack/data_vm and the commit charge.
"""

from __future__ import annotations

import errno

from ..errors import syscall_error
from ..hw.pagetable import PMD_SIZE
from ..mm.mm_struct import is_data_mapping, is_exec_mapping, is_stack_mapping
from ..mm.vmflags import VM_ACCOUNT, VM_LOCKED
from .vma_ops import split_vma, vma_unlink_file


def check_split_limit(kernel, mm, start: int, end: int) -> None:
    """The ENOMEM test of vms_gather_munmap_vmas(), to run before anything changes."""
    vma = mm.vmas.find(start)
    if vma is None or vma.vm_start >= end:
        return
    if vma.vm_start < start and end < vma.vm_end and mm.map_count >= kernel.sys.config.max_map_count:
        raise syscall_error(errno.ENOMEM, "munmap: splitting would exceed vm.max_map_count")


def gather(kernel, mm, start: int, end: int) -> list:
    """Split at the edges and detach the VMAs of [start, end); return them in order. An empty
    range detaches nothing and splits nothing."""
    design = kernel.design
    if start >= end:
        return []
    vma = mm.vmas.find(start)
    if vma is None or vma.vm_start >= end:
        return []
    if vma.vm_start < start:
        split_vma(design, vma, start, new_below=True)
    detached = []
    for v in mm.vmas.intersecting(start, end):
        if v.vm_end > end:
            split_vma(design, v, end, new_below=False)
        detached.append(v)
    for v in detached:
        mm.vmas.remove(v)
    return detached


def clear_and_complete(kernel, mm, detached: list, floor: int, ceiling: int) -> None:
    """vms_clear_ptes() + vms_complete_munmap_vmas() for VMAs already out of the tree."""
    if not detached:
        return
    design = kernel.design
    mm.update_hiwater_rss()
    for v in detached:
        design.zap_range(mm, v, v.vm_start, v.vm_end)
    free_pgtables(kernel, mm, detached, floor, ceiling)
    mm.update_hiwater_vm()
    for v in detached:
        n = v.pages()
        mm.total_vm -= n
        if v.vm_flags & VM_LOCKED:
            mm.locked_vm -= n
        if v.vm_flags & VM_ACCOUNT:
            kernel.committed_pages -= n
        if is_exec_mapping(v.vm_flags):
            mm.exec_vm -= n
        elif is_stack_mapping(v.vm_flags):
            mm.stack_vm -= n
        elif is_data_mapping(v.vm_flags):
            mm.data_vm -= n


def free_pgtables(kernel, mm, detached: list, floor: int, ceiling: int) -> None:
    """free_pgtables(): unlink each VMA from rmap and file, then free the page tables under
    runs of nearby VMAs (gaps of at most one PMD are folded into one call)."""
    design = kernel.design
    pt = kernel.sys.pagetables
    i, n = 0, len(detached)
    while i < n:
        vma = detached[i]
        addr = vma.vm_start
        design.vma_close(vma)
        vma_unlink_file(design, vma)
        j = i + 1
        while j < n and detached[j].vm_start <= vma.vm_end + PMD_SIZE:
            vma = detached[j]
            design.vma_close(vma)
            vma_unlink_file(design, vma)
            j += 1
        nxt_start = detached[j].vm_start if j < n else ceiling
        pt.free_pgd_range(mm.pgd, addr, vma.vm_end, floor, nxt_start, acct=mm)
        i = j


def do_munmap_range(kernel, mm, start: int, end: int) -> None:
    """do_vmi_align_munmap() for an aligned, valid range (callers checked the arguments)."""
    check_split_limit(kernel, mm, start, end)
    detached = gather(kernel, mm, start, end)
    if not detached:
        return
    prev = mm.vmas.prev_of(start)
    nxt = mm.vmas.next_of(end)
    floor = prev.vm_end if prev is not None else 0
    ceiling = nxt.vm_start if nxt is not None else 0
    clear_and_complete(kernel, mm, detached, floor, ceiling)
