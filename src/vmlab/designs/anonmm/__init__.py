"""The `anonmm` design: one reverse-map anchor per program, shared by every mm forked from it.

This is the "mm_family" Stephen Tweedie proposed in the third seed (linux-mm, March 1998:
"On exec(), create a new mm_family context ... On fork, add the mm_struct to the original
mm_family"), which Hugh Dickins built as anonmm in 2004 (2.6.6-mm, the object-based reverse
map before Andrea Arcangeli's anon_vma won). Everything that is not about the anonymous
reverse map — faults, COW, the zero page, shmem, the swap cache, LRU reclaim — is the `linux`
design's; this package overrides only the anchor:

  anchor          one MMFamily per spawn (exec); fork adds the child mm to the parent's family
                  (mm_init), exit removes it (mm_exit). An anon page's ->mapping is the family,
                  its ->index the page's linear offset in its VMA's pgoff space.
  page->index     for private anonymous memory vm_pgoff is the virtual page number at mmap time
                  and survives mremap, so index is the page's *original* virtual page — the
                  seed's point that "when we remap(), we cannot afford to change the offset we
                  are using to label the page, since other forked children will continue to use
                  the original offset". For COW copies in a private file mapping it is the file
                  offset, as in Linux.
  per VMA         nothing of the design's own: only whether the VMA may hold anonymous pages
                  (vma_has_anon, Linux's "vma->anon_vma != NULL"), which fork's vma_needs_copy
                  and the walk below read.
  rmap walk       for each mm of the family: look the address up directly (one step), then try
                  every VMA of that mm whose pgoff does not match its address (moved by mremap,
                  or a private file mapping: one step each); VMAs that may hold no anonymous
                  page are passed over. Cost grows with the family: a page COWed by one child
                  still makes reclaim visit every mm forked from the same program — the
                  weakness anon_vma was built to fix.

VMA merging: the shared VMA layer asks the design whether two VMAs' anonymous pages are
compatible (is_mergeable_anon_vma). Hugh's anonmm had no anon_vma and merged anonymous VMAs on
flags and offset alone, but vmlab keeps Linux 6.x's anon_vma objects (LinuxDesign's, through
self.avs) as merge tags so that every design shows the same /proc/PID/maps and smaps VmFlags
(mprotect drops VM_ACCOUNT from an anonymous VMA without an anon_vma). Only the VMA-level hooks
use them: an anonymous page records the family, never an anon_vma (anon_prepare,
anon_owner_shared, anon_reuse below); the walk reads only whether a VMA has one (the "may hold
anonymous pages" bit above), never the objects or their chains; metadata() does not count
them, as in ptechains and bsd.

Historical anonmm differences (docs/designs.md): Hugh's anonmm refused to move pages that
were shared with another mm in mremap (it copied them instead); here mremap keeps the original
offset and the walk finds the moved VMA through its pgoff, as the seed describes.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, ZERO_PFN
from ..base import Mapping
from ..linux import LinuxDesign

MM_FAMILY_BYTES = 40        # a list head, a lock and a refcount (2.6-era struct anonmm was 32-40 B)
MM_LINK_BYTES = 16          # the list_head each mm_struct carries to join its family

_U32 = np.uint32


class MMFamily:
    """The anchor: every mm forked from one exec."""

    __slots__ = ("id", "mms")

    def __init__(self, owners) -> None:
        self.id = owners.add(self)       # (c) the value stored in frames.mapping
        self.mms: list = []              # (o) the family's live address spaces

    def __repr__(self) -> str:
        return f"<mm_family {self.id} mms={len(self.mms)}>"


class AnonMMDesign(LinuxDesign):
    name = "anonmm"
    description = "anonmm (Dickins 2004, Tweedie's mm_family): one rmap anchor per exec, walks every forked mm"

    OPTIONS: dict = {}

    def __init__(self, system, **options):
        super().__init__(system, **options)
        self.families: dict[int, MMFamily] = {}

    # --- the family --------------------------------------------------------------------------------
    def mm_init(self, mm, parent_mm) -> None:
        if parent_mm is None:
            fam = MMFamily(self.frames.owners)
            self.families[fam.id] = fam
        else:
            fam = parent_mm.design_state
        fam.mms.append(mm)
        mm.design_state = fam

    def mm_exit(self, mm) -> None:
        fam = mm.design_state
        fam.mms.remove(mm)
        mm.design_state = None
        if not fam.mms:
            # no mm maps a page of the family any more; swap-cache pages that still name it
            # are unmapped, and an rmap walk of an unmapped page finds nothing
            del self.families[fam.id]
            self.frames.owners.remove(fam.id)

    # --- the anchor as the page-level code sees it ---------------------------------------------
    @staticmethod
    def _family(vma) -> MMFamily:
        return vma.vm_mm.design_state

    def anon_prepare(self, vma) -> int:
        """The VMA gets the anon_vma Linux would give it (a merge tag only); a new anonymous
        page records the family."""
        self.avs.prepare(vma)
        return self._family(vma).id

    def anon_owner_shared(self, vma) -> int:
        """A page shared beyond this VMA (swap-in) records the family too: one anchor for all."""
        return self.anon_prepare(vma)

    def anon_reuse(self, vma, pfns) -> None:
        """A page reused in place keeps its family (no folio_move_anon_rmap: the anchor is not
        per VMA)."""

    # --- reverse map ---------------------------------------------------------------------------------
    def rmap_walk(self, pfn: int) -> Iterator[Mapping]:
        f = self.frames
        if not f.flags[pfn] & PG_anon:
            yield from super().rmap_walk(pfn)
            return
        fam = self.families.get(int(f.mapping[pfn]))
        if fam is None:
            return
        index = int(f.index[pfn])
        for mm in list(fam.mms):
            self.stats.add("rmap_steps")                  # find_vma(mm, original address)
            direct = mm.vmas.lookup(index << 12)
            if (direct is not None and self.vma_has_anon(direct)
                    and direct.vm_pgoff <= index < direct.vm_pgoff + direct.pages()):
                yield Mapping(mm, direct, direct.addr_of_index(index))
            for vma in mm.vmas:
                if vma is direct or not self.vma_has_anon(vma) or vma.vm_pgoff == vma.vm_start >> 12:
                    continue
                self.stats.add("rmap_steps")              # a VMA whose offset is not its address
                if vma.vm_pgoff <= index < vma.vm_pgoff + vma.pages():
                    yield Mapping(mm, vma, vma.addr_of_index(index))

    def check(self, mms: list) -> list[str]:
        """Every present anon PTE maps a page of its mm's family at the VMA's linear index,
        from a VMA that has an anon_vma (vma_has_anon, which the walk relies on); family
        membership matches the live mms. Plus the anon_vma merge tags' own invariants."""
        out: list[str] = self.check_anon_vmas(mms)
        f = self.frames
        members = {}
        for fam in self.families.values():
            for mm in fam.mms:
                members[id(mm)] = fam
        for mm in mms:
            fam = members.get(id(mm))
            if fam is None or mm.design_state is not fam:
                out.append(f"anonmm: a live mm is not in its family ({mm.design_state!r})")
                continue
            for vma in mm.vmas:
                rows_, los, his, addrs = self.pt.leaves(mm.pgd, vma.vm_start, vma.vm_end)
                for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
                    vals = self.pt.rows[row, lo:hi]
                    present = P.np_present(vals)
                    if not present.any():
                        continue
                    slots = np.flatnonzero(present)
                    pfn = P.np_pfn(vals[slots])
                    keep = (pfn != ZERO_PFN)
                    slots, pfn = slots[keep], pfn[keep]
                    anon = (f.flags[pfn] & _U32(PG_anon)) != 0
                    if not anon.any():
                        continue
                    if not self.vma_has_anon(vma):
                        out.append(f"anonmm: VMA {vma.vm_start:#x} maps anon pages but has no anon_vma")
                    slots, pfn = slots[anon], pfn[anon]
                    addr = a + (slots.astype(np.int64) << 12)
                    want = vma.vm_pgoff + ((addr - vma.vm_start) >> 12)
                    bad = (f.index[pfn] != want) | (f.mapping[pfn] != fam.id)
                    for k in np.flatnonzero(bad)[:5].tolist():
                        out.append(f"anonmm: anon pfn {int(pfn[k])} at {int(addr[k]):#x} has "
                                   f"family {int(f.mapping[pfn[k]])} index {int(f.index[pfn[k]])}, "
                                   f"want family {fam.id} index {int(want[k])}")
        live = {id(mm) for mm in mms}
        for fam in self.families.values():
            for mm in fam.mms:
                if id(mm) not in live:
                    out.append(f"anonmm: family {fam.id} holds an mm that is gone")
            if not fam.mms:
                out.append(f"anonmm: family {fam.id} is empty but still registered")
        return out

    def metadata(self) -> dict[str, int]:
        """The families and each mm's link; the anon_vma merge tags are not the design's."""
        nmm = sum(len(fam.mms) for fam in self.families.values())
        return {"mm_family": len(self.families) * MM_FAMILY_BYTES, "mm_family_links": nmm * MM_LINK_BYTES}
