"""Reclaim's view of one page, for designs with a reverse map (mm/rmap.c).

  page_referenced(pfn)   folio_referenced(): walk the mappings, count the young PTEs and clear
                         their accessed bits (ptep_clear_flush_young); also report the union of
                         the VMAs' flags (VM_LOCKED means: move to the unevictable list).
  try_to_unmap(pfn)      try_to_unmap(): replace every PTE that maps the page.
                           anon page    -> a swap PTE for the page's swap-cache slot (swap count
                                           +1 per PTE), carrying PageAnonExclusive as the
                                           swap-exclusive bit and the soft-dirty bit; RSS:
                                           MM_ANONPAGES -1, MM_SWAPENTS +1
                           lazy-free    -> (MADV_FREE, not swap-backed) dropped if still clean:
                                           the PTE becomes none, the data is gone; if written
                                           again since, the page is swap-backed again and the
                                           unmap fails
                           file/shmem   -> none (the page cache finds it again)
                         A dirty PTE marks the page dirty first. A VM_LOCKED mapping stops the
                         unmap (the page gets mlocked instead). Returns True when no mapping is
                         left.

Both count the rmap steps they take (``stats["rmap_steps"]``), the cost the designs differ in.
"""

from __future__ import annotations

import numpy as np

from ..hw import pte as P
from ..hw.frames import PG_anon, PG_anon_exclusive, PG_dirty, PG_swapbacked, PG_swapcache
from ..mm.mm_struct import MM_ANONPAGES, MM_SWAPENTS
from ..mm.vmflags import VM_LOCKED
from .pageops import mm_counter_of


class ReclaimOps:
    """Mixin: needs self.frames, self.pt, self.sys, self.rmap_walk, PageOps."""

    def _mapped_at(self, mm, addr: int, pfn: int) -> tuple[int, int]:
        """page_vma_mapped_walk() for one address: (row, slot) if the PTE maps pfn, else (-1, -1)."""
        row = self.pt.lookup_leaf(mm.pgd, addr)
        if row < 0:
            return -1, -1
        slot = (addr >> 12) & 511
        e = int(self.pt.rows[row, slot])
        if P.pte_present(e) and P.pte_pfn(e) == pfn:
            return row, slot
        return -1, -1

    def page_referenced(self, pfn: int) -> tuple[int, int]:
        """folio_referenced(): (young PTEs found and cleared, OR of the VMAs' vm_flags)."""
        young = 0
        vm_flags = 0
        for mm, vma, addr in self.rmap_walk(pfn):
            row, slot = self._mapped_at(mm, addr, pfn)
            if row < 0:
                continue
            vm_flags |= vma.vm_flags
            e = int(self.pt.rows[row, slot])
            if e & P.ACCESSED:
                self.pt.rows[row, slot] = e & ~P.ACCESSED
                young += 1
        return young, vm_flags

    def try_to_unmap(self, pfn: int) -> bool:
        for mm, vma, addr in list(self.rmap_walk(pfn)):
            row, slot = self._mapped_at(mm, addr, pfn)
            if row < 0:
                continue
            if not self.unmap_one(mm, vma, row, slot, pfn, addr):
                return False
        return int(self.frames.mapcount[pfn]) == 0

    def unmap_one(self, mm, vma, row: int, slot: int, pfn: int, addr: int = -1) -> bool:
        """try_to_unmap_one() for the PTE at (row, slot), which maps ``pfn``; False if the
        page must stay (a VM_LOCKED mapping, or a lazy-free page written again). An anon
        page must already be in the swap cache. ``addr`` (the PTE's address) is needed only
        by a design that tracks PTEs."""
        self.stats.add("rmap_unmapped")
        if vma.vm_flags & VM_LOCKED:
            self.sys.lru.mlock(pfn)
            return False
        return self.clear_mapping_pte(mm, vma, row, slot, pfn, addr)

    def clear_mapping_pte(self, mm, vma, row: int, slot: int, pfn: int, addr: int = -1) -> bool:
        """The PTE replacement of try_to_unmap_one(), however the PTE was found (the rmap
        walk here; vmscan22's page-table scan, 2.2's try_to_swap_out): False if a lazy-free
        page was written again and must stay."""
        f = self.frames
        fl = int(f.flags[pfn])
        anon = bool(fl & PG_anon)
        lazyfree = anon and not fl & PG_swapbacked
        e = int(self.pt.rows[row, slot])
        if e & P.DIRTY:
            f.flags[pfn] |= np.uint32(PG_dirty)
        if lazyfree:
            if int(f.flags[pfn]) & PG_dirty:
                f.flags[pfn] |= np.uint32(PG_swapbacked)        # written again: keep it
                return False
            self.pt.rows[row, slot] = 0
            mm.rss[MM_ANONPAGES] -= 1
        elif anon:
            assert fl & PG_swapcache, "unmap_one: anon page not in the swap cache"
            entry = int(f.private[pfn])
            t, off = P.pte_swp_type(entry), P.pte_swp_offset(entry)
            self.sys.swap.duplicate(t, off)
            swp = P.swp_entry_to_pte(t, off)
            if int(f.flags[pfn]) & PG_anon_exclusive:
                swp |= P.SWP_EXCLUSIVE
                f.flags[pfn] &= np.uint32(~PG_anon_exclusive & 0xFFFFFFFF)
            if e & P.SOFT_DIRTY:
                swp |= P.SWP_SOFT_DIRTY
            self.pt.rows[row, slot] = swp
            mm.rss[MM_ANONPAGES] -= 1
            mm.rss[MM_SWAPENTS] += 1
        else:
            self.pt.rows[row, slot] = 0
            mm.rss[int(mm_counter_of(np.array([fl], np.uint32))[0])] -= 1
        if self.tracks_ptes:
            assert addr >= 0, "unmap_one: a design that tracks PTEs needs the address"
            self.rmap_remove(mm, vma, np.array([addr], np.int64), np.array([pfn], np.intp))
        f.mapcount[pfn] -= 1
        return True
