"""Map entries: the object bindings inside a VMA (FreeBSD sys/vm/vm_map.c, struct vm_map_entry).

In FreeBSD a map entry maps one address range to one object (or none yet) at an offset, with
MAP_ENTRY_NEEDS_COPY when the object is shared copy-on-write after fork. vmlab's VMAs follow
Linux's merge rules (they decide what /proc/PID/maps shows, which every design must agree on),
so one Linux VMA can span several FreeBSD entries: a VMA's ``design_state`` is the sorted list
of its private ``Entry``s, each a range of the VMA's page offsets [lo, hi) bound to an object
with a needs-copy flag. A range of a private VMA that no entry covers is an entry whose
object is not allocated yet (vm_map_lookup allocates it at the first fault, read or write):
for anonymous memory that is fresh zero memory, for a private file mapping it is the vnode
object itself, copy-on-write. Shared mappings (shmem, SysV shm, shared files) have no entries:
their object is the VMA's file, as in Linux.

What the shared VMA layer does, and what it means here:

  split (vm_map_clip_start/end)   entries crossing the cut are cloned; both halves reference
                                  the object (vm_object_reference)
  merge (vm_map_try_merge_entries) the entries of both VMAs are kept side by side; neighbours
                                  bound to the same object and flag become one entry
  mremap move                     the moved range's entries move to the new VMA with the PTEs
  munmap / exit (vm_map_delete)   entries of the range are deleted (vm_map_entry_delete): a
                                  one-mapping object frees the range's pages at once, and
                                  every entry drops its object reference (vm_object_deallocate,
                                  which collapses chains as siblings go away)
  MADV_DONTNEED and friends       Linux semantics: the range must read zeros (or the file). A
                                  private top object frees its pages there and, if it shadows
                                  another object, keeps zero markers; a needs-copy or unbacked
                                  range becomes a fresh entry (a new object at the next fault)
"""

from __future__ import annotations

from .objects import VMObject


class Entry:
    """struct vm_map_entry's object binding: pages [lo, hi) of the VMA's offset space."""

    __slots__ = ("lo", "hi", "obj", "nc")

    def __init__(self, lo: int, hi: int, obj: VMObject | None, nc: bool = False):
        assert lo < hi, f"Entry: empty range {lo:#x}-{hi:#x}"
        self.lo, self.hi, self.obj, self.nc = lo, hi, obj, nc

    def __repr__(self) -> str:
        o = self.obj.id if self.obj is not None else None
        return f"Entry([{self.lo:#x},{self.hi:#x}) obj={o}{' NEEDS_COPY' if self.nc else ''})"


def vma_pgrange(vma) -> tuple[int, int]:
    return vma.vm_pgoff, vma.vm_pgoff + vma.pages()


class EntryOps:
    """Mixin of BsdDesign: entry bookkeeping. Needs ObjectOps."""

    @staticmethod
    def ents(vma) -> list[Entry]:
        e = vma.design_state
        if e is None:
            e = vma.design_state = []
        return e

    def _clip(self, ents: list[Entry], p: int) -> None:
        """vm_map_clip_start/end at offset p: the entry containing p becomes two."""
        for i, e in enumerate(ents):
            if e.lo < p < e.hi:
                ents.insert(i + 1, Entry(p, e.hi, e.obj, e.nc))
                e.hi = p
                if e.obj is not None:
                    self.obj_reference(e.obj)
                return
            if e.lo >= p:
                return

    def take(self, vma, lo: int, hi: int) -> list[Entry]:
        """Remove and return the entries of [lo, hi) (clipped there), references with them."""
        ents = self.ents(vma)
        if not ents:
            return []
        self._clip(ents, lo)
        self._clip(ents, hi)
        out = [e for e in ents if lo <= e.lo and e.hi <= hi]
        if out:
            vma.design_state = [e for e in ents if not (lo <= e.lo and e.hi <= hi)]
        return out

    def put(self, vma, new: list[Entry]) -> None:
        """Add entries (their references come with them) and merge equal neighbours."""
        if not new:
            return
        ents = sorted(self.ents(vma) + new, key=lambda e: e.lo)
        out: list[Entry] = []
        for e in ents:
            if out and out[-1].hi > e.lo:
                raise AssertionError(f"bsd: overlapping entries {out[-1]!r} and {e!r}")
            if out and out[-1].hi == e.lo and out[-1].obj is e.obj and out[-1].nc == e.nc \
                    and e.obj is not None:
                out[-1].hi = e.hi                     # vm_map_try_merge_entries
                self.obj_deallocate(e.obj)
                continue
            out.append(e)
        vma.design_state = out

    def drop(self, ents: list[Entry]) -> None:
        """vm_map_entry_delete() for entries whose pages are unmapped already."""
        for e in ents:
            o = e.obj
            if o is None:
                continue
            if o.ref_count != 1 and o.onemapping:
                self.obj_collapse(o)
                self.obj_page_remove(o, e.lo, e.hi)
                if e.hi >= o.hi > e.lo:
                    o.hi = max(o.lo, e.lo)
            e.obj = None
            self.obj_deallocate(o)

    def outside(self, vma) -> list[Entry]:
        """The entries (clipped) lying outside the VMA's current offset range, removed."""
        lo, hi = vma_pgrange(vma)
        ents = self.ents(vma)
        if not ents or (ents[0].lo >= lo and ents[-1].hi <= hi):
            return []
        self._clip(ents, lo)
        self._clip(ents, hi)
        out = [e for e in ents if e.hi <= lo or e.lo >= hi]
        vma.design_state = [e for e in ents if not (e.hi <= lo or e.lo >= hi)]
        return out

    def gap_around(self, vma, p: int) -> tuple[int, int]:
        """The range of offsets around p that no entry covers (p must be in one)."""
        lo, hi = vma_pgrange(vma)
        for e in self.ents(vma):
            if e.hi <= p:
                lo = max(lo, e.hi)
            elif e.lo > p:
                hi = min(hi, e.lo)
                break
            else:
                raise AssertionError("gap_around: offset is inside an entry")
        return lo, hi

    def entry_at(self, vma, p: int) -> Entry | None:
        for e in self.ents(vma):
            if e.lo <= p < e.hi:
                return e
            if e.lo > p:
                return None
        return None

    def bind_gap(self, vma, p: int) -> Entry:
        """vm_map_lookup()'s "Create an object if necessary" for the unbacked range around
        offset p: grow a neighbouring entry's object when vm_object_coalesce allows it (the
        range is then part of that entry), else allocate a new object for the whole range."""
        lo, hi = self.gap_around(vma, p)
        ents = self.ents(vma)
        for e in ents:
            if e.obj is not None and not e.nc and (e.hi == lo or e.lo == hi) \
                    and e.obj.hi >= e.hi and e.obj.lo <= e.lo and self.obj_coalesce(e.obj, lo, hi):
                e.lo, e.hi = min(e.lo, lo), max(e.hi, hi)
                return e
        e = Entry(lo, hi, self.obj_allocate(lo, hi), False)
        self.put(vma, [e])
        return self.entry_at(vma, p)
