"""A per-VMA "may hold anonymous pages" flag in place of Linux's per-VMA anon_vma.

Designs whose anonymous reverse map is not per VMA — `anonmm` (one anchor per exec, the
mm_family of seeds/002) and `vmscan22` (no anchor at all, Linux 2.2) — still need what
``vma->anon_vma != NULL`` tells Linux's shared code: whether a VMA has (had) anonymous pages,
which decides whether fork copies its PTEs (vma_needs_copy() in mm/memory.c). That is the one
bit kept here, in ``vma.design_state``. Since there is no per-VMA structure to allocate, link
at fork or keep compatible, VMAs merge whenever pgoff and flags allow
(is_mergeable_anon_vma() always true).

A design mixes this in before LinuxDesign and says what an anonymous page records as its
owner through ``anon_anchor_id(vma)`` (-1: none).
"""

from __future__ import annotations


class AnonFlagAnchor:
    """Mixin: the anonymous-anchor methods of designs/base.py for a design with only a flag."""

    def anon_anchor_id(self, vma) -> int:
        """What a new anonymous page of ``vma`` records in page->mapping; -1 for nothing."""
        return -1

    def vma_has_anon(self, vma) -> bool:
        return bool(vma.design_state)

    def anon_prepare(self, vma) -> int:
        vma.design_state = True
        return self.anon_anchor_id(vma)

    def anon_owner_shared(self, vma) -> int:
        return self.anon_prepare(vma)

    def anon_reuse(self, vma, pfns) -> None:
        """A page reused in place keeps what it records: the anchor is not per VMA."""

    def anon_fork(self, child_vma, parent_vma) -> None:
        child_vma.design_state = bool(parent_vma is not None and parent_vma.design_state)

    def vma_split(self, vma, new) -> None:
        new.design_state = vma.design_state

    def anon_mergeable(self, tgt, src, copied_from) -> bool:
        return True

    def anon_state_compatible(self, a, b) -> bool:
        return True

    def vma_dup_anon(self, dst, src) -> None:
        dst.design_state = bool(dst.design_state or src.design_state)

    def vma_merge(self, keep, gone: list) -> None:
        keep.design_state = bool(keep.design_state or any(g.design_state for g in gone))

    def vma_close(self, vma) -> None:
        vma.design_state = None
