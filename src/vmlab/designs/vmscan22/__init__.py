"""The `vmscan22` design: no reverse map; reclaim walks page tables (Linux 2.2 swap_out), and
shared anonymous memory lives in a writable swap cache (Colin Plumb, seeds/000).

Two seeds meet here. Stephen Tweedie and Ben LaHaise (seeds/002, 1998) weigh choosing swap
victims "via a scan of the page tables, as currently happens in vmscan, or with a scan of
physical pages as shrink_mmap() does", and note that per-mm RSS limits need the page-table
kind. Linux 2.2 is the page-table kind: nothing leads from a page back to its PTEs, so reclaim
finds mappings by walking processes' page tables (swapout.py) and frees pages by a separate
physical scan. Colin Plumb (seeds/000, 1997) proposes making shared anonymous mappings work
through the swap cache: swap-cached pages stay writable and dirty, and a dirty page is written
when the last PTE goes away (swapanon.py).

What this package overrides of the `linux` design (everything else — faults, COW, the zero
page, exclusive reuse, fork's PTE copy, swap PTEs and do_swap_page, tmpfs, SysV shm, disk
files — is Linux 6's, so that semantics are identical):

  reverse map     none. rmap_walk() finds nothing for any page; anonymous pages record no
                  anchor (page->mapping is empty). Reclaim's LRU scan leaves mapped pages
                  alone (reclaim_unmaps_by_rmap = False); scan_page_tables() unmaps them.
                  Per VMA only "may hold anonymous pages" is read (vma_has_anon), by fork
                  to decide whether to copy PTEs (vma_needs_copy) — Linux 2.2 copied every
                  VMA's PTEs; copying where Linux 6 does keeps Rss after fork the same.
  VMA merging     2.2 had no anon_vma and merged anonymous VMAs on flags and offset alone;
                  vmlab keeps Linux 6.x's anon_vma objects (LinuxDesign's, self.avs) as merge
                  tags so that /proc/PID/maps and smaps VmFlags (mprotect drops VM_ACCOUNT
                  from an anonymous VMA without an anon_vma) are Linux's on every design, as
                  ptechains and bsd do. Anonymous pages never record one (anon_prepare,
                  anon_owner_shared, anon_reuse below), reclaim never reads them (the
                  page-table scan needs no anchor), and metadata() does not count them.
  file pages      also unmapped only by the page-table scan, as in 2.2 (whose i_mmap served
                  truncate, not reclaim). i_mmap is still used where an *object* must reach
                  its mappings: truncate, hole punch (MADV_REMOVE), msync's page_mkclean.
  MADV_PAGEOUT    madvise knows the mm and the address, so the design unmaps the PTE there
                  directly (what try_to_unmap would have done) and hands the page to reclaim.
                  MADV_COLD is Linux's (it only ages).
  shared anon     MAP_SHARED|MAP_ANONYMOUS gets a SwapAnonObject (swapanon.py), not a shmem
                  inode: pages named by swap entries and kept in the swap cache.

Costs (stats): ``ptes_scanned`` — page-table entries the scan examined; ``ptes_unmapped_scan``
— PTEs it took out; ``swap_out_calls``; ``swapcache_anon_pages`` / ``swapcache_anon_renamed``.
`vmlab compare` divides ptes_scanned by the pages reclaim freed (pgsteal).

Option ``reserve_swap`` (default 1): a shared anonymous page takes a real swap slot when it
is first touched (the seed). 0: it is named on the swapper space and gets a real slot only
when reclaim writes it.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, PG_lru, PG_mlocked, PG_referenced, PG_unevictable, ZERO_PFN
from ..base import Mapping
from ..linux import LinuxDesign
from .swapanon import SwapAnon, SwapAnonObject
from .swapout import SwapCursor, SwapOut

_U32 = np.uint32
SWAP_CURSOR_BYTES = 16       # 2.2's task_struct swap_address + swap_cnt (two longs)


class Vmscan22Design(SwapOut, SwapAnon, LinuxDesign):
    name = "vmscan22"
    description = ("Linux 2.2: no reverse map, reclaim scans page tables (swap_out); shared "
                   "anonymous memory in a writable swap cache (Plumb 1997)")

    OPTIONS = {"reserve_swap": (True, "a shared anonymous page takes a real swap slot at its "
                                      "first touch (the seed); 0: only when reclaim writes it")}

    reclaim_unmaps_by_rmap = False

    def __init__(self, system, **options):
        super().__init__(system, **options)
        self.mms: list = []
        self._swapper_area = None
        self._tail = 0

    # --- address spaces -----------------------------------------------------------------------------
    def mm_init(self, mm, parent_mm) -> None:
        mm.design_state = SwapCursor()
        self.mms.append(mm)

    def mm_exit(self, mm) -> None:
        self.mms.remove(mm)

    # --- the anonymous anchor: none ------------------------------------------------------------------
    def anon_prepare(self, vma) -> int:
        """The VMA gets the anon_vma Linux would give it (a merge tag only); a new anonymous
        page records no anchor (-1)."""
        self.avs.prepare(vma)
        return -1

    def anon_owner_shared(self, vma) -> int:
        return self.anon_prepare(vma)

    def anon_reuse(self, vma, pfns) -> None:
        """A page reused in place still records nothing (no folio_move_anon_rmap)."""

    # --- faults -------------------------------------------------------------------------------------
    def fault(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        obj = vma.vm_file
        if isinstance(obj, SwapAnonObject):
            obj.ensure(vma.linear_page_index(base + (int(idx[-1]) << 12)) + 1)
            return self._fault_swap_anon(mm, vma, row, idx, base, write)
        return super().fault(mm, vma, row, idx, base, write)

    # --- no reverse map -----------------------------------------------------------------------------
    def rmap_walk(self, pfn: int) -> Iterator[Mapping]:
        """There is none: no page leads back to its PTEs."""
        return iter(())

    def madvise_cold(self, mm, vma, start: int, end: int, pageout: bool) -> list[int]:
        """MADV_COLD as Linux. MADV_PAGEOUT: the pages mapped only here are unmapped right
        here (madvise has the mm and the address that rmap would have found) and returned as
        victims; a page that must stay mapped (no swap slot, SHM_LOCK, mlocked) is a victim
        still, and reclaim puts it back."""
        if not pageout:
            return super().madvise_cold(mm, vma, start, end, pageout)
        f = self.frames
        pt = self.pt
        self._tail = int(f.lru_seq.min()) - 1
        victims = []
        rows_, los, his, _ = pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = pt.rows[row, lo:hi]
            for k in np.flatnonzero(P.np_present(vals)).tolist():
                pfn = P.pte_pfn(int(pt.rows[row, lo + k]))
                if pfn == ZERO_PFN or int(f.mapcount[pfn]) != 1 or not int(f.flags[pfn]) & PG_lru:
                    continue
                f.flags[pfn] = int(f.flags[pfn]) & ~PG_referenced
                victims.append(pfn)
                if int(f.flags[pfn]) & (PG_mlocked | PG_unevictable):
                    continue
                if self._unmap_pte(mm, vma, row, lo + k, pfn):
                    self.stats.add("ptes_unmapped_madvise")
        return victims

    # --- self-check and costs ------------------------------------------------------------------
    def check(self, mms: list) -> list[str]:
        """The cursor list is the live mms; every present anonymous PTE sits in a VMA that has
        an anon_vma (vma_has_anon, which fork's vma_needs_copy relies on) and its page names no
        anchor; the shared anonymous objects are consistent (swapanon.py). Plus the anon_vma
        merge tags' own invariants."""
        out: list[str] = self.check_anon_vmas(mms)
        f = self.frames
        live = {id(mm) for mm in mms}
        mine = {id(mm) for mm in self.mms}
        if live != mine:
            out.append(f"vmscan22: {len(mine)} mms on the swap_out list, {len(live)} live")
        for mm in mms:
            if not isinstance(mm.design_state, SwapCursor):
                out.append("vmscan22: a live mm has no swap_out cursor")
            for vma in mm.vmas:
                rows_, los, his, _ = self.pt.leaves(mm.pgd, vma.vm_start, vma.vm_end)
                for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
                    vals = self.pt.rows[row, lo:hi]
                    pres = P.np_present(vals)
                    if not pres.any():
                        continue
                    pfn = P.np_pfn(vals[pres])
                    pfn = pfn[pfn != ZERO_PFN]
                    anon = (f.flags[pfn] & _U32(PG_anon)) != 0
                    if anon.any() and not self.vma_has_anon(vma):
                        out.append(f"vmscan22: VMA {vma.vm_start:#x} maps anon pages but has no anon_vma")
                    if (f.mapping[pfn[anon]] != -1).any():
                        out.append(f"vmscan22: an anon page in VMA {vma.vm_start:#x} names an anchor")
        return out + self.check_swap_anon(mms)

    def metadata(self) -> dict[str, int]:
        """The swap_out cursors and the shared anonymous objects; the anon_vma merge tags are
        not the design's."""
        out = {"swap_out cursors": len(self.mms) * SWAP_CURSOR_BYTES}
        out.update(self.swap_anon_metadata())
        return out
