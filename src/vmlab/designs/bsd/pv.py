"""pv entries: FreeBSD's reverse map (sys/amd64/amd64/pmap.c, sys/amd64/include/pmap.h).

Every managed mapping of a page — one PTE mapping a page of an object, a file or shmem — has a
``struct pv_entry`` on the page's pv list (md_page.pv_list) naming the pmap and the virtual
address (pv_va). pmap_enter() inserts one, pmap_remove_pte() removes it, and the page daemon's
pmap_ts_referenced() / pmap_remove_all() walk the list instead of any VMA or object structure.
That is the fourth kind of reverse map in vmlab: per page and per mapping, like the pte-chains
of Linux 2.5, but naming (pmap, va) rather than the PTE's address.

Representation. ``pv[pfn]`` is a dict {(id(mm), va): mm} — the page's pv list. To keep the list
exact without threading a hook through every PTE write, the design keeps for each PTE table it
has touched (keyed by (id(mm), table base address)) the pfn each slot's pv entry names (-1:
none), and `pv_sync()` reconciles a range of slots with the PTEs after the design wrote them:
each slot whose present page changed loses its old pv entry and gains a new one, which is what
pmap_enter/pmap_remove do one PTE at a time. The zero page and special mappings are unmanaged
(no pv entry). Counted: ``chain_ops`` (pv insertions + removals), ``rmap_steps`` (pv entries
visited by a reverse-map walk).

Cost. pv entries live in per-pmap ``struct pv_chunk``s: one 4 KiB page holds _NPCPV = 168
entries of 24 bytes (pv_va 8 + TAILQ_ENTRY 16) plus the chunk header, so a process with n
mappings uses ceil(n / 168) pages of pv chunks.
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import ZERO_PFN
from ..base import Mapping

PV_ENTRY_BYTES = 24           # struct pv_entry on amd64
PV_CHUNK_BYTES = 4096         # struct pv_chunk: header 64 + 168 * 24
NPCPV = 168                   # _NPCPV: pv entries per chunk


def present_ptes(pt, mm, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(virtual addresses, PTE values) of every present PTE of ``mm`` in [start, end)."""
    vas: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    rows_, los, his, addrs = pt.leaves(mm.pgd, start, end)
    for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
        block = pt.rows[row, lo:hi]
        slots = np.flatnonzero(P.np_present(block))
        if len(slots):
            vas.append(a + (slots.astype(np.int64) << 12))
            vals.append(block[slots])
    if not vas:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    return np.concatenate(vas), np.concatenate(vals)


