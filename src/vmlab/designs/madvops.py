"""Page-level work of madvise() that every design shares unless it overrides it (mm/madvise.c).

  madvise_free(mm, vma, start, end)     madvise_free_pte_range(): swap PTEs of the range are
                                        dropped (free_swap_and_cache; reading the page later
                                        gives zeros, which is what MADV_FREE allows), and each
                                        present anon page mapped only here becomes lazy-free:
                                        its swap slot freed if nothing else uses it
                                        (folio_free_swap), PG_dirty cleared, PTE clean and old,
                                        off the anon LRU (folio_mark_lazyfree). A page that is
                                        dirty or in the swap cache and may be mapped elsewhere,
                                        or whose slot is still referenced, is left alone.
  madvise_cold(mm, vma, start, end, pageout)
                                        madvise_cold_or_pageout_pte_range(): each present page
                                        on the LRU and mapped only here loses PG_referenced;
                                        COLD clears its PTE's young bit and deactivates it,
                                        PAGEOUT (6.4+) keeps the young bit and returns it as a
                                        victim for reclaim_pages(), which ignores references.
  guard_install / guard_remove          MADV_GUARD_INSTALL / REMOVE: zap the range keeping
                                        markers, then put the guard marker in every empty PTE;
                                        remove clears the markers only.

They go through the design (not the kernel layer) because they rewrite PTEs: a design whose
page tables may be shared, or whose pages live in objects, must see every such write.
"""

from __future__ import annotations

import numpy as np

from ..hw import pte as P
from ..hw.frames import (PG_active, PG_anon, PG_dirty, PG_lru, PG_referenced, PG_swapbacked,
                         PG_swapcache, PG_unevictable, ZERO_PFN)
from ..mm.mm_struct import MM_SWAPENTS
from ..mm.swap_state import folio_free_swap, free_swap_and_cache


class MadviseOps:
    """Mixin: needs self.frames, self.pt, self.sys, self.zap_range."""

    def madvise_free(self, mm, vma, start: int, end: int) -> None:
        f = self.frames
        pt = self.pt
        lru = self.sys.lru
        events = self.sys.events
        rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = pt.rows[row, lo:hi]
            swap = P.np_swap(vals) & ~P.np_marker(vals)
            if swap.any():
                for e in vals[swap].tolist():
                    free_swap_and_cache(self.sys, P.pte_swp_type(e), P.pte_swp_offset(e))
                mm.rss[MM_SWAPENTS] -= int(np.count_nonzero(swap))
                vals[swap] = 0
            for k in np.flatnonzero(P.np_present(vals)).tolist():
                e = int(vals[k])
                pfn = P.pte_pfn(e)
                if pfn == ZERO_PFN:
                    continue
                fl = int(f.flags[pfn])
                if not fl & PG_anon:
                    continue
                if fl & (PG_swapcache | PG_dirty):
                    if int(f.mapcount[pfn]) != 1:
                        continue                     # folio_maybe_mapped_shared
                    if fl & PG_swapcache and not folio_free_swap(self.sys, pfn):
                        continue
                    f.flags[pfn] = int(f.flags[pfn]) & ~PG_dirty
                if e & (P.ACCESSED | P.DIRTY):
                    vals[k] = e & ~(P.ACCESSED | P.DIRTY)
                fl = int(f.flags[pfn])
                if fl & PG_swapbacked and not fl & PG_swapcache and not fl & PG_unevictable:
                    # lru_lazyfree(): off the anon LRU onto the inactive file LRU head
                    f.flags[pfn] = fl & ~(PG_swapbacked | PG_active | PG_referenced)
                    if fl & PG_lru:
                        lru.rotate_to_head(pfn)
                    events.count("pglazyfree")
            pt.rows[row, lo:hi] = vals

    def madvise_cold(self, mm, vma, start: int, end: int, pageout: bool) -> list[int]:
        f = self.frames
        pt = self.pt
        rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
        victims = []
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = pt.rows[row, lo:hi]
            for k in np.flatnonzero(P.np_present(vals)).tolist():
                e = int(vals[k])
                pfn = P.pte_pfn(e)
                if pfn == ZERO_PFN or int(f.mapcount[pfn]) != 1 or not int(f.flags[pfn]) & PG_lru:
                    continue
                if not pageout and e & P.ACCESSED:
                    vals[k] = e & ~P.ACCESSED
                f.flags[pfn] = int(f.flags[pfn]) & ~PG_referenced
                if pageout:
                    victims.append(pfn)
                else:
                    self.sys.lru.deactivate(pfn)
            pt.rows[row, lo:hi] = vals
        return victims

    def guard_install(self, mm, vma, start: int, end: int) -> None:
        self.zap_range(mm, vma, start, end, drop_markers=False)
        pt = self.pt
        rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = pt.rows[row, lo:hi]
            pt.rows[row, lo:hi] = np.where(vals == 0, np.uint64(P.GUARD_PTE), vals)

    def guard_remove(self, mm, vma, start: int, end: int) -> None:
        pt = self.pt
        rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = pt.rows[row, lo:hi]
            pt.rows[row, lo:hi] = np.where(vals == np.uint64(P.GUARD_PTE), np.uint64(0), vals)
