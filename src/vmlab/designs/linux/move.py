"""mremap's PTE side: move_page_tables() (mm/mremap.c).

The pages do not change: an anonymous page keeps its anon_vma and index because the moved
VMA keeps its vm_pgoff (the point the third seed makes about mremap: "we cannot afford to change
the offset we are using to label the page"). Only the PTEs move to the new addresses, keeping
their accessed/dirty bits (move_soft_dirty_pte() also sets soft-dirty when that is tracked).

When both addresses are PMD-aligned and a whole 2 MiB extent moves, Linux moves the PTE table
itself (move_normal_pmd) instead of its entries; the table count is unchanged. Otherwise new
tables are allocated at the destination and the old ones are freed later by the unmap of the
old range (free_pgtables), which is what VmPTE shows.
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import ZERO_PFN
from ...hw.pagetable import PMD_SIZE, PMD_SHIFT

_U64 = np.uint64


class Move:
    """Mixin of LinuxDesign."""

    def move_ptes(self, mm, old_vma, old_start: int, new_vma, new_start: int, length: int) -> None:
        pt = self.pt
        sd = _U64(P.SOFT_DIRTY) if self.sys.config.soft_dirty else _U64(0)
        done = 0
        while done < length:
            old = old_start + done
            new = new_start + done
            extent = min(length - done, PMD_SIZE - (old & (PMD_SIZE - 1)),
                         PMD_SIZE - (new & (PMD_SIZE - 1)))
            if (extent == PMD_SIZE and not old & (PMD_SIZE - 1) and not new & (PMD_SIZE - 1)
                    and self._move_normal_pmd(mm, old, new)):
                done += extent
                continue
            src = pt.lookup_leaf(mm.pgd, old)
            if src >= 0:
                lo = (old >> 12) & 511
                vals = pt.rows[src, lo:lo + (extent >> 12)].copy()
                if vals.any():
                    dst = pt.leaf_for(mm.pgd, new, acct=mm)
                    # the allocation may have grown the pool: index rows again
                    nlo = (new >> 12) & 511
                    present = P.np_present(vals)
                    if self.tracks_ptes:
                        self._move_rmap(mm, old_vma, old, new_vma, new, vals, present)
                    vals[present] |= sd
                    pt.rows[src, lo:lo + (extent >> 12)] = 0
                    pt.rows[dst, nlo:nlo + (extent >> 12)] = vals
            done += extent

    def _move_rmap(self, mm, old_vma, old: int, new_vma, new: int, vals, present) -> None:
        """For a design that tracks PTEs: each present PTE of the extent leaves ``old`` and
        arrives at ``new`` (2.5's copy_one_pte: page_remove_rmap, then page_add_rmap)."""
        pfn = P.np_pfn(vals[present])
        keep = pfn != ZERO_PFN
        off = np.flatnonzero(present).astype(np.int64)[keep] << 12
        self.rmap_remove(mm, old_vma, old + off, pfn[keep])
        self.rmap_add(mm, new_vma, new + off, pfn[keep])

    def _move_normal_pmd(self, mm, old: int, new: int) -> bool:
        """move_normal_pmd(): hand the whole PTE table over to the new PMD entry."""
        pt = self.pt
        src_pmd, _ = pt._pmd_table(mm.pgd, old, False, None)
        if src_pmd < 0:
            return True                        # nothing mapped in this extent
        i_old = (old >> PMD_SHIFT) & 511
        entry = int(pt.rows[src_pmd, i_old])
        if not entry:
            return True
        dst_pmd, _ = pt._pmd_table(mm.pgd, new, True, mm)
        i_new = (new >> PMD_SHIFT) & 511
        if pt.rows[dst_pmd, i_new] != 0:
            return False                       # WARN_ON_ONCE(!pmd_none(*new_pmd)) in Linux
        src_pmd, _ = pt._pmd_table(mm.pgd, old, False, None)
        if self.sys.config.soft_dirty:
            row = pt.entry_row(entry)
            vals = pt.rows[row]
            present = P.np_present(vals)
            vals[present] |= _U64(P.SOFT_DIRTY)
            pt.rows[row] = vals
        pt.rows[src_pmd, i_old] = 0
        pt.rows[dst_pmd, i_new] = entry
        return True
