"""Swap entries in the linux design: do_swap_page(), and swap PTEs at zap and fork.

do_swap_page() (mm/memory.c), per faulting slot:
  1. look the entry up in the swap cache (swap_cache_get_folio); a hit is a minor fault, and
     a hit on a page brought in by readahead counts swap_ra_hit;
  2. otherwise read it (swapin_readahead, here cluster readahead: the aligned group of
     2^page_cluster slots around it) into the swap cache: a major fault, pswpin per page read
     (swpin_zero for slots the zeromap says were zero-filled), swap_ra per extra page; the
     refault is checked against the slot's workingset shadow;
  3. drop this PTE's slot reference (swap_free) and, when swap is more than half full, the
     VMA is locked or the fault writes to a page nobody else holds, free the slot and take
     the page out of the swap cache (folio_free_swap; the page becomes dirty);
  4. map it: writable at once if the swap PTE carried the exclusive bit (or the page has no
     other user) — a write then needs no second fault — else read-only, and a write goes on
     to do_wp_page. A page mapped for the first time gets its anon_vma: the VMA's own if
     exclusive, else the root of its anon_vma tree (the oldest, which every sharer can reach).
  RSS: MM_ANONPAGES +1, MM_SWAPENTS -1.

zap (free_swap_and_cache): the slot loses the PTE's reference; a cached page that nobody maps
and whose slot is now free leaves the swap cache and is freed.
fork (copy_nonpresent_pte): swap_duplicate(), the child counts MM_SWAPENTS, and the exclusive
bit is cleared in both PTEs (the slot is now shared).
The page-level swap-cache operations themselves are design-neutral (mm/swap_state.py).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import (PG_anon, PG_anon_exclusive, PG_mlocked, PG_readahead,
                          PG_swapcache)
from ...mm.mm_struct import MM_ANONPAGES, MM_SWAPENTS
from ...mm.swap_state import folio_free_swap, free_swap_and_cache, swapin_readahead
from ...mm.vmflags import VM_LOCKED, VM_WRITE

_U32 = np.uint32


class SwapPaths:
    """Mixin of LinuxDesign."""

    # --- reading pages back ---------------------------------------------------------------------
    def _do_swap_page(self, mm, vma, row, idx, base, write):
        for i in idx.tolist():
            self._do_swap_one(mm, vma, row, int(i), base, write)

    def swapin_page(self, t: int, off: int, pfn: int) -> int:
        """Steps 1-2 above for slot (t, off): ``pfn`` is the swap-cache lookup's answer (-1:
        a miss, read it with readahead: a major fault). Counts faults_swap_major/minor and
        swap_ra_hit; returns the page, in the swap cache. Also the bsd design's swap pager."""
        f = self.frames
        if pfn < 0:
            pfn = swapin_readahead(self.sys, t, off)
            self.sys.events.count("pgmajfault")
            self.stats.add("faults_swap_major")
        else:
            fl = int(f.flags[pfn])
            if fl & PG_readahead:
                f.flags[pfn] = fl & ~PG_readahead
                self.sys.events.count("swap_ra_hit")
            self.stats.add("faults_swap_minor")
        return pfn

    def _do_swap_one(self, mm, vma, row: int, i: int, base: int, write: bool) -> None:
        sysm = self.sys
        swap = sysm.swap
        f = self.frames
        ev = sysm.events
        e = int(self.pt.rows[row, i])
        t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
        pfn = swap.cache_lookup(t, off)
        if pfn < 0:
            self.frames.reserve(1)
            e = int(self.pt.rows[row, i])          # reclaim may have run: re-read
            if not P.is_swap_pte(e):
                return self.fault(mm, vma, row, np.array([i], np.intp), base, write)
            pfn = swap.cache_lookup(t, off)
        pfn = self.swapin_page(t, off, pfn)
        ev.count("pgfault")
        self.stats.add("faults_swap")
        exclusive = bool(e & P.SWP_EXCLUSIVE)
        swap.free(t, off)
        fl = int(f.flags[pfn])
        if fl & PG_swapcache and (swap.vm_swap_full() or vma.vm_flags & VM_LOCKED or fl & PG_mlocked
                                  or (write and f.mapcount[pfn] == 0 and f.refcount[pfn] == 1)):
            folio_free_swap(sysm, pfn)
        addr = base + (i << 12)
        only_user = int(f.mapcount[pfn]) == 0 and int(f.refcount[pfn]) == 0
        users = self.table_users(mm, row)
        prot = vma.vm_page_prot
        val = P.mk_pte(pfn, prot)
        if e & P.SWP_SOFT_DIRTY:
            val |= P.SOFT_DIRTY
        if (exclusive or only_user) and len(users) == 1:
            exclusive = True
            if vma.vm_flags & VM_WRITE:
                val |= P.RW
                if write:
                    val |= P.DIRTY | (P.SOFT_DIRTY if sysm.config.soft_dirty else 0)
                    write = False
        self.add_anon_rmap(vma, pfn, addr, exclusive)
        self.pt.rows[row, i] = np.uint64(val)
        for m in users:
            m.rss[MM_ANONPAGES] += 1
            m.rss[MM_SWAPENTS] -= 1
        if write:
            # still read-only: do_wp_page decides between reuse and a copy
            self._fault_private(mm, vma, row, np.array([i], np.intp), base, True)

    def table_users(self, mm, row: int):
        """The mms whose page tables hold leaf table ``row`` (which ``mm`` reaches): only
        ``mm`` here; a design sharing tables (sharedpt) lists every sharer, so a PTE filled
        in that table is accounted to each of them and is never mapped exclusive."""
        return (mm,)

    def add_anon_rmap(self, vma, pfn: int, addr: int, exclusive: bool) -> None:
        """folio_add_new_anon_rmap() for a page read back from swap (it is not anon yet: it
        gets the VMA's anon_vma if exclusive, else the root of the tree, which every process
        sharing it can reach), or folio_add_anon_rmap_ptes() for one already anon. Then
        mapcount +1 and mlock if the VMA is locked."""
        f = self.frames
        if not int(f.flags[pfn]) & PG_anon:
            owner = self.anon_prepare(vma) if exclusive else self.anon_owner_shared(vma)
            f.flags[pfn] |= _U32(PG_anon)
            f.mapping[pfn] = owner
            f.index[pfn] = vma.linear_page_index(addr)
        if exclusive:
            f.flags[pfn] |= _U32(PG_anon_exclusive)
        if self.tracks_ptes:
            self.rmap_add(vma.vm_mm, vma, np.array([addr], np.int64), np.array([pfn], np.intp))
        f.mapcount[pfn] += 1
        if vma.is_locked():
            self.sys.lru.mlock(pfn)

    # --- swapoff -------------------------------------------------------------------------------------
    def unuse_mm(self, mm, t: int, get_page) -> None:
        """unuse_mm() -> unuse_pte_range(): every swap PTE of area ``t`` in this mm becomes a
        present PTE (read-only, old) for the page ``get_page(offset)`` returns."""
        pt = self.pt
        for vma in mm.vmas.as_list():
            rows_, los, his, addrs = pt.leaves(mm.pgd, vma.vm_start, vma.vm_end)
            for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
                vals = pt.rows[row, lo:hi]
                sw = P.np_swap(vals) & ~P.np_marker(vals) & (P.np_swp_type(vals) == t)
                for k in np.flatnonzero(sw).tolist():
                    e = int(pt.rows[row, lo + k])
                    off = P.pte_swp_offset(e)
                    pfn = get_page(off)
                    if pfn < 0:
                        continue                           # not in this pass's window
                    e = int(pt.rows[row, lo + k])          # reading may have reclaimed
                    if not P.is_swap_pte(e):
                        continue
                    addr = a + (k << 12)
                    users = self.table_users(mm, row)
                    self.add_anon_rmap(vma, pfn, addr,
                                       bool(e & P.SWP_EXCLUSIVE) and len(users) == 1)
                    val = P.mk_pte(pfn, vma.vm_page_prot) & ~P.ACCESSED
                    if e & P.SWP_SOFT_DIRTY:
                        val |= P.SOFT_DIRTY
                    pt.rows[row, lo + k] = np.uint64(val)
                    self.sys.swap.free(t, off)
                    for m in users:
                        m.rss[MM_SWAPENTS] -= 1
                        m.rss[MM_ANONPAGES] += 1
                    # unuse_pte_range(): folio_free_swap() right after unuse_pte(), so a page
                    # whose last swap reference this was leaves the dying area's swap cache
                    # (reclaim can then only give it a slot on another area)
                    if int(self.frames.flags[pfn]) & PG_swapcache:
                        folio_free_swap(self.sys, pfn)

    # --- swap PTEs going away or being copied ------------------------------------------------------
    def _zap_swap_entries(self, mm, entries: np.ndarray) -> None:
        for e in entries.tolist():
            t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
            free_swap_and_cache(self.sys, t, off)
        mm.rss[MM_SWAPENTS] -= len(entries)

    def _fork_swap_entries(self, cmm, flat: np.ndarray, swap_mask: np.ndarray) -> bool:
        """copy_nonpresent_pte(): returns True (the parent's PTEs changed: exclusive cleared)."""
        swap = self.sys.swap
        ents = flat[swap_mask]
        for e in ents.tolist():
            swap.duplicate(P.pte_swp_type(e), P.pte_swp_offset(e))
        flat[swap_mask] = ents & np.uint64(~P.SWP_EXCLUSIVE & 0xFFFFFFFFFFFFFFFF)
        cmm.rss[MM_SWAPENTS] += len(ents)
        return True
