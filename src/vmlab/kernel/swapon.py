"""swapon(2) and swapoff(2) (mm/swapfile.c).

swapon: a new area of ``size`` bytes (one header slot + usable slots) with the given priority,
or the next lower negative one (-2, -3, ...) when none is given; 32 areas at most (EPERM, as
MAX_SWAPFILES). An area too small to hold a page past its header is EINVAL.

swapoff: first a memory check — the pages on the area must fit in memory plus what can
still be reclaimed elsewhere, else ENOMEM and nothing changes. (Linux's check,
security_vm_enough_memory_mm(p->pages), passes in the default overcommit mode unless the
area is larger than RAM plus all swap; the model's is stricter, so that most swapoffs that
cannot succeed fail up front instead of through the OOM killer.) Then the area stops giving
out slots (SWP_WRITEOK cleared) and try_to_unuse() brings every page on it back: each shmem
object's entries into its page cache (shmem_unuse), each swap PTE of every process replaced
by the page, read back if it is not in the swap cache (unuse_pte maps it read-only and old;
RSS MM_SWAPENTS -1, MM_ANONPAGES +1), and the cached pages whose slot nobody refers to any
more leave the swap cache dirty (folio_free_swap) — repeated until the area is empty, since
reclaim may meanwhile push a page that is still in this area's swap cache back into its slot.
An allocation that needs the OOM killer kills the swapoff caller (it is the OOM origin):
EINTR, and the area is put back. Otherwise the area is then gone.
"""

from __future__ import annotations

import errno

import numpy as np

from ..constants import PAGE_SIZE
from ..errors import syscall_error
from ..hw import pte as P


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
    swap.deactivate(area)                            # SWP_WRITEOK cleared: no new slots from it
    try:
        try_to_unuse(kernel, area)
    except SwapoffKilled:
        # SYSCALL_DEFINE1(swapoff): try_to_unuse failed -> reinsert_swap_info(); the pages
        # already brought back stay in memory, the rest stays on the area
        swap.reinsert(area)
        raise syscall_error(errno.EINTR, "swapoff: killed by the OOM killer while bringing "
                                         "pages back (the area stays on)") from None
    swap.areas[area.type] = None


class SwapoffKilled(Exception):
    """The OOM killer chose the swapoff caller (see _oom_origin)."""


def _oom_origin(kernel, op):
    """Run an allocation of swapoff's. swapoff runs with set_current_oom_origin()
    (mm/swapfile.c), and mm/oom_kill.c:oom_evaluate_task() selects an oom_task_origin() task
    ahead of every other (points LONG_MAX): when reclaim cannot free a frame, the OOM killer
    kills the swapoff caller, try_to_unuse() sees the fatal signal and returns -EINTR. The
    caller of Machine.swapoff is outside the simulated processes, so none of them dies."""
    from ..hw.frames import OutOfFrames
    try:
        return op()
    except OutOfFrames:
        kernel.sys.events.count("oom_kill")
        raise SwapoffKilled() from None


MAX_UNUSE_PASSES = 64


def try_to_unuse(kernel, area) -> None:
    """try_to_unuse() (mm/swapfile.c): shmem_unuse(), unuse_mm() of every mm, then
    folio_free_swap() of every page still in the area's swap cache — retried until the area
    holds nothing (inuse_pages 0). Reclaim during a pass may put a page whose slot is still
    referenced back into that slot (the page is still in the swap cache of this area), so a
    pass can leave work for the next; pages whose every reference is gone leave the swap
    cache and can only be swapped to another area.

    When memory cannot hold the pages of a whole pass, reclaim keeps writing the first mms'
    pages back to their old slots while the last mms are being unused, and passes over every
    slot make no progress. A pass that made none halves the window of slots the next one
    works on (the lowest offsets still in use), down to one slot: every reference to a slot
    is then resolved before reclaim can take its page, and the page leaves the area — what
    the per-entry loop of Linux before 5.1 did for every slot. Linux retries until a fatal
    signal; the model asserts progress within MAX_UNUSE_PASSES passes at one slot."""
    sysm = kernel.sys
    t = area.type
    from ..mm.swap_state import folio_free_swap, read_swap_page
    read_page = _page_getter(kernel, t, read_swap_page)
    best, stalled, window = area.inuse, 0, None
    while area.inuse:
        if window is None:
            chosen, get_page = None, read_page
        else:
            used = np.flatnonzero(area.swap_map[1:] != 0)[:window] + 1
            chosen = set(used.tolist())
            get_page = (lambda off, _c=chosen: read_page(off) if off in _c else -1)
        for obj in kernel.shmem_objects():
            if not kernel.design.unuse_object(obj, t, get_page):
                _unuse_shmem(kernel, obj, t, chosen)
        for task in kernel.live_tasks():
            kernel.design.unuse_mm(task.mm, t, get_page)
        for off in np.flatnonzero(area.cache >= 0).tolist():
            pfn = int(area.cache[off])
            if folio_free_swap(sysm, pfn) and int(sysm.frames.mapcount[pfn]) == 0 \
                    and int(sysm.frames.refcount[pfn]) == 0:
                sysm.lru.remove(pfn)                 # nobody holds it: freed with its last reference
                sysm.frames.free(pfn)
        if area.inuse < best:
            best, stalled = area.inuse, 0
        elif window is None or window > 1:
            window = max(1, (area.inuse if window is None else window) // 2)
        else:
            stalled += 1
            assert stalled < MAX_UNUSE_PASSES, "swapoff: try_to_unuse makes no progress"


def _page_getter(kernel, t: int, read_swap_page):
    """get_page(offset): the page of slot (t, offset), from the swap cache or read in (an
    allocation that needs the OOM killer ends swapoff: _oom_origin)."""
    sysm = kernel.sys
    f = sysm.frames

    def get_page(off: int) -> int:
        pfn = sysm.swap.cache_lookup(t, off)
        if pfn < 0:
            pfn = _oom_origin(kernel, lambda: (f.reserve(1), read_swap_page(sysm, t, off))[1])
        return pfn

    return get_page


def _unuse_shmem(kernel, obj, t: int, chosen: set | None = None) -> None:
    """shmem_unuse(): the object's entries on area t (those at offsets in ``chosen``, when
    given) come back into its page cache."""
    from ..mm.swap_state import swapin_readahead
    from ..mm.shmem import shmem_swapin
    sysm = kernel.sys
    idx = np.flatnonzero((obj.swap != 0) & (P.np_swp_type(obj.swap) == t))
    for i in idx.tolist():
        if obj.swap[i] == 0 or P.pte_swp_type(int(obj.swap[i])) != t:
            continue
        if chosen is not None and P.pte_swp_offset(int(obj.swap[i])) not in chosen:
            continue
        _oom_origin(kernel, lambda: (sysm.frames.reserve(1),
                                     shmem_swapin(sysm, obj, i, lambda tt, o: swapin_readahead(sysm, tt, o)))[1])
