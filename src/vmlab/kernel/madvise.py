"""madvise(2) (mm/madvise.c; rules and host cases in docs/notes/syscalls.md §6).

Checks: advice not valid on this configuration -> EINVAL; start unaligned -> EINVAL;
len != 0 rounding to 0, or start+len wrapping -> EINVAL; len 0 -> success.

madvise_walk_vmas(): every VMA meeting the range gets the advice on the intersection; a hole
only records ENOMEM and the walk goes on (so DONTNEED over [VMA, hole, VMA] zaps both VMAs and
then fails); an advice's own error stops the walk at once. POPULATE_READ/WRITE instead fault
the range in page by page (faultin_page_range): a hole -> ENOMEM, missing permission ->
EINVAL, a SIGBUS/SIGSEGV fault -> EFAULT, each after the pages before it were populated.

Flag advices (NORMAL, RANDOM, SEQUENTIAL, DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK,
DONTDUMP, DODUMP, MERGEABLE, UNMERGEABLE, HUGEPAGE, NOHUGEPAGE) go through vma_modify():
merge or split, a split at the map_count limit failing with EAGAIN.
"""

from __future__ import annotations

import errno

import numpy as np

from ..constants import (MADV_COLD, MADV_COLLAPSE, MADV_DODUMP, MADV_DOFORK, MADV_DONTDUMP,
                         MADV_DONTFORK, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE,
                         MADV_GUARD_INSTALL, MADV_GUARD_REMOVE, MADV_HUGEPAGE, MADV_KEEPONFORK,
                         MADV_MERGEABLE, MADV_NOHUGEPAGE, MADV_NORMAL, MADV_PAGEOUT,
                         MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_RANDOM, MADV_REMOVE,
                         MADV_SEQUENTIAL, MADV_UNMERGEABLE, MADV_WILLNEED, MADV_WIPEONFORK,
                         PAGE_SIZE)
from ..errors import BusError, SegmentationFault, syscall_error
from ..hw import pte as P
from ..mm.vmflags import (VM_DONTCOPY, VM_DONTDUMP, VM_DROPPABLE, VM_HUGEPAGE, VM_HUGETLB,
                          VM_IO, VM_LOCKED, VM_MERGEABLE, VM_NOHUGEPAGE, VM_PFNMAP, VM_RAND_READ,
                          VM_MAYWRITE, VM_SEQ_READ, VM_SHARED, VM_WIPEONFORK, VM_WRITE,
                          VM_READ)
from .uaccess import populate_range
from .vma_ops import VM_SPECIAL, vma_modify

VALID = frozenset({
    MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_FREE,
    MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
    MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD,
    MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED, MADV_COLLAPSE,
    MADV_GUARD_INSTALL, MADV_GUARD_REMOVE,
})   # MADV_HWPOISON/SOFT_OFFLINE need CONFIG_MEMORY_FAILURE, off on the reference host

FLAG_ADVICES = frozenset({MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_DONTFORK, MADV_DOFORK,
                          MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTDUMP, MADV_DODUMP,
                          MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE})
_U64 = (1 << 64) - 1
_U32 = np.uint32


def do_madvise(kernel, task, start: int, length: int, advice: int) -> None:
    mm = task.mm
    if advice not in VALID:
        raise syscall_error(errno.EINVAL, f"madvise: advice {advice} is not supported")
    if start & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "madvise: address not page aligned")
    alen = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & _U64
    if length and not alen:
        raise syscall_error(errno.EINVAL, "madvise: length wraps around")
    end = start + alen
    if end > _U64:
        raise syscall_error(errno.EINVAL, "madvise: range wraps around")
    if end == start:
        return
    if advice in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
        return _populate(kernel, task, start, end, advice == MADV_POPULATE_WRITE)
    unmapped = False
    cur = start
    while cur < end:
        vma = mm.vmas.find(cur)
        if vma is None or vma.vm_start >= end:
            raise syscall_error(errno.ENOMEM, "madvise: range is not fully mapped")
        if vma.vm_start > cur:
            unmapped = True
            cur = vma.vm_start
        tmp = min(vma.vm_end, end)
        _advise_vma(kernel, task, vma, cur, tmp, advice)
        cur = tmp
    if unmapped:
        raise syscall_error(errno.ENOMEM, "madvise: range has unmapped holes")


