"""The bsd design's self-check (Machine.check() calls it): recount the objects and entries.

  entries     each private VMA's entries are sorted, disjoint, inside its offset range, and
              bound to live objects; shared VMAs have none
  objects     ref_count = entries bound + shadows backed; the shadow lists and backing
              pointers agree; resident / swap counts recount; every resident page names its
              object and index, is anonymous and swap-backed or lazy-free, and lives in one
              object only; no live object is unreachable (ref_count 0)
  mappings    every present PTE of a private VMA maps what the entry's chain shows at that
              offset (its own object's page, a backing object's page read-only, or the file's
              page where no object has one); a writable PTE maps a page of the entry's own
              object and the entry is not needs-copy
  pv entries  exactly one per managed PTE (pv.py)
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon, PG_buddy, ZERO_PFN
from .entries import vma_pgrange
from .objects import NONE, ZERO, chain_lookup
from .pv import present_ptes


def check_bsd(d, mms: list) -> list[str]:
    out: list[str] = []
    f = d.frames
    refs: dict[int, int] = {}
    for mm in mms:
        for vma in mm.vmas:
            ents = vma.design_state or []
            tag = f"bsd: VMA {vma.vm_start:#x}-{vma.vm_end:#x}"
            if vma.is_shared():
                if ents:
                    out.append(f"{tag} is shared but has entries")
                continue
            lo, hi = vma_pgrange(vma)
            prev = lo
            for e in ents:
                if e.lo < prev or e.hi > hi or e.lo >= e.hi:
                    out.append(f"{tag}: entry {e!r} out of order or outside [{lo:#x},{hi:#x})")
                prev = e.hi
                if e.obj is None:
                    out.append(f"{tag}: entry {e!r} without an object")
                    continue
                if e.obj.dead or d.objects.get(e.obj.id) is not e.obj:
                    out.append(f"{tag}: entry {e!r} bound to a dead object")
                refs[e.obj.id] = refs.get(e.obj.id, 0) + 1
            out += _check_ptes(d, mm, vma, tag)
    held: list = []
    for o in d.objects.values():
        tag = f"bsd: {o!r}"
        want = refs.get(o.id, 0) + len(o.shadows)
        if o.ref_count != want:
            out.append(f"{tag}: ref_count {o.ref_count} but {refs.get(o.id, 0)} entries and "
                       f"{len(o.shadows)} shadows")
        if o.ref_count == 0:
            out.append(f"{tag}: live with no reference")
        for s in o.shadows:
            if s.backing is not o:
                out.append(f"{tag}: shadow {s.id} does not point back")
        if o.backing is not None and o not in o.backing.shadows:
            out.append(f"{tag}: not on its backing object's shadow list")
        if o.backing is not None and o.backing.dead:
            out.append(f"{tag}: backed by a dead object")
        pidx, pg, sw = o.items()
        res = pg >= 0
        if int(res.sum()) != o.resident or int((sw != 0).sum()) != o.nswap:
            out.append(f"{tag}: counts {o.resident}/{o.nswap} but {int(res.sum())} pages and "
                       f"{int((sw != 0).sum())} swap blocks")
        if (res & (sw != 0)).any() or ((pg == ZERO) & (sw != 0)).any():
            out.append(f"{tag}: an index holds a page (or zero marker) and a swap block")
        pf = pg[res].astype(np.intp)
        bad = (f.mapping[pf] != o.id) | (f.index[pf] != pidx[res]) | ((f.flags[pf] & PG_anon) == 0) \
            | ((f.flags[pf] & PG_buddy) != 0)
        for k in np.flatnonzero(bad)[:3].tolist():
            out.append(f"{tag}: page {int(pf[k])} at {int(pidx[res][k]):#x} has mapping "
                       f"{int(f.mapping[pf[k]])} index {int(f.index[pf[k]]):#x} flags "
                       f"{int(f.flags[pf[k]]):#x}")
        held.append(pf)
    allp = np.concatenate(held) if held else np.empty(0, np.intp)
    uniq, counts = np.unique(allp, return_counts=True)
    for p in uniq[counts > 1][:5].tolist():
        out.append(f"bsd: page {p} is in more than one object")
    out += d.pv_check(mms)
    return out


def _check_ptes(d, mm, vma, tag) -> list[str]:
    out: list[str] = []
    va, ptes = present_ptes(d.pt, mm, vma.vm_start, vma.vm_end)
    if not len(va):
        return out
    pfn = P.np_pfn(ptes).astype(np.int64)
    keep = pfn != ZERO_PFN
    va, ptes, pfn = va[keep], ptes[keep], pfn[keep]
    pgs = vma.vm_pgoff + ((va - vma.vm_start) >> 12)
    want = np.full(len(pgs), NONE, np.int64)
    level = np.full(len(pgs), -1, np.int64)
    own = np.zeros(len(pgs), bool)              # the entry's own object, not needs-copy
    covered = np.zeros(len(pgs), bool)
    for e in vma.design_state or ():
        sel = np.flatnonzero((pgs >= e.lo) & (pgs < e.hi))
        if not len(sel):
            continue
        covered[sel] = True
        lv, _objs, ipg, _sw = chain_lookup(e.obj, pgs[sel])
        level[sel] = lv
        want[sel] = np.where(lv >= 0, ipg, NONE)
        own[sel] = (lv == 0) & (not e.nc)
    if vma.vm_file is not None:
        f_pages = vma.vm_file.pages
        fall = (level < 0) & (pgs < len(f_pages))
        want[fall] = f_pages[pgs[fall]]
    bad = np.flatnonzero(want != pfn)
    for k in bad[:5].tolist():
        out.append(f"{tag}: PTE at {int(va[k]):#x} maps pfn {int(pfn[k])} but the chain shows "
                   f"{int(want[k])} (level {int(level[k])})")
    wr = ((ptes & P.NP_RW) != 0) & ~own
    for k in np.flatnonzero(wr)[:5].tolist():
        out.append(f"{tag}: PTE at {int(va[k]):#x} is writable but its page is not the entry's "
                   f"own (level {int(level[k])})")
    return out
