"""Faults on private mappings: vm_fault() over a shadow chain (FreeBSD sys/vm/vm_fault.c,
sys/vm/vm_map.c: vm_map_lookup).

vm_map_lookup() first: an entry with no object gets one (vm_object_allocate, for a read fault
too); a write fault on a MAP_ENTRY_NEEDS_COPY entry stacks a shadow object on it
(vm_object_shadow) and clears the flag, a read fault only loses the write permission. Then
vm_fault() walks the chain from the entry's object (the "first object") down the backing
objects, page index by page index (vmlab: a whole batch of one PTE table at once):

  found resident in the first object      map it (writable when the entry may write: the page
                                          is the mapping's own)
  found in a backing object, read fault   map it read-only; it stays where it is
  found in a backing object, write fault  copy it up into the first object (cnt.v_cow_faults),
                                          or, when the backing object is the first object's
                                          direct backing with a single shadow and a single
                                          reference, move it up instead (vm_page_rename,
                                          cnt.v_cow_optim)
  a swap block in some object             the swap pager reads it into that object first
  nothing anywhere (or a zero marker)     a zero-filled page in the first object (cnt.v_zfod):
                                          FreeBSD has no shared zero page for anonymous memory,
                                          so a read fault allocates a real page, even in a
                                          needs-copy first object that two processes share
  nothing, private file mapping           the vnode object's page: mapped read-only by a read,
                                          copied into the first object by a write

Order (the design contract of designs/base.py): the batch is classified, pages that must come
from swap or disk are brought in first, then every frame the batch needs is allocated, the
batch classified again (an allocation may reclaim), and only then is anything changed. pv
entries follow the PTEs (pv.py).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, PG_dirty, PG_swapbacked, PG_uptodate
from ...mm.mm_struct import MM_ANONPAGES
from .objects import chain_lookup

_U32 = np.uint32
_U64 = np.uint64

# classes of a faulting slot
DONE, UPGRADE, MAPTOP, RENAME, COPY, NEW, SWAP, FILEIN, MAP, MAPFILE = range(10)
_ANON_FLAGS = _U32(PG_anon | PG_swapbacked | PG_uptodate)


class BsdFaults:
    """Mixin of BsdDesign."""

    # --- entry point -----------------------------------------------------------------------------
    def _fault_private_bsd(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        pgs = vma.vm_pgoff + ((base + (idx.astype(np.int64) << 12) - vma.vm_start) >> 12)
        pos, n = 0, len(idx)
        while pos < n:
            p = int(pgs[pos])
            e = self.entry_at(vma, p)
            if e is None and (write or vma.vm_file is None):
                e = self.bind_gap(vma, p)
            hi = self.gap_around(vma, p)[1] if e is None else e.hi
            end = pos + int(np.searchsorted(pgs[pos:], hi))
            sl = slice(pos, end)
            if write:
                self._write_entry(mm, vma, e, row, idx[sl], pgs[sl], base)
            else:
                self._read_entry(mm, vma, e, row, idx[sl], pgs[sl], base)
            pos = end

    # --- bringing pages in ------------------------------------------------------------------------
    def obj_swapin(self, o, p: int) -> None:
        """swap_pager_getpages(): the page of swap block (o, p) comes back into object ``o``
        (from the swap cache, or read with cluster readahead: a major fault); the block is
        freed and the page is dirty (swap_pager_unswapped)."""
        swap = self.sys.swap
        e = o.swap_at(p)
        if not e:
            return
        t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
        pfn = swap.cache_lookup(t, off)
        if pfn < 0:
            self.frames.reserve(1)             # may reclaim: the block stays the object's
            pfn = swap.cache_lookup(t, off)
        pfn = self.swapin_page(t, off, pfn)    # linux/swap.py: cache hit or readahead
        self.stats.add("faults_swap")
        self.obj_swap_to_page(o, p, t, off, pfn)

    def obj_swap_to_page(self, o, p: int, t: int, off: int, pfn: int) -> None:
        """swap_pager_unswapped(): the swap block (t, off) at index ``p`` of ``o`` is freed
        and page ``pfn`` (read back, in the swap cache) takes its place, dirty, held by the
        object. Page-ins (obj_swapin) and swapoff (unuse_mm) end here."""
        swap = self.sys.swap
        f = self.frames
        swap.delete_from_cache(pfn)
        swap.free(t, off)
        one = np.array([p], np.int64)
        o.set_sw(one, np.zeros(1, np.uint64))
        o.set_pg(one, np.array([pfn], np.int64))
        f.refcount[pfn] += 1
        f.flags[pfn] |= _ANON_FLAGS | _U32(PG_dirty)
        f.mapping[pfn] = o.id
        f.index[pfn] = p

    def _resolve_slow(self, vma, objs, cls, level, pgs) -> None:
        """Bring in what the batch needs from swap (into the object holding the block) or
        from the file (into its page cache), one page at a time."""
        for k in np.flatnonzero((cls == SWAP) | (cls == FILEIN)).tolist():
            p = int(pgs[k])
            if cls[k] == SWAP:
                self.obj_swapin(objs[int(level[k])], p)
            else:
                self.frames.reserve(1)
                if vma.vm_file.pages[p] < 0:
                    self.file_get(vma.vm_file, p, vma)

    def _settle(self, vma, pgs, classify, alloc_kinds):
        """The order of designs/base.py for one batch: ``classify()`` the slots; bring in
        from swap or the file what the batch lacks and classify again; then allocate the
        frames the slots of ``alloc_kinds`` need (which may reclaim), classify again and
        start over if anything moved. Returns (classification, fresh frames), nothing of
        the batch changed yet (vm_fault's RetryFault loop)."""
        f = self.frames
        for _ in range(64):
            got = classify()
            cls, src, level, objs = got[:4]
            if ((cls == SWAP) | (cls == FILEIN)).any():
                self._resolve_slow(vma, objs, cls, level, pgs)
                continue
            need = int(np.isin(cls, alloc_kinds).sum())
            fresh = f.alloc_many(need)
            if need:
                again = classify()
                if not (np.array_equal(cls, again[0]) and np.array_equal(src, again[1])):
                    f.free_many(fresh)
                    continue
                got = again
            return got, fresh
        raise AssertionError("bsd: a fault made no progress after 64 rounds")

    def _file_below(self, vma, level, pgs, cls, src, resident_cls) -> None:
        """Slots no object of the chain holds, in a private file mapping: the vnode object's
        page (class ``resident_cls``) if cached, else FILEIN (read it first)."""
        if vma.vm_file is None:
            return
        nothing = level < 0
        if nothing.any():
            fp = vma.vm_file.pages[pgs[nothing]]
            cls[nothing] = np.where(fp >= 0, resident_cls, FILEIN)
            src[nothing] = fp

    # --- write faults -------------------------------------------------------------------------------
    def _classify_write(self, vma, top, row, idx, pgs):
        ptes = self.pt.rows[row, idx]
        present = P.np_present(ptes)
        rw = present & ((ptes & P.NP_RW) != 0)
        level, objs, ipg, isw = chain_lookup(top, pgs)
        n = len(idx)
        cls = np.full(n, NEW, np.int64)
        src = np.full(n, -1, np.int64)
        page = ipg >= 0
        top_page = page & (level == 0)
        low = page & (level > 0)
        cls[top_page] = np.where(present[top_page], UPGRADE, MAPTOP)
        if low.any():
            cls[low] = COPY
            src[low] = ipg[low]
            if len(objs) > 1 and objs[1].ref_count == 1 and objs[1].shadow_count == 1:
                cand = np.flatnonzero(low & (level == 1))
                if len(cand):
                    mc = self.frames.mapcount[ipg[cand]]
                    mine = present[cand] & (P.np_pfn(ptes[cand]) == ipg[cand])
                    ok = mc <= mine.astype(np.int32)
                    cls[cand[ok]] = RENAME
        cls[isw != 0] = SWAP
        self._file_below(vma, level, pgs, cls, src, COPY)
        cls[rw] = DONE
        return cls, src, level, objs, ptes

    def _write_entry(self, mm, vma, e, row: int, idx: np.ndarray, pgs: np.ndarray, base: int) -> None:
        """A write fault in one entry: shadow a needs-copy entry, then copy up / zero-fill."""
        self.avs.prepare(vma)              # the anon_vma Linux would give it (merge rules only)
        if e.nc:
            t = self.obj_shadow(e.obj, e.lo, e.hi)
            e.obj, e.nc = t, False
        top = e.obj
        (cls, src, level, objs, ptes), fresh = self._settle(
            vma, pgs, lambda: self._classify_write(vma, top, row, idx, pgs), (NEW, COPY))
        self._apply_write(mm, vma, top, objs, row, idx, pgs, base, cls, src, level, ptes, fresh)

    def _apply_write(self, mm, vma, top, objs, row, idx, pgs, base, cls, src, level, ptes,
                     fresh) -> None:
        f = self.frames
        ev = self.sys.events
        extra = P.SOFT_DIRTY if self.sys.config.soft_dirty else 0
        wbits = _U64(P.RW | P.DIRTY | P.ACCESSED | extra)
        prot = _U64(vma.vm_page_prot | P.RW | P.DIRTY | extra)
        present = P.np_present(ptes)
        new_vals = ptes.copy()
        # the page is already the mapping's own: just allow the write
        up = cls == UPGRADE
        if up.any():
            new_vals[up] = ptes[up] | wbits
            self.stats.add("pages_reused", int(up.sum()))
        mt = np.flatnonzero(cls == MAPTOP)
        if len(mt):
            _, _, ipg, _ = chain_lookup(top, pgs[mt])
            pf = ipg.astype(np.intp)
            self.map_pages(vma, pf)
            self.rss_add(mm, pf, +1)
            new_vals[mt] = (pf.astype(np.uint64) << P.NP_PFN_SHIFT) | prot
        # vm_page_rename(): the direct backing object's page moves up
        rn = np.flatnonzero(cls == RENAME)
        if len(rn):
            back = objs[1]
            pf = src[rn]
            self._move_items(back, top, pgs[rn], pf, np.zeros(len(rn), np.uint64))
            pfi = pf.astype(np.intp)
            was = present[rn]
            new_vals[rn[was]] = ptes[rn[was]] | wbits
            nm = rn[~was]
            if len(nm):
                self.map_pages(vma, pfi[~was])
                self.rss_add(mm, pfi[~was], +1)
                new_vals[nm] = (pfi[~was].astype(np.uint64) << P.NP_PFN_SHIFT) | prot
            f.flags[pfi] |= _U32(PG_dirty)
            self.stats.add("copy_ups", len(rn))
            self.stats.add("copy_up_renames", len(rn))
        # new pages in the first object: zero-filled or a copy of what lies below
        nw = np.flatnonzero((cls == NEW) | (cls == COPY))
        if len(nw):
            cp = cls[nw] == COPY
            tokens = np.zeros(len(nw), np.uint64)
            if cp.any():
                tokens[cp] = f.content[src[nw[cp]].astype(np.intp)]
                f.contents.dup_many(tokens[cp])
            f.content[fresh] = tokens
            self._new_object_pages(vma, top, pgs[nw], fresh)
            old = present[nw]
            if old.any():
                opf = P.np_pfn(ptes[nw[old]])
                self.rss_add(mm, opf, -1)
                dead = self.unmap_pages(vma, opf)
                assert not len(dead), "bsd: a page lost its last holder on a COW fault"
            mm.rss[MM_ANONPAGES] += len(nw)
            new_vals[nw] = (fresh.astype(np.uint64) << P.NP_PFN_SHIFT) | prot
            self.stats.add("pages_copied_cow", int(cp.sum()))
            self.stats.add("copy_ups", int(np.count_nonzero(cp & (level[nw] > 0))))
            self.stats.add("faults_anon", int((~cp).sum()))
        faulted = cls != DONE
        self.pt.rows[row, idx] = new_vals
        self.pv_sync(mm, row, base, idx)
        nf = int(faulted.sum())
        ev.count("pgfault", nf)
        self.stats.add("faults_wp", int((faulted & present).sum()))
        # faults on a none PTE that the object chain serves (copy-up, rename, or the top
        # object's own page): fork copies no PTE here, so these replace Linux's wp faults
        served = ~present & ((cls == COPY) | (cls == RENAME) | (cls == MAPTOP))
        self.stats.add("faults_object", int(np.count_nonzero(served)))

    def _new_object_pages(self, vma, o, pgs: np.ndarray, pfns: np.ndarray) -> None:
        """vm_page_alloc() into object ``o`` at ``pgs`` + the first mapping: anonymous,
        swap-backed, one object reference (the allocation's), mapcount 1, on the LRU (or
        mlocked in a VM_LOCKED VMA)."""
        f = self.frames
        f.flags[pfns] = _ANON_FLAGS
        f.mapping[pfns] = o.id
        f.index[pfns] = pgs
        f.mapcount[pfns] = 1
        f.refcount[pfns] = 1
        o.set_pg(pgs, pfns.astype(np.int64))
        self.sys.lru.add_new(pfns, locked=vma.is_locked())

    # --- read faults ----------------------------------------------------------------------------------
    def _classify_read(self, vma, first, row, idx, pgs):
        ptes = self.pt.rows[row, idx]
        level, objs, ipg, isw = chain_lookup(first, pgs)
        n = len(idx)
        cls = np.full(n, NEW, np.int64)
        src = np.where(ipg >= 0, ipg, -1)
        cls[ipg >= 0] = MAP
        cls[isw != 0] = SWAP
        self._file_below(vma, level, pgs, cls, src, MAPFILE)
        cls[P.np_present(ptes)] = DONE
        return cls, src, level, objs

    def _read_entry(self, mm, vma, e, row: int, idx: np.ndarray, pgs: np.ndarray, base: int) -> None:
        """A read fault in one entry (or in an unbacked range of a private file mapping)."""
        first = e.obj if e is not None else None
        f = self.frames
        (cls, src, level, objs), fresh = self._settle(
            vma, pgs, lambda: self._classify_read(vma, first, row, idx, pgs), (NEW,))
        # FreeBSD's pmap_enter() would map a page of the entry's own object writable at once;
        # vmlab maps every read fault read-only, so that the first store faults as on Linux
        # (the Linux merge rules this design keeps depend on when that first write happens)
        prot = _U64(vma.vm_page_prot)
        vals = self.pt.rows[row, idx].copy()
        m = np.flatnonzero((cls == MAP) | (cls == MAPFILE))
        if len(m):
            pf = src[m].astype(np.intp)
            self.map_pages(vma, pf)
            self.rss_add(mm, pf, +1)
            vals[m] = (pf.astype(np.uint64) << P.NP_PFN_SHIFT) | prot
            self.stats.add("faults_file", int(np.count_nonzero(cls[m] == MAPFILE)))
            self.stats.add("faults_object", int(np.count_nonzero(cls[m] == MAP)))
        nw = np.flatnonzero(cls == NEW)
        if len(nw):
            assert first is not None, "bsd: a zero-fill read fault without an object"
            f.content[fresh] = 0
            self._new_object_pages(vma, first, pgs[nw], fresh)
            self.rss_add(mm, fresh, +1)
            vals[nw] = (fresh.astype(np.uint64) << P.NP_PFN_SHIFT) | prot
            self.stats.add("faults_anon", len(nw))
        self.pt.rows[row, idx] = vals
        self.pv_sync(mm, row, base, idx)
        self.sys.events.count("pgfault", int(np.count_nonzero(cls != DONE)))