def _advise_vma(kernel, task, vma, start: int, end: int, advice: int) -> None:
    mm = task.mm
    design = kernel.design
    f = vma.vm_flags
    if advice in FLAG_ADVICES:
        new = f
        if advice == MADV_NORMAL:
            new &= ~(VM_RAND_READ | VM_SEQ_READ)
        elif advice == MADV_SEQUENTIAL:
            new = (new & ~VM_RAND_READ) | VM_SEQ_READ
        elif advice == MADV_RANDOM:
            new = (new & ~VM_SEQ_READ) | VM_RAND_READ
        elif advice == MADV_DONTFORK:
            new |= VM_DONTCOPY
        elif advice == MADV_DOFORK:
            if f & VM_IO:
                raise syscall_error(errno.EINVAL, "madvise: MADV_DOFORK on an I/O mapping")
            new &= ~VM_DONTCOPY
        elif advice == MADV_WIPEONFORK:
            if vma.vm_file is not None or f & VM_SHARED:
                raise syscall_error(errno.EINVAL, "madvise: MADV_WIPEONFORK needs private anonymous memory")
            new |= VM_WIPEONFORK
        elif advice == MADV_KEEPONFORK:
            if f & VM_DROPPABLE:
                raise syscall_error(errno.EINVAL, "madvise: MADV_KEEPONFORK on MAP_DROPPABLE")
            new &= ~VM_WIPEONFORK
        elif advice == MADV_DONTDUMP:
            new |= VM_DONTDUMP
        elif advice == MADV_DODUMP:
            if f & VM_SPECIAL or f & VM_DROPPABLE:
                raise syscall_error(errno.EINVAL, "madvise: MADV_DODUMP on a special mapping")
            new &= ~VM_DONTDUMP
        elif advice == MADV_MERGEABLE:
            if f & (VM_SHARED | VM_SPECIAL | VM_HUGETLB):
                return                                   # ksm_madvise: silently not mergeable
            new |= VM_MERGEABLE
        elif advice == MADV_UNMERGEABLE:
            new &= ~VM_MERGEABLE
        elif advice == MADV_HUGEPAGE:
            new = (new & ~VM_NOHUGEPAGE) | VM_HUGEPAGE
        elif advice == MADV_NOHUGEPAGE:
            new = (new & ~VM_HUGEPAGE) | VM_NOHUGEPAGE
        if new == f:
            return
        try:
            nv = vma_modify(design, vma, start, end, new)
        except OSError as e:
            if e.errno == errno.ENOMEM:            # madvise_update_vma reports it as EAGAIN
                raise syscall_error(errno.EAGAIN, "madvise: splitting would exceed vm.max_map_count") from None
            raise
        nv.vm_flags = new
        return
    if advice in (MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE):
        forbidden = VM_PFNMAP | (0 if advice == MADV_DONTNEED_LOCKED else VM_LOCKED)
        if f & forbidden:
            raise syscall_error(errno.EINVAL, "madvise: not allowed on a locked or PFN mapping")
        if advice == MADV_FREE:
            if vma.vm_file is not None:
                raise syscall_error(errno.EINVAL, "madvise: MADV_FREE needs private anonymous memory")
            return madvise_free(kernel, mm, vma, start, end)
        mm.update_hiwater_rss()
        design.zap_range(mm, vma, start, end, drop_markers=False)
        return
    if advice == MADV_WILLNEED:
        return madvise_willneed(kernel, mm, vma, start, end)
    if advice in (MADV_COLD, MADV_PAGEOUT):
        if f & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB):
            raise syscall_error(errno.EINVAL, "madvise: not allowed on a locked or PFN mapping")
        return madvise_cold_or_pageout(kernel, mm, vma, start, end, advice == MADV_PAGEOUT)
    if advice == MADV_REMOVE:
        if f & VM_LOCKED:
            raise syscall_error(errno.EINVAL, "madvise: MADV_REMOVE on a locked mapping")
        obj = vma.vm_file
        if obj is None:
            raise syscall_error(errno.EINVAL, "madvise: MADV_REMOVE needs a file or shared mapping")
        # madvise_remove(): !vma_is_shared_maywrite(vma) -> EACCES. Since 6.7 that asks for
        # VM_SHARED|VM_MAYWRITE, not VM_WRITE: a PROT_READ shared mapping of an fd opened for
        # writing may punch the hole (mmap of an O_RDONLY fd clears VM_MAYWRITE).
        if not (f & VM_SHARED and f & VM_MAYWRITE):
            raise syscall_error(errno.EACCES, "madvise: MADV_REMOVE needs a shared mapping that may be written")
        return shmem_punch_hole(kernel, vma, start, end)
    if advice == MADV_COLLAPSE:
        raise syscall_error(errno.EINVAL, "madvise: MADV_COLLAPSE: the model has no huge pages")
    if advice == MADV_GUARD_INSTALL:
        return guard_install(kernel, task, vma, start, end)
    if advice == MADV_GUARD_REMOVE:
        return guard_remove(kernel, task, vma, start, end)


