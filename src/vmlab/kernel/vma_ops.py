"""Splitting and merging VMAs, as mm/vma.c does it in Linux 6.13+.

Merging decides what /proc/PID/maps looks like, so the rules are followed closely:

  is_mergeable_vma()      equal flags ignoring VM_SOFTDIRTY, the same file, (no uffd ctx,
                          no anon name, default mempolicy: not modelled, always equal)
  is_mergeable_anon_vma() the design's verdict (anon_vma compatibility for `linux`)
  can_vma_merge_after()   prev.vm_pgoff + pages(prev) == pgoff of the range
  can_vma_merge_before()  next.vm_pgoff == pgoff + pages(range)
  can_vma_merge_right()   and, when merging both sides, prev's and next's anon state agree
  VM_SPECIAL              (VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP) never merges

vma_merge_new_range() is used by mmap and mremap for a range not yet mapped;
vma_modify() by mprotect, mlock and madvise for part of an existing VMA: try to merge the
range into a neighbour, otherwise split it out. split_vma() cuts one VMA in two.

Each function keeps the tree, the design's anon state, the file's i_mmap and references,
and the mm's accounting consistent. None of them can fail after it starts changing things
(max_map_count is checked before, by the callers, as Linux does in its vms_* and split paths).
"""

from __future__ import annotations

from ..mm.vma import VMA
from ..mm.vmflags import VM_DONTEXPAND, VM_IO, VM_MAYBE_GUARD, VM_MIXEDMAP, VM_PFNMAP, VM_SOFTDIRTY

VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP


def vma_link_file(vma: VMA) -> None:
    """The VMA takes a reference to its backing object and joins its i_mmap (and, for a SysV
    segment, vm_ops->open: shm_open())."""
    if vma.vm_file is not None:
        vma.vm_file.vma_link(vma)
        hook = getattr(vma.vm_file, "on_map", None)
        if hook is not None:
            hook(vma.vm_file)


def vma_unlink_file(design, vma: VMA) -> None:
    """unlink_file_vma() + fput(): leave i_mmap; the last reference evicts the object."""
    obj = vma.vm_file
    if obj is not None:
        obj.vma_unlink(vma)
        hook = getattr(obj, "on_unmap", None)      # vm_ops->close: shm_close()
        if hook is not None:
            hook(obj)
        if obj.refs == 0 and obj.nlink == 0:
            obj.evict(design.sys)


def vm_area_dup(vma: VMA) -> VMA:
    return vma.dup()


def split_vma(design, vma: VMA, addr: int, new_below: bool) -> VMA:
    """__split_vma(): cut ``vma`` at ``addr``; return the new VMA.

    new_below: the new VMA is [vm_start, addr) and ``vma`` keeps [addr, vm_end); otherwise the
    new one is [addr, vm_end). vm_pgoff follows the cut. Page tables are untouched: the pages
    stay where they are, now under one VMA or the other.
    """
    mm = vma.vm_mm
    assert vma.vm_start < addr < vma.vm_end, "split_vma: address not inside the VMA"
    new = vm_area_dup(vma)
    if new_below:
        new.vm_end = addr
    else:
        new.vm_start = addr
        new.vm_pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> 12)
    design.vma_split(vma, new)
    vma_link_file(new)
    mm.vmas.remove(vma)
    if new_below:
        vma.vm_pgoff += (addr - vma.vm_start) >> 12
        vma.vm_start = addr
    else:
        vma.vm_end = addr
    mm.vmas.insert(vma)
    mm.vmas.insert(new)
    return new


VM_STICKY = VM_MAYBE_GUARD                      # 6.18.x: carried into the merged VMA
VM_IGNORE_MERGE = VM_SOFTDIRTY | VM_STICKY


def is_mergeable_vma(vma: VMA, flags: int, file) -> bool:
    """is_mergeable_vma(): equal flags but for VM_SOFTDIRTY and sticky flags; same file."""
    return ((vma.vm_flags ^ flags) & ~VM_IGNORE_MERGE) == 0 and vma.vm_file is file


