"""Backend-agnostic snapshots of the memory a scenario named, taken at its checkpoints.

What it records
    For every live process (in the scenario's process order) and every region the scenario
    named (``Runner.regions``, in naming order, plus a ``[brk]`` pseudo-region for a process
    family that used brk), using only the API both backends share (``procfs``, ``pagemap``,
    ``kpagecount``, ``kpageflags``):

    * per page, one string ``"STATE PM COUNT FRAME FLAGS"``:

      - STATE: ``unmapped`` (no VMA of this process covers it), ``none`` (a VMA, no PTE),
        ``zero`` (the shared zero page), ``present``, ``swap`` (a swap PTE) or ``guard`` (a
        MADV_GUARD_INSTALL marker). fs/proc/task_mmu.c pte_to_pagemap_entry() gives the bits.
      - PM: pagemap bits: ``x`` PM_MMAP_EXCLUSIVE (56), ``f`` PM_FILE (61), ``-`` neither.
      - COUNT: /proc/kpagecount (the mapcount, fs/proc/page.c kpagecount_read()) of a present
        page that is not the zero page; ``-`` otherwise.
      - FRAME: a canonical frame label: ``#1``, ``#2`` ... numbered in order of first
        appearance across the whole snapshot (process order, region order, page order), ``z``
        for the zero page, ``s1``, ``s2`` ... for swap slots; so the *sharing partition* is
        recorded, never a raw pfn.
      - FLAGS: the /proc/kpageflags bits named in ``KPF_RECORDED`` that are set, joined by
        ``,`` (``-`` when none or not present; for the zero page without ``referenced`` and
        ``idle``, which record what every process on the host did to it).

      Without pfns (a non-root host) COUNT, FRAME and FLAGS are ``-`` and a zero page reads
      ``present`` (the two cannot be told apart from pagemap alone); ``project()`` brings a
      full snapshot down to that level for comparison.
    * per region, the smaps fields of ``SMAPS_FIELDS`` summed over the VMAs that meet the
      region (fs/proc/task_mmu.c show_smap), and each VMA piece as
      ``"<LO-HI> PERMS VMFLAGS"``: page offsets relative to the region start, clipped to the
      region, with ``<``/``>`` when the VMA goes on below/above it.

    A region no VMA of the process meets is recorded as ``{"absent": true}``.
"""

from __future__ import annotations

from .. import constants as C
from ..proc.parse import parse_smaps

PAGE = C.PAGE_SIZE

# kpageflags bits recorded per page: name -> KPF bit. Which of them are *compared* is
# compare.KPF_COMPARED (docs/validation.md says why LRU/active/idle are not).
KPF_RECORDED = {
    "anon": C.KPF_ANON,
    "anon_excl": C.KPF_OWNER_2,          # PG_anon_exclusive shows as bit 34 (fs/proc/page.c)
    "swapcache": C.KPF_SWAPCACHE,
    "dirty": C.KPF_DIRTY,
    "referenced": C.KPF_REFERENCED,
    "swapbacked": C.KPF_SWAPBACKED,
    "mlocked": C.KPF_MLOCKED,
    "unevictable": C.KPF_UNEVICTABLE,
    "uptodate": C.KPF_UPTODATE,
    "lru": C.KPF_LRU,
    "active": C.KPF_ACTIVE,
    "idle": C.KPF_IDLE,
}

# The zero page is one page for the whole host: its PG_referenced (and idle bit) record what any
# process on the machine did to it, so they are not recorded for it.
ZERO_PAGE_UNRECORDED = ("referenced", "idle")

SMAPS_FIELDS = ("Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                "Private_Dirty", "Referenced", "Anonymous", "LazyFree", "Swap", "SwapPss",
                "Locked")

BRK_REGION = "[brk]"


class FrameNumbering:
    """Canonical labels for frames and swap slots, in order of first appearance."""

    def __init__(self):
        self.frames: dict[int, str] = {}
        self.slots: dict[int, str] = {}

    def frame(self, pfn: int) -> str:
        lab = self.frames.get(pfn)
        if lab is None:
            lab = self.frames[pfn] = f"#{len(self.frames) + 1}"
        return lab

    def slot(self, entry: int) -> str:
        lab = self.slots.get(entry)
        if lab is None:
            lab = self.slots[entry] = f"s{len(self.slots) + 1}"
        return lab


