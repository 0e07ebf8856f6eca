"""The swap cache's page operations (mm/swap_state.c, mm/swapfile.c), design-neutral.

  swapin_readahead()    read a slot into the swap cache, plus its cluster readahead window
  read_swap_page()      __read_swap_cache_async() + swap_read_folio() for one slot
  folio_free_swap()     a cached page gives up its slot when nothing else references it
  free_swap_and_cache() a PTE's reference to a slot goes away (zap)

Used by the designs' swap-in paths, by shmem, and by swapoff.
"""

from __future__ import annotations

import numpy as np

from ..hw.frames import PG_dirty, PG_readahead, PG_swapbacked, PG_uptodate

_U32 = np.uint32


def swapin_readahead(sysm, t: int, off: int) -> int:
    """Read slot (t, off) into the swap cache with cluster readahead; returns the page's pfn.

    swap_cluster_readahead(): the slots of the aligned window of 2^page_cluster around the
    target that are in use and not cached are read too, into free frames only (readahead
    never reclaims), flagged PG_readahead; the target is read first.
    """
    pfn = read_swap_page(sysm, t, off)
    area = sysm.swap.areas[t]
    win = 1 << sysm.config.page_cluster
    lo = off & ~(win - 1)
    for o in range(max(lo, 1), min(lo + win, area.nslots)):
        if o == off or area.cache[o] >= 0 or not int(area.swap_map[o]) & 0x3F:
            continue
        if sysm.frames.nfree <= sysm.watermarks()["min"]:
            break
        ra = read_swap_page(sysm, t, o)
        sysm.frames.flags[ra] |= _U32(PG_readahead)
        sysm.events.count("swap_ra")
    return pfn


def read_swap_page(sysm, t: int, off: int) -> int:
    """__read_swap_cache_async() + swap_read_folio(): a new page holding the slot's data,
    in the swap cache and on the LRU (active if the workingset says it was evicted recently)."""
    f = sysm.frames
    area = sysm.swap.areas[t]
    if area.zero[off]:
        pfn = f.alloc(content=0)
        sysm.events.count("swpin_zero")
    else:
        pfn = f.alloc(content=0)
        f.content[pfn] = area.dev.read(off)
        sysm.events.count("pswpin")
        sysm.events.count("pgpgin", 4)
    f.flags[pfn] = _U32(PG_swapbacked | PG_uptodate)
    f.refcount[pfn] = 0
    shadow = int(area.shadow[off])
    sysm.swap.add_to_cache(t, off, pfn)
    active = sysm.lru.workingset_refault(shadow, anon=True) if shadow else False
    sysm.lru.add(pfn, active=active)
    return pfn


def folio_free_swap(sysm, pfn: int) -> bool:
    """folio_free_swap(): drop a cached page's slot if no swap PTE or object still needs it."""
    f = sysm.frames
    t, off = sysm.swap.entry_of(f.private[pfn])
    if sysm.swap.count(t, off):
        return False
    sysm.swap.delete_from_cache(pfn)
    f.flags[pfn] |= _U32(PG_dirty)
    return True


def free_swap_and_cache(sysm, t: int, off: int) -> None:
    """free_swap_and_cache(): one reference less; an unmapped cached page whose slot is now
    unused leaves the cache and is freed."""
    swap = sysm.swap
    f = sysm.frames
    pfn = swap.cache_lookup(t, off)
    swap.free(t, off)
    if pfn >= 0 and swap.count(t, off) == 0 and int(f.mapcount[pfn]) == 0:
        swap.delete_from_cache(pfn)
        if int(f.refcount[pfn]) == 0:
            sysm.lru.remove(pfn)
            f.free(pfn)
