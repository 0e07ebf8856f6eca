"""Faults on shared anonymous memory: shmem_fault() behind do_read_fault()/do_shared_fault().

MAP_SHARED|MAP_ANONYMOUS is a shmem object (mm/shmem.py). A fault looks the page up in the
object's page cache by linear_page_index() and allocates it there (zeroed, swap-backed, on the
anon LRU, one page-cache reference) if it is not cached yet. The zero page is never used.

  read fault   do_read_fault(): first do_fault_around() maps, read-only-or-writable per
               vm_page_prot and young, every *already cached* page in the fault-around window
               (fault_around_bytes, 16 pages, aligned, clipped to the VMA, the PTE table and
               the object's size) whose PTE is none. If that mapped the faulting address the
               fault is done; otherwise shmem_fault() supplies the page and finish_fault maps it.
  write fault  do_shared_fault(): shmem_fault(), then the PTE is made dirty (and writable) and
               the folio is marked dirty (fault_dirty_shared_page).
  write to a present read-only PTE of a shared mapping: wp_page_shared(): writable, dirty.

Each fault is one pgfault; pages mapped by fault-around do not count.
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_swapbacked, PG_uptodate, PG_dirty

_U32 = np.uint32
_U64 = np.uint64


class ShmemFaults:
    """Mixin of LinuxDesign: needs self.frames, self.pt, self.sys and PageOps."""

    def shmem_alloc_pages(self, obj, pgoffs: np.ndarray) -> np.ndarray:
        """shmem_alloc_and_add_folio() for each index: zeroed, in the object, on the LRU."""
        f = self.frames
        pfns = f.alloc_many(len(pgoffs))
        f.flags[pfns] = _U32(PG_swapbacked | PG_uptodate)
        f.mapping[pfns] = obj.owner_id
        f.index[pfns] = pgoffs
        f.refcount[pfns] = 1                 # the page cache's reference
        obj.pages[pgoffs] = pfns
        obj.nrpages += len(pfns)
        self.sys.lru.add(pfns)
        return pfns

    def shmem_get(self, obj, pgoff: int) -> int:
        """shmem_get_folio(): the page at ``pgoff`` — cached, read back from swap (a major
        fault), or newly allocated. Frames must have been reserved by the caller."""
        pfn = int(obj.pages[pgoff])
        if pfn >= 0:
            return pfn
        if obj.swap[pgoff]:
            from ...mm.shmem import shmem_swapin
            from ...mm.swap_state import swapin_readahead
            pfn, major = shmem_swapin(self.sys, obj, pgoff, lambda t, off: swapin_readahead(self.sys, t, off))
            if major:
                self.sys.events.count("pgmajfault")
            return pfn
        return int(self.shmem_alloc_pages(obj, np.array([pgoff], np.int64))[0])

    def _fault_shared(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        obj = vma.vm_file
        ev = self.sys.events
        extra = P.SOFT_DIRTY if self.sys.config.soft_dirty else 0
        ptes = self.pt.rows[row, idx]
        present = P.np_present(ptes)
        if write and present.any():
            # wp_page_shared(): the page is there, the PTE just lacks write permission
            sel = idx[present]
            vals = self.pt.rows[row, sel]
            self.pt.rows[row, sel] = vals | _U64(P.RW | P.DIRTY | P.ACCESSED | extra)
            self.mark_dirty(P.np_pfn(vals))
            ev.count("pgfault", len(sel))
            self.stats.add("faults_wp", len(sel))
            idx = idx[~present]
            if not len(idx):
                return
        pgoffs = vma.vm_pgoff + ((base + (idx.astype(np.int64) << 12) - vma.vm_start) >> 12)
        if write:
            self._shmem_write_faults(mm, vma, obj, row, idx, pgoffs, extra)
        else:
            self._shmem_read_faults(mm, vma, obj, row, idx, base, pgoffs)

    def _shmem_write_faults(self, mm, vma, obj, row, idx, pgoffs, extra) -> None:
        absent = obj.pages[pgoffs] < 0
        if absent.any():
            self.frames.reserve(int(absent.sum()))
            absent = obj.pages[pgoffs] < 0
            swapped = absent & (obj.swap[pgoffs] != 0)
            for off in pgoffs[swapped].tolist():
                self.shmem_get(obj, int(off))
            self.shmem_alloc_pages(obj, pgoffs[absent & ~swapped])
        pfns = obj.pages[pgoffs].astype(np.intp)
        self.map_pages(vma, pfns)
        self.frames.flags[pfns] |= _U32(PG_dirty)
        self.pt.rows[row, idx] = ((pfns.astype(np.uint64) << P.NP_PFN_SHIFT)
                                  | _U64(vma.vm_page_prot | P.DIRTY | extra))
        self.rss_add(mm, pfns, +1)
        self.sys.events.count("pgfault", len(idx))
        self.stats.add("faults_shmem", len(idx))

    def _shmem_read_faults(self, mm, vma, obj, row, idx, base, pgoffs) -> None:
        nr = self.sys.config.fault_around_pages
        cached_before = obj.pages >= 0
        # Fast path: no page of the region the faults could reach is cached yet, so no fault
        # can map a neighbour (fault-around only maps cached pages; pages allocated by this
        # batch are mapped by their own fault). Then every slot is its own fault.
        lo_off = max(int(pgoffs[0]) - nr, 0)
        hi_off = min(int(pgoffs[-1]) + nr + 1, len(obj.pages))
        if nr <= 1 or not (cached_before[lo_off:hi_off].any() or obj.swap[lo_off:hi_off].any()):
            self.frames.reserve(len(idx))
            pfns = self.shmem_alloc_pages(obj, pgoffs)
            self._shmem_map(mm, vma, row, idx, pfns)
            self.sys.events.count("pgfault", len(idx))
            self.stats.add("faults_shmem", len(idx))
            return
        done = np.zeros(len(idx), bool)
        vma_pages = vma.pages()
        file_pages = obj.npages
        for k in range(len(idx)):
            if done[k]:
                continue
            i = int(idx[k])
            if self.pt.rows[row, i] != 0:        # mapped by an earlier fault-around
                done[k] = True
                continue
            addr = base + (i << 12)
            pte_off = i
            vma_off = (addr - vma.vm_start) >> 12
            from_pte = max(pte_off & ~(nr - 1), pte_off - min(pte_off, vma_off))
            to_pte = min(from_pte + nr, 512, pte_off + (vma_pages - vma_off)) - 1
            first_off = int(pgoffs[k]) - (pte_off - from_pte)
            last_off = min(first_off + (to_pte - from_pte), file_pages - 1)
            win = np.arange(from_pte, from_pte + (last_off - first_off) + 1, dtype=np.intp)
            offs = np.arange(first_off, last_off + 1, dtype=np.int64)
            cand = (self.pt.rows[row, win] == 0) & (obj.pages[offs] >= 0)
            if cand.any():
                # do_fault_around() -> filemap_map_pages(): cached pages only
                self._shmem_map(mm, vma, row, win[cand], obj.pages[offs[cand]].astype(np.intp))
            if self.pt.rows[row, i] == 0:
                # not cached: shmem_fault() swaps it in or allocates it, finish_fault() maps
                self.frames.reserve(1)
                if self.pt.rows[row, i] == 0:
                    pfn = self.shmem_get(obj, int(pgoffs[k]))
                    self._shmem_map(mm, vma, row, np.array([i], np.intp), np.array([pfn], np.intp))
            self.sys.events.count("pgfault")
            self.stats.add("faults_shmem")
            done[k] = True
            # later slots of this batch inside the window were mapped by fault-around
        return

    def _shmem_map(self, mm, vma, row, slots: np.ndarray, pfns: np.ndarray) -> None:
        """set_pte_range() for a read fault: vm_page_prot (young on x86), clean."""
        self.map_pages(vma, pfns)
        self.pt.rows[row, slots] = ((pfns.astype(np.uint64) << P.NP_PFN_SHIFT)
                                    | _U64(vma.vm_page_prot))
        self.rss_add(mm, pfns, +1)
