"""Shared anonymous memory in a writable swap cache: Colin Plumb's proposal (seeds/000, 1997).

The seed: a page can be both in memory and on swap; the swap cache (the page cache of a
"swapper inode", indexed by swap entry) finds the page from its entry. Let swap-cached pages
stay *writable* and dirty — "If a swap-cached page is dirty, its disk data is invalid, but the
address is still kept" — and shared anonymous memory works like a mapped file whose name for
each page is a swap entry; "a dirty swap-cached page would only be written when it was removed
from the *last* process's PTE".

How vmlab builds it (design `vmscan22`):

  the name       every page of a MAP_SHARED|MAP_ANONYMOUS object has, from its first touch, a
                 swap entry; the page lives in the swap cache under that entry (PG_swapcache,
                 PG_swapbacked, never PG_anon, never in a page cache). A resident page is
                 mapped writable straight from the swap cache.
  the index      the seed names a not-present page by the swap entry in the PTE. That cannot
                 name a page that was first touched after fork (the other process's PTE is
                 still none), nor one every process has dropped (MADV_DONTNEED, an mremap that
                 shrank and grew back): Linux semantics say those pages keep their contents.
                 So the object keeps a minimal per-mapping index, one swap entry (8 bytes) per
                 page that exists — the seed's "maintained a swap file entry for the page",
                 made explicit — and PTEs of these mappings are never swap PTEs: unmapping
                 clears them, as for a mapped file, and the next fault looks the entry up in
                 the index and the page up in the swap cache. (The index is what 2.4's shmem
                 kept for swapped pages; here it holds the entry of *every* page.)
  which entry    with `reserve_swap=1` (default) a real swap slot, taken when the page is first
                 touched, as the seed proposes: shared memory then holds swap space while it
                 is resident (SwapFree drops; swap-backed private memory finds less room).
                 When no slot is free, or no swap is configured, or with `reserve_swap=0`, the
                 entry comes from the *swapper space*: an area of swap entries no device backs
                 (registered with the swap system but never active: not in SwapTotal, never
                 handed out to anyone else). A page named there cannot be written; reclaim
                 moves it to a real slot first (swap_relocate), or keeps it — which is all
                 Linux can do with shmem pages when there is no swap.
  dirty state    a new page is dirty (its slot holds nothing); a page read back from swap is
                 clean and stays in the swap cache with its slot, so if nobody writes it, the
                 last unmap leaves a clean page that reclaim drops without I/O. A dirty PTE is
                 copied to the page when the PTE goes (zap, page-table scan) — the seed's
                 "copy the reference's dirty bit to the page".
  writeback      reclaim (the shared LRU scan) skips mapped pages in this design; the
                 page-table scan clears PTEs; once the last one is gone the page is written to
                 its slot (pswpout) and freed. swapoff renames pages on the dying area to
                 another slot (unuse_object).

Semantics are Linux's: the object has the size given at mmap (SIGBUS past it after mremap
growth), /proc/PID/maps shows "/dev/zero (deleted)" with the object's inode, the zero page is
never used, contents survive zap, fork and swap.
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, PG_dirty, PG_swapbacked, PG_swapcache, PG_uptodate
from ...mm.filemap import AddressSpace
from ...mm.swapfile import SWAP_HAS_CACHE, SwapArea

_U32 = np.uint32
_U64 = np.uint64
SWP_ENTRY_BYTES = 8          # swp_entry_t (include/linux/mm_types.h): one unsigned long


class SwapAnonObject(AddressSpace):
    """The object of one shared anonymous mapping: size, inode number, i_mmap, references and
    ``swap[i]``, the swap entry naming page i (0: never touched, reads as zeros). ``pages``
    stays empty: no page of it is ever in a page cache.

    ``is_shmem`` is set because the shared consumers that test it want "a swap-backed object
    with an index of swap entries" (smaps Swap, MADV_WILLNEED read-ahead, the per-page commit
    charge of MAP_NORESERVE); it is not a tmpfs inode."""

    is_shmem = True
    swap_backed = True

    def __init__(self, ino: int, size: int, swapsys):
        super().__init__(ino, size, "/dev/zero", (0, 1))
        self.swapsys = swapsys

    def resident(self, ents: np.ndarray) -> np.ndarray:
        """For named entries, the pfn of the page in the swap cache, else -1."""
        out = np.full(len(ents), -1, np.int64)
        named = ents != 0
        if not named.any():
            return out
        t = P.np_swp_type(ents)
        off = P.np_swp_offset(ents)
        for typ in np.unique(t[named]).tolist():
            sel = named & (t == typ)
            out[sel] = self.swapsys.areas[typ].cache[off[sel]]
        return out

    def swapped(self, lo: int, hi: int) -> np.ndarray:
        """Pages out on swap: named, and not in the swap cache (resident pages are Rss)."""
        ents = self.swap[lo:hi]
        return (ents != 0) & (self.resident(ents) < 0)


class SwapAnon:
    """Mixin of Vmscan22Design: the shared-anonymous-memory paths."""

    # --- the object and its names ----------------------------------------------------------------
    def shared_anon_object(self, ino: int, size: int):
        return SwapAnonObject(ino, size, self.sys.swap)

    def swap_anon_objects(self) -> list:
        return [o for o in self.frames.owners.live().values() if isinstance(o, SwapAnonObject)]

    def _swapper(self) -> SwapArea:
        """The swapper space: swap entries no device backs, one per frame at most (a page
        named there is always resident). Made on first use; never active."""
        sw = self.sys.swap
        a = self._swapper_area
        if a is not None and a.type < len(sw.areas) and sw.areas[a.type] is a:
            return a
        for t, x in enumerate(sw.areas):
            if x is None:
                break
        else:
            t = len(sw.areas)
            if t >= P.SWP_PTE_MARKER:
                raise RuntimeError("vmscan22: no swap type left for the swapper space")
            sw.areas.append(None)
        a = SwapArea(t, self.frames.nframes + 1, -(1 << 20), self.frames.contents, "[swapper space]")
        a.active = False
        sw.areas[t] = a
        self._swapper_area = a
        return a

    def _is_swapper(self, t: int) -> bool:
        a = self._swapper_area
        return a is not None and a.type == t and self.sys.swap.areas[t] is a

    def _alloc_names(self, n: int, allow_real: bool = True) -> list[tuple[int, np.ndarray]]:
        """n free swap entries, each with count 0 + SWAP_HAS_CACHE (get_swap_page()'s state):
        real slots first when allowed, the rest on the swapper space. [(type, offsets)]."""
        sw = self.sys.swap
        got: dict[int, list[int]] = {}
        k = 0
        if allow_real:
            while k < n:
                slot = sw.get_swap_page()
                if slot is None:
                    break
                got.setdefault(slot[0], []).append(slot[1])
                k += 1
        out = [(t, np.array(v, np.int64)) for t, v in got.items()]
        if k < n:
            a = self._swapper()
            free = np.flatnonzero(a.swap_map[1:] == 0)[:n - k] + 1
            assert len(free) == n - k, "vmscan22: the swapper space is full"
            a.swap_map[free] = SWAP_HAS_CACHE
            a.inuse += len(free)
            out.append((a.type, free.astype(np.int64)))
        return out

    def _cache_insert(self, t: int, offs: np.ndarray, pfns: np.ndarray) -> None:
        """add_to_swap_cache() for many pages of one area, plus the object's slot reference."""
        f = self.frames
        a = self.sys.swap.areas[t]
        assert (a.cache[offs] < 0).all(), "vmscan22: slot already cached"
        a.cache[offs] = pfns
        a.swap_map[offs] = (a.swap_map[offs] | SWAP_HAS_CACHE) + 1
        a.shadow[offs] = 0
        f.flags[pfns] |= _U32(PG_swapcache)
        f.private[pfns] = P.np_swp_entry(t, offs)
        f.refcount[pfns] += 1

    def _sa_new_pages(self, obj: SwapAnonObject, offs: np.ndarray) -> np.ndarray:
        """New zeroed, dirty pages for indices ``offs`` of the object (frames reserved by the
        caller), each named by a fresh swap entry and put in the swap cache and on the LRU."""
        f = self.frames
        pfns = f.alloc_many(len(offs))
        f.flags[pfns] = _U32(PG_uptodate | PG_swapbacked | PG_dirty)
        f.refcount[pfns] = 0
        f.mapping[pfns] = obj.owner_id
        f.index[pfns] = offs
        k = 0
        for t, soffs in self._alloc_names(len(offs), allow_real=self.options["reserve_swap"]):
            sl = slice(k, k + len(soffs))
            self._cache_insert(t, soffs, pfns[sl])
            obj.swap[offs[sl]] = P.np_swp_entry(t, soffs)
            k += len(soffs)
        obj.nrswapped += len(offs)
        self.sys.lru.add(pfns)
        self.stats.add("swapcache_anon_pages", len(offs))
        return pfns

    def _sa_get(self, obj: SwapAnonObject, i: int) -> int:
        """The resident page of index i (one frame reserved by the caller): from the swap
        cache (minor), read from its slot (major: pgmajfault), or a new page."""
        e = int(obj.swap[i])
        if e == 0:
            return int(self._sa_new_pages(obj, np.array([i], np.int64))[0])
        f = self.frames
        t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
        # do_swap_page()'s lookup and read (linux/swap.py): a swap-cache hit is a minor fault
        pfn = self.swapin_page(t, off, self.sys.swap.cache_lookup(t, off))
        f.mapping[pfn] = obj.owner_id
        f.index[pfn] = i
        return pfn

    # --- faults ----------------------------------------------------------------------------------
    def _fault_swap_anon(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        obj = vma.vm_file
        ev = self.sys.events
        extra = P.SOFT_DIRTY if self.sys.config.soft_dirty else 0
        if write:
            idx = self.wp_shared_present(row, idx, extra)     # linux/fault_file.py
        if not len(idx):
            return
        pgoffs = self._pgoffs(vma, idx, base)
        nr = self.sys.config.fault_around_pages if not write else 1
        lo_off = max(int(pgoffs[0]) - nr, 0)
        hi_off = min(int(pgoffs[-1]) + nr + 1, len(obj.swap))
        if not obj.swap[lo_off:hi_off].any():
            # nothing in reach has a name yet: each slot is its own fault, a new page each
            self.frames.reserve(len(idx))
            if obj.swap[lo_off:hi_off].any() or (self.pt.rows[row, idx] != 0).any():
                return self._fault_swap_anon(mm, vma, row, idx, base, write)   # reclaim ran
            pfns = self._sa_new_pages(obj, pgoffs)
            self._sa_map(mm, vma, row, idx, pfns, write, extra)
            ev.count("pgfault", len(idx))
            self.stats.add("faults_file", len(idx))
            return
        vma_pages = vma.pages()
        for k in range(len(idx)):
            i = int(idx[k])
            if self.pt.rows[row, i] != 0:          # mapped by an earlier fault-around
                continue
            if not write:
                window = self._fault_around_window(vma, i, int(pgoffs[k]), base, nr, vma_pages,
                                                   obj.npages)
                self._sa_map_resident(mm, vma, obj, row, window)
            if self.pt.rows[row, i] == 0:
                self.frames.reserve(1)
                if self.pt.rows[row, i] == 0:
                    pfn = self._sa_get(obj, int(pgoffs[k]))
                    self._sa_map(mm, vma, row, np.array([i], np.intp), np.array([pfn], np.intp),
                                 write, extra)
            ev.count("pgfault")
            self.stats.add("faults_file")

    def _sa_map_resident(self, mm, vma, obj, row: int, window) -> None:
        """filemap_map_pages() for this object: map the window's empty slots whose pages are
        in the swap cache."""
        if window is None:
            return
        win, offs = window
        pfns = obj.resident(obj.swap[offs])
        cand = (self.pt.rows[row, win] == 0) & (pfns >= 0)
        if cand.any():
            sel = pfns[cand].astype(np.intp)
            self.frames.mapping[sel] = obj.owner_id        # read ahead: not recorded yet
            self.frames.index[sel] = offs[cand]
            self._sa_map(mm, vma, row, win[cand], sel, False, 0)

    def _sa_map(self, mm, vma, row: int, slots: np.ndarray, pfns: np.ndarray, write: bool,
                extra: int) -> None:
        """Install PTEs: vm_page_prot (writable for a shared writable mapping), dirty and
        writable on a write fault (the page is marked dirty too: its slot is now stale)."""
        self.map_pages(vma, pfns)
        bits = vma.vm_page_prot
        if write:
            bits |= P.RW | P.DIRTY | extra
            self.mark_dirty(pfns)
        self.pt.rows[row, slots] = (pfns.astype(np.uint64) << P.NP_PFN_SHIFT) | _U64(bits)
        self.rss_add(mm, pfns, +1)

    # --- renaming: to a writable slot for pageout, off an area being swapped off ---------------
    def _rename(self, obj: SwapAnonObject, i: int, pfn: int, t2: int, off2: int) -> None:
        """Index i's page ``pfn`` (in the swap cache) takes slot (t2, off2), which is in
        get_swap_page()'s state; the old slot is released. The page is dirty afterwards."""
        sw = self.sys.swap
        e = int(obj.swap[i])
        t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
        assert sw.cache_lookup(t, off) == pfn, "vmscan22: renaming a page that is not cached"
        sw.delete_from_cache(pfn)
        sw.free(t, off)                                  # the object's reference to the old slot
        self._cache_insert(t2, np.array([off2], np.int64), np.array([pfn], np.intp))
        obj.swap[i] = _U64(P.swp_entry_to_pte(t2, off2))
        self.frames.flags[pfn] |= _U32(PG_dirty)
        self.frames.mapping[pfn] = obj.owner_id
        self.frames.index[pfn] = i
        self.stats.add("swapcache_anon_renamed")

    def swap_relocate(self, pfn: int) -> bool:
        """pageout() of a page named on an area that takes no writes (the swapper space, or
        an area being swapped off): give it a real slot if one is free."""
        f = self.frames
        obj = f.owners.get(int(f.mapping[pfn])) if int(f.mapping[pfn]) >= 0 else None
        if not isinstance(obj, SwapAnonObject) or int(f.flags[pfn]) & PG_anon:
            return False
        slot = self.sys.swap.get_swap_page()
        if slot is None:
            return False
        self._rename(obj, int(f.index[pfn]), pfn, slot[0], slot[1])
        return True

    def unuse_object(self, obj, t: int, get_page) -> bool:
        """swapoff: each page of the object on area t is read in (if it is not cached) and
        renamed: another real slot if one is free, else the swapper space."""
        if not isinstance(obj, SwapAnonObject):
            return False
        for i in np.flatnonzero((obj.swap != 0) & (P.np_swp_type(obj.swap) == t)).tolist():
            pfn = get_page(P.pte_swp_offset(int(obj.swap[i])))
            if pfn < 0:
                continue                                   # not in this pass's window
            e = int(obj.swap[i])                           # reading may have reclaimed
            if P.pte_swp_type(e) != t or self.sys.swap.cache_lookup(t, P.pte_swp_offset(e)) != pfn:
                continue
            (t2, offs), = self._alloc_names(1, allow_real=True)
            self._rename(obj, i, pfn, t2, int(offs[0]))
        return True

    # --- self-check and costs --------------------------------------------------------------------------
    def check_swap_anon(self, mms: list) -> list[str]:
        out: list[str] = []
        f = self.frames
        sw = self.sys.swap
        for obj in self.swap_anon_objects():
            if (obj.pages >= 0).any():
                out.append(f"vmscan22: {obj!r} has a page in a page cache")
            named = np.flatnonzero(obj.swap != 0)
            ents = obj.swap[named]
            pfns = obj.resident(ents)
            for i, e, pfn in zip(named.tolist(), ents.tolist(), pfns.tolist()):
                t = P.pte_swp_type(e)
                if t >= len(sw.areas) or sw.areas[t] is None:
                    out.append(f"vmscan22: {obj!r} index {i} names a slot on no swap area")
                    continue
                if self._is_swapper(t) and pfn < 0:
                    out.append(f"vmscan22: {obj!r} index {i} is named on the swapper space "
                               f"but not resident (its contents are lost)")
                if pfn < 0:
                    continue
                fl = int(f.flags[pfn])
                if fl & PG_anon or not fl & PG_swapbacked:
                    out.append(f"vmscan22: page {pfn} of {obj!r} is anon or not swap-backed")
                if self._is_swapper(t) and not fl & PG_dirty:
                    out.append(f"vmscan22: page {pfn} named on the swapper space is clean")
                if int(f.mapcount[pfn]) and (int(f.mapping[pfn]) != obj.owner_id or int(f.index[pfn]) != i):
                    out.append(f"vmscan22: mapped page {pfn} does not record index {i} of {obj!r}")
            # every present PTE of the object's VMAs maps the page its index names
            for vma in obj.i_mmap:
                mm = vma.vm_mm
                rows_, los, his, addrs = self.pt.leaves(mm.pgd, vma.vm_start, vma.vm_end)
                for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
                    vals = self.pt.rows[row, lo:hi]
                    pres = P.np_present(vals)
                    if (P.np_swap(vals) & ~P.np_marker(vals)).any():
                        out.append(f"vmscan22: a swap PTE in shared anonymous VMA {vma.vm_start:#x}")
                    if not pres.any():
                        continue
                    slots = np.flatnonzero(pres)
                    addr = a + (slots.astype(np.int64) << 12)
                    want = obj.resident(obj.swap[vma.vm_pgoff + ((addr - vma.vm_start) >> 12)])
                    bad = P.np_pfn(vals[slots]) != want
                    for k in np.flatnonzero(bad)[:3].tolist():
                        out.append(f"vmscan22: PTE at {int(addr[k]):#x} maps pfn "
                                   f"{int(P.np_pfn(vals[slots])[k])}, the index names {int(want[k])}")
        return out

    def swap_anon_metadata(self) -> dict[str, int]:
        named = sum(int(o.nrswapped) for o in self.swap_anon_objects())
        out = {"swap-cache anon index": named * SWP_ENTRY_BYTES}
        a = self._swapper_area
        if a is not None and self._is_swapper(a.type):
            out["swapper space map"] = int(a.swap_map.nbytes)
        return out
