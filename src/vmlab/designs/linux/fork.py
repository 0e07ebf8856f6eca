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
from ...mm.mm_struct import MM_ANONPAGES, MM_SWAPENTS
from ...mm.vmflags import VM_MAYBE_GUARD, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_UFFD_WP, VM_WIPEONFORK

_U64 = np.uint64
# in FrameTable.word, flags are the low 32 bits and mapcount the high 32 bits
_MAPCOUNT_ONE = _U64(1 << 32)
_NOT_EXCLUSIVE = _U64(~PG_anon_exclusive & 0xFFFFFFFFFFFFFFFF)


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
        # With no swap entry in the parent (its MM_SWAPENTS counter, which check() recounts)
        # and no marker possible in this VMA, every non-empty PTE is present.
        no_swap = pmm.rss[MM_SWAPENTS] == 0 and not vma.vm_flags & (VM_MAYBE_GUARD | VM_UFFD_WP)
        for pr, sl, k in self.pt.groups(prows, plo, phi):
            cr = crows[k]
            for a, b in _runs(pr, cr):
                self._copy_block(cmm, pr[a:b], cr[a:b], sl, cow, shared, anon_only, no_swap)

    def _copy_block(self, cmm, prow: np.ndarray, crow: np.ndarray, sl: slice, cow: bool,
                    shared: bool, anon_only: bool = False, no_swap: bool = False) -> None:
        """copy_pte_range() over a block of tables at once (the hot path of fork).

        When the parent's tables are consecutive rows the block is a view and the parent's
        PTEs change in place; otherwise it is a copy written back at the end. Either way the
        parent's PTEs end up the same. ``no_swap``: the block holds no swap entry or marker,
        so an empty PTE is the only kind that is not present; its pfn reads as 0, which is the
        zero page's, and both are skipped together.
        """
        f = self.frames
        rows = self.pt.rows
        ps = _row_slice(prow)
        block = rows[prow, sl] if ps is None else rows[ps, sl]
        flat = block.reshape(-1)
        inplace = np.may_share_memory(flat, rows)      # a view of the parent's tables
        parent_changed = False
        if no_swap:
            present = None                        # every non-empty PTE
            npresent = flat.size
        else:
            present = (flat & P.NP_PRESENT_ANY) != 0
            npresent = int(np.count_nonzero(present))
        if npresent != flat.size:
            other = (flat != 0) & ~present
            if other.any():
                swap = other & ~P.np_marker(flat)
                if swap.any():
                    parent_changed = self._fork_swap_entries(cmm, flat, swap)
        if npresent:
            pv = flat if npresent == flat.size else flat[present]
            # folio_try_dup_anon_rmap_pte / folio_dup_file_rmap_pte: mapcount +1, and the
            # page is no longer exclusive to one process (the flag only exists on anon pages)
            count, pfn, writable = _dup_rmap(f.word, pv, want_pfns=not anon_only)
            if count:
                if anon_only:
                    cmm.rss[MM_ANONPAGES] += count
                else:
                    self.rss_add(cmm, pfn, +1)
                self.stats.add("ptes_copied_fork", count)
            if cow and writable is not False:            # (no writable PTE: nothing to do)
                if npresent == flat.size:
                    flat &= P.NP_NOT_RW
                else:
                    flat[present] = pv & P.NP_NOT_RW
                parent_changed = True
        if parent_changed and not inplace:
            rows[prow, sl] = block
        # the child's copy: old (and clean for shared mappings). Bits 5 and 6 are always 0 in
        # swap PTEs and markers, so they can be cleared without looking.
        mask = P.NP_NOT_ACCESSED & (P.NP_NOT_DIRTY if shared else np.uint64(0xFFFFFFFFFFFFFFFF))
        cs = _row_slice(crow)
        if cs is None:
            rows[crow, sl] = block & mask
        else:
            np.bitwise_and(block, mask, out=rows[cs, sl])


_RUN_MIN = 1024         # below this many pages the plain gather/scatter is as cheap
_NEXT_FRAME = 1 << P.PFN_SHIFT    # PTE difference between the same bits on consecutive frames


def _pfns(ptes: np.ndarray) -> np.ndarray:
    pfn = ptes.view(np.int64) >> P.PFN_SHIFT
    pfn &= (1 << P.PFN_BITS) - 1
    return pfn


