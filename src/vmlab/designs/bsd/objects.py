"""VM objects for anonymous memory and their shadow chains (FreeBSD sys/vm/vm_object.c).

A ``VMObject`` is FreeBSD's ``struct vm_object`` of type OBJT_DEFAULT/OBJT_SWAP: the
"anonymous inode" of the second seed (Hemment, 1997), holding for each page index either a
resident page or a swap block, and optionally backed by another object it shadows (the fifth
seed, Dillon 2000: "COW by stacking a new anonymous-memory VM object in front of the one that
took the COW hit"). Fields, tagged as in vm_object.h ((c) constant, (o) owned here, (d)
derived and recounted by the design's check()):

    id           the page-owner id (frames.mapping of the object's resident pages) (c)
    pg[c]        per 512-index chunk ``c``: int64 array, a pfn (>= 0), NONE (-1: nothing
                 here, look in the backing object) or ZERO (-2: reads as zeros here, the
                 backing object is hidden: see "zero markers" below) (o)
    sw[c]        per chunk: uint64 array of swap entries (the PTE encoding of mm/swapfile),
                 0 none. An index holds a page, a swap block, a zero marker or nothing (o)
    lo, hi       the object's window of indices (FreeBSD's backing_object_offset + size):
                 collapse drops backing pages outside the shadow's window (o)
    backing      the object this one shadows, or None (o)
    shadows      the objects shadowing this one (shadow_head); shadow_count = len (o)
    ref_count    map entries bound to the object + shadows backed by it (o, d)
    onemapping   OBJ_ONEMAPPING: mapped by one (non-forked) mapping, so an unmapped range's
                 pages can be freed at once (vm_map_entry_delete) (o)
    swapped      OBJT_SWAP: the object has had swap blocks; such a backing object is never
                 bypassed (vm_object_backing_scan's OBJT_DEFAULT test) (o)
    resident, nswap   resident_page_count and swap blocks held (d)

Index space. vmlab keeps Linux's vm_pgoff in every VMA; for private anonymous memory it is the
page number at mmap time and survives mremap. Every object of a chain is indexed in that same
space, so backing_object_offset is always 0 and a map entry's offset is its VMA's pgoff
(FreeBSD stores an offset per shadow instead; the pages found are the same).

Zero markers (a vmlab device, not FreeBSD's). Linux semantics are the law: MADV_DONTNEED,
MADV_FREE after reclaim, and the like must make a private page read zeros. FreeBSD's
MADV_DONTNEED keeps the data. When such a range lies in a private top object that shadows
another, vmlab frees the top object's pages there and leaves ZERO: the index then counts as
present in the object (it shadows its backing object, collapse frees what lies below it) and a
fault fills a zeroed page in. A shared (needs-copy) range gets a fresh map entry instead.

Page references: a resident page holds one frame reference for its object (like a page-cache
page), so unmapping it never frees it; it leaves memory when its object frees it (terminate,
an unmapped range of a one-mapping object, collapse of a shadowed page) or when reclaim moves
it to a swap block (the design's reclaim_unmapped()).
"""

from __future__ import annotations

import numpy as np


NONE = -1
ZERO = -2
CHUNK_SHIFT = 9
CHUNK = 1 << CHUNK_SHIFT
_MASK = CHUNK - 1

# sizeof(struct vm_object) on amd64, summed field by field from sys/vm/vm_object.h (FreeBSD
# 13/14, freebsd-src commit e2d3dbe4): rwlock 32, object_list 16, shadow_head 8, shadow_list
# 16, memq 16, rtree 8, size 8, domain 16, generation+cleangeneration 8, ref_count+
# shadow_count 8, memattr+type+flags+pg_color 6 (+2 pad), paging_in_progress+busy 8,
# resident_page_count 4 (+4 pad), backing_object 8, backing_object_offset 8,
# pager_object_list 16, rvq 8, handle 8, un_pager 32 (its largest member, devp), cred 8,
# charge 8, umtx_data 8 = 264 bytes (LP64, no debug fields).
VM_OBJECT_BYTES = 264
# struct swblock of the hashed swap metadata (sys/vm/swap_pager.c, FreeBSD 8, commit
# a097f560): swb_hnext 8, swb_object 8, swb_index 8, swb_count 4 (+4), swb_pages[32] daddr_t
# 256 = 288 bytes for an aligned run of SWAP_META_PAGES = 32 indices.
SWBLOCK_BYTES = 288
SWAP_META_PAGES = 32