class MergeRange:
    """struct vma_merge_struct, reduced to what the model needs."""

    def __init__(self, mm, start: int, end: int, flags: int, pgoff: int, file,
                 prev: VMA | None, next: VMA | None, middle: VMA | None = None,
                 copied_from: VMA | None = None):
        self.mm = mm
        self.start, self.end = start, end
        self.flags, self.pgoff, self.file = flags, pgoff, file
        self.prev, self.next, self.middle = prev, next, middle
        self.copied_from = copied_from


def _can_merge_after(design, g: MergeRange) -> bool:
    p = g.prev
    return (is_mergeable_vma(p, g.flags, g.file)
            and design.anon_mergeable(p, g.middle, g.copied_from)
            and p.vm_pgoff + p.pages() == g.pgoff)


def _can_merge_before(design, g: MergeRange) -> bool:
    n = g.next
    return (is_mergeable_vma(n, g.flags, g.file)
            and design.anon_mergeable(n, g.middle, g.copied_from)
            and n.vm_pgoff == g.pgoff + ((g.end - g.start) >> 12))


def _can_merge_left(design, g: MergeRange) -> bool:
    return g.prev is not None and g.prev.vm_end == g.start and _can_merge_after(design, g)


def _can_merge_right(design, g: MergeRange, can_merge_left: bool) -> bool:
    n = g.next
    if n is None or g.end != n.vm_start or not _can_merge_before(design, g):
        return False
    if not can_merge_left:
        return True
    # Both sides can take the range; prev and next must also agree with *each other*.
    return design.anon_state_compatible(g.prev, n)


def vma_merge_new_range(design, g: MergeRange) -> VMA | None:
    """vma_merge_new_range(): extend prev and/or next over [start, end), or return None.

    Nothing is mapped in [start, end) yet. When both merge, next is removed and prev covers
    everything.
    """
    prev, nxt = g.prev, g.next
    g.mm.unmerged_ok.discard(g.start)          # boundaries of a new range are new ones
    g.mm.unmerged_ok.discard(g.end)
    if g.flags & VM_SPECIAL or (prev is None and nxt is None):
        return None
    left = _can_merge_left(design, g)
    right = _can_merge_right(design, g, left)
    mm = g.mm
    if left and right and not can_merge_remove_vma(nxt):
        right = False                  # expand prev only; next (it has a close hook) stays
    if left and right:
        gone = [nxt]
        mm.vmas.remove(nxt)
        _adjust(mm, prev, prev.vm_start, nxt.vm_end, prev.vm_pgoff)
        design.vma_merge(prev, gone)
        vma_unlink_file(design, nxt)
        _merge_softdirty(prev, g.flags)
        return prev
    if left:
        _adjust(mm, prev, prev.vm_start, g.end, prev.vm_pgoff)
        _merge_softdirty(prev, g.flags)
        return prev
    if right:
        _adjust(mm, nxt, g.start, nxt.vm_end, g.pgoff)
        _merge_softdirty(nxt, g.flags)
        return nxt
    return None


def _merge_softdirty(vma: VMA, flags: int) -> None:
    """The merged VMA is soft-dirty if the new range is (vm_flags_set(VM_SOFTDIRTY)), and keeps
    the sticky flags of every side."""
    vma.vm_flags |= flags & VM_IGNORE_MERGE


def _adjust(mm, vma: VMA, start: int, end: int, pgoff: int) -> None:
    """vma_set_range() for a VMA in the tree: its start may move."""
    mm.vmas.remove(vma)
    vma.vm_start, vma.vm_end, vma.vm_pgoff = start, end, pgoff
    mm.vmas.insert(vma)


