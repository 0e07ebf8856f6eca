"""Faults on file-backed mappings (tmpfs, shared anonymous memory, disk files): do_read_fault,
do_shared_fault, do_cow_fault and wp_page_shared (mm/memory.c, mm/filemap.c, mm/shmem.c).

The page comes from the object's page cache (mm/filemap.py: cached, swapped back in for tmpfs,
read from disk — a major fault — or allocated zeroed for tmpfs). The zero page is never used.

  read fault (shared or private)  do_read_fault(): first do_fault_around() maps every *already
        cached* page of the 16-page window (aligned, clipped to the VMA, the PTE table and EOF)
        whose PTE is none; if that mapped the faulting address the fault is done, else the page
        is fetched and mapped. PTEs get vm_page_prot: young on x86, writable only for a shared
        mapping that does not need write-notify. One pgfault; fault-around pages don't count.
  write fault, shared             do_shared_fault(): the page is fetched, the PTE made dirty and
        writable, the page marked dirty (fault_dirty_shared_page).
  write fault, private            do_cow_fault(): the file page is fetched (not mapped), a new
        anonymous page gets a copy of it and is mapped writable (MM_ANONPAGES): later writes
        never reach the file.
  write to a present read-only PTE of a shared mapping   wp_page_shared(): writable, dirty
        (a disk file's write-notify; after writeback cleaned the page).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_dirty
from ...mm.filemap import DiskFile, alloc_cache_pages, filemap_get_page
from ...mm.mm_struct import MM_ANONPAGES
from ...mm.vmflags import VM_RAND_READ

_U32 = np.uint32
_U64 = np.uint64
READ_AROUND_PAGES = 32          # read_ahead_kb 128 / 4 KiB


class FileFaults:
    """Mixin of LinuxDesign: needs self.frames, self.pt, self.sys and PageOps."""

    def file_get(self, obj, pgoff: int, vma=None) -> int:
        """The page at ``pgoff`` (one frame reserved by the caller); counts a major fault.

        A disk read also reads around it (do_sync_mmap_readahead(): ra_pages = 32 pages of
        read_ahead_kb 128, centred on the fault, not for MADV_RANDOM), into free frames only."""
        pfn, major = filemap_get_page(self.sys, obj, pgoff)
        if major:
            self.sys.events.count("pgmajfault")
            self.stats.add("faults_file_major")
            if isinstance(obj, DiskFile) and not (vma is not None and vma.vm_flags & VM_RAND_READ):
                ra = READ_AROUND_PAGES
                lo = max(0, pgoff - ra // 2)
                hi = min(obj.npages, lo + ra)
                obj.ensure(hi)
                offs = np.arange(lo, hi, dtype=np.int64)
                offs = offs[obj.pages[offs] < 0]
                room = self.frames.nfree - self.sys.watermarks()["min"]
                if len(offs) and room > 0:
                    alloc_cache_pages(self.sys, obj, offs[:room])
        return pfn

    def _pgoffs(self, vma, idx: np.ndarray, base: int) -> np.ndarray:
        return vma.vm_pgoff + ((base + (idx.astype(np.int64) << 12) - vma.vm_start) >> 12)

    # --- shared mappings ---------------------------------------------------------------------
    def wp_shared_present(self, row: int, idx: np.ndarray, extra: int) -> np.ndarray:
        """wp_page_shared() for the slots of a write fault on a shared mapping whose page is
        already mapped (the PTE lacks write permission): make them writable and dirty, mark
        the pages dirty, count the faults. Returns the slots still to fault in."""
        present = P.np_present(self.pt.rows[row, idx])
        if not present.any():
            return idx
        sel = idx[present]
        vals = self.pt.rows[row, sel]
        self.pt.rows[row, sel] = vals | _U64(P.RW | P.DIRTY | P.ACCESSED | extra)
        self.mark_dirty(P.np_pfn(vals))
        self.sys.events.count("pgfault", len(sel))
        self.stats.add("faults_wp", len(sel))
        return idx[~present]

    def _fault_shared(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        obj = vma.vm_file
        extra = P.SOFT_DIRTY if self.sys.config.soft_dirty else 0
        if write:
            idx = self.wp_shared_present(row, idx, extra)
            if not len(idx):
                return
        pgoffs = self._pgoffs(vma, idx, base)
        if write:
            self._file_write_faults(mm, vma, obj, row, idx, pgoffs, extra)
        else:
            self._file_read_faults(mm, vma, obj, row, idx, base, pgoffs)

    def _file_write_faults(self, mm, vma, obj, row, idx, pgoffs, extra) -> None:
        absent = obj.pages[pgoffs] < 0
        if absent.any():
            self.frames.reserve(int(absent.sum()))
            absent = obj.pages[pgoffs] < 0
            simple = absent & (obj.swap[pgoffs] == 0)
            if isinstance(obj, DiskFile):
                simple[:] = False                 # read from disk one by one (read-around)
            if simple.any():
                alloc_cache_pages(self.sys, obj, pgoffs[simple])
            for off in pgoffs[absent & ~simple].tolist():
                if obj.pages[off] < 0:
                    self.file_get(obj, int(off), vma)
            # In Linux each fault holds its folio (locked, referenced) from shmem_get_folio /
            # filemap_fault until finish_fault() has mapped it, and only then does the next
            # page fault. Here the whole batch is fetched first: swap-in readahead or
            # read-around may have used the reserved frames, a later fetch's allocation
            # then reclaimed, and reclaim can evict a page fetched earlier in this batch
            # before it is mapped. Map what is still cached; the slots left empty fault
            # again (kernel/uaccess.py:ensure_faulted).
            kept = obj.pages[pgoffs] >= 0
            if not kept.all():
                idx, pgoffs = idx[kept], pgoffs[kept]
                if not len(idx):
                    return
        pfns = obj.pages[pgoffs].astype(np.intp)
        self.map_pages(vma, pfns)
        self.frames.flags[pfns] |= _U32(PG_dirty)
        self.pt.rows[row, idx] = ((pfns.astype(np.uint64) << P.NP_PFN_SHIFT)
                                  | _U64(vma.vm_page_prot | P.RW | P.DIRTY | extra))
        self.rss_add(mm, pfns, +1)
        self.sys.events.count("pgfault", len(idx))
        self.stats.add("faults_file", len(idx))

    # --- read faults, shared or private ------------------------------------------------------------
    def _file_read_faults(self, mm, vma, obj, row, idx, base, pgoffs) -> None:
        # should_fault_around(): only with vm_ops->map_pages (SysV shm has none)
        nr = self.sys.config.fault_around_pages if obj.map_pages else 1
        lo_off = max(int(pgoffs[0]) - nr, 0)
        hi_off = min(int(pgoffs[-1]) + nr + 1, len(obj.pages))
        # Fast path: nothing in reach is cached, swapped or on disk, so every slot is its own
        # fault and fault-around never maps a neighbour (tmpfs pages made by this batch are
        # mapped by their own faults).
        if not isinstance(obj, DiskFile) and not (
                (obj.pages[lo_off:hi_off] >= 0).any() or obj.swap[lo_off:hi_off].any()):
            self.frames.reserve(len(idx))
            pfns = alloc_cache_pages(self.sys, obj, pgoffs)
            self._file_map(mm, vma, row, idx, pfns)
            self.sys.events.count("pgfault", len(idx))
            self.stats.add("faults_file", len(idx))
            return
        vma_pages = vma.pages()
        file_pages = obj.npages
        disk = isinstance(obj, DiskFile)
        for k in range(len(idx)):
            i = int(idx[k])
            if self.pt.rows[row, i] != 0:          # mapped by an earlier fault-around
                continue
            window = self._fault_around_window(vma, i, int(pgoffs[k]), base, nr, vma_pages, file_pages)
            self._map_cached(mm, vma, obj, row, window)
            if self.pt.rows[row, i] == 0:
                # not cached: ->fault() fetches it, finish_fault() maps it
                self.frames.reserve(1)
                if self.pt.rows[row, i] == 0:
                    if disk and obj.pages[int(pgoffs[k])] < 0:
                        # filemap_fault() drops mmap_lock for the read and returns
                        # VM_FAULT_RETRY; the retried fault's fault-around maps what the
                        # read-around brought in, the faulting page with it
                        self.file_get(obj, int(pgoffs[k]), vma)
                        self.sys.events.count("pgfault")
                        self.stats.add("faults_retry")
                        self._map_cached(mm, vma, obj, row, window)
                    if self.pt.rows[row, i] == 0:
                        pfn = self.file_get(obj, int(pgoffs[k]), vma)
                        self._file_map(mm, vma, row, np.array([i], np.intp), np.array([pfn], np.intp))
            self.sys.events.count("pgfault")
            self.stats.add("faults_file")

    @staticmethod
    def _fault_around_window(vma, pte_off: int, pgoff: int, base: int, nr: int, vma_pages: int,
                             file_pages: int):
        """do_fault_around(): the fault_around_pages-aligned window of PTE slots around the
        fault, inside the VMA, the PTE table and the file; (slots, file offsets) or None."""
        addr = base + (pte_off << 12)
        vma_off = (addr - vma.vm_start) >> 12
        from_pte = max(pte_off & ~(nr - 1), pte_off - min(pte_off, vma_off))
        to_pte = min(from_pte + nr, 512, pte_off + (vma_pages - vma_off)) - 1
        first_off = pgoff - (pte_off - from_pte)
        last_off = min(first_off + (to_pte - from_pte), file_pages - 1)
        if last_off < first_off:
            return None
        win = np.arange(from_pte, from_pte + (last_off - first_off) + 1, dtype=np.intp)
        offs = np.arange(first_off, last_off + 1, dtype=np.int64)
        return win, offs

    def _map_cached(self, mm, vma, obj, row, window) -> None:
        """filemap_map_pages(): map the window's empty slots whose pages are cached."""
        if window is None:
            return
        win, offs = window
        obj.ensure(int(offs[-1]) + 1)
        cand = (self.pt.rows[row, win] == 0) & (obj.pages[offs] >= 0)
        if cand.any():
            self._file_map(mm, vma, row, win[cand], obj.pages[offs[cand]].astype(np.intp))

    def _file_map(self, mm, vma, row, slots: np.ndarray, pfns: np.ndarray) -> None:
        """set_pte_range() for a read fault: vm_page_prot (young on x86), clean."""
        self.map_pages(vma, pfns)
        self.pt.rows[row, slots] = ((pfns.astype(np.uint64) << P.NP_PFN_SHIFT)
                                    | _U64(vma.vm_page_prot))
        self.rss_add(mm, pfns, +1)

    # --- private file mappings -----------------------------------------------------------------------
    def _fault_private_file(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        ptes = self.pt.rows[row, idx]
        swap = P.np_swap(ptes)
        if swap.any():                          # COW copies that went to swap
            self._do_swap_page(mm, vma, row, idx[swap], base, write)
            idx = idx[~swap]
            if not len(idx):
                return
            ptes = self.pt.rows[row, idx]
        none = ptes == 0
        if not write:
            sel = idx[none]
            if len(sel):
                self._file_read_faults(mm, vma, vma.vm_file, row, sel, base, self._pgoffs(vma, sel, base))
            return
        if (~none).any():                       # present read-only: do_wp_page copies
            self._fault_private(mm, vma, row, idx[~none], base, True)
        sel = idx[none]
        if len(sel):
            self._do_cow_fault(mm, vma, row, sel, base)

    def _do_cow_fault(self, mm, vma, row: int, idx: np.ndarray, base: int) -> None:
        """do_cow_fault(): a private anonymous copy of each file page, mapped writable."""
        obj = vma.vm_file
        f = self.frames
        owner = self.anon_prepare(vma)
        extra = P.SOFT_DIRTY if self.sys.config.soft_dirty else 0
        for i in idx.tolist():
            self.frames.reserve(2)
            if self.pt.rows[row, i] != 0:
                continue
            addr = base + (i << 12)
            # do_cow_fault() allocates the copy (folio_prealloc) before __do_fault() gets the
            # file page, and holds that page until the copy is made. Allocating after the
            # fetch could reclaim the page just fetched (a tmpfs page read back from swap
            # sits unmapped on the LRU) and copy a freed frame.
            new = int(f.alloc_many(1)[0])
            try:
                src = self.file_get(obj, vma.linear_page_index(addr), vma)
            except BaseException:
                f.refcount[new] = 0
                f.free(new)
                raise
            tok = int(f.content[src])
            f.content[new] = f.contents.dup(tok)
            self.new_anon_pages(vma, owner, np.array([new], np.intp), np.array([addr], np.int64))
            self.pt.rows[row, i] = _U64(P.mk_pte(new, vma.vm_page_prot) | P.RW | P.DIRTY | extra)
            mm.rss[MM_ANONPAGES] += 1
            self.sys.events.count("pgfault")
            self.stats.add("pages_copied_cow")
            self.stats.add("faults_cow_file")
