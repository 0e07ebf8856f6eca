"""Swap areas, the slot allocator, swap counts and the swap cache.

Models mm/swapfile.c (swap_info_struct, swap_map, the cluster allocator, swap_duplicate,
swap_free, free_swap_and_cache, swapon priorities) and mm/swap_state.c (the swap cache:
add_to_swap_cache, __delete_from_swap_cache, swap_cache_get_folio), for Linux 6.x.

Per area (type 0..30, highest priority used first):

    swap_map[offset]  uint8: the number of references to the slot from swap PTEs and shmem
                      objects (bits 0-5), plus SWAP_HAS_CACHE (0x40) while a page for the slot
                      sits in the swap cache. A slot is free when its byte is 0. Slot 0 holds
                      the swap header (SWAP_MAP_BAD).
    cache[offset]     pfn of the page in the swap cache for the slot, or -1
    shadow[offset]    workingset shadow: the eviction age of the page written to the slot, 0 none
    zero[offset]      the page was zero-filled, so nothing was written (the zeromap, 6.12+)

The seeds' first thread (Colin Plumb, 1997) is about exactly this structure: a page can be both
in memory and on swap, the swap cache maps (swap type, offset) back to the page, and a slot
lives as long as its swap_map count says references remain.

Allocation follows the 6.x cluster allocator in its simple form: slots are handed out
sequentially inside the current 512-slot cluster; a full cluster is replaced by the first
free cluster, then by the first cluster that still has a free slot.

Field tags: (o) owned here; (d) derived — `check()` recounts swap_map from PTEs, shmem objects
and the swap cache.
"""

from __future__ import annotations

import numpy as np

from ..hw import pte as P
from ..hw.swapdev import SwapDevice

SWAP_HAS_CACHE = 0x40
SWAP_MAP_BAD = 0x3F
SWAP_MAP_MAX = 0x3E
SWAPFILE_CLUSTER = 512


class SwapArea:
    """struct swap_info_struct."""

    def __init__(self, type_: int, nslots: int, prio: int, contents, name: str):
        self.type = type_
        self.prio = prio
        self.name = name
        self.nslots = nslots
        self.dev = SwapDevice(nslots, contents)
        self.swap_map = np.zeros(nslots, np.uint8)        # (d)
        self.swap_map[0] = SWAP_MAP_BAD                   # the header
        self.cache = np.full(nslots, -1, np.int64)         # (o)
        self.shadow = np.zeros(nslots, np.int64)           # (o)
        self.zero = np.zeros(nslots, bool)                 # (o)
        self.inuse = 0                                     # (d) slots with swap_map != 0, header excluded
        self.nclusters = (nslots + SWAPFILE_CLUSTER - 1) // SWAPFILE_CLUSTER
        self.cur_cluster = 0
        self.next_off = 1
        self.active = True

    @property
    def pages(self) -> int:
        """si->pages: usable slots (the header is not one)."""
        return self.nslots - 1

    def alloc(self) -> int:
        """cluster_alloc_swap_entry(): a free slot, or -1."""
        if self.inuse >= self.pages:
            return -1
        sm = self.swap_map
        c_end = min(self.nslots, (self.cur_cluster + 1) * SWAPFILE_CLUSTER)
        off = self.next_off
        while off < c_end and sm[off]:
            off += 1
        if off >= c_end:
            off = self._new_cluster()
            if off < 0:
                return -1
        self.next_off = off + 1
        return off

    def _new_cluster(self) -> int:
        sm = self.swap_map
        # a wholly free cluster first (free_clusters), then any cluster with room (nonfull)
        for want_empty in (True, False):
            for c in range(self.nclusters):
                lo, hi = c * SWAPFILE_CLUSTER, min(self.nslots, (c + 1) * SWAPFILE_CLUSTER)
                seg = sm[lo:hi]
                if want_empty:
                    if c == 0 and not seg[1:].any() or c > 0 and not seg.any():
                        self.cur_cluster = c
                        return lo if c else 1
                else:
                    free = np.flatnonzero(seg == 0)
                    if len(free):
                        self.cur_cluster = c
                        return lo + int(free[0])
        return -1