class VMObject:
    """struct vm_object of an anonymous (default/swap) object."""

    __slots__ = ("id", "pg", "sw", "lo", "hi", "backing", "shadows", "ref_count", "onemapping",
                 "swapped", "resident", "nswap", "dead", "gen")

    def __init__(self, owners, lo: int, hi: int) -> None:
        self.id = owners.add(self)
        self.pg: dict[int, np.ndarray] = {}
        self.sw: dict[int, np.ndarray] = {}
        self.lo, self.hi = lo, hi
        self.backing: VMObject | None = None
        self.shadows: list[VMObject] = []
        self.ref_count = 1                 # the caller's reference (vm_object_allocate)
        self.onemapping = True             # OBJ_ONEMAPPING on a new default object
        self.swapped = False
        self.resident = 0
        self.nswap = 0
        self.dead = False
        self.gen = 0                       # generation: bumped on every change of contents

    def __repr__(self) -> str:
        b = self.backing.id if self.backing is not None else None
        return (f"<vm_object {self.id} [{self.lo:#x},{self.hi:#x}) ref={self.ref_count} "
                f"shadows={len(self.shadows)} backing={b} pages={self.resident} swap={self.nswap}>")

    @property
    def shadow_count(self) -> int:
        return len(self.shadows)

    def chain(self) -> list["VMObject"]:
        """This object and every object below it."""
        out = []
        o = self
        while o is not None:
            out.append(o)
            o = o.backing
        return out

    # --- per-index state ---------------------------------------------------------------------
    def get(self, pidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pg, sw) values at the indices (NONE / 0 where the object has nothing)."""
        n = len(pidx)
        pg = np.full(n, NONE, np.int64)
        sw = np.zeros(n, np.uint64)
        if not (self.pg or self.sw) or not n:
            return pg, sw
        ch = pidx >> CHUNK_SHIFT
        first, last = int(ch[0]), int(ch[-1])
        if first == last:
            a = self.pg.get(first)
            if a is not None:
                pg[:] = a[pidx & _MASK]
            b = self.sw.get(first)
            if b is not None:
                sw[:] = b[pidx & _MASK]
            return pg, sw
        for c in np.unique(ch).tolist():
            m = ch == c
            a = self.pg.get(c)
            if a is not None:
                pg[m] = a[pidx[m] & _MASK]
            b = self.sw.get(c)
            if b is not None:
                sw[m] = b[pidx[m] & _MASK]
        return pg, sw

    def page_at(self, p: int) -> int:
        a = self.pg.get(p >> CHUNK_SHIFT)
        return NONE if a is None else int(a[p & _MASK])

    def swap_at(self, p: int) -> int:
        b = self.sw.get(p >> CHUNK_SHIFT)
        return 0 if b is None else int(b[p & _MASK])

    def _chunks(self, pidx: np.ndarray, create: bool):
        ch = pidx >> CHUNK_SHIFT
        for c in np.unique(ch).tolist():
            m = ch == c
            yield c, m, pidx[m] & _MASK

    def set_pg(self, pidx: np.ndarray, vals: np.ndarray) -> None:
        """Store pfns / ZERO / NONE at the indices (their swap must already be gone)."""
        vals = np.asarray(vals, np.int64)
        for c, m, off in self._chunks(pidx, True):
            a = self.pg.get(c)
            if a is None:
                if (vals[m] == NONE).all():
                    continue
                a = self.pg[c] = np.full(CHUNK, NONE, np.int64)
            self.resident -= int(np.count_nonzero(a[off] >= 0))
            a[off] = vals[m]
            self.resident += int(np.count_nonzero(vals[m] >= 0))
            if (a == NONE).all():
                del self.pg[c]
        self.gen += 1

    def set_sw(self, pidx: np.ndarray, ents: np.ndarray) -> None:
        """Store swap entries (0: none) at the indices."""
        ents = np.asarray(ents, np.uint64)
        for c, m, off in self._chunks(pidx, True):
            b = self.sw.get(c)
            if b is None:
                if not ents[m].any():
                    continue
                b = self.sw[c] = np.zeros(CHUNK, np.uint64)
            self.nswap -= int(np.count_nonzero(b[off]))
            b[off] = ents[m]
            self.nswap += int(np.count_nonzero(ents[m]))
            if not b.any():
                del self.sw[c]
        if ents.any():
            self.swapped = True
        self.gen += 1

    def items(self, lo: int | None = None, hi: int | None = None):
        """(pindex array, pg array, sw array) of every index holding something, in [lo, hi)."""
        keys = sorted(set(self.pg) | set(self.sw))
        outp, outg, outs = [], [], []
        base = np.arange(CHUNK, dtype=np.int64)
        for c in keys:
            a = self.pg.get(c)
            b = self.sw.get(c)
            g = a if a is not None else np.full(CHUNK, NONE, np.int64)
            s = b if b is not None else np.zeros(CHUNK, np.uint64)
            sel = (g != NONE) | (s != 0)
            idx = base + (c << CHUNK_SHIFT)
            if lo is not None:
                sel &= (idx >= lo) & (idx < hi)
            if sel.any():
                outp.append(idx[sel])
                outg.append(g[sel].copy())
                outs.append(s[sel].copy())
        if not outp:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint64)
        return np.concatenate(outp), np.concatenate(outg), np.concatenate(outs)

    def pfns(self) -> np.ndarray:
        """Every resident page's pfn."""
        parts = [a[a >= 0] for a in self.pg.values()]
        return np.concatenate(parts).astype(np.intp) if parts else np.empty(0, np.intp)

    def swap_entries(self) -> np.ndarray:
        parts = [b[b != 0] for b in self.sw.values()]
        return np.concatenate(parts) if parts else np.empty(0, np.uint64)

    def swblocks(self) -> int:
        """Swap metadata blocks: aligned runs of SWAP_META_PAGES indices holding swap."""
        blocks = set()
        per = CHUNK // SWAP_META_PAGES
        for c, b in self.sw.items():
            nz = (b != 0).reshape(per, SWAP_META_PAGES).any(axis=1)
            for k in np.flatnonzero(nz).tolist():
                blocks.add((c, k))
        return len(blocks)


