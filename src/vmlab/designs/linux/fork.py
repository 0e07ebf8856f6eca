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
from ...hw.frames import PG_anon, PG_anon_exclusive, ZERO_PFN
from ...mm.vmflags import VM_MAYBE_GUARD, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_UFFD_WP, VM_WIPEONFORK

_U32 = np.uint32
_U64 = np.uint64


class Fork:
    """Mixin of LinuxDesign."""

    def fork_vma(self, parent_mm, child_mm, vma, child_vma) -> None:
        if child_vma.vm_flags & VM_WIPEONFORK:
            child_vma.anon_vma = None
            child_vma.anon_vma_chain = []
            return
        copy = self._vma_needs_copy(child_vma, vma)
        if copy:
            # allocate the child's tables first: this is the only step that can fail, and
            # nothing has changed yet if it does (the caller may retry after the OOM killer)
            prows, plo, phi, paddr = self.pt.leaves(parent_mm.pgd, vma.vm_start, vma.vm_end)
            crows = self.pt.ensure_leaves_at(child_mm.pgd, paddr, acct=child_mm)
        self.avs.fork(child_vma, vma)
        if copy and len(prows):
            self._copy_page_range(parent_mm, child_mm, vma, prows, plo, phi, crows)

    @staticmethod
    def _vma_needs_copy(dst, src) -> bool:
        """vma_needs_copy(): VM_COPY_ON_FORK flags (guard markers live only in the page
        tables, so VM_MAYBE_GUARD forces a copy) or an anon_vma."""
        if dst.vm_flags & (VM_PFNMAP | VM_MIXEDMAP | VM_UFFD_WP | VM_MAYBE_GUARD):
            return True
        return src.anon_vma is not None

    def _copy_page_range(self, pmm, cmm, vma, prows, plo, phi, crows) -> None:
        cow = vma.is_cow_mapping()
        shared = bool(vma.vm_flags & VM_SHARED)
        full = (plo == 0) & (phi == 512)
        groups = []
        if full.any():
            groups.append((prows[full], crows[full], slice(0, 512)))
        for k in np.flatnonzero(~full).tolist():
            groups.append((prows[k:k + 1], crows[k:k + 1], slice(int(plo[k]), int(phi[k]))))
        for pr, cr, sl in groups:
            block = self.pt.rows[pr, sl]                 # (ntables, width) copy
            self._copy_block(pmm, cmm, block, cow, shared, pr, cr, sl)

    def _copy_block(self, pmm, cmm, block: np.ndarray, cow: bool, shared: bool,
                    prow: np.ndarray, crow: np.ndarray, sl: slice) -> None:
        f = self.frames
        present = P.np_present(block)
        swap = (block != 0) & ~present & ~P.np_marker(block)
        if swap.any():
            block = self._fork_swap_entries(cmm, block, swap)
        if present.any():
            pv = block[present]
            pfn = P.np_pfn(pv)
            real = pfn != ZERO_PFN
            rpfn = pfn[real]
            if len(rpfn):
                fl = f.flags[rpfn]
                f.mapcount[rpfn] += 1
                anon = (fl & _U32(PG_anon)) != 0
                if anon.any():
                    f.flags[rpfn[anon]] = fl[anon] & _U32(~PG_anon_exclusive & 0xFFFFFFFF)
                self.rss_add(cmm, rpfn, +1)
                self.stats.add("ptes_copied_fork", len(rpfn))
            if cow:
                block[present] = pv & P.NP_NOT_RW
            self.pt.rows[prow, sl] = block
        child = block.copy()
        child[present] &= P.NP_NOT_ACCESSED
        if shared:
            child[present] &= P.NP_NOT_DIRTY
        self.pt.rows[crow, sl] = child

    def _fork_swap_entries(self, cmm, block, swap):
        raise NotImplementedError("fork of swap entries: swap is not modelled yet")
