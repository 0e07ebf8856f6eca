"""Reclaim by scanning page tables: Linux 2.2's swap_out() (mm/vmscan.c).

With no reverse map, reclaim cannot start from a page and find its PTEs. Linux 2.2 split
reclaim in two (mm/vmscan.c do_try_to_free_pages, read in linas/i370-linux-2.2.1):

  swap_out()        picks a process and walks its page tables, VMA by VMA from where it
                    stopped last time (p->swap_address), and for each PTE calls
                    try_to_swap_out(): a young PTE is made old and its page marked referenced
                    (second chance); an old one is taken out of this process — a page already
                    in the swap cache leaves a swap PTE (swap_duplicate), a clean file page
                    just goes, a dirty anonymous page gets a swap entry and enters the swap
                    cache. The page is freed only when its last user lets go.
  shrink_mmap()     (mm/filemap.c) a clock over physical pages that frees page-cache and
                    swap-cache pages nobody maps any more ("We can't free pages unless there's
                    just one user").

2.2 chose the process with the largest swap_cnt, a "shadow rss" reloaded from mm->rss when
every process had used its share (swap_out: "select the swappable task with maximal RSS"),
and skipped VM_LOCKED areas (swap_out_vma). 2.4 (mm/vmscan.c, 2.4.x) made swap_cnt count down
per page examined, which is what is modelled here.

vmlab's version (scan_page_tables, called by the shared reclaim at the start of shrink_node):

  * processes are visited in 2.2's order: the largest swap_cnt first; swap_cnt starts at the
    mm's RSS and drops by one per present page examined; when every mm has used its share the
    counts are reloaded from RSS (2.2's second "assign" pass). Each mm keeps its cursor.
  * per leaf table, vectorised: every slot from the cursor on counts in ``ptes_scanned``
    (2.2 looked at every PTE of the walked range, present or not); present pages (not the
    zero page, not mlocked) are examined: young -> made old, PG_referenced set; old ->
    try_to_swap_out.
  * try_to_swap_out unmaps *every* kind of page (anonymous, swap-cached, file, tmpfs, SysV shm,
    shared anonymous): there is no rmap for any of them in this design. An anonymous page
    without a slot gets one (add_to_swap) and becomes dirty; if none is free it stays mapped
    (2.2: "No swap space left"). A PTE's dirty bit is copied to the page (2.2 wrote a dirty
    file page at once through vm_ops->swapout; its own comment says the better way is to "just
    set a dirty bit in page_map, and just drop the pte. All the hard work would be done by
    shrink_mmap()" — what 2.4 did and what is done here). MADV_FREE'd pages are dropped if
    still clean, as try_to_unmap_one does.
  * a page whose last PTE went goes to the tail of the inactive list, where the shared LRU
    scan (standing in for shrink_mmap) writes it if dirty and frees it. Mapped pages are left
    alone by the LRU scan (Design.reclaim_unmaps_by_rmap is False).
  * the scan stops when ``nr_wanted`` pages have lost their last PTE, or every mm has had
    max(1, n_mms >> (priority / 2)) turns (2.2: counter = nr_tasks / (priority + 1), with
    priority 6..0 where vmlab's reclaim uses 12..0).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import (PG_active, PG_anon, PG_dirty, PG_lru, PG_mlocked, PG_referenced,
                          PG_swapbacked, PG_swapcache, PG_unevictable, ZERO_PFN)
from ...mm.vmflags import VM_IO, VM_LOCKED, VM_PFNMAP

_U32 = np.uint32
_U64 = np.uint64


class SwapCursor:
    """The per-mm state 2.2 kept in task_struct: swap_address (where the walk resumes) and
    swap_cnt (the shadow RSS: how much more of this mm to examine before moving on)."""

    __slots__ = ("swap_address", "swap_cnt")

    def __init__(self) -> None:
        self.swap_address = 0
        self.swap_cnt = 0


class SwapOut:
    """Mixin of Vmscan22Design: needs self.frames, self.pt, self.sys, self.mms, PageOps."""

    # --- swap_out ---------------------------------------------------------------------------------
    def scan_page_tables(self, nr_wanted: int, sc) -> int:
        if nr_wanted <= 0:
            return 0
        mms = [mm for mm in self.mms if not mm.dead]
        if not mms:
            return 0
        self.stats.add("swap_out_calls")
        self._tail = int(self.frames.lru_seq.min()) - 1
        turns = max(1, len(mms) >> (max(0, sc.priority) // 2))
        freed = 0
        for _ in range(turns + 1):                      # 2.2: for (; counter >= 0; counter--)
            mm = self._pick_mm(mms)
            if mm is None:
                break
            freed += self._swap_out_mm(mm, nr_wanted - freed)
            if freed >= nr_wanted:
                break
        return freed

    @staticmethod
    def _pick_mm(mms):
        """The mm with the largest swap_cnt; reload the counts from RSS when all are used."""
        for assign in (False, True):
            best, best_cnt = None, 0
            for mm in mms:
                cur = mm.design_state
                rss = mm.get_mm_rss()
                if rss <= 0:
                    continue
                if assign:
                    cur.swap_cnt = rss
                if cur.swap_cnt > best_cnt:
                    best, best_cnt = mm, cur.swap_cnt
            if best is not None:
                return best
        return None

    def _swap_out_mm(self, mm, want: int) -> int:
        """swap_out_process(): walk mm from its cursor until ``want`` pages lost their last
        PTE or its swap_cnt is used up; at the end of the address space the cursor wraps and
        the count is cleared (2.2: "We didn't find anything for the process")."""
        cur = mm.design_state
        freed = 0
        addr = cur.swap_address
        for vma in mm.vmas.as_list():
            if vma.vm_end <= addr:
                continue
            start = max(addr, vma.vm_start)
            if vma.vm_flags & (VM_LOCKED | VM_IO | VM_PFNMAP):
                continue                                  # swap_out_vma(): locked areas stay
            rows_, los, his, addrs = self.pt.leaves(mm.pgd, start, vma.vm_end)
            for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
                got, stop = self._swap_out_table(mm, vma, row, lo, hi, a, want - freed)
                freed += got
                if stop is not None:
                    cur.swap_address = stop
                    return freed
        cur.swap_address = 0
        cur.swap_cnt = 0
        return freed

    def _swap_out_table(self, mm, vma, row: int, lo: int, hi: int, a: int, want: int):
        """swap_out_pmd() over slots [lo, hi) of one leaf table (``a`` maps slot lo).
        Returns (pages freed of their last PTE, the address to resume at or None)."""
        f = self.frames
        cur = mm.design_state
        vals = self.pt.rows[row, lo:hi]
        pfn = P.np_pfn(vals)
        cand = P.np_present(vals) & (pfn != ZERO_PFN)
        pos = np.flatnonzero(cand)
        if len(pos):
            pos = pos[(f.flags[pfn[pos]] & _U32(PG_mlocked | PG_unevictable)) == 0]
        stop_k = None
        if len(pos) > cur.swap_cnt:                       # the mm's share ends inside this table
            if cur.swap_cnt <= 0:
                return 0, a
            pos = pos[:cur.swap_cnt]
            stop_k = int(pos[-1])
        young = (vals[pos] & P.NP_ACCESSED) != 0
        freed = 0
        for k in pos[~young].tolist():
            if self._try_to_swap_out(mm, vma, row, lo + k, int(pfn[k])):
                freed += 1
                if freed >= want:
                    stop_k = k
                    break
        if stop_k is not None:
            pos = pos[pos <= stop_k]
            young = young[:len(pos)]
        yp = pos[young]
        if len(yp):
            # the second chance: the accessed bit moves from the PTE to the page
            self.pt.rows[row, lo + yp] = vals[yp] & P.NP_NOT_ACCESSED
            f.flags[pfn[yp]] |= _U32(PG_referenced)
        cur.swap_cnt -= len(pos)
        self.stats.add("ptes_scanned", (stop_k + 1) if stop_k is not None else hi - lo)
        if stop_k is not None:
            return freed, a + ((stop_k + 1) << 12)
        return freed, None

    # --- try_to_swap_out ---------------------------------------------------------------------
    def _try_to_swap_out(self, mm, vma, row: int, slot: int, pfn: int) -> bool:
        """Take one old PTE out; True when it was the page's last mapping. A page that must
        stay (no swap slot, an unevictable mapping, a MADV_FREE page written again) keeps its
        PTE."""
        if not self._unmap_pte(mm, vma, row, slot, pfn):
            return False
        self.stats.add("ptes_unmapped_scan")
        if int(self.frames.mapcount[pfn]):
            return False
        self._to_inactive_tail(pfn)
        return True

    def _unmap_pte(self, mm, vma, row: int, slot: int, pfn: int) -> bool:
        """Replace the PTE at (row, slot), which maps ``pfn``, as try_to_swap_out() does."""
        f = self.frames
        fl = int(f.flags[pfn])
        m = int(f.mapping[pfn])
        if not fl & PG_anon and m >= 0 and getattr(f.owners.get(m), "unevictable", False):
            return False                                  # SHM_LOCK'ed: the LRU culls it
        if fl & PG_anon and fl & PG_swapbacked and not fl & PG_swapcache:
            where = self.sys.swap.get_swap_page()         # add_to_swap()
            if where is None:
                return False                              # "No swap space left"
            self.sys.swap.add_to_cache(where[0], where[1], pfn)
            f.flags[pfn] |= _U32(PG_dirty)
        # the rest is try_to_unmap_one()'s (reclaimops.py): swap PTE, dropped lazy-free page,
        # or none for a page the page cache finds again; the PTE's dirty bit moves to the page
        return self.clear_mapping_pte(mm, vma, row, slot, pfn)

    def _to_inactive_tail(self, pfn: int) -> None:
        """The unmapped page waits at the tail of its inactive list for the LRU scan."""
        f = self.frames
        fl = int(f.flags[pfn])
        if fl & PG_lru and not fl & PG_unevictable:
            f.flags[pfn] = fl & ~PG_active
            f.lru_seq[pfn] = self._tail
            self._tail -= 1
