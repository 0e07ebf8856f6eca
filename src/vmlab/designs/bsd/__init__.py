"""The `bsd` design: FreeBSD's VM objects, shadow chains and pv entries (issue 6, item 5).

The seeds: Mark Hemment's "anonymous inodes" (seeds/001, 1997) — an object per mapping that
records, per page, a frame or a swap block — and Matt Dillon's description of FreeBSD
(seeds/004, 2000): map entries over VM objects, copy-on-write by stacking an anonymous shadow
object on the first write after fork, write faults in the top object, copy-up from the
backing objects, and layers collapsed when the sharing is gone. vmlab follows FreeBSD's
sys/vm (vm_map.c, vm_object.c, vm_fault.c, swap_pager.c) and amd64 pmap.c:

  map entries     a VMA's private part is a list of entries, each bound to an object with
                  MAP_ENTRY_NEEDS_COPY or not (entries.py); shared mappings use the VMA's file
                  (shmem, SysV shm, shared files), as FreeBSD shares an object (INHERIT_SHARE)
  objects         OBJT_DEFAULT/OBJT_SWAP objects indexed by page offset, with backing_object,
                  shadow list, ref_count, OBJ_ONEMAPPING, a swap block per swapped index
                  (objects.py); vm_object_shadow, _deallocate, _collapse (collapse and the
                  all-shadowed bypass), _split, _coalesce
  faults          vm_map_lookup + vm_fault: objects allocated at the first fault, a shadow on
                  the first write after fork, the chain walk, copy-up (or vm_page_rename),
                  zero-fill in the first object — no shared zero page (fault.py)
  fork            vmspace_fork / vm_map_copy_entry: the object is collapsed, split off if its
                  entry shares it with siblings, referenced by the child's entry, and both
                  entries get NEEDS_COPY; the parent's PTEs are write-protected; no PTE is
                  copied (pmap_copy is "only advisory"), so the child faults its pages in
  reverse map     pv entries: per page, one (pmap, va) per managed mapping (pv.py)
  reclaim         the page daemon's choice is Linux's LRU (shared); unmapping walks pv
                  entries and clears PTEs (no swap PTEs exist); the page's object then holds
                  the swap block (swap_pager_putpages) and a fault finds the page again
                  through the object chain (swap_pager_getpages)
  collapse switch Machine(design="bsd:collapse=0") never collapses or bypasses, so chains
                  grow with every fork-write generation (src/vmlab/scenarios/bsd-shadow-chain.vms)

Linux semantics stay the law: MADV_DONTNEED / FREE / WIPEONFORK / DONTFORK, mremap, mprotect
and fork of shared mappings give what Linux gives (entries.py, ``reset_range``). VMA
boundaries are Linux's: the shared VMA layer merges by anon_vma rules, so this design keeps
the anon_vma bookkeeping Linux would have (LinuxDesign's, inherited) purely to make the same
merge decisions; it is not a reverse map here and not counted in metadata()
(docs/designs/bsd.md lists this and the other deviations).
"""

from __future__ import annotations

import numpy as np

from ...hw import pte as P
from ...hw.frames import (PG_active, PG_anon, PG_dirty, PG_lru, PG_referenced, PG_swapbacked,
                          PG_swapcache, PG_unevictable)
from ...mm.mm_struct import MM_ANONPAGES
from ...mm.vmflags import VM_LOCKED, VM_MAYBE_GUARD, VM_WIPEONFORK
from ..linux import LinuxDesign
from .entries import Entry, EntryOps
from .fault import BsdFaults
from .objects import NONE, SWBLOCK_BYTES, VM_OBJECT_BYTES, ZERO, ObjectOps, VMObject
from .pv import PVOps

_U32 = np.uint32
_U64 = np.uint64

APPLICABLE_STATS = ("ptes_copied_fork", "pages_copied_cow", "pages_reused", "rmap_steps",
                    "rmap_unmapped", "chain_ops", "objects_created", "shadow_collapses",
                    "shadow_bypasses", "copy_ups", "copy_up_renames", "shadow_depth_max",
                    "faults_anon", "faults_wp", "faults_file", "faults_swap")