def _run_breaks(ptes: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Where runs of PTEs one frame apart (same bits, next pfn) break: the positions ``b``
    (a run ends at b and the next starts at b + 1) and the pfns either side; None when there
    are more than ``most`` breaks."""
    b = np.flatnonzero(np.diff(ptes.view(np.int64)) != _NEXT_FRAME)
    if len(b) > most:
        return None
    return b, _pfns(ptes[b]), _pfns(ptes[b + 1])


def _dup_rmap(word: np.ndarray, ptes: np.ndarray, want_pfns: bool = False
              ) -> tuple[int, np.ndarray | None, bool | None]:
    """Mapcount +1 and PG_anon_exclusive cleared in the flags|mapcount ``word`` of each frame
    that ``ptes`` map (a block's present PTEs in address order, or all of them when the only
    other kind is the empty PTE). Pfn 0, the zero page or an empty PTE, is skipped. Returns
    how many frames were counted, with ``want_pfns`` which, and whether any of ``ptes`` is
    writable when the runs tell it for free (None when not known).

    Like folio_pte_batch() in copy_present_ptes(), consecutive frames are done in one go.
    Neighbouring PTEs one frame apart continue a run; when every break between runs still
    goes up (memory faulted in order gets ascending frames from the allocator), the frames
    from the first to the last are updated as one slice and the few in the gaps, frames the
    block does not map, are put back as they were. Otherwise it is one gather and one scatter.
    """
    if len(ptes) >= _RUN_MIN:
        # every PTE of pfn 0 (empty, or the zero page) starts a run of its own, since
        # nothing is one frame below it: if there are some, leave them out and look again
        runs = _run_breaks(ptes, len(ptes) // 2)
        if runs is not None and (P.pte_pfn(int(ptes[0])) == ZERO_PFN or not runs[2].all()):
            ptes = ptes[_pfns(ptes) != ZERO_PFN]
            runs = _run_breaks(ptes, len(ptes) // 8) if len(ptes) >= _RUN_MIN else None
        elif runs is not None and len(runs[0]) > len(ptes) // 8:
            runs = None                                  # too many runs to pay
        if runs is not None and (runs[2] > runs[1]).all():    # strictly ascending: distinct
            b, before, after = runs
            lo, hi = P.pte_pfn(int(ptes[0])), P.pte_pfn(int(ptes[-1])) + 1
            count = len(ptes)
            ngaps = hi - lo - count
            if ngaps <= count // 4:
                gaps = None
                if ngaps:
                    glen = after - before - 1           # frames skipped at each break
                    gaps = np.repeat(before + 1 - (np.cumsum(glen) - glen), glen) + np.arange(ngaps)
                    saved = word[gaps]
                win = word[lo:hi]
                win += _MAPCOUNT_ONE
                win &= _NOT_EXCLUSIVE
                if gaps is not None:
                    word[gaps] = saved
                # a run's PTEs have the same bits, so its first PTE speaks for it (the PTEs
                # left out are empty or map the zero page, which is never writable)
                writable = bool(int(ptes[0]) & P.RW) or bool((ptes[b + 1] & P.NP_RW).any())
                return count, (_pfns(ptes) if want_pfns else None), writable
    pfn = _pfns(ptes)
    if (pfn == ZERO_PFN).any():
        pfn = pfn[pfn != ZERO_PFN]
    if len(pfn):
        w = np.take(word, pfn)
        w += _MAPCOUNT_ONE
        w &= _NOT_EXCLUSIVE
        word[pfn] = w
    return len(pfn), pfn, None


_MAX_RUNS = 8


def _runs(prow: np.ndarray, crow: np.ndarray) -> list[tuple[int, int]]:
    """Split a batch of tables where the parent's or the child's rows stop being consecutive,
    so each piece can be worked on as views (see _row_slice). More than a few pieces cost more
    in per-call overhead than the gathers they save: then the batch stays whole."""
    n = len(prow)
    if n < 2:
        return [(0, n)]
    breaks = np.flatnonzero((np.diff(prow) != 1) | (np.diff(crow) != 1)) + 1
    if not len(breaks) or len(breaks) >= _MAX_RUNS:
        return [(0, n)]
    edges = [0, *breaks.tolist(), n]
    return list(zip(edges[:-1], edges[1:]))


def _row_slice(idx: np.ndarray) -> slice | None:
    """``idx`` as an ascending slice if it is a run of consecutive rows (then indexing gives a
    view, no gather); None otherwise."""
    n = len(idx)
    if n == 0:
        return None
    first = int(idx[0])
    if int(idx[-1]) - first != n - 1:
        return None
    if n > 2 and not (np.diff(idx) == 1).all():
        return None
    return slice(first, first + n)
