"""mremap(2) (mm/mremap.c, Linux 6.16+ structure with 6.17's multi-VMA move; see
docs/notes/syscalls.md §5 for every rule and the host cases that show it).

Parameter checks come first (flags, alignment, new_len 0 or beyond TASK_SIZE, the FIXED /
DONTUNMAP constraints, map_count headroom), then the VMA checks (EFAULT when addr is not
mapped or the old range runs past its VMA, EINVAL for old_len 0 on a private mapping, ...).

  same size        nothing to do (unless FIXED or DONTUNMAP)
  shrink           unmap the tail in place
  grow in place    when the old range ends the VMA and the space after it is free:
                   vma_merge_extend() grows the VMA (merging with next when it now touches)
  move             copy_vma() at the destination — a never-faulted anonymous VMA gets a
                   fresh vm_pgoff there, a faulted one keeps its own so its pages' index
                   stays valid — then the design moves the PTEs, then the old range is
                   unmapped (not with MREMAP_DONTUNMAP, which leaves it mapped and empty).

Accounting mirrors Linux on the host, including the two DONTUNMAP quirks the host shows:
the source keeps VM_ACCOUNT, and locked_vm counts a moved locked range twice.
"""

from __future__ import annotations

import errno

from ..constants import MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, TASK_SIZE
from ..errors import syscall_error
from ..mm.vma import VMA
from ..mm.vmflags import (VM_ACCOUNT, VM_DONTEXPAND, VM_LOCKED, VM_LOCKONFAULT, VM_MAYSHARE,
                          VM_PFNMAP, VM_SHARED)
from . import layout
from .mmap import page_align, vm_enough_memory
from .unmap import do_munmap_range
from .vma_ops import MergeRange, vma_link_file, vma_merge_new_range

_U64 = (1 << 64) - 1


def do_mremap(kernel, task, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    mm = task.mm
    cfg = kernel.sys.config
    fixed = bool(flags & MREMAP_FIXED)
    dontunmap = bool(flags & MREMAP_DONTUNMAP)
    if flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP):
        raise syscall_error(errno.EINVAL, "mremap: unknown flags")
    if addr & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "mremap: address not page aligned")
    old_len = page_align(old_len) & _U64
    new_len = page_align(new_len) & _U64
    if new_len == 0:
        raise syscall_error(errno.EINVAL, "mremap: new length is 0")
    if new_len > TASK_SIZE:
        raise syscall_error(errno.EINVAL, "mremap: new length larger than the address space")
    if fixed or dontunmap:
        if new_addr > TASK_SIZE - new_len:
            raise syscall_error(errno.EINVAL, "mremap: new range beyond TASK_SIZE")
        if new_addr & (PAGE_SIZE - 1):
            raise syscall_error(errno.EINVAL, "mremap: new address not page aligned")
        if not flags & MREMAP_MAYMOVE:
            raise syscall_error(errno.EINVAL, "mremap: MREMAP_FIXED/DONTUNMAP need MREMAP_MAYMOVE")
        if dontunmap and old_len != new_len:
            raise syscall_error(errno.EINVAL, "mremap: MREMAP_DONTUNMAP needs old_len == new_len")
        if fixed and addr < new_addr + new_len and new_addr < addr + old_len:
            raise syscall_error(errno.EINVAL, "mremap: old and new ranges overlap")
        if mm.map_count + 2 >= cfg.max_map_count - 3:
            raise syscall_error(errno.ENOMEM, "mremap: too many mappings (vm.max_map_count)")
    if fixed and old_len == new_len:
        return _remap_move_multi(kernel, task, addr, old_len, new_addr, dontunmap)
    vma = mm.vmas.lookup(addr)
    if vma is None:
        raise syscall_error(errno.EFAULT, "mremap: address is not mapped")
    if old_len == new_len and not fixed and not dontunmap:
        return addr
    grows = new_len > old_len or fixed or dontunmap
    if grows:
        if old_len == 0 and not vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            raise syscall_error(errno.EINVAL, "mremap: old_len 0 needs a shared mapping")
        if dontunmap and vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP):
            raise syscall_error(errno.EINVAL, "mremap: MREMAP_DONTUNMAP on a special mapping")
        # the range that must lie in this VMA: a FIXED shrink first unmaps the tail, so only
        # new_len of it has to be mapped here
        span = new_len if fixed and new_len < old_len else old_len
        if span > vma.vm_end - addr:
            raise syscall_error(errno.EFAULT, "mremap: old range runs past its mapping")
        if new_len > old_len and vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP):
            raise syscall_error(errno.EFAULT, "mremap: mapping may not grow")
        if vma.vm_flags & VM_LOCKED and new_len > old_len:
            from .mlock import mlock_future_ok
            if not mlock_future_ok(kernel, mm, new_len - old_len):
                raise syscall_error(errno.EAGAIN, "mremap: locked growth over RLIMIT_MEMLOCK")
    # a plain shrink is only an unmap of the tail: check_prep_vma() does not ask the kept
    # part to lie in one VMA (it may span several, or holes)
    if fixed:
        return _mremap_to(kernel, task, vma, addr, old_len, new_len, new_addr, dontunmap)
    if new_len < old_len and not dontunmap:
        do_munmap_range(kernel, mm, addr + new_len, addr + old_len)
        return addr
    if not dontunmap and addr + old_len == vma.vm_end and _expandable(mm, vma, new_len - old_len):
        return _expand_in_place(kernel, task, vma, addr, old_len, new_len)
    if not flags & MREMAP_MAYMOVE:
        raise syscall_error(errno.ENOMEM, "mremap: cannot grow in place and MREMAP_MAYMOVE not given")
    hint = new_addr if dontunmap else 0
    pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> 12)
    try:
        dest = layout.get_unmapped_area(mm, hint, new_len, pgoff,
                                        MAP_SHARED if vma.vm_flags & VM_MAYSHARE else 0,
                                        anonymous=False, stack_guard_gap=cfg.stack_guard_gap,
                                        mmap_min_addr=cfg.mmap_min_addr)
    except layout.NoSpace:
        raise syscall_error(errno.ENOMEM, "mremap: no free address range to move to") from None
    return move_vma(kernel, task, vma, addr, old_len, new_len, dest, dontunmap)


