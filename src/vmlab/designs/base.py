"""The design interface: what every VM design must provide, and nothing more.

A *design* owns exactly what the seed threads argue about (see ../shared/seeds/README.md):
how a page is found and installed on a fault, what fork does to a VMA's pages, how the
mappings of a physical page are found again (the reverse map), how a page leaves for swap and
comes back, and what all of that costs in metadata. Everything else — VMAs and their tree,
the system-call logic, argument checking, /proc rendering — is shared and lives in mm/,
kernel/, api/ and proc/, which call the design only through the methods below.

All page-level methods work on *batches*: a slice of one leaf page table inside one VMA,
given as the table's row and an array of entry indices. That is what lets a fault-in, a fork
or a zap of a gigabyte run as a few numpy operations per 512-entry table.

Contract shared by every method:
  * On entry the VMA is in its mm's tree and covers the whole batch.
  * Any method that allocates frames must allocate (and so possibly enter reclaim) *before*
    it changes any state of the batch, and re-read the batch's PTEs afterwards; if the
    allocation fails it raises hw.frames.OutOfFrames with the batch unchanged.
  * Per-mm RSS counters, frame mapcounts/refcounts/flags and the LRU are kept exact; the
    machine's check() recounts them from the page tables.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, NamedTuple

import numpy as np

from ..mm.system import System
from ..mm.vma import VMA


class Mapping(NamedTuple):
    """One place a physical page is mapped: the rmap walk's answer."""
    mm: object
    vma: VMA
    addr: int


class DesignStats(dict):
    """Cost counters common to all designs (issue: "common cost accounting").

    ptes_copied_fork, pages_copied_cow, zero_cow, pages_reused, rmap_steps, rmap_unmapped,
    ptes_scanned, faults_anon, faults_zero, faults_wp, faults_shmem, faults_swap, ...
    """

    def add(self, key: str, n: int = 1) -> None:
        self[key] = self.get(key, 0) + n


def parse_design_spec(spec: str) -> tuple[str, dict]:
    """"bsd" -> ("bsd", {}); "bsd:collapse=0,x=5" -> ("bsd", {"collapse": 0, "x": 5}).
    Values are integers (0/1 for switches) or, failing that, strings."""
    name, _, rest = spec.partition(":")
    opts: dict = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ValueError(f"design {spec!r}: expected NAME:OPTION=VALUE,..., got {item!r}")
        try:
            opts[k] = int(v, 0)
        except ValueError:
            opts[k] = v
    return name, opts