def page_record(entry: int, mapped: bool, pfns: bool, numbering: FrameNumbering,
                kpagecount, kpageflags) -> str:
    """One page's string (see the module header) from its pagemap entry."""
    if not mapped:
        return "unmapped - - - -"
    pm = ("x" if entry & C.PM_MMAP_EXCLUSIVE else "") + ("f" if entry & C.PM_FILE else "")
    pm = pm or "-"
    if entry & C.PM_PRESENT:
        pfn = entry & C.PM_PFRAME_MASK
        if not pfns:
            return f"present {pm} - - -"
        flags = kpageflags(pfn)
        if flags & (1 << C.KPF_ZERO_PAGE):
            names = [n for n, bit in KPF_RECORDED.items()
                     if flags & (1 << bit) and n not in ZERO_PAGE_UNRECORDED]
            return f"zero {pm} - z {','.join(names) or '-'}"
        names = [n for n, bit in KPF_RECORDED.items() if flags & (1 << bit)]
        if "anon_excl" in names and "anon" not in names:
            # bit 34 is PG_owner_2: PG_anon_exclusive only on an anonymous folio; on a page-cache
            # folio it is PG_mappedtodisk, which a block filesystem (ext4 here) sets once the
            # folio's buffers are mapped to disk blocks (include/linux/page-flags.h). Recorded
            # under that name; not compared (the model has no buffer heads).
            names[names.index("anon_excl")] = "mappedtodisk"
        return f"present {pm} {kpagecount(pfn)} {numbering.frame(pfn)} {','.join(names) or '-'}"
    if entry & C.PM_SWAP:
        if entry & C.PM_GUARD_REGION:
            return f"guard {pm} - - -"
        slot = entry & C.PM_PFRAME_MASK
        lab = numbering.slot(slot) if pfns else "-"
        return f"swap {pm} - {lab} -"
    return f"none {pm} - - -"


def _vma_pieces(vmas: list[dict], start: int, end: int) -> list[str]:
    out = []
    for v in vmas:
        lo, hi = max(v["start"], start), min(v["end"], end)
        below = "<" if v["start"] < start else ""
        above = ">" if v["end"] > end else ""
        out.append(f"{below}{(lo - start) // PAGE}-{(hi - start) // PAGE}{above} "
                   f"{v['perms']} {v['vmflags']}".rstrip())
    return out


def region_record(name: str, start: int, length: int, vmas_all: list[dict], pagemap,
                  pfns: bool, numbering: FrameNumbering, kpagecount, kpageflags,
                  with_smaps: bool = True, with_ext: bool = True) -> dict:
    """The record of one region [start, start+length) in one process (vmas_all: its parsed
    smaps)."""
    npages = max(0, (length + PAGE - 1) // PAGE)
    end = start + npages * PAGE
    vmas = [v for v in vmas_all if v["start"] < end and v["end"] > start]
    rec: dict = {"region": name, "npages": npages}
    if not vmas:
        rec["absent"] = True
        return rec
    pieces = _vma_pieces(vmas, start, end)
    if not with_ext:
        pieces = [p.replace("<", "").replace(">", "") for p in pieces]
    rec["vmas"] = pieces
    if with_smaps:
        rec["smaps"] = {f: sum(v["fields"].get(f, 0) for v in vmas) for f in SMAPS_FIELDS}
    entries = pagemap(start, npages) if npages else []
    pages = []
    vi = 0
    for i in range(npages):
        a = start + i * PAGE
        while vi < len(vmas) and vmas[vi]["end"] <= a:
            vi += 1
        mapped = vi < len(vmas) and vmas[vi]["start"] <= a
        e = entries[i] if i < len(entries) else 0
        pages.append(page_record(e, mapped, pfns, numbering, kpagecount, kpageflags))
    rec["pages"] = pages
    return rec


def take_snapshot(machine, procs: list[tuple[str, object]], regions: list[tuple], pfns: bool,
                  name: str, line: int) -> dict:
    """A checkpoint's snapshot.

    procs: (name, process) of the live processes in scenario order. regions: tuples
    (region_name, family, start, length, kind) where family names the process family the region
    belongs to (the processes ``families[proc] == family`` are snapshotted) and kind is
    "mmap" or "brk". ``procs`` entries carry their family as the third element."""
    numbering = FrameNumbering()
    out_procs = []
    kpc = machine.kpagecount if pfns else None
    kpf = machine.kpageflags if pfns else None
    for pname, proc, family in procs:
        text = machine.procfs(f"/proc/{proc.pid}/smaps")
        vmas = parse_smaps(text)
        recs = []
        for rname, rfamily, start, length, kind in regions:
            if rfamily != family:
                continue
            brk = kind == "brk"
            recs.append(region_record(rname, start, length, vmas, proc.pagemap, pfns, numbering,
                                      kpc, kpf, with_smaps=not brk, with_ext=not brk))
        out_procs.append({"proc": pname, "regions": recs})
    return {"checkpoint": name, "line": line, "procs": out_procs}


# -- projection to what a reader without pfns can see ------------------------------------------

def project_page(rec: str, pfns: bool) -> str:
    """The page string as a reader with (pfns=True) or without pfns would record it."""
    if pfns:
        return rec
    state, pm, _count, _frame, _flags = rec.split(" ")
    if state == "zero":
        state = "present"
    return f"{state} {pm} - - -"