def _expandable(mm, vma, delta: int) -> bool:
    """vma_expandable(): the next delta bytes after the VMA are free and inside the space."""
    end = vma.vm_end + delta
    if end > TASK_SIZE or end < vma.vm_end:
        return False
    return mm.vmas.find_intersection(vma.vm_end, end) is None


def _expand_in_place(kernel, task, vma, addr: int, old_len: int, new_len: int) -> int:
    """expand_vma_in_place(): charge, vma_merge_extend(), account, populate if locked."""
    mm = task.mm
    delta = new_len - old_len
    pages = delta >> 12
    charged = 0
    if vma.vm_flags & VM_ACCOUNT:
        if not vm_enough_memory(kernel, pages):
            raise syscall_error(errno.ENOMEM, "mremap: not enough memory to commit")
        charged = pages
    start = vma.vm_end
    g = MergeRange(mm, start, start + delta, vma.vm_flags, vma.vm_pgoff + vma.pages(),
                   vma.vm_file, vma, mm.vmas.next(vma), middle=None, copied_from=vma)
    merged = vma_merge_new_range(kernel.design, g)
    if merged is None:
        raise syscall_error(errno.ENOMEM, "mremap: the mapping cannot be extended")
    kernel.committed_pages += charged
    mm.vm_stat_account(merged.vm_flags, pages)
    if merged.vm_flags & VM_LOCKED:
        mm.locked_vm += pages
        from .mlock import mm_populate
        mm_populate(kernel, task, addr + old_len, delta)
    mm.update_hiwater_vm()
    return addr


def _mremap_to(kernel, task, vma, addr, old_len, new_len, new_addr, dontunmap) -> int:
    """mremap_to(): clear the target, trim the source, then move."""
    mm = task.mm
    do_munmap_range(kernel, mm, new_addr, new_addr + new_len)
    if old_len > new_len:
        do_munmap_range(kernel, mm, addr + new_len, addr + old_len)
        old_len = new_len
    vma = mm.vmas.lookup(addr)
    if vma is None:
        raise syscall_error(errno.EFAULT, "mremap: source vanished")
    return move_vma(kernel, task, vma, addr, old_len, new_len, new_addr, dontunmap)