def _populate(kernel, task, start: int, end: int, write: bool) -> None:
    """madvise_populate() / faultin_page_range(): FOLL_TOUCH (+FOLL_WRITE), no FOLL_FORCE."""
    from .uaccess import check_access
    mm = task.mm
    cur = start
    while cur < end:
        vma = mm.vmas.lookup(cur)
        if vma is None:
            raise syscall_error(errno.ENOMEM, "madvise: MADV_POPULATE: range is not mapped")
        if vma.vm_flags & (VM_IO | VM_PFNMAP):
            raise syscall_error(errno.EINVAL, "madvise: MADV_POPULATE on a special mapping")
        if write and not vma.vm_flags & VM_WRITE:
            raise syscall_error(errno.EINVAL, "madvise: MADV_POPULATE_WRITE on a read-only mapping")
        if not write and not vma.vm_flags & VM_READ:
            raise syscall_error(errno.EINVAL, "madvise: MADV_POPULATE_READ on an unreadable mapping")
        seg_end = min(end, vma.vm_end)
        try:
            check_access(kernel, task, cur, seg_end - cur, write)
        except BusError as e:
            if e.addr > cur:
                populate_range(kernel, task, vma, cur, e.addr & ~(PAGE_SIZE - 1), write)
            raise syscall_error(errno.EFAULT, "madvise: MADV_POPULATE hit SIGBUS") from None
        except SegmentationFault as e:
            if e.addr > cur:
                populate_range(kernel, task, vma, cur, e.addr & ~(PAGE_SIZE - 1), write)
            raise syscall_error(errno.EFAULT, "madvise: MADV_POPULATE hit SIGSEGV") from None
        populate_range(kernel, task, vma, cur, seg_end, write)
        cur = seg_end


def madvise_free(kernel, mm, vma, start: int, end: int) -> None:
    """MADV_FREE: the design's madvise_free_pte_range()."""
    kernel.design.madvise_free(mm, vma, start, end)


def madvise_cold_or_pageout(kernel, mm, vma, start: int, end: int, pageout: bool) -> None:
    """MADV_COLD / MADV_PAGEOUT: the design picks the pages (madvise_cold_or_pageout_pte_range),
    then PAGEOUT hands them to reclaim (reclaim_pages)."""
    victims = kernel.design.madvise_cold(mm, vma, start, end, pageout)
    if pageout and victims:
        reclaim = getattr(kernel, "reclaim_pages", None)
        if reclaim is not None:
            reclaim(victims)


