"""The sorted set of an address space's VMAs (Linux keeps them in a maple tree).

Models the lookups of mm/mmap.c and include/linux/mm.h that everything else uses:
find_vma() (first VMA ending above an address), find_vma_intersection(), vma_prev/next,
and the gap search of mm/mmap.c:unmapped_area_topdown() used for top-down placement.

Representation: a Python list of VMAs sorted by vm_start plus a parallel list of starts for
bisect. A process has tens to a few thousand VMAs (max_map_count defaults to 65530), so
O(n) insertion is cheaper here than any tree in Python.

Invariant (checked by check()): sorted, non-overlapping, every VMA non-empty and page aligned.
Whether neighbours *should* have merged is a question for kernel/vma_merge.py, also checked.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterator

from .vma import VMA


class VMATree:
    def __init__(self) -> None:
        self._vmas: list[VMA] = []
        self._starts: list[int] = []

    def __len__(self) -> int:
        return len(self._vmas)

    def __iter__(self) -> Iterator[VMA]:
        return iter(list(self._vmas))

    def as_list(self) -> list[VMA]:
        return list(self._vmas)

    # --- lookups -------------------------------------------------------------------------------
    def find(self, addr: int) -> VMA | None:
        """find_vma(): the first VMA with vm_end > addr (it may start above addr)."""
        i = bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].vm_end > addr:
            return self._vmas[i]
        i += 1
        return self._vmas[i] if i < len(self._vmas) else None

    def lookup(self, addr: int) -> VMA | None:
        """vma_lookup(): the VMA containing addr, or None."""
        i = bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].vm_end > addr:
            return self._vmas[i]
        return None

    def intersecting(self, start: int, end: int) -> list[VMA]:
        """Every VMA meeting [start, end), in address order."""
        i = max(bisect_right(self._starts, start) - 1, 0)
        out = []
        while i < len(self._vmas) and self._vmas[i].vm_start < end:
            v = self._vmas[i]
            if v.vm_end > start:
                out.append(v)
            i += 1
        return out

    def find_intersection(self, start: int, end: int) -> VMA | None:
        """find_vma_intersection()."""
        v = self.find(start)
        return v if v is not None and v.vm_start < end else None

    def prev(self, vma: VMA) -> VMA | None:
        i = self._index(vma)
        return self._vmas[i - 1] if i > 0 else None

    def next(self, vma: VMA) -> VMA | None:
        i = self._index(vma)
        return self._vmas[i + 1] if i + 1 < len(self._vmas) else None

    def prev_of(self, addr: int) -> VMA | None:
        """The last VMA with vm_start < addr (find_vma_prev's prev when addr is in a gap)."""
        i = bisect_left(self._starts, addr) - 1
        return self._vmas[i] if i >= 0 else None

    def next_of(self, addr: int) -> VMA | None:
        """The first VMA with vm_start >= addr."""
        i = bisect_left(self._starts, addr)
        return self._vmas[i] if i < len(self._vmas) else None

    def _index(self, vma: VMA) -> int:
        i = bisect_left(self._starts, vma.vm_start)
        assert i < len(self._vmas) and self._vmas[i] is vma, "VMATree: VMA not in tree"
        return i

    # --- updates (callers keep the tree consistent: no overlaps) -----------------------------
    def insert(self, vma: VMA) -> None:
        i = bisect_left(self._starts, vma.vm_start)
        assert i == len(self._vmas) or self._vmas[i].vm_start >= vma.vm_end, \
            f"VMATree.insert: {vma.vm_start:#x}-{vma.vm_end:#x} overlaps the next VMA"
        assert i == 0 or self._vmas[i - 1].vm_end <= vma.vm_start, \
            f"VMATree.insert: {vma.vm_start:#x}-{vma.vm_end:#x} overlaps the previous VMA"
        self._vmas.insert(i, vma)
        self._starts.insert(i, vma.vm_start)

    def remove(self, vma: VMA) -> None:
        i = self._index(vma)
        del self._vmas[i]
        del self._starts[i]

    def reindex(self) -> None:
        """Re-sort after a VMA's vm_start changed in place (adjusting bounds during merges)."""
        self._vmas.sort(key=lambda v: v.vm_start)
        self._starts = [v.vm_start for v in self._vmas]

    # --- gap search (mm/mmap.c: unmapped_area_topdown / unmapped_area) ------------------------
    def gaps_topdown(self, low: int, high: int) -> Iterator[tuple[int, int, VMA | None, VMA | None]]:
        """Free gaps [gap_start, gap_end) inside [low, high), highest first, with the VMAs
        just below and above each gap (for stack-guard-gap adjustments)."""
        vmas = self._vmas
        i = bisect_left(self._starts, high)
        above = vmas[i] if i < len(vmas) else None
        gap_end = high
        while True:
            below = vmas[i - 1] if i > 0 else None
            gap_start = below.vm_end if below is not None else 0
            if below is not None and below.vm_end > gap_end:
                gap_start = gap_end        # below straddles high: no gap here
            lo = max(gap_start, low)
            if gap_end > lo:
                yield lo, gap_end, below, above
            if below is None or below.vm_start <= low:
                return
            above = below
            gap_end = below.vm_start
            i -= 1

    def gaps_bottomup(self, low: int, high: int) -> Iterator[tuple[int, int, VMA | None, VMA | None]]:
        vmas = self._vmas
        i = bisect_right(self._starts, low) - 1
        below = vmas[i] if i >= 0 else None
        gap_start = max(low, below.vm_end) if below is not None else low
        i += 1
        while True:
            above = vmas[i] if i < len(vmas) else None
            gap_end = min(above.vm_start, high) if above is not None else high
            if gap_end > gap_start:
                yield gap_start, gap_end, below, above
            if above is None or above.vm_end >= high:
                return
            below = above
            gap_start = above.vm_end
            i += 1

    def check(self) -> list[str]:
        out = []
        prev = None
        for v in self._vmas:
            if v.vm_start >= v.vm_end:
                out.append(f"vma tree: empty VMA at {v.vm_start:#x}")
            if (v.vm_start | v.vm_end) & 0xFFF:
                out.append(f"vma tree: unaligned VMA {v.vm_start:#x}-{v.vm_end:#x}")
            if prev is not None and prev.vm_end > v.vm_start:
                out.append(f"vma tree: {prev.vm_start:#x}-{prev.vm_end:#x} overlaps {v.vm_start:#x}-{v.vm_end:#x}")
            prev = v
        if self._starts != [v.vm_start for v in self._vmas]:
            out.append("vma tree: start index out of date")
        return out