class Design(ABC):
    """Base class of every design. Subclasses set ``name`` and implement the abstract methods."""

    name: str = "?"
    description: str = ""
    # Options a design accepts ("linux:anon_vma_reuse=0"), each {name: (default, what it does)};
    # values arrive as bool/int parsed from the spec (parse_design_spec).
    OPTIONS: dict[str, tuple[object, str]] = {}

    def __init__(self, system: System, **options):
        self.sys = system
        self.frames = system.frames
        self.pt = system.pagetables
        self.stats = DesignStats()
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise ValueError(f"design {self.name}: unknown option(s) {sorted(unknown)}; "
                             f"it takes {sorted(self.OPTIONS) or 'none'}")
        self.options = {k: options.get(k, d) for k, (d, _doc) in self.OPTIONS.items()}

    @property
    def spec(self) -> str:
        """The design's name with the options that differ from their defaults."""
        diff = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in self.options.items()
                if v != self.OPTIONS[k][0]]
        return self.name + (":" + ",".join(diff) if diff else "")

    # --- address-space lifecycle --------------------------------------------------------------------
    def mm_init(self, mm, parent_mm) -> None:
        """A new address space: ``parent_mm`` is None for a new program (exec), the parent's
        mm for a fork child (called before any VMA is copied)."""

    def mm_exit(self, mm) -> None:
        """The address space is gone: every VMA zapped and closed, its page tables freed."""

    # --- VMA lifecycle ------------------------------------------------------------------------
    @abstractmethod
    def vma_split(self, vma: VMA, new: VMA) -> None:
        """``new`` was cut off ``vma`` (__split_vma): give it the anon state it needs."""

    @abstractmethod
    def anon_mergeable(self, tgt: VMA, src: VMA | None, copied_from: VMA | None) -> bool:
        """May a range join VMA ``tgt``, as far as anonymous pages go? (is_mergeable_anon_vma)

        ``src`` is the VMA currently holding the range (mprotect/mlock/madvise), or None for a
        range not mapped yet; ``copied_from`` is the VMA an mremap moves the range out of.
        """

    @abstractmethod
    def anon_state_compatible(self, a: VMA, b: VMA) -> bool:
        """May ``a`` and ``b`` end up in one VMA (a three-way merge joins them)?"""

    @abstractmethod
    def vma_dup_anon(self, dst: VMA, src: VMA) -> None:
        """``dst`` now covers pages of ``src`` (a merge moved a boundary): share src's anon state."""

    @abstractmethod
    def vma_merge(self, keep: VMA, gone: list[VMA]) -> None:
        """``keep`` absorbed the ranges of ``gone`` (already out of the tree): settle anon state."""

    @abstractmethod
    def vma_close(self, vma: VMA) -> None:
        """The VMA is going away for good, its pages already zapped (unlink_anon_vmas)."""

    # --- the anonymous reverse map's anchor ------------------------------------------------------
    @abstractmethod
    def vma_has_anon(self, vma: VMA) -> bool:
        """Has the VMA an anonymous-page anchor yet (Linux: vma->anon_vma != NULL)?"""

    @abstractmethod
    def anon_prepare(self, vma: VMA) -> int:
        """Make sure the VMA has its anchor; the owner id new exclusive anon pages record."""

    @abstractmethod
    def anon_owner_shared(self, vma: VMA) -> int:
        """The owner id for an anon page shared beyond this VMA (swap-in of a shared page)."""

    @abstractmethod
    def anon_reuse(self, vma: VMA, pfns) -> None:
        """A write reused these pages in place: they now belong to this VMA's anchor."""

    @abstractmethod
    def anon_fork(self, child_vma: VMA, parent_vma: VMA | None) -> None:
        """Give a fork child's VMA its anon state (parent_vma None: VM_WIPEONFORK, empty)."""

    # --- faults ------------------------------------------------------------------------------------
    @abstractmethod
    def fault(self, mm, vma: VMA, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        """handle_mm_fault() for PTE slots ``idx`` of leaf table ``row`` (sorted, inside ``vma``).

        ``base`` is the virtual address mapped by slot 0 of the table. On return every slot is
        present, and writable if ``write``. Counts pgfault (and pgmajfault) per fault taken.
        """

    # --- range operations ----------------------------------------------------------------------------
    @abstractmethod
    def zap_range(self, mm, vma: VMA, start: int, end: int, drop_markers: bool = True,
                  even_cows: bool = True) -> None:
        """unmap_page_range(): clear every PTE in [start, end) and drop what they referenced.
        PTE markers (guard regions) go too unless ``drop_markers`` is False (MADV_DONTNEED).
        With ``even_cows`` False (unmap_mapping_range of a hole punch) a private mapping keeps
        its anonymous COW copies and swap entries: only PTEs of the file's own pages go."""

    @abstractmethod
    def fork_vma(self, parent_mm, child_mm, vma: VMA, child_vma: VMA) -> None:
        """dup_mmap() for one VMA: anon state for the child and, if needed, its PTEs."""

    @abstractmethod
    def change_protection(self, mm, vma: VMA, start: int, end: int) -> None:
        """mprotect's change_protection() after vma.vm_flags got their new value."""

    @abstractmethod
    def move_ptes(self, mm, old_vma: VMA, old_start: int, new_vma: VMA, new_start: int,
                  length: int) -> None:
        """mremap's move_page_tables(): the mapping of [old_start, +length) moves to new_start."""

    def mlock_range(self, mm, vma: VMA, start: int, end: int) -> None:
        """mlock_fixup() is about to (un)lock the pages of [start, end) of ``vma`` after
        changing its VM_LOCKED flags: a design whose page tables may be shared between mms
        gives ``mm`` tables of its own there first. Default: nothing."""

    # --- madvise's page-level work (designs/madvops.py has the shared implementation) ---------
    @abstractmethod
    def madvise_free(self, mm, vma: VMA, start: int, end: int) -> None:
        """MADV_FREE over [start, end): lazy-free exclusive anon pages, drop swap PTEs."""

    @abstractmethod
    def madvise_cold(self, mm, vma: VMA, start: int, end: int, pageout: bool) -> list[int]:
        """MADV_COLD / MADV_PAGEOUT: age the pages mapped only here; the victims for PAGEOUT."""

    @abstractmethod
    def guard_install(self, mm, vma: VMA, start: int, end: int) -> None:
        """MADV_GUARD_INSTALL: zap the range (markers kept) and mark every empty PTE a guard."""

    @abstractmethod
    def guard_remove(self, mm, vma: VMA, start: int, end: int) -> None:
        """MADV_GUARD_REMOVE: clear the guard markers of the range."""

    # --- reverse map and reclaim ------------------------------------------------------------------------
    @abstractmethod
    def rmap_walk(self, pfn: int) -> Iterator[Mapping]:
        """Every (mm, vma, addr) that may map the page, as the design's reverse map finds it."""

    @abstractmethod
    def page_referenced(self, pfn: int) -> tuple[int, int]:
        """folio_referenced(): young PTEs found (and cleared), OR of the mapping VMAs' flags."""

    @abstractmethod
    def try_to_unmap(self, pfn: int) -> bool:
        """try_to_unmap(): replace every PTE mapping the page (swap PTE / none); True if none is left."""

    @abstractmethod
    def unuse_mm(self, mm, t: int, get_page) -> None:
        """swapoff's unuse_mm(): bring back every page of swap area ``t`` that ``mm`` refers
        to; ``get_page(offset)`` returns the page (from the swap cache or read in), or -1 for a
        slot this pass leaves for a later one (skip it)."""

    @abstractmethod
    def add_anon_rmap(self, vma: VMA, pfn: int, addr: int, exclusive: bool) -> None:
        """Account a page coming back from swap as mapped at ``addr`` (rmap + mapcount)."""

    # --- per-PTE reverse map (Linux 2.5 pte chains, FreeBSD pv entries) ------------------------
    # A design that keeps one rmap record per PTE sets tracks_ptes; the shared page-level code
    # then reports every present PTE (zero page excluded) it installs or removes, with its
    # address, to rmap_add()/rmap_remove(). With tracks_ptes False (linux) the addresses are
    # never computed and the hooks are never called.
    tracks_ptes: bool = False

    def rmap_add(self, mm, vma: VMA, addrs: np.ndarray, pfns: np.ndarray) -> None:
        """PTEs mapping ``pfns`` (one each, aligned) were installed at ``addrs`` of ``mm``,
        inside ``vma`` (page_add_rmap). The leaf tables exist; the PTE values may not be
        written yet."""

    def rmap_remove(self, mm, vma: VMA, addrs: np.ndarray, pfns: np.ndarray) -> None:
        """The PTEs at ``addrs`` of ``mm`` mapping ``pfns`` are being removed
        (page_remove_rmap); their leaf tables still exist."""

    # Does reclaim unmap pages through rmap_walk/try_to_unmap? A design without a reverse map
    # (vmscan22) sets this False: the LRU scan then leaves mapped pages where they are, and
    # only the design's scan_page_tables() unmaps them (Linux 2.2: swap_out vs shrink_mmap).
    reclaim_unmaps_by_rmap: bool = True

    def scan_page_tables(self, nr_wanted: int, sc) -> int:
        """Reclaim's page-table scan (Linux 2.2 swap_out), called at the start of every
        shrink_node(): unmap old pages found by walking processes' page tables, so that the
        LRU scan can write and free them. Returns the pages left unmapped. Default: none."""
        return 0

    def swap_relocate(self, pfn: int) -> bool:
        """pageout() found a swap-cache page whose slot lies on an area that takes no writes
        (not active): move the page to a writable slot if the design can; False keeps it."""
        return False

    def unuse_object(self, obj, t: int, get_page) -> bool:
        """swapoff of area ``t``: bring back ``obj``'s pages on it the design's way; False
        (the default) leaves it to shmem_unuse(). ``get_page(offset)`` reads a page in (-1: a
        slot this pass leaves for a later one)."""
        return False

    def shared_anon_object(self, ino: int, size: int):
        """The object behind a MAP_SHARED|MAP_ANONYMOUS mapping (shmem_zero_setup)."""
        from ..mm.shmem import ShmemObject
        return ShmemObject(ino, size)

    # --- pages and swap blocks held by the design's own structures (bsd's VM objects) ----------
    def reclaim_unmapped(self, pfn: int) -> None:
        """Reclaim is about to write or free an anonymous page it has unmapped everywhere (it
        is in the swap cache, or a clean lazy-free page). A design whose objects hold anonymous
        pages (bsd) hands the object's hold over to the swap slot here. Default: nothing."""

    def held_pages(self) -> np.ndarray:
        """Frames the design's own structures hold one reference on, besides PTEs, the page
        cache and the swap cache (check() counts them as holders). Default: none."""
        return np.empty(0, np.intp)

    def swap_refs(self) -> Iterator[int]:
        """Swap entries (PTE encoding) the design's own structures hold besides swap PTEs and
        shmem objects; check() counts each as one reference to its slot. Default: none."""
        return iter(())

    # --- costs and self-check ------------------------------------------------------------------------------
    @abstractmethod
    def metadata(self) -> dict[str, int]:
        """Bytes of design-specific metadata, by structure."""

    def check(self, mms: list) -> list[str]:
        """Design-specific invariants (rmap completeness, anchors); [] when consistent."""
        return []
