"""Page reclaim: kswapd, direct reclaim and MADV_PAGEOUT (mm/vmscan.c, classic LRU, Linux 6.x).

This layer decides *which* pages leave memory; the design decides *how* they are unmapped
(``design.page_referenced``, ``design.try_to_unmap``: an anon_vma walk for `linux`). The
steps follow shrink_node -> shrink_lruvec -> shrink_{active,inactive}_list ->
shrink_folio_list:

  get_scan_count   how many pages of each list to scan at this priority (list size >>
                   priority, split between anon and file by swappiness; anon only if swap is
                   free, file only if the file lists are big enough to matter)
  active lists     pages from the tail lose their young bits and go to the inactive list
                   (pgrefill, pgdeactivate; PG_workingset set), except referenced executable
                   file pages, which rotate
  inactive lists   pages from the tail (pgscan_kswapd/direct, pgscan_anon/file) go through
                   shrink_folio_list:
                     referenced twice, or mapped and referenced with PG_referenced -> activate
                     (pgactivate); referenced once -> PG_referenced, keep
                     anon without a slot -> add_to_swap (slot + swap cache, dirty)
                     mapped -> try_to_unmap through the rmap (fails if VM_LOCKED -> mlock)
                     MADV_FREE'd and still clean -> discarded (pglazyfreed)
                     dirty -> written (pswpout, or swpout_zero for a zero-filled page), then,
                       as with an asynchronous swap device, left for the next pass with
                       PG_reclaim at the tail of the inactive list (pgrotated)
                     clean, unmapped, in the swap cache -> removed from it, leaving a
                       workingset shadow in the slot, and freed (pgsteal_*)
  kswapd           woken when free memory falls below the low watermark; reclaims until it is
                   above the high one (pageoutrun). Runs between operations of the simulated
                   processes (``Kernel.after_syscall``), as a kernel thread would.
  direct reclaim   an allocation that finds no free frame reclaims itself (allocstall_normal,
                   pgscan_direct), from priority 12 down to 0; when even that frees nothing the
                   OOM killer runs (kernel/oom.py).
"""

from __future__ import annotations

import math

import numpy as np

from ..hw.frames import (PG_active, PG_anon, PG_dirty, PG_lru, PG_mlocked, PG_referenced, PG_reclaim, PG_swapbacked, PG_swapcache, PG_unevictable,
                         PG_workingset)
from ..mm.lru import (LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE)
from ..mm.filemap import write_back_page
from ..mm.shmem import shmem_writeout
from ..mm.vmflags import VM_EXEC, VM_LOCKED

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_SWAPPINESS = 200
_U32 = np.uint32


PAGEOUT_ASYNC = 1          # pageout() started I/O: the page is under writeback
PAGEOUT_SYNC = 2           # pageout() needed no I/O: the page is clean at once

class ScanControl:
    """struct scan_control, reduced."""

    def __init__(self, nr_to_reclaim: int, kswapd: bool):
        self.nr_to_reclaim = nr_to_reclaim
        self.kswapd = kswapd
        self.priority = DEF_PRIORITY
        self.nr_reclaimed = 0
        self.nr_scanned = 0