class PVOps:
    """Mixin of BsdDesign: needs self.pt, self.stats."""

    def pv_init(self) -> None:
        self.pv: dict[int, dict[tuple[int, int], object]] = {}
        self.pv_tab: dict[tuple[int, int], np.ndarray] = {}
        self.pv_count: dict[int, int] = {}

    def _pv_add(self, pfn: int, mm, va: int) -> None:
        d = self.pv.get(pfn)
        if d is None:
            d = self.pv[pfn] = {}
        d[(id(mm), va)] = mm
        self.pv_count[id(mm)] = self.pv_count.get(id(mm), 0) + 1

    def _pv_del(self, pfn: int, mm, va: int) -> None:
        d = self.pv[pfn]
        del d[(id(mm), va)]
        if not d:
            del self.pv[pfn]
        c = self.pv_count[id(mm)] - 1
        if c:
            self.pv_count[id(mm)] = c
        else:
            del self.pv_count[id(mm)]

    def pv_sync(self, mm, row: int, base: int, idx: np.ndarray) -> None:
        """pmap_enter / pmap_remove_pte bookkeeping for slots ``idx`` of the PTE table at
        ``row`` (mapping ``base``): make the pv entries name what the PTEs now map."""
        if not len(idx):
            return
        vals = self.pt.rows[row, idx]
        managed = P.np_present(vals) & ((vals & P.NP_SPECIAL) == 0)
        pfn = np.where(managed, P.np_pfn(vals), -1).astype(np.int64)
        pfn[pfn == ZERO_PFN] = -1
        key = (id(mm), base)
        sh = self.pv_tab.get(key)
        if sh is None:
            if (pfn < 0).all():
                return
            sh = self.pv_tab[key] = np.full(512, -1, np.int64)
        old = sh[idx]
        changed = np.flatnonzero(old != pfn)
        if not len(changed):
            return
        ops = 0
        for k in changed.tolist():
            va = base + (int(idx[k]) << 12)
            o, n = int(old[k]), int(pfn[k])
            if o >= 0:
                self._pv_del(o, mm, va)
                ops += 1
            if n >= 0:
                self._pv_add(n, mm, va)
                ops += 1
        sh[idx] = pfn
        self.stats.add("chain_ops", ops)
        if (sh < 0).all():
            del self.pv_tab[key]

    def pv_sync_range(self, mm, start: int, end: int) -> None:
        """pv_sync() over every PTE table of [start, end)."""
        rows_, los, his, addrs = self.pt.leaves(mm.pgd, start, end)
        for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
            self.pv_sync(mm, row, a - (lo << 12), np.arange(lo, hi, dtype=np.intp))

    def pv_forget_range(self, mm, start: int, end: int) -> None:
        """Drop the pv entries of [start, end) (its PTEs are already gone or moved, possibly
        with their tables): pmap_remove's pv side for a range the page tables no longer show."""
        base = start & ~((1 << 21) - 1)
        while base < end:
            sh = self.pv_tab.get((id(mm), base))
            if sh is not None:
                lo = max(0, (start - base) >> 12)
                hi = min(512, (end - base + 4095) >> 12)
                idx = np.arange(lo, hi, dtype=np.intp)
                old = sh[idx]
                for k in np.flatnonzero(old >= 0).tolist():
                    self._pv_del(int(old[k]), mm, base + (int(idx[k]) << 12))
                    self.stats.add("chain_ops")
                sh[idx] = -1
                if (sh < 0).all():
                    del self.pv_tab[(id(mm), base)]
            base += 1 << 21

    def pv_remove_one(self, mm, va: int, pfn: int) -> None:
        """pmap_remove_pte()'s pv side for one PTE (reclaim's unmap)."""
        base = va & ~((1 << 21) - 1)
        sh = self.pv_tab.get((id(mm), base))
        slot = (va >> 12) & 511
        if sh is None or int(sh[slot]) != pfn:
            return
        self._pv_del(pfn, mm, va)
        sh[slot] = -1
        self.stats.add("chain_ops")
        if (sh < 0).all():
            del self.pv_tab[(id(mm), base)]

    # --- the reverse map -----------------------------------------------------------------------
    def rmap_walk(self, pfn: int):
        """The page's pv list: every (pmap, va) mapping it, with the VMA at that address."""
        d = self.pv.get(int(pfn))
        if not d:
            return
        for (_mid, va), mm in list(d.items()):
            self.stats.add("rmap_steps")
            vma = mm.vmas.lookup(va)
            if vma is not None:
                yield Mapping(mm, vma, va)

    def pv_check(self, mms: list) -> list[str]:
        """The pv lists name exactly the managed PTEs of the live processes."""
        out: list[str] = []
        want_p, want_m, want_v = [], [], []
        for mm in mms:
            for vma in mm.vmas:
                va, vals = present_ptes(self.pt, mm, vma.vm_start, vma.vm_end)
                pfns = P.np_pfn(vals).astype(np.int64)
                keep = ((vals & P.NP_SPECIAL) == 0) & (pfns != ZERO_PFN)
                want_p.append(pfns[keep])
                want_v.append(va[keep])
                want_m.append(np.full(int(keep.sum()), id(mm), np.int64))
        have = [(pfn, mid, va) for pfn, d in self.pv.items() for (mid, va) in d]
        hp = np.array([h[0] for h in have], np.int64)
        hm = np.array([h[1] for h in have], np.int64)
        hv = np.array([h[2] for h in have], np.int64)
        wp = np.concatenate(want_p) if want_p else np.empty(0, np.int64)
        wm = np.concatenate(want_m) if want_m else np.empty(0, np.int64)
        wv = np.concatenate(want_v) if want_v else np.empty(0, np.int64)
        w = np.stack([wp, wm, wv], axis=1) if len(wp) else np.empty((0, 3), np.int64)
        h = np.stack([hp, hm, hv], axis=1) if len(hp) else np.empty((0, 3), np.int64)
        w = w[np.lexsort(w.T[::-1])] if len(w) else w
        h = h[np.lexsort(h.T[::-1])] if len(h) else h
        if w.shape != h.shape or not np.array_equal(w, h):
            ws = {tuple(x) for x in w.tolist()}
            hs = {tuple(x) for x in h.tolist()}
            for x in sorted(ws - hs)[:5]:
                out.append(f"pv: page {x[0]} is mapped at {x[2]:#x} without a pv entry")
            for x in sorted(hs - ws)[:5]:
                out.append(f"pv: page {x[0]} has a pv entry at {x[2]:#x} but no PTE maps it there")
        if len(hp) != sum(self.pv_count.values()):
            out.append(f"pv: {len(hp)} entries but the per-pmap counts add up to "
                       f"{sum(self.pv_count.values())}")
        return out

    def pv_bytes(self) -> int:
        """pv_chunk pages: ceil(entries / 168) per pmap."""
        return sum((n + NPCPV - 1) // NPCPV for n in self.pv_count.values()) * PV_CHUNK_BYTES
