"""/proc/meminfo, byte for byte as Linux 6.18 prints it on x86-64.

Follows fs/proc/meminfo.c: meminfo_proc_show() and show_val_kb(), mm/hugetlb.c:
hugetlb_report_meminfo(), arch/x86/mm/pat/set_memory.c: arch_report_meminfo(). The line set
and order are those of the 6.18.44 host (tests/proc/data/), whose configuration has
CONFIG_ZSWAP, CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_MEMORY_BALLOON, CONFIG_HUGETLB_PAGE and
x86's DirectMap lines, and has neither CONFIG_HIGHMEM, CONFIG_CMA, CONFIG_MEMORY_FAILURE
(no HardwareCorrupted:) nor CONFIG_UNACCEPTED_MEMORY (no Unaccepted:).

Every value is given in kB (the kernel shows pages << 2 for page counters), except the four
HugePages_* lines, which are plain counts. Which counter feeds each line is in
docs/notes/procfs.md.
"""

from __future__ import annotations

MEMINFO_FIELDS: tuple[str, ...] = (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached",
    "Active", "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)",
    "Unevictable", "Mlocked", "SwapTotal", "SwapFree", "Zswap", "Zswapped", "Dirty",
    "Writeback", "AnonPages", "Mapped", "Shmem", "KReclaimable", "Slab", "SReclaimable",
    "SUnreclaim", "KernelStack", "PageTables", "SecPageTables", "NFS_Unstable", "Bounce",
    "WritebackTmp", "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed",
    "VmallocChunk", "Percpu", "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped",
    "FileHugePages", "FilePmdMapped", "Balloon", "HugePages_Total", "HugePages_Free",
    "HugePages_Rsvd", "HugePages_Surp", "Hugepagesize", "Hugetlb", "DirectMap4k",
    "DirectMap2M", "DirectMap1G",
)

# Lines printed as "%5lu" counts after three spaces instead of "%8lu kB".
MEMINFO_COUNT_FIELDS = frozenset({"HugePages_Total", "HugePages_Free", "HugePages_Rsvd",
                                  "HugePages_Surp"})

# Values that depend only on the kernel's configuration on x86-64 with 4-level paging:
# VMALLOC_TOTAL >> 10 (32 TiB - 1 kB) and the 2 MiB default huge page size.
MEMINFO_CONSTANTS: dict[str, int] = {"VmallocTotal": 34359738367, "Hugepagesize": 2048}

_KNOWN = frozenset(MEMINFO_FIELDS)


def meminfo_line(name: str, value: int) -> str:
    """One line: the label padded to 16 columns, then "%8lu kB" (or "   %5lu" for counts)."""
    label = name + ":"
    if name in MEMINFO_COUNT_FIELDS:
        return f"{label:<16}   {value:>5}\n"
    return f"{label:<16}{value:>8} kB\n"


def render_meminfo(values: dict[str, int], *, defaults: dict[str, int] | None = None) -> str:
    """The whole file. Lines missing from ``values`` come from ``defaults`` (by default
    MEMINFO_CONSTANTS), else print 0. A name the kernel does not print is an error."""
    unknown = set(values) - _KNOWN
    if unknown:
        raise ValueError(f"render_meminfo: not /proc/meminfo lines: {sorted(unknown)}")
    base = MEMINFO_CONSTANTS if defaults is None else defaults
    out = []
    for name in MEMINFO_FIELDS:
        v = values.get(name, base.get(name, 0))
        if v < 0:
            raise ValueError(f"render_meminfo: {name} is negative ({v})")
        out.append(meminfo_line(name, v))
    return "".join(out)


def pages_to_kb(pages: int) -> int:
    """show_val_kb(): pages << (PAGE_SHIFT - 10)."""
    return pages << 2
