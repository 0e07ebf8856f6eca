"""Tearing down PTEs: unmap_page_range() -> zap_pte_range() (mm/memory.c).

Used by munmap, exit, MADV_DONTNEED, mremap's old range and MAP_FIXED replacement. Per PTE:

  present, normal page   folio_remove_rmap_pte (mapcount -1; munlock if the VMA is locked),
                         RSS -1 for the page's kind; for a non-anon page a dirty PTE marks the
                         folio dirty and a young PTE marks it accessed (vma_has_recency);
                         the page is freed once nothing references it
  present, zero page     just cleared (the zero page is never counted or freed)
  swap entry             free_swap_and_cache(); MM_SWAPENTS -1
  PTE marker (guard)     cleared by munmap/exit; kept by MADV_DONTNEED (ZAP_FLAG_DROP_MARKER)
Order: every PTE of the batch is cleared before any page is freed (Linux frees after the TLB
flush through the mmu_gather).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, ZERO_PFN
from ...mm.vmflags import VM_RAND_READ, VM_SEQ_READ

_U32 = np.uint32


class Zap:
    """Mixin of LinuxDesign."""

    def zap_range(self, mm, vma, start: int, end: int, drop_markers: bool = True,
                  even_cows: bool = True) -> None:
        if not even_cows and not vma.is_shared():
            return self._zap_file_pages(mm, vma, start, end)
        rows_, los, his, lo_addr = self.pt.leaves(mm.pgd, start, end)
        recency = not vma.vm_flags & (VM_SEQ_READ | VM_RAND_READ)
        dead_all = []
        for rows, sl, _k in self.pt.groups(rows_, los, his):
            block = self.pt.rows[rows, sl]
            flat = block.reshape(-1)
            present = (flat & P.NP_PRESENT_ANY) != 0
            npresent = int(np.count_nonzero(present))
            keep = None
            if npresent != flat.size:
                nz = flat != 0
                if not nz.any():
                    continue
                marker = P.np_marker(flat)
                swap = nz & ~present & ~marker
                if swap.any():
                    self._zap_swap_entries(mm, flat[swap])
                if not drop_markers and marker.any():
                    keep = np.where(marker, flat, np.uint64(0)).reshape(block.shape)
            if npresent:
                pv = flat if npresent == flat.size else flat[present]
                pfn = pv.view(np.int64) >> 12
                pfn &= (1 << P.PFN_BITS) - 1
                real = pfn != ZERO_PFN
                if not real.all():
                    pv, pfn = pv[real], pfn[real]
                if len(pfn):
                    fl = self.frames.flags[pfn]
                    file = (fl & _U32(PG_anon)) == 0
                    if file.any():
                        self.mark_dirty(pfn[file & ((pv & P.NP_DIRTY) != 0)])
                        if recency:
                            young = pfn[file & ((pv & P.NP_ACCESSED) != 0)]
                            if len(young):
                                self.sys.lru.mark_accessed(young)
                    self.rss_add(mm, pfn, -1, flags=fl)
                    addrs = self._block_addrs(lo_addr[_k], block.shape[1], present, real) \
                        if self.tracks_ptes else None
                    dead_all.append(self.unmap_pages(vma, pfn, addrs))
            self.pt.rows[rows, sl] = 0 if keep is None else keep
        for dead in dead_all:
            self.free_pages(dead)

    def _zap_file_pages(self, mm, vma, start: int, end: int) -> None:
        """zap_pte_range() with details->even_cows false in a private mapping: only PTEs of
        page-cache pages are cleared; anon COW copies, swap entries and markers stay."""
        rows_, los, his, lo_addr = self.pt.leaves(mm.pgd, start, end)
        recency = not vma.vm_flags & (VM_SEQ_READ | VM_RAND_READ)
        for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), lo_addr.tolist()):
            vals = self.pt.rows[row, lo:hi]
            present = P.np_present(vals)
            if not present.any():
                continue
            pfn = P.np_pfn(vals)
            sel = present & (pfn != ZERO_PFN)
            sel[sel] = (self.frames.flags[pfn[sel]] & _U32(PG_anon)) == 0
            if not sel.any():
                continue
            pv, pf = vals[sel], pfn[sel].astype(np.intp)
            self.mark_dirty(pf[(pv & P.NP_DIRTY) != 0])
            if recency:
                young = pf[(pv & P.NP_ACCESSED) != 0]
                if len(young):
                    self.sys.lru.mark_accessed(young)
            self.rss_add(mm, pf, -1)
            addrs = a + (np.flatnonzero(sel).astype(np.int64) << 12) if self.tracks_ptes else None
            dead = self.unmap_pages(vma, pf, addrs)
            vals[sel] = 0
            self.pt.rows[row, lo:hi] = vals
            self.free_pages(dead)

    @staticmethod
    def _block_addrs(lo_addr: np.ndarray, width: int, present: np.ndarray, real) -> np.ndarray:
        """The addresses of a block's present PTEs (``real`` drops the zero page's), for a
        design that tracks PTEs. ``lo_addr[t]`` maps the block's first slot of table t."""
        pos = np.flatnonzero(present)
        if real is not None:
            pos = pos[real]
        return lo_addr[pos // width] + ((pos % width).astype(np.int64) << 12)