class BsdDesign(BsdFaults, EntryOps, ObjectOps, PVOps, LinuxDesign):
    name = "bsd"
    description = ("FreeBSD: map entries over VM objects, shadow chains with collapse, "
                   "pv entries, a swap pager per object")

    OPTIONS = {"collapse": (True, "vm_object_collapse() merges a backing object into its only "
                                  "shadow, or lets the shadow bypass it; 0 never does, so "
                                  "shadow chains grow with every fork generation")}
    tracks_ptes = False            # pv entries are kept by the design itself (pv.py)

    def __init__(self, system, **options):
        super().__init__(system, **options)
        self.collapse_on = bool(self.options["collapse"])
        self.objects: dict[int, VMObject] = {}
        self.pv_init()
        # the cost keys of designs/base.py that apply here, shown even while they are zero
        # (fork copies no PTE; the faults/rmap ones count from the first event)
        for k in APPLICABLE_STATS:
            self.stats.setdefault(k, 0)

    # --- faults ---------------------------------------------------------------------------------
    def fault(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        if vma.vm_file is not None:
            vma.vm_file.ensure(vma.linear_page_index(base + (int(idx[-1]) << 12)) + 1)
        if vma.is_shared():
            # a shared object (shmem, SysV shm, a shared file): the object's own pages
            self._fault_shared(mm, vma, row, idx, base, write)
            lo = max(vma.vm_start, base)
            hi = min(vma.vm_end, base + (512 << 12))
            self.pv_sync(mm, row, base, np.arange((lo - base) >> 12, (hi - base) >> 12, dtype=np.intp))
        else:
            self._fault_private_bsd(mm, vma, row, idx, base, write)

    # --- VMA life cycle: Linux's anon_vma bookkeeping (merge rules) + the entries ----------------
    def vma_split(self, vma, new) -> None:
        """vm_map_clip_start/end: ``new`` takes the entries of its range. copy_vma() (mremap)
        also comes here with ``new`` elsewhere: its entries arrive with the PTEs (move_ptes)."""
        LinuxDesign.vma_split(self, vma, new)
        new.design_state = []
        if not vma.is_shared() and vma.vm_start <= new.vm_start and new.vm_end <= vma.vm_end:
            new.design_state = self.take(vma, new.vm_pgoff, new.vm_pgoff + new.pages())

    def vma_dup_anon(self, dst, src) -> None:
        """A merge moved a boundary: ``dst`` took over part of ``src``'s range, and with it
        the entries ``src`` no longer covers (none when copy_vma merged: move_ptes brings them)."""
        LinuxDesign.vma_dup_anon(self, dst, src)
        if not dst.is_shared():
            self.put(dst, self.outside(src))

    def vma_merge(self, keep, gone: list) -> None:
        """``keep`` absorbed the ranges of ``gone``: their entries become keep's."""
        if keep.anon_vma is None:
            for g in gone:
                if g.anon_vma is not None:
                    LinuxDesign.vma_dup_anon(self, keep, g)
                    break
        for g in gone:
            self.avs.unlink(g)
            ents = g.design_state or []
            g.design_state = []
            if not keep.is_shared():
                self.put(keep, ents)

    def vma_close(self, vma) -> None:
        self.avs.unlink(vma)
        ents = vma.design_state or []
        vma.design_state = []
        self.drop(ents)

    # --- unmapping -------------------------------------------------------------------------------
    def zap_range(self, mm, vma, start: int, end: int, drop_markers: bool = True,
                  even_cows: bool = True) -> None:
        """pmap_remove() of the range, then the entries' side: with even_cows (munmap, exit,
        MADV_DONTNEED, truncation) the range of a private VMA reads fresh afterwards."""
        super().zap_range(mm, vma, start, end, drop_markers, even_cows)
        self.pv_sync_range(mm, start, end)
        if even_cows and not vma.is_shared():
            self.reset_range(vma, vma.linear_page_index(start), vma.linear_page_index(end))

    def reset_range(self, vma, lo: int, hi: int) -> None:
        """Make offsets [lo, hi) of a private VMA read as never written (zeros, or the file):
        entries wholly inside, needs-copy or unbacked parts, and anything in a private file
        mapping are cut off (vm_map_entry_delete: fresh at the next fault); a private top
        object of anonymous memory frees its pages there instead and, if it shadows another
        object, keeps zero markers so the backing object stays hidden. PTEs must be gone."""
        anon = vma.vm_file is None
        for e in list(self.ents(vma)):
            a, b = max(e.lo, lo), min(e.hi, hi)
            if a >= b:
                continue
            if (a, b) == (e.lo, e.hi) or e.nc or not anon or e.obj is None:
                self.drop(self.take(vma, a, b))
                continue
            t = e.obj
            self.obj_page_remove(t, a, b)
            if t.backing is not None:
                t.set_pg(np.arange(a, b, dtype=np.int64), np.full(b - a, ZERO, np.int64))

    # --- fork ------------------------------------------------------------------------------------------
    def fork_vma(self, parent_mm, child_mm, vma, child_vma) -> None:
        """vmspace_fork(): VM_INHERIT_ZERO (WIPEONFORK) gives a fresh entry; a shared mapping
        shares its object; a private one goes through vm_map_copy_entry()."""
        markers = bool(child_vma.vm_flags & VM_MAYBE_GUARD) and not child_vma.vm_flags & VM_WIPEONFORK
        if markers:
            prows, plo, phi, paddr = self.pt.leaves(parent_mm.pgd, vma.vm_start, vma.vm_end)
            crows = self.pt.ensure_leaves_at(child_mm.pgd, paddr, acct=child_mm)
        child_vma.design_state = []
        if child_vma.vm_flags & VM_WIPEONFORK:
            self.anon_fork(child_vma, None)
            return
        self.anon_fork(child_vma, vma)
        if not vma.is_shared():
            child_vma.design_state = [self._copy_entry(parent_mm, vma, e) for e in self.ents(vma)
                                      if e.obj is not None]
        if markers and len(prows):
            # guard markers live only in the page tables: the child gets them too
            for pr, sl, k in self.pt.groups(prows, plo, phi):
                block = self.pt.rows[pr, sl]
                self.pt.rows[crows[k], sl] = np.where(P.np_marker(block), block, _U64(0))

    def _copy_entry(self, parent_mm, vma, e: Entry) -> Entry:
        """vm_map_copy_entry(): write-protect the parent's range (unless already needs-copy),
        collapse the object, split it off if sibling entries share it (OBJ_ONEMAPPING), take
        a reference for the child and mark both entries NEEDS_COPY."""
        o = e.obj
        if not e.nc:
            self._write_protect(parent_mm, vma.addr_of_index(e.lo), vma.addr_of_index(e.hi))
        self.obj_collapse(o)
        if o.onemapping and o.ref_count > 1:
            o = e.obj = self.obj_split(o, e.lo, e.hi)
        self.obj_reference(o)
        o.onemapping = False
        e.nc = True
        return Entry(e.lo, e.hi, o, True)

    def _write_protect(self, mm, start: int, end: int) -> None:
        """pmap_protect(..., prot & ~VM_PROT_WRITE) over [start, end)."""
        rows_, los, his, _ = self.pt.leaves(mm.pgd, start, end)
        for row, lo, hi in zip(rows_.tolist(), los.tolist(), his.tolist()):
            vals = self.pt.rows[row, lo:hi]
            present = P.np_present(vals)
            if present.any():
                vals[present] &= P.NP_NOT_RW
                self.pt.rows[row, lo:hi] = vals

    # --- mremap ------------------------------------------------------------------------------------------
    def move_ptes(self, mm, old_vma, old_start: int, new_vma, new_start: int, length: int) -> None:
        """The moved range's entries go with its PTEs (vm_map_entry keeps its object and
        offset); pv entries follow the new addresses."""
        n = length >> 12
        old_pg = old_vma.linear_page_index(old_start)
        if not old_vma.is_shared():
            if new_vma.linear_page_index(new_start) != old_pg:
                # copy_vma() relabels a never-written anonymous range with its new address
                # (and may merge the source into the destination): its pages are all zero,
                # so the range simply starts fresh at its new place
                LinuxDesign.zap_range(self, mm, old_vma, old_start, old_start + length)
                self.pv_sync_range(mm, old_start, old_start + length)
                self.drop(self.take(old_vma, old_pg, old_pg + n))
                return
            if old_vma is not new_vma:
                self.put(new_vma, self.take(old_vma, old_pg, old_pg + n))
        self.pv_forget_range(mm, old_start, old_start + length)
        super().move_ptes(mm, old_vma, old_start, new_vma, new_start, length)
        self.pv_sync_range(mm, new_start, new_start + length)

    # --- madvise -----------------------------------------------------------------------------------------
    def madvise_free(self, mm, vma, start: int, end: int) -> None:
        """vm_object_madvise(MADV_FREE): pages of the range resident in the entry's own top
        object and mapped only here become clean lazy-free pages (reclaim may drop them: the
        index then reads zeros); swap blocks there are freed (swap_pager_freespace) and read
        as zeros. Pages of shared or backing objects are left alone."""
        f = self.frames
        lru = self.sys.lru
        rows_, los, his, addrs = self.pt.leaves(mm.pgd, start, end)
        lo_pg, hi_pg = vma.linear_page_index(start), vma.linear_page_index(end)
        for e in self.ents(vma):
            a, b = max(e.lo, lo_pg), min(e.hi, hi_pg)
            if a >= b or e.nc or e.obj is None:
                continue
            t = e.obj
            pidx, pg, sw = t.items(a, b)
            if sw.any():
                s = pidx[sw != 0]
                t.set_sw(s, np.zeros(len(s), np.uint64))
                self.sys.swap_free_entries(sw[sw != 0])
                if t.backing is not None:
                    t.set_pg(s, np.full(len(s), ZERO, np.int64))
        for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
            vals = self.pt.rows[row, lo:hi]
            for k in np.flatnonzero(P.np_present(vals)).tolist():
                ent = int(vals[k])
                pfn = P.pte_pfn(ent)
                fl = int(f.flags[pfn])
                if not fl & PG_anon or int(f.mapcount[pfn]) != 1 or fl & PG_swapcache:
                    continue
                e = self.entry_at(vma, vma.linear_page_index(a + (k << 12)))
                if e is None or e.nc or e.obj is None or int(f.mapping[pfn]) != e.obj.id:
                    continue
                # pmap_clear_modify + vm_page_dontneed: clean, old, off the anon LRU
                vals[k] = ent & ~(P.ACCESSED | P.DIRTY)
                fl &= ~PG_dirty
                if fl & PG_swapbacked and not fl & PG_unevictable:
                    fl &= ~(PG_swapbacked | PG_active | PG_referenced)
                    if fl & PG_lru:
                        lru.rotate_to_head(pfn)
                    self.sys.events.count("pglazyfree")
                f.flags[pfn] = fl
            self.pt.rows[row, lo:hi] = vals

    # --- reclaim --------------------------------------------------------------------------------------
    def unmap_one(self, mm, vma, row: int, slot: int, pfn: int, addr: int = -1) -> bool:
        """pmap_remove_all()'s work on one mapping (reclaim's try_to_unmap walks the pv list,
        rmap_walk, and comes here for each): the PTE is cleared and its pv entry removed. An
        anonymous swap-backed page leaves no swap PTE behind (the object keeps the page, and
        reclaim_unmapped() gives the object the swap block); lazy-free, file and shmem pages
        and VM_LOCKED mappings are handled as Linux does (ReclaimOps.unmap_one)."""
        if addr < 0:
            addr = self._addr_of(mm, row, slot, pfn)
        f = self.frames
        fl = int(f.flags[pfn])
        if fl & PG_anon and fl & PG_swapbacked and not vma.vm_flags & VM_LOCKED:
            self.stats.add("rmap_unmapped")
            if int(self.pt.rows[row, slot]) & P.DIRTY:
                f.flags[pfn] |= _U32(PG_dirty)
            self.pt.rows[row, slot] = 0
            mm.rss[MM_ANONPAGES] -= 1
            f.mapcount[pfn] -= 1
        elif not LinuxDesign.unmap_one(self, mm, vma, row, slot, pfn, addr):
            return False
        self.pv_remove_one(mm, addr, pfn)
        return True

    def _addr_of(self, mm, row: int, slot: int, pfn: int) -> int:
        """The address of the PTE (row, slot) of ``mm`` mapping ``pfn``, from the pv list."""
        for (mid, va), m in (self.pv.get(pfn) or {}).items():
            if mid == id(mm) and (va >> 12) & 511 == slot and self.pt.lookup_leaf(mm.pgd, va) == row:
                return va
        raise AssertionError(f"bsd: no pv entry for pfn {pfn} at row {row} slot {slot}")

    def reclaim_unmapped(self, pfn: int) -> None:
        """swap_pager_putpages()'s bookkeeping: the page's object now holds the swap block in
        its place (the page stays in the swap cache until written and freed); a clean
        lazy-free page is dropped and its index reads zeros."""
        f = self.frames
        fl = int(f.flags[pfn])
        if int(f.mapcount[pfn]):
            return
        o = self.objects.get(int(f.mapping[pfn]))
        if o is None:
            return
        p = int(f.index[pfn])
        if o.page_at(p) != pfn:
            return
        pidx = np.array([p], np.int64)
        if not fl & PG_swapbacked:
            if fl & PG_dirty:
                return
            o.set_pg(pidx, np.array([ZERO if o.backing is not None else NONE], np.int64))
        elif fl & PG_swapcache:
            ent = int(f.private[pfn])
            self.sys.swap.duplicate(P.pte_swp_type(ent), P.pte_swp_offset(ent))
            o.set_pg(pidx, np.array([NONE], np.int64))
            o.set_sw(pidx, np.array([ent], np.uint64))
        else:
            return
        f.refcount[pfn] -= 1
        f.mapping[pfn] = -1

    def held_pages(self) -> np.ndarray:
        parts = [o.pfns() for o in self.objects.values() if o.resident]
        return np.concatenate(parts) if parts else np.empty(0, np.intp)

    def swap_refs(self):
        for o in self.objects.values():
            if o.nswap:
                yield from o.swap_entries().tolist()

    # --- swapoff -----------------------------------------------------------------------------------------
    def unuse_mm(self, mm, t: int, get_page) -> None:
        """swap_pager_swapoff(): every swap block on area ``t`` of the objects this mm's
        entries reach comes back into its object."""
        seen: set[int] = set()
        objs: list[VMObject] = []
        for vma in mm.vmas.as_list():
            for e in vma.design_state or ():
                for o in (e.obj.chain() if e.obj is not None else ()):
                    if o.id not in seen:
                        seen.add(o.id)
                        objs.append(o)
        for o in objs:
            if not o.nswap:
                continue
            pidx, _pg, sw = o.items()
            for p, ent in zip(pidx[sw != 0].tolist(), sw[sw != 0].tolist()):
                if P.pte_swp_type(ent) != t:
                    continue
                off = P.pte_swp_offset(ent)
                pfn = get_page(off)
                if pfn < 0 or o.dead or o.swap_at(p) != ent:
                    continue
                self.obj_swap_to_page(o, p, t, off, pfn)

    # --- costs and self-check -------------------------------------------------------------------------
    def metadata(self) -> dict[str, int]:
        return {"vm_object": len(self.objects) * VM_OBJECT_BYTES,
                "pv_entry": self.pv_bytes(),
                "swblock": sum(o.swblocks() for o in self.objects.values() if o.nswap) * SWBLOCK_BYTES}

    def check(self, mms: list) -> list[str]:
        from .check import check_bsd
        return check_bsd(self, mms)