def vma_modify(design, vma: VMA, start: int, end: int, newflags: int) -> VMA:
    """vma_modify_flags(): make [start, end) of ``vma`` a VMA of its own with ``newflags``,
    merging it into a neighbour when the rules allow (vma_merge_existing_range), splitting
    otherwise. Returns the VMA that now covers [start, end) (with newflags set)."""
    mm = vma.vm_mm
    tree = mm.vmas
    prev = tree.prev(vma)
    nxt = tree.next(vma)
    pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> 12)
    g = MergeRange(mm, start, end, newflags, pgoff, vma.vm_file, prev, nxt, middle=vma)
    if start == vma.vm_start:
        mm.unmerged_ok.discard(start)          # a merge with prev is attempted here
    if end == vma.vm_end:
        mm.unmerged_ok.discard(end)            # ... and with next here
    merged = _merge_existing_range(design, g)
    if merged is not None:
        return merged
    limit = design.sys.config.max_map_count
    if vma.vm_start < start:
        _split_limit(mm, limit)
        split_vma(design, vma, start, new_below=True)
    if vma.vm_end > end:
        _split_limit(mm, limit)
        split_vma(design, vma, end, new_below=False)
    vma.vm_flags = newflags
    return vma


def _split_limit(mm, limit: int) -> None:
    """split_vma(): refuse when the mm already has max_map_count VMAs."""
    if mm.map_count >= limit:
        import errno
        from ..errors import syscall_error
        raise syscall_error(errno.ENOMEM, "splitting the VMA would exceed vm.max_map_count")


def can_merge_remove_vma(vma: VMA) -> bool:
    """can_merge_remove_vma(): a merge may delete a VMA only if it has no vm_ops->close
    (in the model: a SysV shm attach, whose close hook counts shm_nattch)."""
    return vma.vm_file is None or getattr(vma.vm_file, "on_unmap", None) is None


def _merge_existing_range(design, g: MergeRange) -> VMA | None:
    middle = g.middle
    mm = g.mm
    left_side = g.start == middle.vm_start
    right_side = g.end == middle.vm_end
    if g.flags & VM_SPECIAL or (not left_side and not right_side):
        return None
    merge_left = left_side and _can_merge_left(design, g)
    merge_right = right_side and _can_merge_right(design, g, merge_left)
    if not merge_left and not merge_right:
        return None
    if left_side and right_side and not can_merge_remove_vma(middle):
        return None                    # the whole middle would go, and it has a close hook
    if merge_left and merge_right and not can_merge_remove_vma(g.next):
        merge_right = False            # reduce to merging prev and middle
    prev, nxt = g.prev, g.next
    remove_middle = left_side and right_side
    if merge_left and merge_right:
        # prev extends over middle and next; both go
        mm.vmas.remove(middle)
        mm.vmas.remove(nxt)
        _adjust(mm, prev, prev.vm_start, nxt.vm_end, prev.vm_pgoff)
        design.vma_merge(prev, [nxt, middle] if design.vma_has_anon(nxt) else [middle, nxt])
        vma_unlink_file(design, middle)
        vma_unlink_file(design, nxt)
        _merge_softdirty(prev, g.flags)
        return prev
    if merge_left:
        if remove_middle:
            mm.vmas.remove(middle)
            _adjust(mm, prev, prev.vm_start, g.end, prev.vm_pgoff)
            design.vma_merge(prev, [middle])
            vma_unlink_file(design, middle)
        else:
            # middle shrinks from the left, prev grows over [start, end)
            mm.vmas.remove(middle)
            _adjust(mm, prev, prev.vm_start, g.end, prev.vm_pgoff)
            middle.vm_pgoff += (g.end - middle.vm_start) >> 12
            middle.vm_start = g.end
            mm.vmas.insert(middle)
            _dup_anon(design, prev, middle)
        _merge_softdirty(prev, g.flags)
        return prev
    # merge_right
    if remove_middle:
        mm.vmas.remove(middle)
        _adjust(mm, nxt, g.start, nxt.vm_end, nxt.vm_pgoff - ((g.end - g.start) >> 12))
        design.vma_merge(nxt, [middle])
        vma_unlink_file(design, middle)
    else:
        mm.vmas.remove(middle)
        middle.vm_end = g.start
        mm.vmas.insert(middle)
        _adjust(mm, nxt, g.start, nxt.vm_end, nxt.vm_pgoff - ((g.end - g.start) >> 12))
        _dup_anon(design, nxt, middle)
    _merge_softdirty(nxt, g.flags)
    return nxt


def _dup_anon(design, dst: VMA, src: VMA) -> None:
    """dup_anon_vma(): dst, which now maps some of src's pages, takes src's anon state."""
    design.vma_dup_anon(dst, src)
