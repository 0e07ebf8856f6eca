"""swapon(2) and swapoff(2) (mm/swapfile.c).

swapon: a new area of ``size`` bytes (one header slot + usable slots) with the given priority,
or the next lower negative one (-2, -3, ...) when none is given; 32 areas at most (EPERM, as
MAX_SWAPFILES). An area too small to hold a page past its header is EINVAL.

swapoff (try_to_unuse): first the commit check Linux makes — the pages on the area must fit in
memory plus what can still be reclaimed elsewhere, else ENOMEM and nothing changes. Then the
area stops giving out slots and every page on it comes back: each swap PTE of every process
is replaced by the page, read back if it is not in the swap cache (unuse_pte maps it
read-only and old; RSS MM_SWAPENTS -1, MM_ANONPAGES +1), each shmem object's entries are
brought back into its page cache, and the cached pages leave the swap cache dirty. The area
is then gone.
"""

from __future__ import annotations

import errno

import numpy as np

from ..constants import PAGE_SIZE
from ..errors import syscall_error
from ..hw import pte as P
from ..hw.frames import PG_dirty


def do_swapon(kernel, size: int, priority: int | None, name: str | None):
    swap = kernel.sys.swap
    nslots = size // PAGE_SIZE
    if nslots < 2:
        raise syscall_error(errno.EINVAL, "swapon: the area must hold the header and at least one page")
    if len(swap.live_areas()) >= P.MAX_SWAPFILES - 1:
        raise syscall_error(errno.EPERM, "swapon: too many swap areas")
    area = swap.add_area(nslots, priority, name or "")
    if not area.name:
        area.name = f"/dev/vmswap{area.type}"
    return area


def _find_area(kernel, which):
    swap = kernel.sys.swap
    for a in swap.live_areas():
        if which == a.type or which == a.name:
            return a
    raise syscall_error(errno.EINVAL, f"swapoff: {which!r} is not an active swap area")


def do_swapoff(kernel, which) -> None:
    sysm = kernel.sys
    swap = sysm.swap
    area = _find_area(kernel, which)
    in_swap_only = int(((area.swap_map[1:] & 0x3F) != 0).sum() - (area.cache[1:] >= 0).sum())
    in_swap_only = max(0, in_swap_only)
    other_free = swap.free_pages() - (area.pages - area.inuse)
    sizes = sysm.lru.sizes()
    reclaimable = sizes[2] + sizes[3] + min(other_free, sizes[0] + sizes[1])
    if in_swap_only > sysm.frames.nfree + reclaimable:
        raise syscall_error(errno.ENOMEM, "swapoff: not enough memory to bring the area's pages back")
    area.active = False                              # no new slots from it
    t = area.type
    from ..mm.swap_state import read_swap_page
    for task in kernel.live_tasks():
        _unuse_mm(kernel, task, t, read_swap_page)
    for obj in kernel.shmem_objects():
        if not kernel.design.unuse_object(obj, t, _page_getter(kernel, t, read_swap_page)):
            _unuse_shmem(kernel, obj, t)
    for off in np.flatnonzero(area.cache >= 0).tolist():
        pfn = int(area.cache[off])
        swap.delete_from_cache(pfn)
        sysm.frames.flags[pfn] |= np.uint32(PG_dirty)
        if int(sysm.frames.mapcount[pfn]) == 0 and int(sysm.frames.refcount[pfn]) == 0:
            sysm.lru.remove(pfn)
            sysm.frames.free(pfn)
    assert area.inuse == 0, "swapoff: slots still in use after try_to_unuse"
    swap.areas[t] = None


def _page_getter(kernel, t: int, read_swap_page):
    """get_page(offset): the page of slot (t, offset), from the swap cache or read in, with
    the OOM killer behind the allocation."""
    from .oom import with_oom_retry
    sysm = kernel.sys
    f = sysm.frames

    def get_page(off: int) -> int:
        pfn = sysm.swap.cache_lookup(t, off)
        if pfn < 0:
            pfn = with_oom_retry(kernel, None, lambda: (f.reserve(1), read_swap_page(sysm, t, off))[1])
        return pfn

    return get_page


def _unuse_mm(kernel, task, t: int, read_swap_page) -> None:
    """unuse_mm(): the design brings back every page of area t this mm refers to; a page
    that is not in the swap cache is read, with the OOM killer behind the allocation."""
    kernel.design.unuse_mm(task.mm, t, _page_getter(kernel, t, read_swap_page))


def _unuse_shmem(kernel, obj, t: int) -> None:
    """shmem_unuse(): the object's entries on area t come back into its page cache."""
    from ..mm.swap_state import swapin_readahead
    from ..mm.shmem import shmem_swapin
    from .oom import with_oom_retry
    sysm = kernel.sys
    idx = np.flatnonzero((obj.swap != 0) & (P.np_swp_type(obj.swap) == t))
    for i in idx.tolist():
        with_oom_retry(kernel, None, lambda: (sysm.frames.reserve(1),
                                              shmem_swapin(sysm, obj, i, lambda tt, o: swapin_readahead(sysm, tt, o)))[1])
