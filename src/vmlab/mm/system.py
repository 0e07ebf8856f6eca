"""The machine-wide memory state every design works on (Linux's pglist_data plus globals).

A System bundles what is not per-process: the frame table, the page-table pool, the LRU
lists, the vmstat event counters, the kernel configuration the model runs with, and the
inode-number counter for shmem objects. It is created by the Machine and handed to the
design, so designs (and everything below api/) never import the Machine.

KernelConfig records the compile-time and sysctl choices that change what /proc shows. The
defaults are those of the reference host vmlab is validated on (Linux 6.18, x86-64, no
CONFIG_MEM_SOFT_DIRTY, no MGLRU, fault_around_bytes 65536, overcommit_memory 0,
max_map_count 65530); ``vmlab verify`` reads the real values from the host it runs on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..hw.frames import FrameTable
from ..hw.pagetable import PageTables
from .lru import LRU
from .swapfile import SwapSystem
from .vmstat import VMEvents


@dataclass
class KernelConfig:
    soft_dirty: bool = False          # CONFIG_MEM_SOFT_DIRTY: VM_SOFTDIRTY, pagemap bit 55, "sd"
    fault_around_bytes: int = 65536   # /sys/kernel/debug/fault_around_bytes
    overcommit_memory: int = 0        # vm.overcommit_memory
    overcommit_ratio: int = 50        # vm.overcommit_ratio (CommitLimit, mode 2)
    max_map_count: int = 65530        # vm.max_map_count
    rlimit_memlock: int = 8 << 20     # RLIMIT_MEMLOCK soft limit (bytes); root ignores it
    rlimit_data: int = (1 << 64) - 1  # RLIMIT_DATA soft limit (bytes): unlimited
    rlimit_stack: int = 8 << 20       # RLIMIT_STACK (placement of mmap_base)
    capable_ipc_lock: bool = True     # the simulated processes run as root (CAP_IPC_LOCK)
    stack_guard_gap: int = 256 << 12  # stack_guard_gap (boot parameter), 1 MiB
    mmap_min_addr: int = 4096         # vm.mmap_min_addr on the reference host
    capable_sys_rawio: bool = True    # root may MAP_FIXED below mmap_min_addr
    pkeys: bool = True                # the CPU has PKU: exec-only mappings are unreadable
                                      # (SEGV_PKUERR) and smaps shows ProtectionKey:
    watermark_scale_factor: int = 10  # vm.watermark_scale_factor
    swappiness: int = 60              # vm.swappiness
    page_cluster: int = 3             # vm.page-cluster: swap readahead of 2^3 pages
    kernel_release: str = "6.18.44"

    @property
    def fault_around_pages(self) -> int:
        return max(1, self.fault_around_bytes >> 12)


@dataclass
class System:
    frames: FrameTable
    pagetables: PageTables
    config: KernelConfig
    events: VMEvents = field(default_factory=VMEvents)
    lru: LRU = None  # type: ignore[assignment]
    next_ino: int = 1000
    committed_pages: int = 0       # vm_committed_as (Committed_AS), in pages, but for the
                                   # per-page charge of noreserve shmem (committed_as())

    swap: SwapSystem = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.lru is None:
            self.lru = LRU(self.frames, self.events)
        if self.swap is None:
            self.swap = SwapSystem(self.frames)
        self.lru.swap_free = self.swap.free_pages

    def watermarks(self) -> dict[str, int]:
        """__setup_per_zone_wmarks() for the machine's single zone, in pages.

        min_free_kbytes = clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144)
        (calculate_min_free_kbytes); min = that in pages; each step above it is
        max(min / 4, managed * watermark_scale_factor / 10000).
        """
        managed = self.frames.nframes
        kbytes = managed * 4
        mfk = min(max(math.isqrt(kbytes * 16), 128), 262144)
        # Linux never runs on a few MiB; the 128 kB floor would reserve all of a tiny model
        # machine, so the minimum is capped at 1/32 of RAM (docs/deviations.md)
        wmin = min(mfk >> 2, managed // 32)
        step = max(wmin >> 2, managed * self.config.watermark_scale_factor // 10000)
        return {"min": wmin, "low": wmin + step, "high": wmin + 2 * step, "min_free_kbytes": mfk}

    def totalreserve_pages(self) -> int:
        """calculate_totalreserve_pages(): the high watermark (one zone, no lowmem_reserve)."""
        return self.watermarks()["high"]

    def unacct_pages(self, pages: int) -> None:
        """vm_unacct_memory()."""
        self.committed_pages -= pages

    def swap_free_entries(self, entries) -> None:
        """Release the slot references held by swap entries (swap PTE values) of a dying
        shmem object; cached pages whose slot became free leave the swap cache."""
        from ..hw import pte as P
        for e in [int(x) for x in entries]:
            t, off = P.pte_swp_type(e), P.pte_swp_offset(e)
            pfn = self.swap.cache_lookup(t, off)
            self.swap.free(t, off)
            if pfn >= 0 and self.swap.count(t, off) == 0 and int(self.frames.mapcount[pfn]) == 0:
                self.swap.delete_from_cache(pfn)
                if int(self.frames.refcount[pfn]) == 0:
                    self.lru.remove(pfn)
                    self.frames.free(pfn)

    def get_next_ino(self) -> int:
        """get_next_ino(): shmem inode numbers for /proc/PID/maps."""
        self.next_ino += 1
        return self.next_ino