class SwapSystem:
    """All swap areas of the machine, and the operations on swap entries."""

    def __init__(self, frames):
        self.frames = frames
        self.areas: list[SwapArea | None] = []
        self.least_priority = -1

    # --- areas ----------------------------------------------------------------------------------
    def add_area(self, nslots: int, prio: int | None, name: str) -> SwapArea:
        """swapon(): without a priority an area gets the next lower negative one (-2, -3...)."""
        if prio is None or prio < 0:
            self.least_priority -= 1
            prio = self.least_priority
        for i, a in enumerate(self.areas):
            if a is None:
                t = i
                break
        else:
            t = len(self.areas)
            if t >= P.MAX_SWAPFILES - 1:
                raise ValueError("swapon: too many swap areas")
            self.areas.append(None)
        area = SwapArea(t, nslots, prio, self.frames.contents, name)
        self.areas[t] = area
        return area

    def deactivate(self, area: SwapArea) -> None:
        """swapoff() taking the area off the active list: no new slots from it, and when its
        priority was an automatic (negative) one, every area below it moves up by one and
        least_priority with them (mm/swapfile.c, SYSCALL_DEFINE1(swapoff))."""
        area.active = False
        if area.prio < 0:
            for a in self.live_areas():
                if a.prio < area.prio:
                    a.prio += 1
            self.least_priority += 1

    def reinsert(self, area: SwapArea) -> None:
        """reinsert_swap_info() after a failed swapoff: back on the active list, an automatic
        priority replaced by the next lower one (setup_swap_info)."""
        if area.prio < 0:
            self.least_priority -= 1
            area.prio = self.least_priority
        area.active = True

    def live_areas(self) -> list[SwapArea]:
        return [a for a in self.areas if a is not None and a.active]

    def total_pages(self) -> int:
        return sum(a.pages for a in self.live_areas())

    def free_pages(self) -> int:
        return sum(a.pages - a.inuse for a in self.live_areas())

    def vm_swap_full(self) -> bool:
        """vm_swap_full(): more than half of swap is in use."""
        total = self.total_pages()
        return total > 0 and (total - self.free_pages()) * 2 > total

    # --- entries -----------------------------------------------------------------------------------
    def get_swap_page(self) -> tuple[int, int] | None:
        """folio_alloc_swap(): a slot on the highest-priority area with room, count 0 + cache."""
        for area in sorted(self.live_areas(), key=lambda a: (-a.prio, a.type)):
            off = area.alloc()
            if off >= 0:
                area.swap_map[off] = SWAP_HAS_CACHE
                area.inuse += 1
                return area.type, off
        return None

    def count(self, t: int, off: int) -> int:
        return int(self.areas[t].swap_map[off]) & ~SWAP_HAS_CACHE

    def swap_count(self, pte: int) -> int | None:
        """swp_swapcount() for a swap PTE; None for a PTE marker."""
        t = P.pte_swp_type(pte)
        if t == P.SWP_PTE_MARKER:
            return None
        return self.count(t, P.pte_swp_offset(pte))

    def duplicate(self, t: int, off: int, n: int = 1) -> None:
        """swap_duplicate(): one more PTE or object reference to the slot."""
        a = self.areas[t]
        c = int(a.swap_map[off])
        assert c and (c & ~SWAP_HAS_CACHE) + n <= SWAP_MAP_MAX, "swap_duplicate: bad swap_map count"
        a.swap_map[off] = c + n

    def free(self, t: int, off: int, n: int = 1) -> None:
        """swap_free(): one reference less; the slot is free once nothing holds it."""
        a = self.areas[t]
        c = int(a.swap_map[off])
        assert (c & ~SWAP_HAS_CACHE) >= n, f"swap_free: slot {t}:{off} count underflow"
        c -= n
        a.swap_map[off] = c
        if c == 0:
            self._release_slot(a, off)

    def _release_slot(self, a: SwapArea, off: int) -> None:
        a.inuse -= 1
        a.dev.discard(off)
        a.zero[off] = False
        a.shadow[off] = 0

    # --- the swap cache -----------------------------------------------------------------------------
    def cache_lookup(self, t: int, off: int) -> int:
        return int(self.areas[t].cache[off])

    def add_to_cache(self, t: int, off: int, pfn: int) -> None:
        """add_to_swap_cache(): the page for slot (t, off); the cache holds a page reference."""
        a = self.areas[t]
        assert a.cache[off] < 0, "add_to_swap_cache: slot already cached"
        a.cache[off] = pfn
        a.swap_map[off] |= SWAP_HAS_CACHE
        a.shadow[off] = 0
        f = self.frames
        from ..hw.frames import PG_swapcache
        f.flags[pfn] |= np.uint32(PG_swapcache)
        f.private[pfn] = np.uint64(P.swp_entry_to_pte(t, off))
        f.refcount[pfn] += 1

    def delete_from_cache(self, pfn: int) -> tuple[int, int]:
        """__delete_from_swap_cache() + put_swap_folio(): the page leaves the cache; its slot
        loses SWAP_HAS_CACHE (and is freed if no reference remains). Returns the slot."""
        from ..hw.frames import PG_swapcache
        f = self.frames
        e = int(f.private[pfn])
        t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
        a = self.areas[t]
        assert int(a.cache[off]) == pfn, "delete_from_swap_cache: page is not the cached one"
        a.cache[off] = -1
        f.flags[pfn] &= np.uint32(~PG_swapcache & 0xFFFFFFFF)
        f.private[pfn] = 0
        f.refcount[pfn] -= 1
        c = int(a.swap_map[off]) & ~SWAP_HAS_CACHE
        a.swap_map[off] = c
        if c == 0:
            self._release_slot(a, off)
        return t, off

    @staticmethod
    def entry_of(pfn_private: int) -> tuple[int, int]:
        e = int(pfn_private)
        return P.pte_swp_type(e), P.pte_swp_offset(e)

    def content_tokens(self) -> np.ndarray:
        """Every token held by a swap slot (for the content-store recount)."""
        parts = [a.dev.tokens for a in self.areas if a is not None]
        return np.concatenate(parts) if parts else np.empty(0, np.uint64)

    def nbytes(self) -> int:
        return sum(a.swap_map.nbytes + a.cache.nbytes + a.shadow.nbytes + a.zero.nbytes
                   + a.dev.nbytes() for a in self.areas if a is not None)
