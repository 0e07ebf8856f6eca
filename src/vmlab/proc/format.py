"""The /proc text renderers in one namespace.

Pure functions from plain Python data to the exact text Linux 6.18 prints (x86-64, the
configuration of the host described in docs/notes/procfs.md). The implementation is split by
file: maps.py (fs/proc/task_mmu.c: show_map_vma), smaps.py (show_smap, show_smaps_rollup,
smaps_account), status.py (task_mem, fs/proc/array.c), meminfo.py (fs/proc/meminfo.c),
vmstat.py (mm/vmstat.c) and pagemap.py (pagemap entries, fs/proc/page.c). The VM_* flag
values are in vmlab.mm.vmflags.
"""

from __future__ import annotations

from .maps import (NAME_PAD_WIDTH, SHARED_ANON_NAME, MapsLine, escape_path, path_name,
                   perms_from_vm_flags, render_maps, render_maps_line, sysv_shm_name)
from .meminfo import (MEMINFO_CONSTANTS, MEMINFO_COUNT_FIELDS, MEMINFO_FIELDS, meminfo_line,
                      pages_to_kb, render_meminfo)
from .pagemap import (KPageState, PagemapEntry, decode_pagemap_entry, guard_entry, kpagecount,
                      pagemap_entry, stable_page_flags, swap_frame)
from .smaps import (PSS_SHIFT, VMFLAG_MNEMONICS, SmapsStats, render_smap_stats,
                    render_smaps_entry, render_smaps_rollup, render_vmflags, smaps_account,
                    smaps_page_accumulate, smaps_shmem_swap, smaps_swap_pte, stats_from_kb,
                    vmflag_table)
from .status import (STATUS_LINES, StatusInfo, TaskMem, render_status, render_task_mem,
                     task_mem_values)
from .vmstat import VMSTAT_FIELDS, render_vmstat

__all__ = [
    "NAME_PAD_WIDTH", "SHARED_ANON_NAME", "MapsLine", "escape_path", "path_name",
    "perms_from_vm_flags", "render_maps", "render_maps_line", "sysv_shm_name",
    "MEMINFO_CONSTANTS", "MEMINFO_COUNT_FIELDS", "MEMINFO_FIELDS", "meminfo_line", "pages_to_kb",
    "render_meminfo", "KPageState", "PagemapEntry", "decode_pagemap_entry", "guard_entry",
    "kpagecount", "pagemap_entry", "stable_page_flags", "swap_frame", "PSS_SHIFT",
    "VMFLAG_MNEMONICS", "SmapsStats", "render_smap_stats", "render_smaps_entry",
    "render_smaps_rollup", "render_vmflags", "smaps_account", "smaps_page_accumulate",
    "smaps_shmem_swap", "smaps_swap_pte", "stats_from_kb", "vmflag_table", "STATUS_LINES",
    "StatusInfo", "TaskMem", "render_status", "render_task_mem", "task_mem_values",
    "VMSTAT_FIELDS", "render_vmstat",
]
