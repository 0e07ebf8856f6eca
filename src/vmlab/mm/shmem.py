"""Shmem objects: the "anonymous inode" of the second seed, as Linux built it (mm/shmem.c).

Mark Hemment's 1997 proposal (seeds/001) gives a shared anonymous mapping an object of its
own that records, per page offset, where the page is: in core (a frame), on swap (an entry),
or not yet allocated. Linux's shmem/tmpfs inode is that object: MAP_SHARED|MAP_ANONYMOUS calls
shmem_zero_setup(), which creates an unlinked inode named "/dev/zero (deleted)"; SysV shm
segments and tmpfs files are the same thing with other names.

A ShmemObject holds, per page index:
    pages[i]   pfn of the page in the object's page cache, -1 if none (o)
    swap[i]    the swap PTE value of the page's slot when it is out, 0 if none (o: swap layer)
A page is in at most one of the two. Each cached page holds one frame reference (the page
cache's), the frame's ``mapping`` is this object's owner id and ``index`` is i, and the frame
is PG_swapbacked (never PG_anon): smaps shows it as shmem, not Anonymous.

Lifetime: ``refs`` counts VMAs (and later open files and shm segments) using the object; when
it reaches zero the object's pages and swap slots are released (shmem_evict_inode).
``i_mmap`` is the set of VMAs mapping the object — the reverse map for its pages
(mm/rmap.c: rmap_walk_file walks i_mmap).

Never use the zero page for a shared mapping (seeds/001 explains why: a later write by another
process would have to find and fix every PTE that mapped it).
"""

from __future__ import annotations

import numpy as np

from .filemap import AddressSpace


class ShmemObject(AddressSpace):
    """A tmpfs inode. Pages are swap-backed; ``swap[i]`` holds the swap entry of an index
    whose page is on swap. Never uses the zero page."""

    is_shmem = True
    swap_backed = True

    def __init__(self, ino: int, size: int, name: str = "/dev/zero", dev: tuple[int, int] = (0, 1)):
        super().__init__(ino, size, name, dev)
        from ..constants import F_SEAL_SEAL
        self.seals = F_SEAL_SEAL        # shmem_get_inode(): sealing is off unless a memfd asks


# --- swap (mm/shmem.c: shmem_writeout, shmem_swapin_folio) -------------------------------------
def shmem_writeout(system, obj: ShmemObject, pfn: int) -> bool:
    """Move a cached shmem page to the swap cache: the object now holds the slot (count 1)
    where it held the page; the page keeps one reference (the swap cache's instead of the
    page cache's) and is written by the caller. False if no swap slot is free."""
    from ..hw import pte as P
    slot = system.swap.get_swap_page()
    if slot is None:
        return False
    t, off = slot
    f = system.frames
    i = int(f.index[pfn])
    assert int(obj.pages[i]) == pfn, "shmem_writeout: page not in its object"
    obj.pages[i] = -1
    obj.nrpages -= 1
    f.refcount[pfn] -= 1                      # the page cache's reference ...
    system.swap.add_to_cache(t, off, pfn)     # ... becomes the swap cache's
    system.swap.areas[t].swap_map[off] += 1   # swap_shmem_alloc(): the object's reference
    obj.swap[i] = np.uint64(P.swp_entry_to_pte(t, off))
    obj.nrswapped += 1
    f.mapping[pfn] = -1
    return True


def shmem_swapin(system, obj: ShmemObject, i: int, read_page) -> int:
    """shmem_swapin_folio(): bring object page ``i`` back from swap into the page cache.

    The page comes from the swap cache or is read (``read_page(t, off)`` -> pfn, a major
    fault for the caller to count); it then leaves the swap cache, the object's slot
    reference is dropped, and the page is cached again, dirty. Returns (pfn, major)."""
    from ..hw import pte as P
    from ..hw.frames import PG_dirty
    e = int(obj.swap[i])
    t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
    pfn = system.swap.cache_lookup(t, off)
    major = pfn < 0
    if major:
        pfn = read_page(t, off)
    f = system.frames
    system.swap.delete_from_cache(pfn)
    obj.swap[i] = 0
    obj.nrswapped -= 1
    system.swap.free(t, off)
    obj.pages[i] = pfn
    obj.nrpages += 1
    f.refcount[pfn] += 1
    f.mapping[pfn] = obj.owner_id
    f.index[pfn] = i
    f.flags[pfn] |= np.uint32(PG_dirty)
    return pfn, major