def move_vma(kernel, task, vma, old_addr: int, old_len: int, new_len: int, new_addr: int,
             dontunmap: bool) -> int:
    """move_vma(): copy_vma at new_addr, move the PTEs, unmap (or keep, DONTUNMAP) the old range."""
    mm = task.mm
    design = kernel.design
    vm_flags = vma.vm_flags
    if mm.map_count >= kernel.sys.config.max_map_count - 3:
        raise syscall_error(errno.ENOMEM, "mremap: too many mappings (vm.max_map_count)")
    charge = 0
    if vm_flags & VM_ACCOUNT:
        charge = (new_len >> 12) if dontunmap else max(0, (new_len - old_len) >> 12)
        if charge and not vm_enough_memory(kernel, charge):
            raise syscall_error(errno.ENOMEM, "mremap: not enough memory to commit")
    # split the source so the moved range is a VMA of its own (as the old-range unmap will)
    new_pgoff = vma.vm_pgoff + ((old_addr - vma.vm_start) >> 12)
    new_vma = copy_vma(kernel, mm, vma, new_addr, new_len, new_pgoff)
    if new_vma.vm_start <= old_addr < new_vma.vm_end:
        vma = new_vma                 # the source was merged into the destination (unfaulted)
    kernel.committed_pages += charge
    moved = min(old_len, new_len)
    if moved:
        design.move_ptes(mm, vma, old_addr, new_vma, new_addr, moved)
    mm.vm_stat_account(vm_flags, new_len >> 12)
    if vm_flags & VM_LOCKED:
        mm.locked_vm += new_len >> 12
    if dontunmap:
        _clear_locked(kernel, mm, old_addr, old_addr + old_len)
    else:
        # the old range's commit was carried to the new VMA: unmap without uncharging it
        _unmap_keep_charge(kernel, mm, old_addr, old_addr + old_len)
    mm.update_hiwater_vm()
    if vm_flags & VM_LOCKED and new_len > old_len:
        from .mlock import mm_populate
        mm_populate(kernel, task, new_addr + old_len, new_len - old_len)
    return new_addr


def copy_vma(kernel, mm, vma, addr: int, length: int, pgoff: int):
    """copy_vma(): the destination VMA, merged into a neighbour when the rules allow."""
    design = kernel.design
    if vma.is_anonymous() and not design.vma_has_anon(vma):
        pgoff = addr >> 12                       # never faulted: label pages by the new address
    prev = mm.vmas.prev_of(addr)
    nxt = mm.vmas.next_of(addr + length)
    g = MergeRange(mm, addr, addr + length, vma.vm_flags, pgoff, vma.vm_file, prev, nxt,
                   middle=None, copied_from=vma)
    merged = vma_merge_new_range(design, g)
    if merged is not None:
        design.vma_dup_anon(merged, vma)
        return merged
    new = VMA(mm, addr, addr + length, vma.vm_flags, pgoff, vma.vm_file)
    new.special_name = vma.special_name
    design.vma_split(vma, new)                   # anon_vma_clone: same anon state as the source
    mm.vmas.insert(new)
    vma_link_file(new)
    return new


def _unmap_keep_charge(kernel, mm, start: int, end: int) -> None:
    """do_vmi_munmap() of the source with VM_ACCOUNT cleared on the moved part first."""
    before = kernel.committed_pages
    do_munmap_range(kernel, mm, start, end)
    kernel.committed_pages = before


def _clear_locked(kernel, mm, start: int, end: int) -> None:
    """DONTUNMAP: the emptied source loses VM_LOCKED|VM_LOCKONFAULT (locked_vm is left as the
    host leaves it: not reduced)."""
    from .vma_ops import vma_modify
    for v in mm.vmas.intersecting(start, end):
        if v.vm_flags & (VM_LOCKED | VM_LOCKONFAULT):
            s, e = max(start, v.vm_start), min(end, v.vm_end)
            nv = vma_modify(kernel.design, v, s, e, v.vm_flags & ~(VM_LOCKED | VM_LOCKONFAULT))
            nv.vm_flags &= ~(VM_LOCKED | VM_LOCKONFAULT)


def _remap_move_multi(kernel, task, addr: int, length: int, new_addr: int,
                      dontunmap: bool = False) -> int:
    """remap_move() (6.17+): MREMAP_FIXED with equal lengths moves every VMA of the range,
    keeping the gaps between them (and leaving the target under a gap alone); a gap at the
    start is EFAULT. With MREMAP_DONTUNMAP each
    source stays mapped, emptied."""
    mm = task.mm
    vmas = mm.vmas.intersecting(addr, addr + length)
    if not vmas or vmas[0].vm_start > addr:
        raise syscall_error(errno.EFAULT, "mremap: address is not mapped")
    pieces = [(max(addr, v.vm_start), min(addr + length, v.vm_end)) for v in vmas]
    if dontunmap:
        for v in vmas:
            if v.vm_flags & (VM_DONTEXPAND | VM_PFNMAP):
                raise syscall_error(errno.EINVAL, "mremap: MREMAP_DONTUNMAP on a special mapping")
    for s, e in pieces:
        # each piece is its own mremap_to(): only its own target range is cleared, so what
        # is mapped at the target under a hole of the source stays
        dst = new_addr + (s - addr)
        do_munmap_range(kernel, mm, dst, dst + (e - s))
        v = mm.vmas.lookup(s)
        move_vma(kernel, task, v, s, e - s, e - s, dst, dontunmap)
    return new_addr