def shmem_punch_hole(kernel, vma, start: int, end: int) -> None:
    """MADV_REMOVE -> vfs_fallocate(PUNCH_HOLE | KEEP_SIZE) (shmem_fallocate, or the disk
    filesystem's): unmap the range's page-cache pages from every VMA mapping it (private
    mappings keep their COW copies: even_cows is false), then drop the cached pages, the
    swapped-out ones (tmpfs) and the blocks on disk. The range reads as zeros afterwards."""
    from ..mm.filemap import DiskFile
    obj = vma.vm_file
    lo = vma.linear_page_index(start)
    hi = vma.linear_page_index(end)
    design = kernel.design
    for v in list(obj.i_mmap):
        a = max(v.vm_start, v.addr_of_index(lo))
        b = min(v.vm_end, v.addr_of_index(hi))
        if a < b:
            v.vm_mm.update_hiwater_rss()
            design.zap_range(v.vm_mm, v, a, b, even_cows=False)
    f = kernel.sys.frames
    hi = min(hi, len(obj.pages))
    if hi <= lo:
        return
    idx = np.flatnonzero(obj.pages[lo:hi] >= 0) + lo
    if len(idx):
        pfns = obj.pages[idx].astype(np.intp)
        obj.pages[idx] = -1
        obj.nrpages -= len(idx)
        f.refcount[pfns] -= 1
        dead = pfns[(f.refcount[pfns] == 0) & (f.mapcount[pfns] == 0)]
        kernel.sys.lru.remove(dead)
        f.free_many(dead)
    if obj.swap_backed:
        ents = obj.swap[lo:hi]
        live = ents[ents != 0]
        if len(live):
            kernel.sys.swap_free_entries(live)
            obj.nrswapped -= len(live)
            obj.swap[lo:hi] = 0
    if isinstance(obj, DiskFile):
        f.contents.release_many(obj.disk[lo:hi])
        obj.disk[lo:hi] = 0


def _valid_guard_vma(vma, allow_locked: bool) -> bool:
    """is_valid_guard_vma(): not special, hugetlb or droppable (or locked, to install)."""
    bad = VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE | (0 if allow_locked else VM_LOCKED)
    return not vma.vm_flags & bad


def guard_install(kernel, task, vma, start: int, end: int) -> None:
    """madvise_guard_install(): replace the range's pages with guard markers.

    The VMA is marked VM_MAYBE_GUARD as a whole (sticky: never cleared, ignored by merging,
    and it makes fork copy the page tables). An anonymous VMA gets its anon_vma first
    (anon_vma_prepare), as Linux does. Present pages are zapped; every PTE of the range then
    holds the guard marker: an access is SIGSEGV/SEGV_MAPERR, pagemap shows swap + guard.
    """
    from ..hw.pagetable import PTE_LEVEL  # noqa: F401
    from ..mm.vmflags import VM_MAYBE_GUARD
    from .oom import with_oom_retry
    mm = task.mm
    if not _valid_guard_vma(vma, allow_locked=False):
        raise syscall_error(errno.EINVAL, "madvise: guard regions are not allowed on this mapping")
    pt = kernel.sys.pagetables
    with_oom_retry(kernel, task, lambda: pt.leaves(mm.pgd, start, end, alloc=True, acct=mm))
    if vma.vm_file is None:
        kernel.design.anon_prepare(vma)
    vma.vm_flags |= VM_MAYBE_GUARD
    mm.update_hiwater_rss()
    kernel.design.guard_install(mm, vma, start, end)


def guard_remove(kernel, task, vma, start: int, end: int) -> None:
    """madvise_guard_remove(): clear guard markers in the range (VM_MAYBE_GUARD stays)."""
    if not _valid_guard_vma(vma, allow_locked=True):
        raise syscall_error(errno.EINVAL, "madvise: guard regions are not allowed on this mapping")
    kernel.design.guard_remove(task.mm, vma, start, end)


def madvise_willneed(kernel, mm, vma, start: int, end: int) -> None:
    """madvise_willneed(): start reading swapped pages of the range back into the swap cache
    (anonymous: the swap PTEs, swapin_walk_ops; shmem: the object's swap entries). Nothing
    gets mapped; a later fault finds the page cached (a minor fault)."""
    from ..mm.swap_state import read_swap_page
    sysm = kernel.sys
    swap = sysm.swap
    obj = vma.vm_file
    if obj is not None and getattr(obj, "is_shmem", False):
        lo, hi = vma.linear_page_index(start), min(vma.linear_page_index(end), len(obj.swap))
        ents = obj.swap[lo:hi]
        targets = [int(e) for e in ents[ents != 0]]
    else:
        pt = sysm.pagetables
        targets = []
        rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = pt.rows[row, lo:hi]
            sw = P.np_swap(vals) & ~P.np_marker(vals)
            targets += [int(e) for e in vals[sw]]
    for e in targets:
        t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
        if swap.cache_lookup(t, off) >= 0 or sysm.frames.nfree <= sysm.watermarks()["min"]:
            continue
        read_swap_page(sysm, t, off)