def chain_lookup(top: VMObject | None, pidx: np.ndarray):
    """The shadow-chain walk of vm_fault (vm_fault_object's "next_object" loop), vectorized.

    Returns (level, obj_of, pg, sw): for each index, the depth of the first object of the chain
    that holds something there (-1: nothing anywhere), that object (None), and its pg / sw
    values there. A ZERO marker stops the walk like a page would.
    """
    n = len(pidx)
    level = np.full(n, -1, np.int64)
    pg = np.full(n, NONE, np.int64)
    sw = np.zeros(n, np.uint64)
    objs: list[VMObject] = []
    todo = np.arange(n)
    o = top
    k = 0
    while o is not None and len(todo):
        objs.append(o)
        g, s = o.get(pidx[todo])
        hit = (g != NONE) | (s != 0)
        if hit.any():
            h = todo[hit]
            level[h] = k
            pg[h] = g[hit]
            sw[h] = s[hit]
            todo = todo[~hit]
        o = o.backing
        k += 1
    return level, objs, pg, sw


# --- the object life cycle (vm_object.c) -------------------------------------------------------
class ObjectOps:
    """Mixin of BsdDesign: the object operations, with stats and the collapse switch.

    Needs self.frames, self.sys, self.stats, self.objects (id -> VMObject), self.collapse_on.
    """

    def obj_allocate(self, lo: int, hi: int) -> VMObject:
        """vm_object_allocate(OBJT_DEFAULT, size)."""
        o = VMObject(self.frames.owners, lo, hi)
        self.objects[o.id] = o
        self.stats.add("objects_created")
        return o

    def obj_reference(self, o: VMObject) -> None:
        """vm_object_reference()."""
        o.ref_count += 1

    def obj_shadow(self, source: VMObject, lo: int, hi: int) -> VMObject:
        """vm_object_shadow(): a new object backed by ``source`` for the window [lo, hi); the
        caller's reference to ``source`` moves into the new object. Returns ``source`` itself
        when it is not shared (ref_count 1: "Don't create the new object if the old object
        isn't shared")."""
        if source.ref_count == 1:
            return source
        s = self.obj_allocate(lo, hi)
        s.backing = source
        source.shadows.append(s)
        source.gen += 1
        # not a counter but a high-water mark: the longest chain a shadow was stacked on
        depth = len(s.chain())
        if depth > self.stats.get("shadow_depth_max", 0):
            self.stats["shadow_depth_max"] = depth
        return s

    def obj_deallocate(self, o: VMObject | None) -> None:
        """vm_object_deallocate(): drop a reference. At 1 with a single anonymous shadow left,
        the object is collapsed into that shadow; at 0 it is terminated and the reference it
        held on its backing object is dropped in turn."""
        while o is not None:
            assert o.ref_count > 0, f"vm_object_deallocate: {o!r} deallocated too many times"
            o.ref_count -= 1
            if o.ref_count > 1:
                return
            if o.ref_count == 1:
                if not o.shadows:
                    o.onemapping = True
                elif len(o.shadows) == 1:
                    # the only reference is the single shadow's: collapse it into the shadow
                    self.obj_collapse(o.shadows[0])
                return
            backing = o.backing
            if backing is not None:
                backing.shadows.remove(o)
                backing.gen += 1
                o.backing = None
            self.obj_terminate(o)
            o = backing

    def obj_terminate(self, o: VMObject) -> None:
        """vm_object_terminate(): free every page and swap block; the object is gone."""
        assert not o.shadows and o.ref_count == 0, f"vm_object_terminate: {o!r} still in use"
        self._free_items(o, *o.items()[:1])
        o.dead = True
        del self.objects[o.id]
        self.frames.owners.remove(o.id)

    def _free_items(self, o: VMObject, pidx: np.ndarray) -> None:
        """Free the pages and swap blocks ``o`` holds at ``pidx`` (vm_object_page_remove +
        swap_pager_freespace); zero markers go too. The pages must be unmapped."""
        if not len(pidx):
            return
        pg, sw = o.get(pidx)
        pages = pg[pg >= 0].astype(np.intp)
        ents = sw[sw != 0]
        o.set_pg(pidx, np.full(len(pidx), NONE, np.int64))
        if len(ents):
            o.set_sw(pidx, np.zeros(len(pidx), np.uint64))
            self.sys.swap_free_entries(ents)
        if len(pages):
            f = self.frames
            assert not f.mapcount[pages].any(), f"freeing mapped pages of {o!r}"
            f.refcount[pages] -= 1
            f.mapping[pages] = -1
            dead = pages[f.refcount[pages] == 0]     # (a page also in the swap cache stays)
            self.sys.lru.remove(dead)
            f.free_many(dead)

    def obj_page_remove(self, o: VMObject, lo: int, hi: int) -> None:
        """vm_object_page_remove() + swap_pager_freespace() over [lo, hi)."""
        pidx, _, _ = o.items(lo, hi)
        self._free_items(o, pidx)

    def _move_items(self, src: VMObject, dst: VMObject, pidx: np.ndarray, pg: np.ndarray,
                    sw: np.ndarray) -> None:
        """vm_page_rename() / swap_pager_copy() of the given items from src to dst (dst has
        nothing at those indices)."""
        if not len(pidx):
            return
        src.set_pg(pidx, np.full(len(pidx), NONE, np.int64))
        if sw.any():
            src.set_sw(pidx, np.zeros(len(pidx), np.uint64))
            dst.set_sw(pidx, sw)
        keep_pg = np.where(sw != 0, NONE, pg)
        dst.set_pg(pidx, keep_pg)
        pages = pg[pg >= 0].astype(np.intp)
        if len(pages):
            self.frames.mapping[pages] = dst.id

    def obj_collapse(self, o: VMObject) -> None:
        """vm_object_collapse(): while the backing object is anonymous and referenced only by
        ``o``, move its pages and swap blocks that ``o`` does not shadow into ``o`` and drop
        it (object_collapses); when it is referenced by other shadows too but every page it
        has inside ``o``'s window is shadowed by ``o``, let ``o`` bypass it (object_bypasses).
        The bypass test, like vm_object_backing_scan(OBSC_TEST_ALL_SHADOWED), gives up on a
        backing object that has had swap (OBJT_SWAP). Off with the design option collapse=0."""
        if not self.collapse_on:
            return
        while True:
            b = o.backing
            if b is None:
                return
            bp, bg, bs = b.items()
            inside = (bp >= o.lo) & (bp < o.hi)
            if b.ref_count == 1:
                # collapse: o absorbs b (vm_object_backing_scan(OBSC_COLLAPSE_WAIT))
                og, osw = o.get(bp)
                shadowed = (og != NONE) | (osw != 0)
                drop = ~inside | shadowed
                self._free_items(b, bp[drop])
                move = ~drop
                self._move_items(b, o, bp[move], bg[move], bs[move])
                b.shadows.remove(o)
                nb = b.backing
                if nb is not None:
                    nb.shadows.remove(b)
                    nb.shadows.append(o)
                o.backing = nb
                b.backing = None
                b.ref_count = 0
                assert b.resident == 0 and b.nswap == 0, "collapse left pages behind"
                b.pg.clear()          # zero markers of b are dropped with it
                b.dead = True
                del self.objects[b.id]
                self.frames.owners.remove(b.id)
                o.gen += 1
                self.stats.add("shadow_collapses")
                continue
            # bypass: every resident page of b inside o's window must be shadowed by o
            if b.swapped:
                return
            if inside.any():
                og, osw = o.get(bp[inside])
                if ((og == NONE) & (osw == 0)).any():
                    return
            nb = b.backing
            b.shadows.remove(o)
            o.backing = nb
            if nb is not None:
                self.obj_reference(nb)
                nb.shadows.append(o)
            o.gen += 1
            self.stats.add("shadow_bypasses")
            self.obj_deallocate(b)

    def obj_split(self, o: VMObject, lo: int, hi: int) -> VMObject:
        """vm_object_split(): the range [lo, hi) of a one-mapping object shared by several
        entries of one map gets an object of its own (pages and swap blocks move, the backing
        object is shared). The caller's entry reference moves from ``o`` to the result."""
        n = self.obj_allocate(lo, hi)
        if o.backing is not None:
            n.backing = o.backing
            self.obj_reference(o.backing)
            o.backing.shadows.append(n)
        pidx, pg, sw = o.items(lo, hi)
        self._move_items(o, n, pidx, pg, sw)
        n.swapped = o.swapped and n.nswap > 0
        self.obj_deallocate(o)
        return n

    def obj_coalesce(self, o: VMObject, lo: int, hi: int) -> bool:
        """vm_object_coalesce(): may ``o`` grow to cover the adjacent range [lo, hi) of a
        new anonymous mapping? Only if nothing else can see it (one reference, no backing
        object); pages left from an earlier deallocation in the range are removed."""
        if o.ref_count != 1 or o.backing is not None or o.shadows:
            return False
        if not (hi == o.lo or lo == o.hi):
            return False
        self.obj_page_remove(o, lo, hi)
        o.lo, o.hi = min(o.lo, lo), max(o.hi, hi)
        return True
