"""The `linux` design: Linux 6.x anonymous memory, the reference every other design is held to.

  reverse map     anon_vma + anon_vma_chain (anon_vma.py, rmap.py)
  private faults  zero page on read, exclusive-page reuse, COW copy (fault_anon.py)
  file-backed     shmem, tmpfs and disk files: fault-around, read-around, write-notify,
                  do_cow_fault for private file mappings (fault_file.py)
  fork            anon_vma_fork + copy_page_range only where an anon_vma exists (fork.py)
  teardown        zap_pte_range (zap.py); mprotect (protect.py); mremap (move.py)

Each concern is a mixin in its own module, named after the kernel function it models.
"""

from __future__ import annotations

import numpy as np

from ..base import Design
from ..madvops import MadviseOps
from ..pageops import PageOps
from .anon_vma import AnonVMAs
from .fault_anon import AnonFaults
from .fault_file import FileFaults
from .fork import Fork
from .move import Move
from .protect import Protect
from .rmap import Rmap
from .swap import SwapPaths
from ..reclaimops import ReclaimOps
from .zap import Zap


def _had_uncowed_parents(vma) -> bool:
    """vma_had_uncowed_parents(): the VMA's anon_vma has a chain longer than one."""
    return vma is not None and vma.anon_vma is not None and len(vma.anon_vma_chain) != 1


class LinuxDesign(SwapPaths, AnonFaults, FileFaults, Zap, Fork, Protect, Move, Rmap, ReclaimOps,
                  MadviseOps, PageOps, Design):
    name = "linux"
    description = "Linux 6.x: anon_vma/anon_vma_chain rmap, zero page, exclusive reuse, shmem"

    OPTIONS = {"anon_vma_reuse": (True, "anon_vma_fork() may reuse an anon_vma with no active "
                                        "VMAs and fewer than two children (the 2015 fix); "
                                        "0 gives the 2.6.34-3.18 behaviour")}

    def __init__(self, system, **options):
        super().__init__(system, **options)
        self.avs = AnonVMAs(system.frames.owners, reuse=self.options.get("anon_vma_reuse", True))

    # --- the anonymous reverse map, as the page-level code sees it -------------------------------
    def vma_has_anon(self, vma) -> bool:
        """vma->anon_vma != NULL: the VMA has (had) anonymous pages."""
        return vma.anon_vma is not None

    def anon_prepare(self, vma) -> int:
        """anon_vma_prepare(); the owner id a new exclusive anon page of the VMA records."""
        return self.avs.prepare(vma).id

    def anon_owner_shared(self, vma) -> int:
        """The owner for a page that is not exclusive to this VMA: the root anon_vma."""
        return self.avs.prepare(vma).root.id

    def anon_reuse(self, vma, pfns) -> None:
        """folio_move_anon_rmap(): a page reused by a write now belongs to this VMA's anon_vma."""
        self.frames.mapping[pfns] = self.avs.prepare(vma).id

    def anon_fork(self, child_vma, parent_vma) -> None:
        """anon_vma_fork(); with parent_vma None (VM_WIPEONFORK) the child starts empty."""
        if parent_vma is None:
            child_vma.anon_vma = None
            child_vma.anon_vma_chain = []
        else:
            self.avs.fork(child_vma, parent_vma)

    # --- VMA lifecycle (mm/vma.c calls into mm/rmap.c) ------------------------------------------
    def vma_split(self, vma, new) -> None:
        """__split_vma(): vm_area_dup copied anon_vma; anon_vma_clone links the chain."""
        new.anon_vma = vma.anon_vma
        new.anon_vma_chain = []
        if vma.anon_vma is not None or vma.anon_vma_chain:
            self.avs.clone(new, vma)

    def anon_mergeable(self, tgt, src, copied_from) -> bool:
        """is_mergeable_anon_vma() (mm/vma.c, 6.13+): may a range whose pages belong to
        ``src`` (the VMA being modified; None for a new range, whose anon_vma then comes from
        ``copied_from`` in mremap) join ``tgt``?

        Merging must not leave a fork child's VMA, linked to its parents' anon_vmas
        ("uncowed parents", a chain longer than one), sharing an anon_vma with another VMA:
        that is what made anon_vma chains grow without bound.
        """
        tgt_anon = tgt.anon_vma
        holder = src if src is not None else copied_from
        src_anon = holder.anon_vma if holder is not None else None
        if tgt_anon is None and src_anon is not None:
            return not _had_uncowed_parents(src) and not _had_uncowed_parents(copied_from)
        if tgt_anon is not None and src_anon is None:
            return not _had_uncowed_parents(tgt)
        return src_anon is tgt_anon

    def anon_state_compatible(self, a, b) -> bool:
        """can_vma_merge_right(): prev and next must not carry different anon_vmas."""
        return a.anon_vma is None or b.anon_vma is None or a.anon_vma is b.anon_vma

    def vma_dup_anon(self, dst, src) -> None:
        """dup_anon_vma(): dst now maps pages of src; give it src's anon_vma if it has none."""
        if src.anon_vma is not None and dst.anon_vma is None:
            dst.anon_vma = src.anon_vma
            self.avs.clone(dst, src)

    def vma_merge(self, keep, gone: list) -> None:
        """The kept VMA adopts an anon_vma from a removed one if it had none (dup_anon_vma)."""
        if keep.anon_vma is None:
            for g in gone:
                if g.anon_vma is not None:
                    self.vma_dup_anon(keep, g)
                    break
        for g in gone:
            self.avs.unlink(g)

    def vma_close(self, vma) -> None:
        self.avs.unlink(vma)

    # --- faults ------------------------------------------------------------------------------------
    def fault(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        if vma.vm_file is not None:
            # index the object up to the batch's last page (objects grow their arrays on use)
            vma.vm_file.ensure(vma.linear_page_index(base + (int(idx[-1]) << 12)) + 1)
        if vma.vm_file is None:
            self._fault_private(mm, vma, row, idx, base, write)
        elif vma.is_shared():
            self._fault_shared(mm, vma, row, idx, base, write)
        else:
            self._fault_private_file(mm, vma, row, idx, base, write)

    # --- costs ---------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, int]:
        return self.avs.bytes()