class Reclaimer:
    def __init__(self, kernel):
        self.k = kernel
        self.sys = kernel.sys
        self.f = kernel.sys.frames
        self.lru = kernel.sys.lru
        self.swap = kernel.sys.swap
        self.ev = kernel.sys.events
        self.kswapd_woken = False
        self.stats = {"reclaimed": 0, "scanned": 0, "rmap_unmapped_pages": 0}

    # --- entry points -------------------------------------------------------------------------------
    def direct_reclaim(self, nr_wanted: int) -> int:
        """try_to_free_pages(): called by the allocator when it finds no free frame."""
        self.ev.count("allocstall_normal")
        deficit = max(0, nr_wanted - self.f.nfree)
        sc = ScanControl(max(SWAP_CLUSTER_MAX, deficit), kswapd=False)
        while sc.priority >= 0:
            self.shrink_node(sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
            sc.priority -= 1
        return sc.nr_reclaimed

    def on_alloc(self) -> None:
        """The allocator's watermark check: wake kswapd below the low watermark."""
        if not self.kswapd_woken and self.f.nfree < self.sys.watermarks()["low"]:
            self.kswapd_woken = True

    def run_kswapd(self) -> int:
        """balance_pgdat(): reclaim until free memory is above the high watermark."""
        if not self.kswapd_woken:
            return 0
        self.kswapd_woken = False
        wm = self.sys.watermarks()
        if self.f.nfree >= wm["high"]:
            self.ev.count("kswapd_low_wmark_hit_quickly")
            return 0
        self.ev.count("pageoutrun")
        total = 0
        sc = ScanControl(SWAP_CLUSTER_MAX, kswapd=True)
        while sc.priority >= 0 and self.f.nfree < wm["high"]:
            before = sc.nr_reclaimed
            sc.nr_to_reclaim = max(SWAP_CLUSTER_MAX, wm["high"] - self.f.nfree)
            self.shrink_node(sc)
            if sc.nr_reclaimed == before:
                sc.priority -= 1
        total = sc.nr_reclaimed
        return total

    def reclaim_pages(self, pfns: list[int]) -> int:
        """reclaim_pages() for MADV_PAGEOUT: these pages, references ignored, no pgscan/pgsteal."""
        todo = [p for p in pfns if int(self.f.flags[p]) & PG_lru and not int(self.f.flags[p]) & PG_unevictable]
        return self.shrink_folio_list(todo, ScanControl(len(todo), kswapd=False), ignore_references=True)

    # --- shrink_node / shrink_lruvec -----------------------------------------------------------------
    def shrink_node(self, sc: ScanControl) -> None:
        # a design without a reverse map unmaps by walking page tables first (2.2 swap_out)
        self.k.design.scan_page_tables(max(0, sc.nr_to_reclaim - sc.nr_reclaimed), sc)
        sizes = self.lru.sizes()
        nr = self.get_scan_count(sc, sizes)
        deact_anon = self.inactive_is_low(sizes, anon=True)
        deact_file = self.inactive_is_low(sizes, anon=False)
        while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE] or nr[LRU_ACTIVE_ANON]:
            for lst in (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
                if not nr[lst]:
                    continue
                n = min(nr[lst], SWAP_CLUSTER_MAX)
                nr[lst] -= n
                if lst in (LRU_ACTIVE_ANON, LRU_ACTIVE_FILE):
                    if (deact_anon if lst == LRU_ACTIVE_ANON else deact_file):
                        self.shrink_active_list(n, lst, sc)
                else:
                    self.shrink_inactive_list(n, lst, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
        sizes = self.lru.sizes()
        if self.swap.free_pages() and self.inactive_is_low(sizes, anon=True):
            self.shrink_active_list(SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON, sc)

    def get_scan_count(self, sc: ScanControl, sizes: list[int]) -> list[int]:
        """How many pages of each evictable list to scan at sc.priority."""
        swap_ok = self.swap.free_pages() > 0
        file_sz = sizes[LRU_INACTIVE_FILE] + sizes[LRU_ACTIVE_FILE]
        wm = self.sys.watermarks()
        if not swap_ok or self.sys.config.swappiness == 0 and file_sz:
            fa, ff = 0, 1
        elif file_sz + self.f.nfree <= wm["high"] or not file_sz:
            fa, ff = 1, 0                                 # file_is_tiny: SCAN_ANON
        else:
            sw = self.sys.config.swappiness
            fa, ff = sw, MAX_SWAPPINESS - sw              # SCAN_FRACT with equal costs
        denom = fa + ff
        out = [0] * 5
        for lst in (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
            frac = fa if lst in (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON) else ff
            scan = sizes[lst] >> sc.priority
            if not scan and sc.priority == 0:
                scan = sizes[lst]
            if not scan and sizes[lst] and sc.priority < DEF_PRIORITY - 2:
                scan = min(sizes[lst], SWAP_CLUSTER_MAX)  # small lists still get scanned
            out[lst] = (scan * frac + denom - 1) // denom if denom else 0
        return out

    @staticmethod
    def inactive_is_low(sizes: list[int], anon: bool) -> bool:
        """inactive_is_low(): inactive * ratio < active, ratio = int_sqrt(10 * GiB) or 1."""
        ina, act = (sizes[LRU_INACTIVE_ANON], sizes[LRU_ACTIVE_ANON]) if anon else \
                   (sizes[LRU_INACTIVE_FILE], sizes[LRU_ACTIVE_FILE])
        gb = (ina + act) >> 18
        ratio = math.isqrt(10 * gb) if gb else 1
        return ina * ratio < act

    # --- the lists --------------------------------------------------------------------------------------
    def isolate(self, lst: int, n: int) -> list[int]:
        """isolate_lru_folios(): the n oldest pages of a list, taken off it."""
        f = self.f
        lists = self.lru.list_of(f.flags_copy())
        cand = np.flatnonzero(lists == lst)
        if not len(cand):
            return []
        if len(cand) > n:
            part = np.argpartition(f.lru_seq[cand], n - 1)[:n]
            cand = cand[part]
        cand = cand[np.argsort(f.lru_seq[cand], kind="stable")]
        pfns = cand.tolist()
        f.flags[cand] &= _U32(~PG_lru & 0xFFFFFFFF)
        return pfns

    def putback(self, pfn: int, active: bool | None = None, tail: bool = False) -> None:
        """folio_putback_lru(): back on its list (active or not), at the head or the tail."""
        f = self.f
        fl = int(f.flags[pfn])
        if active is not None:
            fl = (fl | PG_active) if active else (fl & ~PG_active)
        if fl & PG_mlocked:
            fl = (fl | PG_unevictable) & ~PG_active
        f.flags[pfn] = fl | PG_lru
        if fl & PG_unevictable:
            if f.lru_seq[pfn] < 1:
                f.lru_seq[pfn] = 1
            return
        if tail:
            f.lru_seq[pfn] = self._tail_seq()
        else:
            self.lru.rotate_to_head(pfn)

    def _tail_seq(self) -> int:
        self.lru_tail = getattr(self, "lru_tail", 0) - 1
        return self.lru_tail

    def shrink_active_list(self, n: int, lst: int, sc: ScanControl) -> None:
        pfns = self.isolate(lst, n)
        self.ev.count("pgrefill", len(pfns))
        design = self.k.design
        deact = 0
        for pfn in pfns:
            f = self.f
            if int(f.mapcount[pfn]):
                young, vm_flags = design.page_referenced(pfn)
                if young and vm_flags & VM_EXEC and not int(f.flags[pfn]) & PG_swapbacked:
                    self.putback(pfn, active=True)
                    continue
            f.flags[pfn] = (int(f.flags[pfn]) & ~PG_active) | PG_workingset
            self.putback(pfn, active=False)
            deact += 1
        self.ev.count("pgdeactivate", deact)

    def shrink_inactive_list(self, n: int, lst: int, sc: ScanControl) -> None:
        pfns = self.isolate(lst, n)
        if not pfns:
            return
        kind = "anon" if lst == LRU_INACTIVE_ANON else "file"
        who = "kswapd" if sc.kswapd else "direct"
        self.ev.count(f"pgscan_{who}", len(pfns))
        self.ev.count(f"pgscan_{kind}", len(pfns))
        sc.nr_scanned += len(pfns)
        self.stats["scanned"] += len(pfns)
        got = self.shrink_folio_list(pfns, sc)
        self.ev.count(f"pgsteal_{who}", got)
        self.ev.count(f"pgsteal_{kind}", got)

    # --- shrink_folio_list -------------------------------------------------------------------------------
    def folio_check_references(self, pfn: int) -> str:
        young, vm_flags = self.k.design.page_referenced(pfn) if int(self.f.mapcount[pfn]) else (0, 0)
        fl = int(self.f.flags[pfn])
        referenced_folio = bool(fl & PG_referenced)
        self.f.flags[pfn] = fl & ~PG_referenced
        if vm_flags & VM_LOCKED:
            return "activate"
        if young:
            self.f.flags[pfn] = int(self.f.flags[pfn]) | PG_referenced
            if referenced_folio or young > 1:
                return "activate"
            if vm_flags & VM_EXEC and not fl & PG_swapbacked:
                return "activate"
            return "keep"
        if referenced_folio and not fl & PG_swapbacked:
            return "reclaim_clean"
        return "reclaim"

    def shrink_folio_list(self, pfns: list[int], sc: ScanControl, ignore_references: bool = False) -> int:
        f = self.f
        design = self.k.design
        reclaimed = 0
        activated = 0
        for pfn in pfns:
            fl = int(f.flags[pfn])
            if fl & PG_mlocked or fl & PG_unevictable:
                self.putback(pfn)
                continue
            if not design.reclaim_unmaps_by_rmap and int(f.mapcount[pfn]):
                self.putback(pfn)          # mapped: only the design's page-table scan unmaps it
                continue
            m = int(f.mapping[pfn])
            if m >= 0 and not fl & PG_anon and getattr(f.owners.get(m), "unevictable", False):
                # an unevictable mapping (SHM_LOCK): cull to the unevictable list
                f.flags[pfn] = (fl | PG_unevictable) & ~PG_active
                self.ev.count("unevictable_pgs_culled")
                self.putback(pfn)
                continue
            if not ignore_references:
                ref = self.folio_check_references(pfn)
                if ref == "activate":
                    if int(f.mapcount[pfn]) and any(v.vm_flags & VM_LOCKED for _, v, _ in design.rmap_walk(pfn)):
                        self.sys.lru.mlock(pfn) if not int(f.flags[pfn]) & PG_mlocked else None
                        self.putback(pfn)
                        continue
                    activated += 1
                    self.putback(pfn, active=True)
                    continue
                if ref == "keep":
                    self.putback(pfn)
                    continue
            fl = int(f.flags[pfn])
            anon = bool(fl & PG_anon)
            lazyfree = anon and not fl & PG_swapbacked
            if fl & PG_swapbacked and not fl & PG_swapcache:
                if anon:
                    slot = self.swap.get_swap_page()       # add_to_swap()
                    if slot is None:
                        activated += 1
                        self.putback(pfn, active=True)
                        continue
                    self.swap.add_to_cache(slot[0], slot[1], pfn)
                    f.flags[pfn] = int(f.flags[pfn]) | PG_dirty
            if int(f.mapcount[pfn]):
                ok = design.try_to_unmap(pfn)
                self.stats["rmap_unmapped_pages"] += 1
                if not ok:
                    if int(f.flags[pfn]) & PG_mlocked:
                        self.putback(pfn)
                    else:
                        activated += 1
                        self.putback(pfn, active=True)
                    continue
            if anon:
                design.reclaim_unmapped(pfn)       # (bsd: the object's hold moves to the slot)
            fl = int(f.flags[pfn])
            if lazyfree:
                if fl & PG_dirty or fl & PG_swapbacked:
                    f.flags[pfn] = fl | PG_swapbacked
                    activated += 1
                    self.putback(pfn, active=True)
                    continue
                self.sys.lru.remove(pfn)
                f.free(pfn)
                self.ev.count("pglazyfreed")
                reclaimed += 1
                continue
            if fl & PG_dirty:
                done = self.pageout(pfn)
                if not done:
                    activated += 1
                    self.putback(pfn, active=True)
                    continue
                if done == PAGEOUT_ASYNC:
                    # asynchronous writeback: finished by the time reclaim looks again; the
                    # page goes to the tail to be freed then (folio_rotate_reclaimable)
                    f.flags[pfn] = int(f.flags[pfn]) | PG_reclaim
                    self.ev.count("pgrotated")
                    self.putback(pfn, tail=True)
                    continue
                # no I/O was needed (a zero-filled page: the swap zeromap): "a synchronous
                # write", so the page is freed in this same pass (PAGE_SUCCESS, not under
                # writeback, clean)
                fl = int(f.flags[pfn])
            if (not fl & PG_swapcache and not anon and int(f.mapcount[pfn]) == 0
                    and int(f.refcount[pfn]) == 1 and int(f.mapping[pfn]) >= 0):
                # a clean page-cache page: __remove_mapping() drops it; the disk (or, for a
                # clean tmpfs page, its zeroes) still has the data. File pages leave a shadow.
                obj = f.owners.get(int(f.mapping[pfn]))
                i = int(f.index[pfn])
                obj.delete_page(self.sys, pfn)
                if not fl & PG_swapbacked:
                    obj.shadow[i] = self.sys.lru.workingset_eviction(pfn)
                self.sys.lru.remove(pfn)
                f.free(pfn)
                reclaimed += 1
                continue
            if fl & PG_swapcache and int(f.mapcount[pfn]) == 0 and int(f.refcount[pfn]) == 1:
                t, off = self.swap.entry_of(f.private[pfn])
                shadow = self.sys.lru.workingset_eviction(pfn)
                self.swap.delete_from_cache(pfn)
                if self.swap.count(t, off) or self.swap.areas[t].swap_map[off]:
                    self.swap.areas[t].shadow[off] = shadow
                self.sys.lru.remove(pfn)
                f.free(pfn)
                reclaimed += 1
                continue
            self.putback(pfn)
        if activated:
            self.ev.count("pgactivate", activated)
        sc.nr_reclaimed += reclaimed
        self.stats["reclaimed"] += reclaimed
        return reclaimed

    def pageout(self, pfn: int) -> int:
        """pageout() -> swap_writeout()/shmem_writeout(): write a dirty page. Returns 0 if it
        could not (no swap slot), PAGEOUT_ASYNC when I/O was started, PAGEOUT_SYNC when none
        was needed (a zero-filled page goes to the swap zeromap)."""
        f = self.f
        fl = int(f.flags[pfn])
        if not fl & PG_swapbacked:
            # a disk file's page: ->writepage() to the disk
            obj = f.owners.get(int(f.mapping[pfn]))
            write_back_page(self.sys, obj, pfn)
            self.ev.count("nr_vmscan_write")
            return PAGEOUT_ASYNC
        if not fl & PG_swapcache:
            obj = f.owners.get(int(f.mapping[pfn]))
            if not shmem_writeout(self.sys, obj, pfn):
                return 0
        t, off = self.swap.entry_of(f.private[pfn])
        area = self.swap.areas[t]
        if not area.active:
            # the slot's area takes no writes: the design may move the page to one that does
            if not self.k.design.swap_relocate(pfn):
                return 0
            t, off = self.swap.entry_of(f.private[pfn])
            area = self.swap.areas[t]
        tok = int(f.content[pfn])
        if tok == 0:
            area.zero[off] = True                         # the zeromap: nothing is written
            area.dev.discard(off)
            self.ev.count("swpout_zero")
        else:
            area.zero[off] = False
            area.dev.write(off, tok)
            self.ev.count("pswpout")
            self.ev.count("pgpgout", 4)
        f.flags[pfn] = int(f.flags[pfn]) & ~(PG_dirty | PG_referenced)
        return PAGEOUT_SYNC if tok == 0 else PAGEOUT_ASYNC
