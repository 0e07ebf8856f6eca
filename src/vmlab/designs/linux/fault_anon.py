"""Faults on private mappings: do_anonymous_page() and do_wp_page() (mm/memory.c, Linux 6.x).

A batch is a sorted array of slots of one PTE table inside one private VMA. Each slot is one
fault in Linux (handle_mm_fault -> handle_pte_fault), counted as one pgfault. The cases:

  read, pte none          do_anonymous_page: map the shared zero page, read-only, special.
                          No anon_vma is needed (so fork will not copy such a VMA's PTEs).
  write, pte none         do_anonymous_page: anon_vma_prepare(), a new zeroed page,
                          folio_add_new_anon_rmap (exclusive), folio_add_lru_vma, PTE
                          writable+dirty(+young: x86 protections carry _PAGE_ACCESSED).
  write, present, ro      do_wp_page:
      zero page           wp_page_copy from the zero page: a new zeroed page.
      anon, exclusive     reuse (PageAnonExclusive): make the PTE writable; pgreuse.
      anon, only user     wp_can_reuse_anon_folio: page_count 1 -> folio_move_anon_rmap to
                          this VMA's anon_vma, mark exclusive, reuse; pgreuse.
      otherwise           wp_page_copy: a new exclusive page with the same contents; the old
                          page loses this mapping (and is freed if that was its last reference).

Order, per batch (the "allocate first" contract of designs/base.py): classify, reserve the
exact number of frames (this may enter reclaim), re-read and re-classify, then allocate and
install. Swap entries (do_swap_page) are handled by the swap layer's fault path.
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, PG_anon_exclusive, PG_ksm, PG_swapcache, ZERO_PFN
from ...mm.swap_state import folio_free_swap

_U32 = np.uint32
_U64 = np.uint64


class AnonFaults:
    """Mixin of LinuxDesign: needs self.frames, self.pt, self.sys, self.avs (AnonVMAs)."""

    def _pte_extra(self) -> int:
        """Bits pte_mkdirty() adds besides _PAGE_DIRTY (soft-dirty when configured)."""
        return P.SOFT_DIRTY if self.sys.config.soft_dirty else 0

    def _zero_pte(self, vma) -> int:
        """pte_mkspecial(pfn_pte(zero_pfn, vma->vm_page_prot))."""
        return P.mk_pte(ZERO_PFN, vma.vm_page_prot) | P.SPECIAL

    def _fault_private(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        ev = self.sys.events
        rows = self.pt.rows
        ptes = rows[row, idx]
        swap = P.np_swap(ptes)
        if swap.any():
            self._do_swap_page(mm, vma, row, idx[swap], base, write)
            idx = idx[~swap]
            if not len(idx):
                return
            ptes = self.pt.rows[row, idx]
        if not write:
            sel = idx[ptes == 0]
            if len(sel):
                self.pt.rows[row, sel] = _U64(self._zero_pte(vma))
                ev.count("pgfault", len(sel))
                self.stats.add("faults_zero", len(sel))
            return
        self.anon_prepare(vma)
        need = self._private_write_need(ptes)
        if need:
            # do_wp_page() takes a reference on the page it will copy (folio_get) before
            # wp_page_copy() allocates: reclaim entered by that allocation may unmap the page
            # but cannot free it, so the retried fault finds it in the swap cache instead of
            # reading it back (and losing it again) in a loop
            f = self.frames
            if f.nfree - need >= f.low_mark:
                f.reserve(need)                # above the min watermark: no reclaim
            else:
                held = self._copy_sources(ptes)
                np.add.at(f.refcount, held, 1)
                try:
                    f.reserve(need)            # may reclaim: re-read what we classified
                finally:
                    self._drop_held(held)
                ptes = self.pt.rows[row, idx]
        self._private_write(mm, vma, row, idx, base, ptes)

    def _copy_sources(self, ptes: np.ndarray) -> np.ndarray:
        """The pages a write batch will copy (present, not reusable, not the zero page)."""
        present = P.np_present(ptes)
        pfn = P.np_pfn(ptes[present])
        keep = ~self._reusable(pfn, self.frames.flags[pfn]) & (pfn != ZERO_PFN)
        return pfn[keep].astype(np.intp)

    def _drop_held(self, held: np.ndarray) -> None:
        """folio_put() of the references _copy_sources' pages were held by; one that lost
        every other holder meanwhile (nothing maps or caches it) is freed."""
        f = self.frames
        np.subtract.at(f.refcount, held, 1)
        gone = held[(f.refcount[held] == 0) & (f.mapcount[held] == 0)]
        if len(gone):
            gone = np.unique(gone)
            self.sys.lru.remove(gone)
            f.free_many(gone)

    def _private_write_need(self, ptes: np.ndarray) -> int:
        """Frames a write batch will allocate: new pages plus copies (reuse needs none)."""
        f = self.frames
        none = ptes == 0
        present = P.np_present(ptes)
        pfn = P.np_pfn(ptes[present])
        fl = f.flags[pfn]
        reuse = self._reusable(pfn, fl)
        return int(none.sum()) + int((~reuse).sum())

    def _reusable(self, pfn: np.ndarray, fl: np.ndarray) -> np.ndarray:
        """PageAnonExclusive, or wp_can_reuse_anon_folio(): the only reference is this
        mapping's, once a swap-cache page has given up its slot (folio_free_swap, which
        fails while a swap PTE or the zeromap... still counts the slot). Not KSM."""
        f = self.frames
        anon = (fl & _U32(PG_anon)) != 0
        excl = (fl & _U32(PG_anon_exclusive)) != 0
        cached = (fl & _U32(PG_swapcache)) != 0
        only = ((f.mapcount[pfn] == 1) & (f.refcount[pfn] == cached.astype(f.refcount.dtype))
                & ((fl & _U32(PG_ksm)) == 0))
        if (only & cached & ~excl).any():
            swap = self.sys.swap
            for k in np.flatnonzero(only & cached & ~excl).tolist():
                t, off = swap.entry_of(f.private[int(pfn[k])])
                if swap.count(t, off):
                    only[k] = False             # folio_free_swap() would fail: copy
        return anon & (excl | only) & (pfn != ZERO_PFN)

    def _private_write(self, mm, vma, row: int, idx: np.ndarray, base: int, ptes: np.ndarray) -> None:
        f = self.frames
        ev = self.sys.events
        owner = self.anon_prepare(vma)
        extra = self._pte_extra()
        prot = vma.vm_page_prot
        addrs_all = base + (idx.astype(np.int64) << 12)
        none = ptes == 0
        present = P.np_present(ptes)
        # Slots already writable need no fault (the caller only passes faulting slots, but a
        # batch re-read after reclaim must not double-handle).
        writable = present & ((ptes & P.NP_RW) != 0)
        present &= ~writable
        new_vals = ptes.copy()

        # --- present, read-only: do_wp_page -------------------------------------------------
        p_idx = np.flatnonzero(present)
        pfn = P.np_pfn(ptes[p_idx])
        fl = f.flags[pfn]
        reuse = self._reusable(pfn, fl)
        if reuse.any():
            r_pfn = pfn[reuse]
            for q in r_pfn[(f.flags[r_pfn] & _U32(PG_swapcache | PG_anon_exclusive))
                           == _U32(PG_swapcache)].tolist():
                folio_free_swap(self.sys, int(q))   # the slot goes; the page becomes dirty
            # folio_move_anon_rmap() for the non-exclusive ones, then SetPageAnonExclusive
            self.anon_reuse(vma, r_pfn)
            f.flags[r_pfn] |= _U32(PG_anon_exclusive)
            sel = p_idx[reuse]
            new_vals[sel] = ptes[sel] | _U64(P.RW | P.DIRTY | P.ACCESSED | extra)
            ev.count("pgreuse", len(sel))
            self.stats.add("pages_reused", len(sel))
        copy = ~reuse
        old_pfn = pfn[copy]
        copy_slots = p_idx[copy]

        # --- allocation: new pages for none slots and copies ------------------------------------
        n_new = int(none.sum())
        n_copy = len(old_pfn)
        fresh = f.alloc_many(n_new + n_copy)
        if n_copy:
            new_pfn = fresh[n_new:]
            zero = old_pfn == ZERO_PFN
            tokens = f.content[old_pfn]
            tokens[zero] = 0
            f.contents.dup_many(tokens)
            f.content[new_pfn] = tokens
            self.new_anon_pages(vma, owner, new_pfn, addrs_all[copy_slots])
            new_vals[copy_slots] = ((new_pfn.astype(np.uint64) << P.NP_PFN_SHIFT)
                                    | _U64(prot | P.RW | P.DIRTY | extra))
            real_old = old_pfn[~zero]
            self.stats.add("pages_copied_cow", len(real_old))
            self.stats.add("zero_cow", int(zero.sum()))
            # RSS: the copy is anon; the old page (if real) leaves this mm's count of its kind
            mm.rss[1] += n_copy
            self.rss_add(mm, real_old, -1)
        if n_new:
            n_pfn = fresh[:n_new]
            n_slots = np.flatnonzero(none)
            self.new_anon_pages(vma, owner, n_pfn, addrs_all[n_slots])
            new_vals[n_slots] = ((n_pfn.astype(np.uint64) << P.NP_PFN_SHIFT)
                                 | _U64(prot | P.RW | P.DIRTY | extra))
            mm.rss[1] += n_new
            self.stats.add("faults_anon", n_new)
        self.pt.rows[row, idx] = new_vals
        if n_copy:
            gone = old_pfn != ZERO_PFN
            dead = self.unmap_pages(vma, old_pfn[gone],
                                    addrs_all[copy_slots][gone] if self.tracks_ptes else None)
            self.free_pages(dead)
        nfaults = int(present.sum()) + n_new
        ev.count("pgfault", nfaults)
        self.stats.add("faults_wp", int(present.sum()))
