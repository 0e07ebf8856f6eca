"""Gathering /proc numbers from the model's state, to feed the pure renderers.

This is the model's side of fs/proc/task_mmu.c (smap_gather_stats, pagemap_read, task_mem),
fs/proc/meminfo.c, mm/vmstat.c and fs/proc/page.c. The rules — which PTEs and pages count
where — are those of docs/notes/procfs.md; the formats are in the sibling modules.

smaps is collected per PTE table with numpy: for the present normal pages of a slice it
computes, as arrays, exactly the per-page quantities smaps_account() uses (anon, swap-backed,
mapcount, young, referenced, dirty) and sums them the way smaps_page_accumulate() does,
including the per-page integer division of Pss. tests/proc/test_collect.py checks this
against the reference per-page function on random pages.

Node gauges (AnonPages, Mapped, Shmem, the LRU sizes, Mlocked ...) are computed from the
frame table when read, so they are always exact (Linux's may lag a second; see the note).
"""

from __future__ import annotations

import re

import numpy as np

from ..constants import PAGE_SIZE
from ..hw import pte as P
from ..hw.frames import (PG_active, PG_anon, PG_anon_exclusive, PG_buddy, PG_dirty, PG_lru,
                         PG_mlocked, PG_pgtable, PG_referenced, PG_reserved, PG_swapbacked,
                         PG_swapcache, PG_unevictable, PG_uptodate, PG_young, PG_zero, PG_ksm,
                         PG_writeback, PG_idle, ZERO_PFN)
from ..mm.lru import LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, LRU_UNEVICTABLE
from ..mm.mm_struct import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS
from ..mm.vmflags import VM_HUGEPAGE, VM_LOCKED, VM_NOHUGEPAGE, VM_SHARED, VM_WRITE
from .maps import HEAP, STACK, VSYSCALL, MapsLine, perms_from_vm_flags, render_maps
from .meminfo import render_meminfo
from .pagemap import KPageState, guard_entry, kpagecount as _kpagecount, pagemap_entry, stable_page_flags
from .smaps import PSS_SHIFT, SmapsStats, render_smaps_entry, render_smaps_rollup
from .status import StatusInfo, TaskMem, render_status
from .vmstat import render_vmstat

_U32 = np.uint32
VSYSCALL_START, VSYSCALL_END = 0xFFFFFFFFFF600000, 0xFFFFFFFFFF601000
_PAGE_PSS = PAGE_SIZE << PSS_SHIFT


# --- maps ---------------------------------------------------------------------------------------
def vma_name(mm, vma) -> tuple[str | None, int, int, int, int]:
    """(name, pgoff_bytes, dev_major, dev_minor, inode) as show_map_vma() prints them."""
    f = vma.vm_file
    if f is not None:
        return f.map_name(), vma.vm_pgoff << 12, f.dev[0], f.dev[1], f.ino
    special = getattr(vma, "special_name", None)
    if special:
        return special, 0, 0, 0, 0
    if vma.vm_start < mm.brk and vma.vm_end > mm.start_brk:
        return HEAP, 0, 0, 0, 0
    if vma.vm_start <= mm.start_stack <= vma.vm_end:
        return STACK, 0, 0, 0, 0
    return None, 0, 0, 0, 0


def maps_line(mm, vma) -> MapsLine:
    name, off, maj, mnr, ino = vma_name(mm, vma)
    return MapsLine(vma.vm_start, vma.vm_end, perms_from_vm_flags(vma.vm_flags), off, maj, mnr, ino, name)


VSYSCALL_LINE = MapsLine(VSYSCALL_START, VSYSCALL_END, "--xp", name=VSYSCALL)
VSYSCALL_FLAGS = 0x4                   # VM_EXEC: "VmFlags: ex"


def render_pid_maps(mm) -> str:
    return render_maps([maps_line(mm, v) for v in mm.vmas] + [VSYSCALL_LINE])


