"""The reverse map walk and its self-check (mm/rmap.c: rmap_walk_anon, rmap_walk_file).

rmap_walk_anon(): from the page's anon_vma (frames.mapping) visit every AVC in its interval
tree whose VMA covers the page's index; the address is vma_address(vma, index). The walk
finds *possible* mappings; callers check the PTE (page_vma_mapped_walk). rmap_walk_file():
the same over the object's i_mmap.

check() verifies the property reclaim depends on: every present PTE mapping an anonymous page
sits in a VMA linked (through its anon_vma_chain) to the page's anon_vma, at exactly
vma_address(vma, page->index). That is "rmap finds every PTE", without walking per page.
It also recounts the anon_vma bookkeeping (num_active_vmas, AVC symmetry): check_anon_vmas(),
which anonmm and vmscan22 (anon_vmas as merge tags only, pages recording something else) run alone.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...hw.frames import PG_anon
from ..base import Mapping

_U32 = np.uint32


class Rmap:
    """Mixin of LinuxDesign."""

    def rmap_walk(self, pfn: int) -> Iterator[Mapping]:
        f = self.frames
        owner = f.owners.get(int(f.mapping[pfn]))
        index = int(f.index[pfn])
        if f.flags[pfn] & PG_anon:
            avcs = list(owner.avcs)
            vmas = [avc.vma for avc in avcs]
        else:
            vmas = list(owner.i_mmap)
        for vma in vmas:
            self.stats.add("rmap_steps")
            if vma.vm_pgoff <= index < vma.vm_pgoff + vma.pages():
                yield Mapping(vma.vm_mm, vma, vma.addr_of_index(index))

    def check(self, mms: list) -> list[str]:
        """The anon_vma bookkeeping (check_anon_vmas), and every present anonymous PTE
        reachable from its page's anon_vma at vma_address(vma, page->index)."""
        out = self.check_anon_vmas(mms)
        f = self.frames
        for mm in mms:
            for vma in mm.vmas:
                ids = np.array([avc.anon_vma.id for avc in vma.anon_vma_chain], np.int64)
                for _row, _lo, a, slots, pfn in self.pt.mapped_pages(mm.pgd, vma.vm_start, vma.vm_end):
                    anon = (f.flags[pfn] & _U32(PG_anon)) != 0
                    if not anon.any():
                        continue
                    slots, pfn = slots[anon], pfn[anon]
                    addr = a + (slots.astype(np.int64) << 12)
                    want_index = vma.vm_pgoff + ((addr - vma.vm_start) >> 12)
                    bad_idx = f.index[pfn] != want_index
                    bad_av = ~np.isin(f.mapping[pfn], ids)
                    for k in np.flatnonzero(bad_idx | bad_av)[:5].tolist():
                        out.append(f"rmap: anon pfn {int(pfn[k])} at {int(addr[k]):#x} is not reachable "
                                   f"(index {int(f.index[pfn[k]])} want {int(want_index[k])}, anon_vma "
                                   f"{int(f.mapping[pfn[k]])} not in chain {ids.tolist()})")
        return out

    def check_anon_vmas(self, mms: list) -> list[str]:
        """The anon_vma objects' own invariants, whatever anonymous pages record: each VMA's
        anon_vma is live and on its own chain, AVCs are linked both ways, num_active_vmas
        recounts. anonmm and vmscan22, which keep anon_vmas only as merge tags and whose
        anonymous pages do not record one, run this part alone."""
        out: list[str] = []
        active: dict[int, int] = {}
        for mm in mms:
            for vma in mm.vmas:
                if vma.anon_vma is not None:
                    active[vma.anon_vma.id] = active.get(vma.anon_vma.id, 0) + 1
                    if vma.anon_vma.id not in self.avs.live:
                        out.append(f"rmap: VMA {vma.vm_start:#x} points at a freed anon_vma")
                    if not any(avc.anon_vma is vma.anon_vma for avc in vma.anon_vma_chain):
                        out.append(f"rmap: VMA {vma.vm_start:#x} is not on its own anon_vma's chain")
                for avc in vma.anon_vma_chain:
                    if avc.vma is not vma or avc not in avc.anon_vma.avcs:
                        out.append(f"rmap: broken anon_vma_chain entry on VMA {vma.vm_start:#x}")
        for av in self.avs.live.values():
            if active.get(av.id, 0) != av.num_active_vmas:
                out.append(f"rmap: anon_vma {av.id} num_active_vmas {av.num_active_vmas} "
                           f"but {active.get(av.id, 0)} VMAs use it")
            for avc in av.avcs:
                if avc not in avc.vma.anon_vma_chain:
                    out.append(f"rmap: anon_vma {av.id} has an AVC its VMA does not")
        return out
