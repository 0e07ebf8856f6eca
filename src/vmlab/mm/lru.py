"""The LRU lists and mlock accounting of a memory node (classic two-list LRU, no MGLRU).

Models mm/swap.c (folio_add_lru, folio_mark_accessed, folio_activate, lru_add), the
lruvec helpers of include/linux/mm_inline.h, and the per-folio side of mm/mlock.c
(mlock_folio, mlock_new_folio, munlock_folio with mlock_count). The reference host runs without
CONFIG_LRU_GEN, so this is the active/inactive design of Linux 6.x.

Representation. Linux threads folios on doubly-linked lists. We give each frame a sequence
number instead (``frames.lru_seq``): a list is the set of frames whose flags say they are on
it, ordered by lru_seq (largest = head = most recent). Adding to the head is "take the next
number", deleting is clearing PG_lru, and the reclaim scanner takes the smallest numbers. That
makes the bulk operations of a fault-in, a zap or an exit vector operations instead of pointer
surgery, at the price of an O(frames) selection when reclaim scans.

Which list a frame is on (folio_lru_list()):
    not PG_lru                         on no list (isolated, freed, or a page table / zero page)
    PG_unevictable                     LRU_UNEVICTABLE  (lru_seq holds mlock_count instead)
    PG_swapbacked (anon and shmem)     LRU_{IN,}ACTIVE_ANON
    otherwise                          LRU_{IN,}ACTIVE_FILE
with PG_active choosing active. New pages go on the inactive list (Linux since 5.9 without
MGLRU). Pages in a VM_LOCKED VMA go straight to the unevictable list (mlock_new_folio).

Deviation: Linux batches LRU additions per CPU (folio_batch of 15), so a just-faulted page may
not show PG_lru yet in /proc/kpageflags; here the batch is always drained.
"""

from __future__ import annotations

import numpy as np

from ..hw.frames import (PG_active, PG_lru, PG_mlocked, PG_referenced, PG_swapbacked, PG_workingset,
                         PG_unevictable, PG_idle, FrameTable)

LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, LRU_UNEVICTABLE = range(5)
LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")

_U32 = np.uint32


