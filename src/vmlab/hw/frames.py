"""The frame table (Linux's mem_map): one numpy array per field of ``struct page``, indexed by pfn.

Models include/linux/mm_types.h (struct page / struct folio, order-0 only) and the parts of
mm/page_alloc.c a VM model needs: allocating and freeing single frames, and counting them.

Fields, each a numpy array of length ``nframes`` (tags as in FreeBSD's vm_object.h:
(c) constant after allocation, (d) derived and recounted by check, (o) owned by one module):

    flags     uint32  PG_* bits below (o: the owner of the frame's current use)
    refcount  int32   references that are NOT page-table mappings: page cache, swap cache,
                      pins, an allocation in flight (o). Linux's _refcount is
                      ``refcount + mapcount``; we keep the two apart so fork and zap move one
                      counter, not two. page_count() gives Linux's number.
    mapcount  int32   number of PTEs mapping the frame, 0 when unmapped (Linux stores it
                      minus one) (d: recounted from page tables). flags and mapcount are
                      the two halves of one uint64 ``word`` per frame, so a pass that moves
                      both (fork) touches each frame once.
    mapping   int32   owner id (an anon_vma, shmem object or file) in ``owners``, -1 none (o)
    index     int64   page->index: the page offset within its owner (o)
    private   uint64  page->private / folio->swap: the swap entry while in the swap cache;
                      the table row for page-table frames (o)
    content   uint64  the contents token (content.py) (o)
    lru_seq   int64   position on its LRU list: larger is nearer the head (most recently
                      added or rotated). Which list is given by the flags (PG_lru, PG_active,
                      PG_swapbacked, PG_unevictable). For an mlocked (unevictable) page it
                      holds mlock_count instead, as Linux overlays mlock_count on lru.prev (o:
                      mm/lru.py)

That is 48 bytes a frame; with the 8-byte PTE mapping it, 56 bytes per resident page (Linux's
struct page is 64).

Free frames sit on a LIFO stack (``free_stack[:nfree]``); a freed frame is poisoned (flags =
PG_BUDDY only, mapping -1, content POISON) so a stale PTE reading it fails loudly. Frame 0 is
the shared zero page, allocated at boot and never freed.

Allocation order: the stack starts with pfn 1 on top, so a fresh machine hands out ascending
pfns and recycles the most recently freed frame first (hot-cold: like the per-cpu lists).
When the stack is empty ``alloc`` calls the ``reclaim`` callback it was handed (direct reclaim
lives two layers up), then raises :class:`OutOfFrames` if that did not help.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .content import NP_POISON, POISON, ContentStore

# --- page flags: names and meanings of include/linux/page-flags.h --------------------------
PG_locked = 1 << 0
PG_referenced = 1 << 1
PG_uptodate = 1 << 2
PG_dirty = 1 << 3
PG_lru = 1 << 4
PG_active = 1 << 5
PG_workingset = 1 << 6
PG_swapcache = 1 << 7        # PG_owner_priv_1 on a swap-backed folio
PG_reserved = 1 << 8
PG_private = 1 << 9
PG_writeback = 1 << 10
PG_reclaim = 1 << 11
PG_swapbacked = 1 << 12
PG_unevictable = 1 << 13
PG_mlocked = 1 << 14
PG_anon_exclusive = 1 << 15  # PG_mappedtodisk reused for anon pages (PageAnonExclusive)
PG_idle = 1 << 16            # page_idle (CONFIG_PAGE_IDLE_FLAG)
PG_young = 1 << 17
PG_readahead = 1 << 18       # PG_reclaim's alias on a page read ahead (swap readahead)
# Not flags in Linux but page *types* or bits of ->mapping; kept here for one-array speed.
PG_anon = 1 << 24            # folio->mapping has PAGE_MAPPING_ANON set
PG_buddy = 1 << 25           # free, in the buddy allocator (PageBuddy page type)
PG_pgtable = 1 << 26         # a page-table page (PageTable page type)
PG_zero = 1 << 27            # the shared zero page (is_zero_pfn)
PG_ksm = 1 << 28

FLAG_NAMES = {
    PG_locked: "locked", PG_referenced: "referenced", PG_uptodate: "uptodate", PG_dirty: "dirty",
    PG_lru: "lru", PG_active: "active", PG_workingset: "workingset", PG_swapcache: "swapcache",
    PG_reserved: "reserved", PG_private: "private", PG_writeback: "writeback",
    PG_reclaim: "reclaim", PG_swapbacked: "swapbacked", PG_unevictable: "unevictable",
    PG_mlocked: "mlocked", PG_anon_exclusive: "anon_exclusive", PG_idle: "idle",
    PG_young: "young", PG_readahead: "readahead", PG_anon: "anon", PG_buddy: "buddy", PG_pgtable: "pgtable",
    PG_zero: "zero", PG_ksm: "ksm",
}

ZERO_PFN = 0


def flag_names(flags: int) -> list[str]:
    return [n for b, n in FLAG_NAMES.items() if flags & b]


class OutOfFrames(Exception):
    """No free frame, even after reclaim. The kernel layer turns this into the OOM killer."""


class Owners:
    """Registry giving a small integer id to each page owner (anon_vma, shmem object, file).

    ``frames.mapping`` stores the id, so the mem_map stays numeric. Ids are recycled.
    """

    def __init__(self) -> None:
        self._objs: list[object | None] = []
        self._free: list[int] = []

    def add(self, obj: object) -> int:
        if self._free:
            i = self._free.pop()
            self._objs[i] = obj
        else:
            i = len(self._objs)
            self._objs.append(obj)
        return i

    def remove(self, i: int) -> None:
        assert self._objs[i] is not None, "Owners.remove: id not registered"
        self._objs[i] = None
        self._free.append(i)

    def get(self, i: int) -> object:
        obj = self._objs[i]
        assert obj is not None, f"Owners.get: no owner with id {i}"
        return obj

    def live(self) -> dict[int, object]:
        return {i: o for i, o in enumerate(self._objs) if o is not None}


class FrameTable:
    """mem_map plus the order-0 page allocator."""

    BYTES_PER_FRAME = 4 + 4 + 4 + 4 + 8 + 8 + 8 + 8

    def __init__(self, nframes: int):
        if nframes < 16:
            raise ValueError(f"FrameTable: need at least 16 frames of RAM, got {nframes}")
        n = nframes
        self.nframes = n
        # flags and mapcount share one little-endian 64-bit word per frame (flags the low
        # half, mapcount the high half): fork's per-page update (mapcount +1, PageAnonExclusive
        # cleared) is then one gather and one scatter of ``word`` instead of two of each.
        # ``flags`` and ``mapcount`` are strided views of the same memory.
        rec = np.zeros(n, np.dtype([("flags", "<u4"), ("mapcount", "<i4")]))
        self.word = rec.view("<u8")
        self.flags = rec["flags"]
        self.refcount = np.zeros(n, np.int32)
        self.mapcount = rec["mapcount"]
        self.mapping = np.full(n, -1, np.int32)
        self.index = np.zeros(n, np.int64)
        self.private = np.zeros(n, np.uint64)
        self.content = np.full(n, NP_POISON, np.uint64)
        self.lru_seq = np.zeros(n, np.int64)
        self.flags[:] = PG_buddy
        self.contents = ContentStore()
        self.owners = Owners()
        # free stack: top of stack is the end; pfn 1 on top, so frames come out ascending.
        self.free_stack = np.arange(n - 1, 0, -1, dtype=np.int32)
        self.nfree = n - 1
        # the zero page
        self.flags[ZERO_PFN] = PG_reserved | PG_zero          # no PG_uptodate, as on the host
        self.refcount[ZERO_PFN] = 1
        self.content[ZERO_PFN] = 0
        # event counters the allocator keeps itself (/proc/vmstat pgalloc_normal, pgfree)
        self.pgalloc = 0
        self.pgfree = 0
        # callbacks handed down from above
        self.reclaim: Callable[[int], int] | None = None     # (free frames wanted) -> frames freed
        self.low_mark = 0                                     # the min watermark, set from above
        self.on_alloc: Callable[[], None] | None = None       # watermark check (kswapd wake)

    # --- allocation ----------------------------------------------------------------------------
    def _ensure(self, n: int) -> None:
        """Make n frames available: below the min watermark (``self.low_mark``) the caller
        reclaims first (direct reclaim, a callback handed down from above); only when there
        are still fewer than n free frames does the allocation fail."""
        if self.nfree - n >= self.low_mark:
            return
        if self.reclaim is not None:
            self.reclaim(n + self.low_mark)
        if self.nfree < n:
            raise OutOfFrames(n)

    def reserve(self, n: int) -> None:
        """Make sure ``n`` frames can be allocated without failing (reclaiming if need be).

        The design's "allocate first" contract: call this before changing a batch, then
        re-read the batch (reclaim may have changed it), then alloc_many() cannot fail.
        """
        self._ensure(n)

    def alloc(self, content: int = 0) -> int:
        """alloc_page(): one frame, refcount 1 (the caller's), contents ``content``.

        Net: nfree -1; the frame leaves PG_buddy with no other flags.
        """
        self._ensure(1)
        self.nfree -= 1
        pfn = int(self.free_stack[self.nfree])
        self.flags[pfn] = 0
        self.refcount[pfn] = 1
        self.content[pfn] = content
        self.pgalloc += 1
        if self.on_alloc is not None:
            self.on_alloc()
        return pfn

    def alloc_many(self, n: int) -> np.ndarray:
        """n frames at once (the vector fault path); each refcount 1, contents zero."""
        if n == 0:
            return np.empty(0, np.intp)
        self._ensure(n)
        top = self.nfree
        pfns = self.free_stack[top - n:top][::-1].astype(np.intp)
        self.nfree = top - n
        self.flags[pfns] = 0
        self.refcount[pfns] = 1
        self.content[pfns] = 0
        self.pgalloc += n
        if self.on_alloc is not None:
            self.on_alloc()
        return pfns

    def free(self, pfn: int) -> None:
        """free_unref_page(): return one frame, poisoning it. The caller dropped every reference."""
        assert pfn != ZERO_PFN, "FrameTable.free: freeing the zero page"
        assert not self.flags[pfn] & PG_buddy, f"FrameTable.free: double free of pfn {pfn}"
        assert self.mapcount[pfn] == 0, f"FrameTable.free: pfn {pfn} still mapped {self.mapcount[pfn]} times"
        self.contents.release(int(self.content[pfn]))
        self._poison(pfn)
        self.free_stack[self.nfree] = pfn
        self.nfree += 1
        self.pgfree += 1

    def free_many(self, pfns: np.ndarray) -> None:
        """Free a batch (zap of a range, exit). Same contract as free()."""
        if len(pfns) == 0:
            return
        assert not (self.flags[pfns] & PG_buddy).any(), "FrameTable.free_many: double free"
        assert not (self.mapcount[pfns] != 0).any(), "FrameTable.free_many: freeing a mapped frame"
        assert not (pfns == ZERO_PFN).any(), "FrameTable.free_many: freeing the zero page"
        self.contents.release_many(self.content[pfns])
        self._poison(pfns)
        n = len(pfns)
        self.free_stack[self.nfree:self.nfree + n] = pfns
        self.nfree += n
        self.pgfree += n

    def _poison(self, pfn) -> None:
        self.flags[pfn] = PG_buddy
        self.refcount[pfn] = 0
        self.mapping[pfn] = -1
        self.index[pfn] = 0
        self.private[pfn] = 0
        self.content[pfn] = NP_POISON
        self.lru_seq[pfn] = 0

    # --- queries -----------------------------------------------------------------------------
    def flags_copy(self) -> np.ndarray:
        """Every frame's flags as a contiguous array (a copy, the low halves of ``word``).
        Whole-table scans run several times faster on it than on the strided ``flags``."""
        return self.word.astype(np.uint32)

    def mapcount_copy(self) -> np.ndarray:
        """Every frame's mapcount as a contiguous array (a copy)."""
        return (self.word >> np.uint64(32)).astype(np.int32)

    def page_count(self, pfn: int) -> int:
        """Linux's page_count(): every reference, mappings included."""
        return int(self.refcount[pfn]) + int(self.mapcount[pfn])

    def is_free(self, pfn: int) -> bool:
        return bool(self.flags[pfn] & PG_buddy)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.word, self.refcount, self.mapping, self.index,
                                      self.private, self.content, self.lru_seq, self.free_stack))

    def check(self) -> list[str]:
        """The allocator's own invariants: the free stack and PG_buddy agree."""
        out = []
        free = self.free_stack[:self.nfree]
        on_stack = np.zeros(self.nframes, bool)
        on_stack[free] = True
        if int(on_stack.sum()) != self.nfree:
            out.append("frames: a pfn appears twice on the free stack")
        flags = self.flags_copy()
        buddy = (flags & PG_buddy) != 0
        if not np.array_equal(on_stack, buddy):
            out.append(f"frames: {int(buddy.sum())} frames flagged free but {self.nfree} on the free stack")
        bad = np.flatnonzero(buddy & (self.content != NP_POISON))
        if len(bad):
            out.append(f"frames: free pfn {int(bad[0])} is not poisoned")
        if self.content[ZERO_PFN] != 0:
            out.append("frames: the zero page is not zero")
        return out


__all__ = [n for n in dir() if n.startswith("PG_")] + [
    "FrameTable", "Owners", "OutOfFrames", "ZERO_PFN", "flag_names", "POISON"]