# --- smaps ------------------------------------------------------------------------------------------
def accumulate_present(mss: SmapsStats, *, anon, swapbacked, mapcount, young, referenced,
                       pte_dirty, folio_dirty, locked: bool, ksm=None) -> None:
    """smaps_account() + smaps_page_accumulate() for arrays of order-0 pages, summed."""
    n = len(anon)
    if not n:
        return
    dirty = pte_dirty | folio_dirty
    size = PAGE_SIZE
    mss.anonymous += size * int(anon.sum())
    mss.lazyfree += size * int((anon & ~swapbacked & ~pte_dirty & ~folio_dirty).sum())
    if ksm is not None:
        mss.ksm += size * int(ksm.sum())
    mss.resident += size * n
    mss.referenced += size * int((young | referenced).sum())
    mc = mapcount.astype(np.int64)
    pss = np.where(mc >= 2, _PAGE_PSS // np.maximum(mc, 1), _PAGE_PSS)
    private = mc < 2
    total = int(pss.sum())
    mss.pss += total
    mss.pss_anon += int(pss[anon].sum())
    mss.pss_shmem += int(pss[~anon & swapbacked].sum())
    mss.pss_file += int(pss[~anon & ~swapbacked].sum())
    if locked:
        mss.pss_locked += total
    mss.pss_dirty += int(pss[dirty].sum())
    mss.private_dirty += size * int((dirty & private).sum())
    mss.shared_dirty += size * int((dirty & ~private).sum())
    mss.private_clean += size * int((~dirty & private).sum())
    mss.shared_clean += size * int((~dirty & ~private).sum())


def vma_stats(machine, mm, vma) -> SmapsStats:
    """smap_gather_stats() for one VMA."""
    mss = SmapsStats()
    f = machine.system.frames
    pt = machine.system.pagetables
    swap = machine.system.swap
    locked = bool(vma.vm_flags & VM_LOCKED)
    rows_, los, his, _ = pt.leaves(mm.pgd, vma.vm_start, vma.vm_end)
    for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
        vals = pt.rows[row, lo:hi]
        present = P.np_present(vals)
        if present.any():
            pv = vals[present]
            pfn = P.np_pfn(pv)
            normal = pfn != ZERO_PFN                      # vm_normal_page() is NULL for it
            pv, pfn = pv[normal], pfn[normal]
            fl = f.flags[pfn]
            accumulate_present(
                mss, anon=(fl & _U32(PG_anon)) != 0, swapbacked=(fl & _U32(PG_swapbacked)) != 0,
                mapcount=f.mapcount[pfn], young=(pv & P.NP_ACCESSED) != 0,
                referenced=(fl & _U32(PG_referenced | PG_young)) != 0,
                pte_dirty=(pv & P.NP_DIRTY) != 0, folio_dirty=(fl & _U32(PG_dirty)) != 0,
                locked=locked, ksm=(fl & _U32(PG_ksm)) != 0)
        sw = P.np_swap(vals) & ~P.np_marker(vals)
        if sw.any() and swap is not None:
            for e in vals[sw].tolist():
                cnt = swap.swap_count(e)
                if cnt is None:
                    continue                             # a marker, not a real swap entry
                mss.swap += PAGE_SIZE
                mss.swap_pss += _PAGE_PSS // cnt if cnt >= 2 else _PAGE_PSS
    obj = vma.vm_file
    if obj is not None and getattr(obj, "is_shmem", False) and obj.nrswapped:
        lo_off, hi_off = vma.vm_pgoff, vma.vm_pgoff + vma.pages()
        swapped = obj.swapped(lo_off, hi_off)
        if vma.vm_flags & VM_SHARED or not vma.vm_flags & VM_WRITE:
            mss.swap += PAGE_SIZE * int(swapped.sum())
        else:
            # private writable: only the object's swap behind PTEs that are none
            for k in np.flatnonzero(swapped).tolist():
                if pt.get_pte(mm.pgd, vma.vm_start + (k << 12)) == 0:
                    mss.swap += PAGE_SIZE
    return mss


def thp_eligible(vma) -> int:
    """THP "madvise": anonymous, VM_HUGEPAGE, not VM_NOHUGEPAGE, room for an aligned 2 MiB."""
    if vma.vm_file is not None or not vma.vm_flags & VM_HUGEPAGE or vma.vm_flags & VM_NOHUGEPAGE:
        return 0
    start = (vma.vm_start + (2 << 20) - 1) & ~((2 << 20) - 1)
    return 1 if start + (2 << 20) <= vma.vm_end else 0


def render_pid_smaps(machine, mm) -> str:
    cfg = machine.config
    out = []
    for v in mm.vmas:
        out.append(render_smaps_entry(maps_line(mm, v), vma_stats(machine, mm, v), v.vm_flags,
                                      thp_eligible=thp_eligible(v), soft_dirty=cfg.soft_dirty,
                                      pkeys_enabled=cfg.pkeys))
    out.append(render_smaps_entry(VSYSCALL_LINE, SmapsStats(), VSYSCALL_FLAGS,
                                  soft_dirty=cfg.soft_dirty, pkeys_enabled=cfg.pkeys))
    return "".join(out)


def render_pid_smaps_rollup(machine, mm) -> str:
    total = SmapsStats()
    vmas = mm.vmas.as_list()
    for v in vmas:
        total.add(vma_stats(machine, mm, v))
    start = vmas[0].vm_start if vmas else 0
    end = vmas[-1].vm_end if vmas else 0
    return render_smaps_rollup(total, start, end)


# --- status -------------------------------------------------------------------------------------------
def task_mem(mm) -> TaskMem:
    return TaskMem(total_vm=mm.total_vm, hiwater_vm=mm.hiwater_vm, locked_vm=mm.locked_vm,
                   pinned_vm=mm.pinned_vm, anon=mm.rss[MM_ANONPAGES], file=mm.rss[MM_FILEPAGES],
                   shmem=mm.rss[MM_SHMEMPAGES], hiwater_rss=mm.hiwater_rss, data_vm=mm.data_vm,
                   stack_vm=mm.stack_vm, exec_vm=mm.exec_vm, pgtables_bytes=mm.pgtables_bytes(),
                   swapents=mm.rss[MM_SWAPENTS])


def render_pid_status(machine, task) -> str:
    info = StatusInfo(name=task.comm[:15], tgid=task.pid, pid=task.pid, ppid=task.ppid,
                      state="R (running)" if task.alive else "Z (zombie)")
    return render_status(info, task_mem(task.mm) if task.alive else None)


# --- node-wide numbers -----------------------------------------------------------------------------------
def node_stats(machine) -> dict[str, int]:
    """The node/zone gauges in pages, from the frame table (see the note's §7, §8)."""
    sysm = machine.system
    f = sysm.frames
    fl = f.flags_copy()
    mapped = f.mapcount_copy() > 0
    anon = (fl & _U32(PG_anon)) != 0
    typed = (fl & _U32(PG_buddy | PG_pgtable | PG_zero | PG_reserved)) != 0
    swapcache = (fl & _U32(PG_swapcache)) != 0
    sb = (fl & _U32(PG_swapbacked)) != 0
    shmem = sb & ~anon & ~typed & ~swapcache & (f.mapping >= 0)
    pagecache = ~anon & ~typed & (f.mapping >= 0) & ~swapcache
    lru = sysm.lru.sizes()
    swap = sysm.swap
    return {
        "nr_free_pages": int(f.nfree),
        "nr_anon_pages": int((anon & mapped).sum()),
        "nr_mapped": int((~anon & mapped & ~typed).sum()),
        "nr_shmem": int(shmem.sum()),
        "nr_file_pages": int(pagecache.sum()) + int(swapcache.sum()),
        "nr_swapcached": int(swapcache.sum()),
        "nr_dirty": int((pagecache & ~sb & ((fl & _U32(PG_dirty)) != 0)).sum()),
        "nr_writeback": int(((fl & _U32(PG_writeback)) != 0).sum()),
        "nr_mlock": int(((fl & _U32(PG_mlocked)) != 0).sum()),
        "nr_page_table_pages": sysm.pagetables.ntables,
        "nr_inactive_anon": lru[LRU_INACTIVE_ANON], "nr_active_anon": lru[LRU_ACTIVE_ANON],
        "nr_inactive_file": lru[LRU_INACTIVE_FILE], "nr_active_file": lru[LRU_ACTIVE_FILE],
        "nr_unevictable": lru[LRU_UNEVICTABLE],
        "swap_total": swap.total_pages() if swap is not None else 0,
        "swap_free": swap.free_pages() if swap is not None else 0,
    }


def render_meminfo_for(machine) -> str:
    s = node_stats(machine)
    sysm = machine.system
    total = sysm.frames.nframes
    kb = lambda pages: pages << 2  # noqa: E731
    wm_low = sysm.watermarks()["low"]
    available = s["nr_free_pages"] - sysm.totalreserve_pages()
    pagecache = s["nr_active_file"] + s["nr_inactive_file"]
    pagecache -= min(pagecache // 2, wm_low)
    available = max(0, available + pagecache)
    cached = max(0, s["nr_file_pages"] - s["nr_swapcached"])
    v = {
        "MemTotal": kb(total), "MemFree": kb(s["nr_free_pages"]), "MemAvailable": kb(available),
        "Buffers": 0, "Cached": kb(cached), "SwapCached": kb(s["nr_swapcached"]),
        "Active": kb(s["nr_active_anon"] + s["nr_active_file"]),
        "Inactive": kb(s["nr_inactive_anon"] + s["nr_inactive_file"]),
        "Active(anon)": kb(s["nr_active_anon"]), "Inactive(anon)": kb(s["nr_inactive_anon"]),
        "Active(file)": kb(s["nr_active_file"]), "Inactive(file)": kb(s["nr_inactive_file"]),
        "Unevictable": kb(s["nr_unevictable"]), "Mlocked": kb(s["nr_mlock"]),
        "SwapTotal": kb(s["swap_total"]), "SwapFree": kb(s["swap_free"]),
        "Dirty": kb(s["nr_dirty"]), "Writeback": kb(s["nr_writeback"]),
        "AnonPages": kb(s["nr_anon_pages"]), "Mapped": kb(s["nr_mapped"]),
        "Shmem": kb(s["nr_shmem"]), "PageTables": kb(s["nr_page_table_pages"]),
        "CommitLimit": kb(s["swap_total"] + total * 50 // 100),
        "Committed_AS": kb(machine.kernel.committed_as()),
        "DirectMap4k": kb(total),
    }
    return render_meminfo(v)


def render_vmstat_for(machine) -> str:
    s = node_stats(machine)
    sysm = machine.system
    v = {k: s[k] for k in ("nr_free_pages", "nr_mlock", "nr_inactive_anon", "nr_active_anon",
                           "nr_inactive_file", "nr_active_file", "nr_unevictable", "nr_anon_pages",
                           "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback", "nr_shmem",
                           "nr_page_table_pages", "nr_swapcached")}
    for zk, nk in (("nr_zone_inactive_anon", "nr_inactive_anon"), ("nr_zone_active_anon", "nr_active_anon"),
                   ("nr_zone_inactive_file", "nr_inactive_file"), ("nr_zone_active_file", "nr_active_file"),
                   ("nr_zone_unevictable", "nr_unevictable")):
        v[zk] = s[nk]
    v["nr_zone_write_pending"] = s["nr_dirty"] + s["nr_writeback"]
    v["pgalloc_normal"] = sysm.frames.pgalloc
    v["pgfree"] = sysm.frames.pgfree
    v["numa_hit"] = v["numa_local"] = sysm.frames.pgalloc
    for name, n in sysm.events.items():
        v[name] = n
    return render_vmstat(v)


# --- pagemap and kpage* ---------------------------------------------------------------------------------
def pagemap_entries(machine, task, addr: int, npages: int) -> list[int]:
    """pagemap_read() for ``npages`` pages from ``addr`` (a CAP_SYS_ADMIN reader: pfns shown)."""
    mm = task.mm
    f = machine.system.frames
    pt = machine.system.pagetables
    sd = machine.config.soft_dirty
    out = []
    base = addr & ~(PAGE_SIZE - 1)
    for i in range(npages):
        a = base + (i << 12)
        vma = mm.vmas.lookup(a)
        if vma is None:
            out.append(0)
            continue
        e = pt.get_pte(mm.pgd, a)
        soft = sd and bool(vma.vm_flags & 0x08000000)
        if e == 0:
            out.append(pagemap_entry(False, False, False, False, soft_dirty=soft))
        elif P.pte_present(e):
            pfn = P.pte_pfn(e)
            normal = pfn != ZERO_PFN
            file = normal and not f.flags[pfn] & PG_anon
            excl = normal and int(f.mapcount[pfn]) == 1
            out.append(pagemap_entry(True, False, file, excl, pfn=pfn,
                                     soft_dirty=soft or (sd and bool(e & P.SOFT_DIRTY))))
        elif P.is_guard_pte(e):
            out.append(guard_entry())
        else:
            out.append(pagemap_entry(False, True, False, False, swap_type=P.pte_swp_type(e),
                                     swap_offset=P.pte_swp_offset(e),
                                     soft_dirty=soft or (sd and bool(e & P.SWP_SOFT_DIRTY))))
    return out


def kpage_state(machine, pfn: int) -> KPageState | None:
    f = machine.system.frames
    if not 0 <= pfn < f.nframes:
        return None
    fl = int(f.flags[pfn])
    return KPageState(
        mapped=int(f.mapcount[pfn]) > 0, anon=bool(fl & PG_anon), ksm=bool(fl & PG_ksm),
        zero_page=bool(fl & PG_zero), buddy=bool(fl & PG_buddy), pgtable=bool(fl & PG_pgtable),
        idle=bool(fl & PG_idle), dirty=bool(fl & PG_dirty), uptodate=bool(fl & PG_uptodate),
        writeback=bool(fl & PG_writeback), lru=bool(fl & PG_lru),
        referenced=bool(fl & PG_referenced), active=bool(fl & PG_active),
        swapcache=bool(fl & PG_swapcache), swapbacked=bool(fl & PG_swapbacked),
        unevictable=bool(fl & PG_unevictable), mlocked=bool(fl & PG_mlocked),
        reserved=bool(fl & PG_reserved), anon_exclusive=bool(fl & PG_anon_exclusive),
        owner_priv_1=bool(fl & PG_swapcache))


def kpageflags(machine, pfn: int) -> int:
    return stable_page_flags(kpage_state(machine, pfn))


def kpagecount(machine, pfn: int) -> int:
    f = machine.system.frames
    if not 0 <= pfn < f.nframes:
        raise ValueError(f"kpagecount: pfn {pfn} beyond the last frame ({f.nframes - 1})")
    fl = int(f.flags[pfn])
    return _kpagecount(int(f.mapcount[pfn]), typed_page=bool(fl & (PG_buddy | PG_pgtable | PG_zero)))


# --- path dispatch ---------------------------------------------------------------------------------------
_PID_RE = re.compile(r"^/proc/(\d+|self)/(maps|smaps|smaps_rollup|status)$")


def render_swaps(machine) -> str:
    """/proc/swaps (mm/swapfile.c: swap_show): name, type, size and use in kB, priority."""
    out = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"]
    for a in machine.system.swap.live_areas():
        size, used = a.pages * 4, a.inuse * 4
        pad = 40 - len(a.name) if len(a.name) < 40 else 1
        tab_s = "\t" if size < 10000000 else ""
        tab_u = "\t" if used < 10000000 else ""
        out.append(f"{a.name}{' ' * pad}partition\t{size}\t{tab_s}{used}\t{tab_u}{a.prio}\n")
    return "".join(out)


def render_path(machine, path: str) -> str:
    if path == "/proc/swaps":
        return render_swaps(machine)
    if path == "/proc/meminfo":
        return render_meminfo_for(machine)
    if path == "/proc/vmstat":
        return render_vmstat_for(machine)
    m = _PID_RE.match(path)
    if not m:
        raise FileNotFoundError(f"procfs: {path}: not modelled (try /proc/PID/maps, smaps, "
                                "smaps_rollup, status, /proc/meminfo, /proc/vmstat)")
    pid = int(m.group(1)) if m.group(1) != "self" else None
    task = machine.kernel.tasks.get(pid) if pid is not None else None
    if task is None:
        raise FileNotFoundError(f"procfs: {path}: no such process")
    what = m.group(2)
    if what == "status":
        return render_pid_status(machine, task)
    if not task.alive:
        return ""                                      # a zombie has no mm: empty files
    if what == "maps":
        return render_pid_maps(task.mm)
    if what == "smaps":
        return render_pid_smaps(machine, task.mm)
    return render_pid_smaps_rollup(machine, task.mm)
