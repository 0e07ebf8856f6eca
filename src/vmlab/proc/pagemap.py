"""/proc/PID/pagemap entries and /proc/kpageflags words, as Linux 6.18 encodes them.

pagemap follows fs/proc/task_mmu.c: make_pme(), pte_to_pagemap_entry(), pagemap_pte_hole()
and pagemap_read() (``show_pfn``: only a reader with CAP_SYS_ADMIN sees frame numbers and
swap locations). kpageflags follows fs/proc/page.c: stable_page_flags(); kpagecount is
kpagecount_read(). Bit numbers come from vmlab.constants (include/uapi/linux/
kernel-page-flags.h and the kernel-internal KPF_* of include/linux/kernel-page-flags.h).

Pure: the collector decides, per page, which of the inputs are true (docs/notes/procfs.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import constants as C

MAX_SWAPFILES_SHIFT = C.PM_SWAP_TYPE_BITS     # 5: swap type in frame bits 0-4

# Non-swap entries take the top swap "types" (include/linux/swap.h): SWP_PTE_MARKER is always
# the last one, (1 << MAX_SWAPFILES_SHIFT) - 1 = 31; the marker kind is the offset
# (include/linux/swapops.h: PTE_MARKER_*).
SWP_PTE_MARKER = 31
PTE_MARKER_UFFD_WP = 1 << 0
PTE_MARKER_POISONED = 1 << 1
PTE_MARKER_GUARD = 1 << 2


def swap_frame(swap_type: int, swap_offset: int) -> int:
    """The frame field of a swapped entry: type in bits 0-4, offset from bit 5."""
    if not 0 <= swap_type < (1 << MAX_SWAPFILES_SHIFT):
        raise ValueError(f"swap_frame: swap type {swap_type} out of range")
    return (swap_type | (swap_offset << MAX_SWAPFILES_SHIFT)) & C.PM_PFRAME_MASK


def pagemap_entry(present: bool, swapped: bool, file_or_shared: bool, exclusive: bool,
                  soft_dirty: bool = False, pfn: int = 0, swap_type: int = 0,
                  swap_offset: int = 0, *, uffd_wp: bool = False, guard: bool = False,
                  show_pfn: bool = True) -> int:
    """make_pme() for one page.

    * present: PM_PRESENT and, if ``show_pfn``, the pfn (the zero page shows its pfn too).
    * swapped: PM_SWAP and, if ``show_pfn``, ``swap_frame(swap_type, swap_offset)``. A guard
      region (MADV_GUARD_INSTALL) is a PTE marker: swapped with type 31 and offset
      PTE_MARKER_GUARD, plus PM_GUARD_REGION.
    * file_or_shared: PM_FILE — the PTE maps a folio that is not anonymous (page cache,
      shmem, shared anonymous memory). Never for the zero page or a swapped anonymous page.
    * exclusive: PM_MMAP_EXCLUSIVE — only for a present page whose mapcount is exactly 1.
    * show_pfn False (a reader without CAP_SYS_ADMIN): the frame field is 0; the flag bits are
      unchanged.
    """
    if present and swapped:
        raise ValueError("pagemap_entry: an entry cannot be both present and swapped")
    if exclusive and not present:
        raise ValueError("pagemap_entry: PM_MMAP_EXCLUSIVE is only reported for present pages")
    flags = 0
    frame = 0
    if present:
        flags |= C.PM_PRESENT
        if show_pfn:
            frame = pfn
    elif swapped:
        flags |= C.PM_SWAP
        if show_pfn:
            frame = swap_frame(swap_type, swap_offset)
    if file_or_shared:
        flags |= C.PM_FILE
    if exclusive:
        flags |= C.PM_MMAP_EXCLUSIVE
    if soft_dirty:
        flags |= C.PM_SOFT_DIRTY
    if uffd_wp:
        flags |= C.PM_UFFD_WP
    if guard:
        flags |= C.PM_GUARD_REGION
    return (frame & C.PM_PFRAME_MASK) | flags


def guard_entry(show_pfn: bool = True) -> int:
    """What a guard-region page reads as (host: 0x440000000000009f as root)."""
    return pagemap_entry(False, True, False, False, swap_type=SWP_PTE_MARKER,
                         swap_offset=PTE_MARKER_GUARD, guard=True, show_pfn=show_pfn)


@dataclass(frozen=True)
class PagemapEntry:
    """A decoded pagemap word."""

    present: bool
    swapped: bool
    file_or_shared: bool
    exclusive: bool
    soft_dirty: bool
    uffd_wp: bool
    guard: bool
    frame: int

    @property
    def pfn(self) -> int | None:
        return self.frame if self.present else None

    @property
    def swap_type(self) -> int | None:
        return self.frame & ((1 << MAX_SWAPFILES_SHIFT) - 1) if self.swapped else None

    @property
    def swap_offset(self) -> int | None:
        return self.frame >> MAX_SWAPFILES_SHIFT if self.swapped else None


def decode_pagemap_entry(e: int) -> PagemapEntry:
    return PagemapEntry(present=bool(e & C.PM_PRESENT), swapped=bool(e & C.PM_SWAP),
                        file_or_shared=bool(e & C.PM_FILE),
                        exclusive=bool(e & C.PM_MMAP_EXCLUSIVE),
                        soft_dirty=bool(e & C.PM_SOFT_DIRTY), uffd_wp=bool(e & C.PM_UFFD_WP),
                        guard=bool(e & C.PM_GUARD_REGION), frame=e & C.PM_PFRAME_MASK)


@dataclass(frozen=True)
class KPageState:
    """The page-flag state stable_page_flags() looks at, for one pfn (order-0 folios).

    The booleans named after page flags mean that flag is set (PG_locked, PG_referenced, ...).
    Aliases the kernel uses: ``anon_exclusive`` is PG_anon_exclusive, which is PG_owner_2 (it
    shows as KPF_OWNER_2, bit 34; page-cache folios use the same bit as PG_mappedtodisk);
    ``swapcache`` is PG_swapcache, which is PG_owner_priv_1 on a swap-backed folio (so it
    shows as KPF_SWAPCACHE *and* KPF_OWNER_PRIVATE). ``mapped`` is folio_mapped() (mapcount
    > 0; never true for the zero page, which is not rmap-counted). ``buddy``: the page is free
    in the buddy allocator (pages on the per-CPU free lists show no flags at all on the host).
    """

    mapped: bool = False
    anon: bool = False
    ksm: bool = False
    zero_page: bool = False
    buddy: bool = False
    pgtable: bool = False
    slab: bool = False
    offline: bool = False
    idle: bool = False
    locked: bool = False
    dirty: bool = False
    uptodate: bool = False
    writeback: bool = False
    lru: bool = False
    referenced: bool = False
    active: bool = False
    reclaim: bool = False
    swapcache: bool = False
    swapbacked: bool = False
    unevictable: bool = False
    mlocked: bool = False
    reserved: bool = False
    anon_exclusive: bool = False      # PG_owner_2 (PG_mappedtodisk on page-cache folios)
    private: bool = False
    private_2: bool = False
    owner_priv_1: bool = False        # set with swapcache (same bit)
    arch_1: bool = False


def stable_page_flags(page: KPageState | None) -> int:
    """stable_page_flags(): the /proc/kpageflags word. None (no struct page for the pfn,
    e.g. a hole or offline memory) gives KPF_NOPAGE alone."""
    if page is None:
        return 1 << C.KPF_NOPAGE
    u = 0

    def put(cond: bool, bit: int) -> None:
        nonlocal u
        if cond:
            u |= 1 << bit

    put(page.mapped, C.KPF_MMAP)
    put(page.anon, C.KPF_ANON)
    put(page.anon and page.ksm, C.KPF_KSM)
    put(page.zero_page, C.KPF_ZERO_PAGE)
    put(page.buddy, C.KPF_BUDDY)
    put(page.offline, C.KPF_OFFLINE)
    put(page.pgtable, C.KPF_PGTABLE)
    put(page.slab, C.KPF_SLAB)
    put(page.idle, C.KPF_IDLE)
    put(page.locked, C.KPF_LOCKED)
    put(page.dirty, C.KPF_DIRTY)
    put(page.uptodate, C.KPF_UPTODATE)
    put(page.writeback, C.KPF_WRITEBACK)
    put(page.lru, C.KPF_LRU)
    put(page.referenced, C.KPF_REFERENCED)
    put(page.active, C.KPF_ACTIVE)
    put(page.reclaim, C.KPF_RECLAIM)
    put(page.swapcache and page.swapbacked, C.KPF_SWAPCACHE)   # PG_swapcache needs swapbacked
    put(page.swapbacked, C.KPF_SWAPBACKED)
    put(page.unevictable, C.KPF_UNEVICTABLE)
    put(page.mlocked, C.KPF_MLOCKED)
    put(page.reserved, C.KPF_RESERVED)
    put(page.anon_exclusive, C.KPF_OWNER_2)
    put(page.private, C.KPF_PRIVATE)
    put(page.private_2, C.KPF_PRIVATE_2)
    put(page.owner_priv_1 or page.swapcache, C.KPF_OWNER_PRIVATE)
    put(page.arch_1, C.KPF_ARCH)
    return u


# The zero page as the host shows it: PG_reserved and KPF_ZERO_PAGE (KPF_REFERENCED too, once
# something has called mark_page_accessed() on it, e.g. MADV_POPULATE_READ). kpagecount 0.
ZERO_PAGE_STATE = KPageState(zero_page=True, reserved=True)
# A page-table page: KPF_PGTABLE only, kpagecount 0.
PGTABLE_PAGE_STATE = KPageState(pgtable=True)
# A free page in the buddy allocator: KPF_BUDDY only, kpagecount 0.
FREE_PAGE_STATE = KPageState(buddy=True)


def kpagecount(mapcount: int, *, typed_page: bool = False) -> int:
    """kpagecount_read(): the page's mapcount (folio_precise_page_mapcount()), not its
    refcount. Pages whose mapcount field holds a page type (page tables, buddy pages) and the
    zero page read 0; a missing pfn reads 0."""
    return 0 if typed_page else max(0, mapcount)
