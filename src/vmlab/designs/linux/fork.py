"""Fork, per VMA: anon_vma_fork() (mm/rmap.c) and copy_page_range() (mm/memory.c).

dup_mmap() (kernel/fork.py) calls fork_vma() for each VMA the child inherits. Here:

  * VM_WIPEONFORK: the child VMA starts with no anon_vma and no PTEs (fresh zero memory).
  * otherwise anon_vma_fork() links the child VMA into the parent's anon_vma tree;
  * PTEs are copied only when vma_needs_copy(): the parent VMA has an anon_vma (or is a
    PFN/mixed map). A shared mapping or a private one never written faults in lazily in the
    child instead, which is what makes fork cheap for big shared regions.

copy_present_pte() for each present PTE, vectorized over whole tables:
  * anon page: folio_try_dup_anon_rmap_pte() — mapcount +1 and PageAnonExclusive cleared
    (the page is now shared; a later write in either process must COW or prove it is alone);
  * other page: folio_dup_file_rmap_pte() — mapcount +1;
  * the zero page: just copied;
  * COW mapping with a writable PTE: write-protect it in parent *and* child;
  * VM_SHARED: the child's PTE is made clean; every child PTE is made old.
Net per copied page: mapcount +1 (refcount unchanged: Linux's folio_get is our mapcount).
Swap entries: swap_duplicate() and the exclusive marker cleared in both (swap layer).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon_exclusive, ZERO_PFN
from ...mm.mm_struct import MM_ANONPAGES
from ...mm.vmflags import VM_MAYBE_GUARD, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_UFFD_WP, VM_WIPEONFORK

_U32 = np.uint32
_U64 = np.uint64


class Fork:
    """Mixin of LinuxDesign."""

    def fork_vma(self, parent_mm, child_mm, vma, child_vma) -> None:
        if child_vma.vm_flags & VM_WIPEONFORK:
            self.anon_fork(child_vma, None)
            return
        copy = self._vma_needs_copy(child_vma, vma)
        if copy:
            # allocate the child's tables first: this is the only step that can fail, and
            # nothing has changed yet if it does (the caller may retry after the OOM killer)
            prows, plo, phi, paddr = self.pt.leaves(parent_mm.pgd, vma.vm_start, vma.vm_end)
            crows = self.pt.ensure_leaves_at(child_mm.pgd, paddr, acct=child_mm)
        self.anon_fork(child_vma, vma)
        if copy and len(prows):
            self._copy_page_range(parent_mm, child_mm, vma, prows, plo, phi, crows)
            if self.tracks_ptes:
                self._fork_rmap_add(child_mm, child_vma, crows, plo, phi, paddr)

    def _vma_needs_copy(self, dst, src) -> bool:
        """vma_needs_copy(): VM_COPY_ON_FORK flags (guard markers live only in the page
        tables, so VM_MAYBE_GUARD forces a copy) or an anon_vma."""
        if dst.vm_flags & (VM_PFNMAP | VM_MIXEDMAP | VM_UFFD_WP | VM_MAYBE_GUARD):
            return True
        return self.vma_has_anon(src)

    def _fork_rmap_add(self, cmm, child_vma, crows, lo, hi, lo_addr) -> None:
        """For a design that tracks PTEs: every present PTE fork just wrote into the child's
        tables (page_add_rmap in 2.5's copy_page_range), zero page excluded, with its address."""
        addrs, pfns = [], []
        for rows, sl, k in self.pt.groups(crows, lo, hi):
            block = self.pt.rows[rows, sl]
            t, c = np.nonzero(P.np_present(block))
            if not len(t):
                continue
            pfn = P.np_pfn(block[t, c])
            keep = pfn != ZERO_PFN
            addrs.append((lo_addr[k][t] + (c.astype(np.int64) << 12))[keep])
            pfns.append(pfn[keep])
        if addrs:
            self.rmap_add(cmm, child_vma, np.concatenate(addrs), np.concatenate(pfns))

    def _copy_page_range(self, pmm, cmm, vma, prows, plo, phi, crows) -> None:
        cow = vma.is_cow_mapping()
        shared = bool(vma.vm_flags & VM_SHARED)
        anon_only = vma.vm_file is None          # private anonymous: every real page is anon
        for pr, sl, k in self.pt.groups(prows, plo, phi):
            self._copy_block(cmm, pr, crows[k], sl, cow, shared, anon_only)

    def _copy_block(self, cmm, prow: np.ndarray, crow: np.ndarray, sl: slice, cow: bool,
                    shared: bool, anon_only: bool = False) -> None:
        """copy_pte_range() over a block of tables at once (the hot path of fork)."""
        f = self.frames
        block = self.pt.rows[prow, sl]                     # a copy, (ntables, width)
        flat = block.reshape(-1)
        present = (flat & P.NP_PRESENT_ANY) != 0
        npresent = int(np.count_nonzero(present))
        parent_changed = False
        if npresent != flat.size:
            other = (flat != 0) & ~present
            if other.any():
                swap = other & ~P.np_marker(flat)
                if swap.any():
                    parent_changed = self._fork_swap_entries(cmm, flat, swap)
        if npresent:
            pv = flat if npresent == flat.size else flat[present]
            pfn = pv.view(np.int64) >> 12             # in place below: no astype copy
            pfn &= (1 << P.PFN_BITS) - 1
            if (pfn == ZERO_PFN).any():
                pfn = pfn[pfn != ZERO_PFN]
            if len(pfn):
                # folio_try_dup_anon_rmap_pte / folio_dup_file_rmap_pte: mapcount +1, and the
                # page is no longer exclusive to one process (the flag only exists on anon pages)
                f.mapcount[pfn] += 1
                fl = f.flags[pfn]
                if anon_only:
                    cmm.rss[MM_ANONPAGES] += len(pfn)
                else:
                    self.rss_add(cmm, pfn, +1, flags=fl)
                fl &= _U32(~PG_anon_exclusive & 0xFFFFFFFF)
                f.flags[pfn] = fl
                self.stats.add("ptes_copied_fork", len(pfn))
            if cow:
                if npresent == flat.size:
                    flat &= P.NP_NOT_RW
                else:
                    flat[present] = pv & P.NP_NOT_RW
                parent_changed = True
        if parent_changed:
            self.pt.rows[prow, sl] = block
        # the child's copy: old (and clean for shared mappings). Bits 5 and 6 are always 0 in
        # swap PTEs and markers, so they can be cleared without looking.
        mask = P.NP_NOT_ACCESSED & (P.NP_NOT_DIRTY if shared else np.uint64(0xFFFFFFFFFFFFFFFF))
        np.bitwise_and(block, mask, out=block)
        self.pt.rows[crow, sl] = block
