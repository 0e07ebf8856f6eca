"""The `ptechains` design: Linux 2.5's reverse map (Rik van Riel's rmap, 2.5.27 - 2.6.5).

Every mapped page carries the list of the PTEs that map it. Rik van Riel's proposal
("[RFC] 2-pointer PTE chaining idea", linux-mm, January 2001) became mm/rmap.c in 2.5.27
(July 2002); Andrew Morton packed several pointers per cache-line node in August 2002
("Rmap speedup" thread), which is the form modelled here (2.6.0's mm/rmap.c); in 2004
object-based rmap (Hugh Dickins' anonmm, then Andrea Arcangeli's anon_vma) replaced it
because of what this design costs at fork and exit. The structures are in chains.py:

  one mapping       the page's single PTE pointer sits in struct page (PG_direct), no node
  more mappings     a chain of 64-byte struct pte_chain nodes, 7 PTE pointers each
  the pointer       leads to the mm and the address through the page-table page's own
                    struct page (pgtable_add_rmap() stored mm and base address there;
                    ptep_to_mm(), ptep_to_address()): here ``self.ptp[row] = (mm, base)``

Where the costs fall (every path that installs or removes a present PTE calls rmap_add /
rmap_remove through the shared code's tracks_ptes hooks):

  fault            page_add_rmap: new anonymous pages, page-cache pages, swap-ins, COW copies
                   (the old page loses its entry: page_remove_rmap)
  fork             copy_page_range copies *every* present PTE of every VMA, as 2.5 did (the
                   skip of VMAs without anonymous pages came with 2.6.14, Nick Piggin, 2005;
                   option fork_copy_all=0 gives it), and page_add_rmap adds an entry per PTE:
                   a page mapped once turns its PG_direct pointer into a two-entry chain node
  exit, munmap     page_remove_rmap per PTE: a search of the chain from its head, slot by
                   slot (chain_search_steps); nothing collapses back to PG_direct
  mremap           PTEs move one by one (move_one_page: remove + add); no whole-table move
  reclaim          page_referenced / try_to_unmap walk the chain: one rmap step per entry,
                   each entry names its PTE directly (no VMA to search, no address to
                   compute); page_referenced collapses a single-entry chain to PG_direct

Semantics are Linux's (shared code). The VMA merge rules of the shared layer ask the design
whether two VMAs' anonymous pages are compatible; 2.5 had no anon_vma and merged anonymous
VMAs on flags and offset alone, but vmlab keeps Linux 6.x's anon_vma objects as merge tags so
that every design shows the same /proc/PID/maps. The reverse map never reads them, and they
are not counted in metadata() (docs/designs/ptechains.md).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...hw import pte as P
from ...hw.pagetable import PMD_MASK
from ..base import Mapping
from ..linux import LinuxDesign
from .chains import EMPTY, NRPTE, PTE_CHAIN_BYTES, PteChains

_I64 = np.int64


class PteChainsDesign(LinuxDesign):
    name = "ptechains"
    description = "Linux 2.5-2.6.5 rmap (van Riel): every mapped page carries a chain of PTE pointers"

    OPTIONS = {"fork_copy_all": (True, "fork copies every present PTE, as copy_page_range did "
                                       "before 2.6.14; 0 skips VMAs with no anonymous pages "
                                       "(Linux 6.x's vma_needs_copy)")}
    tracks_ptes = True

    def __init__(self, system, **options):
        super().__init__(system, **options)
        self.chains = PteChains(self.frames.nframes, self.stats)
        # the page-table page's struct page: ->mapping (the mm) and ->index (the base address)
        self.ptp: dict[int, tuple[object, int]] = {}
        self._walking = -1                 # try_to_unmap's page: its removals wait for the walk
        self._walked: list[int] = []

    # --- pte pointers ------------------------------------------------------------------------------
    def _pteps(self, mm, addrs: np.ndarray) -> np.ndarray:
        """ptep_to_paddr() for PTEs of ``mm`` at ``addrs``: the table of each 2 MiB range is
        found once, and its record (pgtable_add_rmap) kept up to date."""
        a = np.asarray(addrs, _I64)
        key = a >> 21
        if len(a) > 1 and (key[1:] < key[:-1]).any():
            uniq, inv = np.unique(key, return_inverse=True)
        else:
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(a) > 1 else np.zeros(1, np.intp)
            uniq = key[starts]
            inv = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(a)]))
        rows = np.empty(len(uniq), _I64)
        rec = mm.design_state
        if rec is None:
            rec = mm.design_state = set()
        for j, k in enumerate(uniq.tolist()):
            base = k << 21
            row = self.pt.lookup_leaf(mm.pgd, base)
            if row < 0:
                raise AssertionError(f"ptechains: no page table at {base:#x} for a PTE being tracked")
            rows[j] = row
            self.ptp[row] = (mm, base)
            rec.add(row)
        return rows[inv] * 512 + ((a >> 12) & 511)

    def _ptep_info(self, ptep: int) -> tuple[object, int, int, int]:
        """ptep_to_mm() and ptep_to_address(): (mm, addr, row, slot) of a pte pointer."""
        row, slot = ptep >> 9, ptep & 511
        mm, base = self.ptp[row]
        return mm, base + (slot << 12), row, slot

    # --- the hooks of the shared page-level code ----------------------------------------------------
    def rmap_add(self, mm, vma, addrs, pfns) -> None:
        if len(pfns):
            self.chains.add(pfns, self._pteps(mm, addrs))

    def rmap_remove(self, mm, vma, addrs, pfns) -> None:
        if not len(pfns):
            return
        pteps = self._pteps(mm, addrs)
        if self._walking >= 0 and len(pfns) == 1 and int(pfns[0]) == self._walking:
            self._walked.append(int(pteps[0]))        # try_to_unmap removes it in place
            return
        self.chains.remove(pfns, pteps)

    def mm_exit(self, mm) -> None:
        for row in mm.design_state or ():
            if self.ptp.get(row, (None,))[0] is mm:
                del self.ptp[row]
        mm.design_state = None
        super().mm_exit(mm)

    # --- fork and mremap as 2.5 did them -------------------------------------------------------------
    def _vma_needs_copy(self, dst, src) -> bool:
        """2.5's copy_page_range() copied every VMA's PTEs; with fork_copy_all=0, Linux 6.x's rule."""
        return bool(self.options["fork_copy_all"]) or super()._vma_needs_copy(dst, src)

    def _move_normal_pmd(self, mm, old: int, new: int) -> bool:
        """2.5's move_page_tables() moved PTEs one at a time (move_one_page), each a
        page_remove_rmap + page_add_rmap; no whole-table move."""
        return False

    # --- reverse map and reclaim ------------------------------------------------------------------------
    def _entries(self, pfn: int) -> Iterator[tuple[object, object, int, int, int]]:
        """Walk the page's chain: (mm, vma or None, addr, row, slot) per entry, a step each."""
        for ptep in self.chains.entries(pfn):
            self.stats.add("rmap_steps")
            mm, addr, row, slot = self._ptep_info(ptep)
            yield mm, mm.vmas.lookup(addr), addr, row, slot

    def rmap_walk(self, pfn: int) -> Iterator[Mapping]:
        for mm, vma, addr, _row, _slot in list(self._entries(pfn)):
            if vma is not None:
                yield Mapping(mm, vma, addr)

    def page_referenced(self, pfn: int) -> tuple[int, int]:
        """page_referenced(): test and clear the young bit of every PTE on the chain, then
        collapse a single-entry chain back to PG_direct. The VMA flags (VM_LOCKED, VM_EXEC)
        that vmlab's shared reclaim asks for come from a find_vma per entry."""
        young = 0
        vm_flags = 0
        rows = self.pt.rows
        for _mm, vma, _addr, row, slot in self._entries(pfn):
            if vma is not None:
                vm_flags |= vma.vm_flags
            e = int(rows[row, slot])
            if e & P.ACCESSED:
                rows[row, slot] = e & ~P.ACCESSED
                young += 1
        self.chains.collapse_single(pfn)
        return young, vm_flags

    def try_to_unmap(self, pfn: int) -> bool:
        """try_to_unmap(): try_to_unmap_one() for every entry of the chain, removing each
        unmapped entry in place (no search: the walk is standing on it). A VM_LOCKED VMA, or
        no VMA at the address (mid-mremap), fails the unmap."""
        walked = list(self._entries(pfn))
        self._walking, self._walked = pfn, []
        ok = True
        try:
            for mm, vma, addr, row, slot in walked:
                if vma is None or not self.unmap_one(mm, vma, row, slot, pfn, addr):
                    ok = False
                    break
        finally:
            self._walking = -1
            if self._walked:
                n = len(self._walked)
                self.chains.remove(np.full(n, pfn, np.intp), np.array(self._walked, _I64),
                                   count_search=False)
            self._walked = []
        return ok and int(self.frames.mapcount[pfn]) == 0

    # --- costs and self-check ------------------------------------------------------------------------------
    def metadata(self) -> dict[str, int]:
        """struct pte_chain nodes in use, 64 bytes each (slab objsize = one cache line).
        PG_direct pointers live in struct page and cost nothing extra."""
        return {"pte_chain": self.chains.nodes * PTE_CHAIN_BYTES}

    def check(self, mms: list) -> list[str]:
        """Every present PTE of every live mm (zero page excepted) is on its page's chain
        exactly once, and nothing else is; chains keep the list policy; each table's record
        names the mm and 2 MiB range it maps. Plus the anon_vma merge tags' own invariants."""
        out = super().check(mms)
        pt = self.pt
        want_pfn, want_ptep = [], []
        for mm in mms:
            for vma in mm.vmas:
                for row, lo, a, slots, pfn in pt.mapped_pages(mm.pgd, vma.vm_start, vma.vm_end):
                    rec = self.ptp.get(row)
                    if rec is None or rec[0] is not mm or rec[1] != a & PMD_MASK:
                        out.append(f"ptechains: table row {row} at {a:#x} has record "
                                   f"{None if rec is None else (id(rec[0]) == id(mm), hex(rec[1]))}")
                    want_pfn.append(pfn.astype(_I64))
                    want_ptep.append(row * 512 + lo + slots.astype(_I64))
        have_pfn, have_ptep, problems = self.chains.all_entries()
        out += problems
        wp = np.concatenate(want_pfn) if want_pfn else np.empty(0, _I64)
        wt = np.concatenate(want_ptep) if want_ptep else np.empty(0, _I64)
        want = np.sort((wp << 32) | wt)
        have = np.sort((have_pfn << 32) | have_ptep)
        if len(np.unique(have)) != len(have):
            dup = have[np.flatnonzero(have[1:] == have[:-1])]
            out.append(f"ptechains: {len(dup)} entries are on a chain twice, e.g. pfn "
                       f"{int(dup[0] >> 32)} pte {int(dup[0] & 0xFFFFFFFF)}")
        for k in np.setdiff1d(want, have)[:5].tolist():
            out.append(f"ptechains: pfn {k >> 32} is mapped by pte {k & 0xFFFFFFFF} "
                       f"(row {(k & 0xFFFFFFFF) >> 9}) but not on its chain")
        for k in np.setdiff1d(have, want)[:5].tolist():
            out.append(f"ptechains: pfn {k >> 32}'s chain holds pte {k & 0xFFFFFFFF} "
                       f"(row {(k & 0xFFFFFFFF) >> 9}), which does not map it")
        return out


__all__ = ["PteChainsDesign", "NRPTE", "PTE_CHAIN_BYTES", "EMPTY"]