class LRU:
    """The node's LRU lists over the frame table (``lruvec``)."""

    def __init__(self, frames: FrameTable, events):
        self.frames = frames
        self.events = events
        self.seq = 1
        self.nonresident_age = 0      # lruvec->nonresident_age (mm/workingset.c)
        self.swap_free = None         # callable: free swap pages (set by System)

    def _next_seq(self, n: int) -> np.ndarray:
        s = np.arange(self.seq, self.seq + n, dtype=np.int64)
        self.seq += n
        return s

    # --- adding and removing ---------------------------------------------------------------------
    def add(self, pfns: np.ndarray | int, active: bool = False, evictable: bool = True) -> None:
        """folio_add_lru() for each frame, in order (the last one ends up at the head).
        A page that is not evictable (its mapping is AS_UNEVICTABLE: SHM_LOCK) goes to the
        unevictable list at once, inactive, mlock_count 0 (lru_add: unevictable_pgs_culled)."""
        f = self.frames
        pfns = np.atleast_1d(np.asarray(pfns, dtype=np.intp))
        if not len(pfns):
            return
        assert not (f.flags[pfns] & PG_lru).any(), "LRU.add: page already on an LRU list"
        if not evictable:
            f.flags[pfns] |= _U32(PG_lru | PG_unevictable)
            f.lru_seq[pfns] = 0
            self.events.count("unevictable_pgs_culled", len(pfns))
            return
        f.flags[pfns] |= _U32(PG_lru | (PG_active if active else 0))
        f.lru_seq[pfns] = self._next_seq(len(pfns))

    def add_new(self, pfns: np.ndarray | int, locked: bool) -> None:
        """folio_add_lru_vma(): new pages of a VM_LOCKED VMA are mlocked at once."""
        if locked:
            self.mlock_new(pfns)
        else:
            self.add(pfns)

    def remove(self, pfns: np.ndarray | int) -> None:
        """lruvec_del_folio() on pages about to be freed (their flags are reset by the free).

        Pages still mlocked when they are freed are counted as unevictable_pgs_cleared, as
        __folio_clear_mlocked() / free_pages_prepare does.
        """
        f = self.frames
        pfns = np.atleast_1d(np.asarray(pfns, dtype=np.intp))
        if not len(pfns):
            return
        fl = f.flags[pfns]
        locked = (fl & _U32(PG_mlocked)) != 0
        if locked.any():
            self.events.count("unevictable_pgs_cleared", int(locked.sum()))
        f.flags[pfns] = fl & _U32(~(PG_lru | PG_active | PG_unevictable | PG_mlocked) & 0xFFFFFFFF)
        f.lru_seq[pfns] = 0

    def rotate_to_head(self, pfn: int) -> None:
        self.frames.lru_seq[pfn] = self._next_seq(1)[0]

    # --- ageing ------------------------------------------------------------------------------------
    def mark_accessed(self, pfns: np.ndarray | int) -> None:
        """folio_mark_accessed(): first touch sets PG_referenced; a second one activates.

        inactive,unreferenced -> inactive,referenced -> active,unreferenced ->
        active,referenced. Unevictable pages only collect PG_referenced. A page on no LRU
        list (the zero page, an isolated page) just has PG_referenced cleared on its second
        touch (__lru_cache_activate_folio finds nothing to activate).
        """
        f = self.frames
        for pfn in np.atleast_1d(np.asarray(pfns, dtype=np.intp)).tolist():
            fl = int(f.flags[pfn])
            if not fl & PG_referenced:
                fl |= PG_referenced
            elif not fl & PG_unevictable and not fl & PG_active:
                if fl & PG_lru:
                    self.events.count("pgactivate")
                    f.lru_seq[pfn] = self._next_seq(1)[0]
                    fl |= PG_active
                fl &= ~PG_referenced
            fl &= ~PG_idle
            f.flags[pfn] = fl

    def activate(self, pfn: int) -> None:
        """folio_activate(): inactive -> active head (counted as pgactivate)."""
        f = self.frames
        fl = int(f.flags[pfn])
        if fl & PG_lru and not fl & (PG_active | PG_unevictable):
            f.flags[pfn] = fl | PG_active
            f.lru_seq[pfn] = self._next_seq(1)[0]
            self.events.count("pgactivate")

    def deactivate(self, pfn: int) -> None:
        """lru_deactivate: active -> inactive head, PG_referenced cleared (MADV_COLD)."""
        f = self.frames
        fl = int(f.flags[pfn])
        if fl & PG_lru and not fl & PG_unevictable:
            if fl & PG_active:
                self.events.count("pgdeactivate")
            f.flags[pfn] = fl & ~(PG_active | PG_referenced)
            f.lru_seq[pfn] = self._next_seq(1)[0]

    # --- workingset (mm/workingset.c) --------------------------------------------------------------
    def workingset_eviction(self, pfn: int) -> int:
        """The shadow entry left behind by an evicted page: its eviction age and whether it
        was part of the workingset (PG_workingset). Never 0."""
        self.nonresident_age += 1
        ws = 1 if int(self.frames.flags[pfn]) & PG_workingset else 0
        return ((self.nonresident_age + 1) << 1) | ws

    def workingset_refault(self, shadow: int, anon: bool) -> bool:
        """workingset_refault(): count the refault; was the page evicted recently enough
        (refault distance within the workingset) to start on the active list?"""
        kind = "anon" if anon else "file"
        self.events.count(f"workingset_refault_{kind}")
        eviction = (shadow >> 1) - 1
        distance = self.nonresident_age - eviction
        sizes = self.sizes()
        ws = sizes[LRU_ACTIVE_FILE]
        if anon:
            ws += sizes[LRU_INACTIVE_FILE]
        if self.swap_free is None or self.swap_free() > 0:
            # anon competes for the workingset only while there is swap to put it in
            ws += sizes[LRU_ACTIVE_ANON]
            if not anon:
                ws += sizes[LRU_INACTIVE_ANON]
        if distance > ws:
            return False
        self.nonresident_age += 1
        self.events.count(f"workingset_activate_{kind}")
        if shadow & 1:
            self.events.count(f"workingset_restore_{kind}")
        return True

    # --- mlock (mm/mlock.c) ---------------------------------------------------------------------------
    def mlock_new(self, pfns: np.ndarray | int) -> None:
        """mlock_new_folio(): a fresh page of a VM_LOCKED VMA: mlocked, unevictable, count 1."""
        f = self.frames
        pfns = np.atleast_1d(np.asarray(pfns, dtype=np.intp))
        if not len(pfns):
            return
        f.flags[pfns] |= _U32(PG_mlocked | PG_unevictable | PG_lru)
        f.flags[pfns] &= _U32(~PG_active & 0xFFFFFFFF)
        f.lru_seq[pfns] = 1                            # mlock_count
        self.events.count("unevictable_pgs_mlocked", len(pfns))
        self.events.count("unevictable_pgs_culled", len(pfns))

    def mlock(self, pfns: np.ndarray | int) -> None:
        """mlock_folio() for each page newly mapped by (or found in) a VM_LOCKED VMA."""
        f = self.frames
        for pfn in np.atleast_1d(np.asarray(pfns, dtype=np.intp)).tolist():
            fl = int(f.flags[pfn])
            if not fl & PG_mlocked:
                fl |= PG_mlocked
                self.events.count("unevictable_pgs_mlocked")
            if not fl & PG_lru:
                f.flags[pfn] = fl          # off LRU: nothing more until it comes back
                continue
            if fl & PG_unevictable:
                f.lru_seq[pfn] += 1
            else:
                fl = (fl & ~PG_active) | PG_unevictable
                f.lru_seq[pfn] = 1
                self.events.count("unevictable_pgs_culled")
            f.flags[pfn] = fl

    def munlock(self, pfns: np.ndarray | int) -> None:
        """munlock_folio(): one VM_LOCKED mapping less; rescue the page when none is left."""
        f = self.frames
        for pfn in np.atleast_1d(np.asarray(pfns, dtype=np.intp)).tolist():
            fl = int(f.flags[pfn])
            if fl & PG_unevictable:
                if f.lru_seq[pfn] > 0:
                    f.lru_seq[pfn] -= 1
                if f.lru_seq[pfn] > 0:
                    continue
            if fl & PG_mlocked:
                fl &= ~PG_mlocked
                if fl & PG_lru or not fl & PG_unevictable:
                    self.events.count("unevictable_pgs_munlocked")
                else:
                    self.events.count("unevictable_pgs_stranded")
            if fl & PG_lru and fl & PG_unevictable:
                fl &= ~PG_unevictable
                f.lru_seq[pfn] = self._next_seq(1)[0]
                self.events.count("unevictable_pgs_rescued")
            f.flags[pfn] = fl

    # --- views -----------------------------------------------------------------------------------------
    def list_of(self, flags: np.ndarray) -> np.ndarray:
        """folio_lru_list() for an array of flag words; -1 for frames on no list.

        The four bits that decide it (PG_lru, PG_active, PG_swapbacked, PG_unevictable) are
        packed into a 4-bit code and looked up, so this is a few cheap vector operations."""
        code = ((flags >> _U32(4)) & _U32(3)) | ((flags >> _U32(10)) & _U32(12))
        return _LIST_OF_CODE[code]

    def sizes(self) -> list[int]:
        """Pages on each list, LRU_NAMES order (the nr_{in,}active_* and nr_unevictable gauges)."""
        flags = self.frames.flags_copy()
        code = ((flags >> _U32(4)) & _U32(3)) | ((flags >> _U32(10)) & _U32(12))
        per_code = np.bincount(code, minlength=16)
        out = [0] * 5
        for c in range(16):
            lst = int(_LIST_OF_CODE[c])
            if lst >= 0:
                out[lst] += int(per_code[c])
        return out


def _build_code_table() -> np.ndarray:
    """code bit 0 = PG_lru, bit 1 = PG_active, bit 2 = PG_swapbacked, bit 3 = PG_unevictable."""
    assert (PG_lru, PG_active, PG_swapbacked, PG_unevictable) == (1 << 4, 1 << 5, 1 << 12, 1 << 13)
    t = np.full(16, -1, np.int64)
    for c in range(16):
        if not c & 1:
            continue
        if c & 8:
            t[c] = LRU_UNEVICTABLE
        else:
            t[c] = (LRU_INACTIVE_ANON if c & 4 else LRU_INACTIVE_FILE) + (1 if c & 2 else 0)
    return t


_LIST_OF_CODE = _build_code_table()
