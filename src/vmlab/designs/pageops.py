"""Page bookkeeping shared by every design: what mapping or unmapping a frame must update.

Whatever a design's reverse map looks like, a PTE coming or going changes the same things in
Linux: the frame's mapcount, the mm's RSS counter for the page's kind (mm_counter() in
include/linux/mm.h), the mlock state when the VMA is VM_LOCKED (mlock_vma_folio /
munlock_vma_folio in mm/internal.h), and — when the last reference goes — the LRU and the
allocator (folios_put / free_unref_folios). These helpers do that in bulk for an array of pfns.

The arrays handed in must not repeat a pfn (one PTE each); callers batch per VMA and per
leaf table, where Linux's rules make that hold (an anon page is mapped at most once per mm,
a file page at most once per VMA).
"""

from __future__ import annotations

import numpy as np

from ..hw.frames import PG_anon, PG_anon_exclusive, PG_dirty, PG_swapbacked, PG_uptodate, PG_zero
from ..mm.mm_struct import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES

_U32 = np.uint32


def mm_counter_of(flags: np.ndarray) -> np.ndarray:
    """mm_counter(): MM_ANONPAGES for anon, MM_SHMEMPAGES for other swap-backed, else FILE."""
    fl = flags.astype(np.int64)
    return np.where(fl & PG_anon, MM_ANONPAGES, np.where(fl & PG_swapbacked, MM_SHMEMPAGES, MM_FILEPAGES))


class PageOps:
    """Mixin for designs: needs ``self.frames``, ``self.sys``."""

    def rss_add(self, mm, pfns: np.ndarray, sign: int = 1, flags: np.ndarray | None = None) -> None:
        """add_mm_counter() for each page's kind (``flags``: the pages' flags, if at hand)."""
        if not len(pfns):
            return
        fl = self.frames.flags[pfns] if flags is None else flags
        anon = np.count_nonzero(fl & _U32(PG_anon))
        sb_not_anon = np.count_nonzero((fl & _U32(PG_anon | PG_swapbacked)) == _U32(PG_swapbacked))
        mm.rss[MM_ANONPAGES] += sign * int(anon)
        mm.rss[MM_SHMEMPAGES] += sign * int(sb_not_anon)
        mm.rss[MM_FILEPAGES] += sign * int(len(pfns) - anon - sb_not_anon)

    def map_pages(self, vma, pfns: np.ndarray) -> None:
        """The rmap side of installing PTEs for existing pages: mapcount +1, mlock if locked.

        (folio_add_anon_rmap_ptes / folio_add_file_rmap_ptes, then mlock_vma_folio.)
        The caller updates RSS and writes the PTEs. The pages are page-cache pages mapped at
        their linear addresses, which is what a design that tracks PTEs is told.
        """
        if not len(pfns):
            return
        if self.tracks_ptes:
            self.rmap_add(vma.vm_mm, vma, vma.vm_start + ((self.frames.index[pfns] - vma.vm_pgoff) << 12), pfns)
        self.frames.mapcount[pfns] += 1
        if vma.is_locked():
            self.sys.lru.mlock(pfns)

    def unmap_pages(self, vma, pfns: np.ndarray, addrs: np.ndarray | None = None) -> np.ndarray:
        """folio_remove_rmap_ptes() for pages losing one PTE; returns the pfns now unreferenced.

        mapcount -1; munlock when leaving a VM_LOCKED VMA. A page with no mappings and no
        other reference (page cache, swap cache, pin) is dead: the caller frees it with
        free_pages() once its PTEs are cleared. ``addrs`` (the PTEs' addresses) is needed
        only by a design that tracks PTEs; callers compute it only then.
        """
        f = self.frames
        if not len(pfns):
            return pfns
        if self.tracks_ptes:
            self.rmap_remove(vma.vm_mm, vma, addrs, pfns)
        f.mapcount[pfns] -= 1
        if vma.is_locked():
            self.sys.lru.munlock(pfns)
        dead = (f.mapcount[pfns] == 0) & (f.refcount[pfns] == 0)
        return pfns[dead]

    def free_pages(self, pfns: np.ndarray) -> None:
        """folios_put(): off the LRU and back to the allocator."""
        if not len(pfns):
            return
        assert not (self.frames.flags[pfns] & PG_zero).any(), "free_pages: the zero page"
        self.sys.lru.remove(pfns)
        self.frames.free_many(pfns)

    def new_anon_pages(self, vma, anon_owner_id: int, pfns: np.ndarray, addrs: np.ndarray) -> None:
        """folio_add_new_anon_rmap() + folio_add_lru_vma() for freshly allocated pages.

        Exclusive to this mapping (PG_anon_exclusive), swap-backed, mapcount 1, on the
        inactive anon list or mlocked at once in a VM_LOCKED VMA. Net per page: mapcount +1
        (refcount stays 0 here: the allocation's reference became the mapping's).
        """
        f = self.frames
        f.flags[pfns] = _U32(PG_anon | PG_swapbacked | PG_anon_exclusive | PG_uptodate)
        f.mapping[pfns] = anon_owner_id
        f.index[pfns] = vma.vm_pgoff + ((addrs - vma.vm_start) >> 12)
        f.mapcount[pfns] = 1
        f.refcount[pfns] = 0
        self.sys.lru.add_new(pfns, locked=vma.is_locked())
        if self.tracks_ptes:
            self.rmap_add(vma.vm_mm, vma, addrs, pfns)

    def mark_dirty(self, pfns: np.ndarray) -> None:
        """folio_mark_dirty() for file/shmem pages."""
        if len(pfns):
            self.frames.flags[pfns] |= _U32(PG_dirty)
