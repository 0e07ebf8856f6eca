"""mprotect's PTE side: change_protection() -> change_pte_range() (mm/mprotect.c).

Present PTEs get pte_modify(pte, vma->vm_page_prot): the protection bits (present, RW, user,
PROTNONE, NX) come from the VMA's new protection while _PAGE_CHG_MASK bits — pfn, accessed,
dirty, soft-dirty, special — are kept. Swap PTEs are left alone.

Write upgrade (MM_CP_TRY_CHANGE_WRITABLE): a private VMA's protection never includes RW (the
first write must be able to COW), but a page this process owns exclusively would be reused by
that write fault anyway, so can_change_pte_writable() makes such PTEs writable right away:
private VMA with VM_WRITE, PTE not PROT_NONE, page anonymous and PageAnonExclusive (and, with
soft-dirty tracking, the PTE already soft-dirty). Shared mappings without write-notify (shmem)
get RW straight from their protection.
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, PG_anon_exclusive, ZERO_PFN
from ...mm.vmflags import VM_SHARED, VM_SOFTDIRTY, VM_WRITE

_U32 = np.uint32
_U64 = np.uint64
# _PAGE_CHG_MASK: what pte_modify() keeps
CHG_MASK = P.PFN_MASK | P.PCD | P.PWT | P.SPECIAL | P.ACCESSED | P.DIRTY | P.SOFT_DIRTY | P.PSE
NP_CHG_MASK = _U64(CHG_MASK)


class Protect:
    """Mixin of LinuxDesign."""

    def change_protection(self, mm, vma, start: int, end: int) -> None:
        newprot = _U64(vma.vm_page_prot & ~CHG_MASK)
        try_writable = not (vma.vm_flags & VM_SHARED) and bool(vma.vm_flags & VM_WRITE)
        need_sd = self.sys.config.soft_dirty and not (vma.vm_flags & VM_SOFTDIRTY)
        rows_, los, his, _ = self.pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = self.pt.rows[row, lo:hi]
            present = P.np_present(vals)
            if not present.any():
                continue
            pv = vals[present]
            nv = (pv & NP_CHG_MASK) | newprot
            if try_writable:
                pfn = P.np_pfn(nv)
                fl = self.frames.flags[pfn]
                ok = ((nv & P.NP_RW) == 0) & ((nv & P.NP_PROTNONE) == 0) & (pfn != ZERO_PFN)
                ok &= (fl & _U32(PG_anon)) != 0
                ok &= (fl & _U32(PG_anon_exclusive)) != 0
                if need_sd:
                    ok &= (nv & P.NP_SOFT_DIRTY) != 0
                nv[ok] |= P.NP_RW
            vals[present] = nv
            self.pt.rows[row, lo:hi] = vals
