"""The `sharedpt` design: PTE tables shared at fork, copied on the first write into them.

The fourth seed (Linus Torvalds on Daniel Phillips' "Page table sharing" RFC, linux-kernel,
February 2002) argues for sharing page tables between processes: read faults may keep sharing
("purely an optimization"), and the one hard case is swap-out, "the only VM operation that is
non-local", which has to find every mm using a table — hence a "pmd-rmap" listing them.
On-Demand-Fork (Zhao, Gong, Fonseca, EuroSys 2021; the code is rssys/on-demand-fork, a Linux
5.6 tree) built the fork half of it: copy_pmd_range_tfork() points the child's PMD entries at
the parent's last-level tables and counts the references (pte_table_refcount), and the first
fault that needs a private table copies it (tfork_one_pte_table()). Everything here that is
not about page tables — anon_vma rmap, zero page, COW rules, shmem, swap cache, LRU — is the
`linux` design's; this package overrides the entry points that touch PTEs.

  fork           A leaf table is *shareable* when its whole 2 MiB range lies inside private
                 VMAs that fork copies the Linux way (vma_needs_copy) and that are not locked,
                 special, VM_DONTCOPY or VM_WIPEONFORK. Such a table is not copied: the child's
                 PMD entry points at the parent's table (row_refs +1), every present PTE in it
                 is write-protected once and every anon page in it loses PageAnonExclusive (a
                 shared table makes each private page COW for every user), swap PTEs lose the
                 exclusive bit, and the (table, child) pair joins the table-level reverse map.
                 Page mapcounts are *not* raised (On-Demand-Fork's saving), nor swap counts: a
                 mapcount counts PTEs, and a shared table holds one PTE per page. Tables that
                 straddle a VMA boundary of another kind are copied as Linux copies them.
  write fault    into a shared table: the table is first copied for the faulting mm
                 ("unshare": mapcount +1 for every page in it, swap_duplicate for every swap
                 entry, exactly what copying the PTEs would do), then Linux's do_wp_page runs
                 on the private copy — and sees mapcount 2, so it copies the page (COW).
  read fault     into a shared table keeps sharing: the zero page, a file page or a page read
                 back from swap (a fault or swapoff) is mapped once, for every user of the
                 table; each user's RSS counts it (RSS = what the mm's page tables map). A page
                 swapped in this way is never mapped writable or exclusive (table_users(), the
                 hook linux/swap.py asks).
  PTE changes    munmap, mprotect, mremap, MADV_DONTNEED/FREE, guard regions, mlock and the
                 per-process RSS limit change one mm's view, so they unshare first;
                 when an mm stops using the whole 2 MiB range (exit, munmap of all of it,
                 DONTNEED of a whole table) it just drops its reference, as On-Demand-Fork's
                 zap_pmd_range() and free_pte_range() do.
  reclaim        try_to_unmap / folio_referenced walk the anon_vma (or i_mmap) as Linux does;
                 a PTE found in a shared table is changed once and the pmd-rmap supplies the
                 other mms to account (every sharer's RSS, one rmap step per sharer). MADV_COLD
                 and MADV_PAGEOUT skip shared tables: every page in one is mapped by two mms,
                 which Linux's mapcount test would skip too.

VmPTE: each mm counts every PTE table it points at (nr_ptes), shared or not, so a child's
VmPTE after fork looks like Linux's; /proc/meminfo's PageTables counts the frames, so it shows
the saving. Mapcounts (kpagecount, smaps Pss/Shared_*, pagemap's exclusive bit) count PTEs and
so differ from Linux's for pages in shared tables; those numbers are structural.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...hw import pte as P
from ...hw.frames import PG_anon_exclusive, ZERO_PFN, OutOfFrames
from ...hw.pagetable import PMD_SHIFT, PMD_SIZE, PTE_LEVEL, PUD_SHIFT, PTRS_PER_TABLE
from ...mm.mm_struct import MM_SWAPENTS
from ...mm.vmflags import (VM_ACCESS_FLAGS, VM_DONTCOPY, VM_DROPPABLE, VM_HUGETLB, VM_LOCKED_MASK,
                           VM_MAYSHARE, VM_SHARED, VM_SPECIAL, VM_UFFD_FLAGS, VM_WIPEONFORK)
from ..linux import LinuxDesign
from .tables import PMD_RMAP_ENTRY_BYTES, PmdRmap

_U32 = np.uint32
_U64 = np.uint64
_PMD_LOW = PMD_SIZE - 1
# VMAs whose tables are never shared: fork would not copy them as they are (shared memory,
# DONTCOPY, WIPEONFORK), or their pages carry per-mm state the table cannot (mlock), or
# they are special mappings
_NO_SHARE = (VM_SHARED | VM_MAYSHARE | VM_DONTCOPY | VM_WIPEONFORK | VM_LOCKED_MASK | VM_SPECIAL
             | VM_UFFD_FLAGS | VM_HUGETLB | VM_DROPPABLE)
# flags that may change on a VMA over a shared table without unsharing it (they only matter
# at the next fork)
_NEVER_SHARED = _NO_SHARE & ~(VM_DONTCOPY | VM_WIPEONFORK)
# what must agree between the users of a shared table, address by address over its range
_SAME_FLAGS = VM_ACCESS_FLAGS | VM_SHARED | VM_LOCKED_MASK


class SharedPTDesign(LinuxDesign):
    name = "sharedpt"
    description = ("page tables shared at fork (Linus 2002 pmd sharing, On-Demand-Fork 2021): "
                   "copy on first write, pmd-rmap for swap-out")

    OPTIONS: dict = {}

    def __init__(self, system, **options):
        super().__init__(system, **options)
        self.pmd_rmap = PmdRmap()
        self._fanout: tuple | None = None       # (mm, row) during a read fault in a shared table

    # --- which tables may be shared ------------------------------------------------------------
    def _vma_shareable(self, v) -> bool:
        """May a table lying inside ``v`` be shared at fork? (private, copied by fork the
        Linux way — vma_needs_copy — and no per-mm page state)."""
        return not v.vm_flags & _NO_SHARE and self._vma_needs_copy(v, v)

    def _table_shareable(self, mm, base: int) -> bool:
        """Is the 2 MiB range at ``base`` wholly covered by shareable VMAs of ``mm``?"""
        end = base + PMD_SIZE
        cur = base
        for v in mm.vmas.intersecting(base, end):
            if v.vm_start > cur or not self._vma_shareable(v):
                return False
            cur = v.vm_end
            if cur >= end:
                return True
        return False

    def _pmd_slot(self, mm, base: int) -> tuple[int, int]:
        pmd, _ = self.pt._pmd_table(mm.pgd, base, False, None)
        return pmd, (base >> PMD_SHIFT) & 511

    # --- fork: copy_pmd_range_tfork() ----------------------------------------------------------
    def fork_vma(self, parent_mm, child_mm, vma, child_vma) -> None:
        if child_vma.vm_flags & VM_WIPEONFORK or not self._vma_needs_copy(child_vma, vma) \
                or not self._vma_shareable(vma):
            return super().fork_vma(parent_mm, child_mm, vma, child_vma)
        pt = self.pt
        prows, plo, phi, paddr = pt.leaves(parent_mm.pgd, vma.vm_start, vma.vm_end)
        bases = (paddr >> PMD_SHIFT) << PMD_SHIFT
        share = (bases >= vma.vm_start) & (bases + PMD_SIZE <= vma.vm_end)
        for k in np.flatnonzero(~share).tolist():         # the (at most two) edge tables
            share[k] = self._table_shareable(parent_mm, int(bases[k]))
        sk, ck = np.flatnonzero(share), np.flatnonzero(~share)
        # allocate first (the only step that can fail): the child's tables for the copies,
        # and the child's PMD tables that will point at the shared ones
        crows = pt.ensure_leaves_at(child_mm.pgd, paddr[ck], acct=child_mm) if len(ck) else None
        cpmds = self._child_pmds(child_mm, bases[sk])
        self.anon_fork(child_vma, vma)
        if len(ck):
            self._copy_page_range(parent_mm, child_mm, vma, prows[ck], plo[ck], phi[ck], crows)
        if len(sk):
            self._share_tables(parent_mm, child_mm, prows[sk], bases[sk], cpmds)

    def _child_pmds(self, mm, bases: np.ndarray) -> np.ndarray:
        """The child's PMD table over each base (allocated per 1 GiB as needed)."""
        out = np.empty(len(bases), np.intp)
        last_pud, pmd = None, -1
        for k, b in enumerate(bases.tolist()):
            if b >> PUD_SHIFT != last_pud:
                pmd, _ = self.pt._pmd_table(mm.pgd, b, True, mm)
                last_pud = b >> PUD_SHIFT
            out[k] = pmd
        return out

    def _share_tables(self, pmm, cmm, rows: np.ndarray, bases: np.ndarray, cpmds: np.ndarray) -> None:
        """Point the child's PMD entries at the parent's tables; write-protect them once."""
        pt = self.pt
        f = self.frames
        slots = (bases >> PMD_SHIFT) & 511
        fresh = pt.rows[cpmds, slots] == 0               # not shared yet by an earlier VMA
        if not fresh.all():
            rows, bases, cpmds, slots = rows[fresh], bases[fresh], cpmds[fresh], slots[fresh]
        if not len(rows):
            return
        pt.rows[cpmds, slots] = ((pt.row_pfn[rows].astype(np.uint64) << P.NP_PFN_SHIFT)
                                 | _U64(P.TABLE))
        pt.row_refs[rows] += 1
        cmm.nr_ptes += len(rows)
        block = pt.rows[rows]                               # a copy, (ntables, 512)
        flat = block.reshape(-1)
        present = (flat & P.NP_PRESENT_ANY) != 0
        changed = False
        rw = present & ((flat & P.NP_RW) != 0)
        if rw.any():
            flat[rw] &= P.NP_NOT_RW                         # COW for every user from now on
            changed = True
        other = (flat != 0) & ~present
        nswap = 0
        if other.any():
            swap = other & ~P.np_marker(flat)
            nswap = int(np.count_nonzero(swap))
            excl = swap & ((flat & _U64(P.SWP_EXCLUSIVE)) != 0)
            if excl.any():
                flat[excl] &= _U64(~P.SWP_EXCLUSIVE & 0xFFFFFFFFFFFFFFFF)
                changed = True
        if changed:
            pt.rows[rows] = block
        pfn = P.np_pfn(flat[present])
        pfn = pfn[pfn != ZERO_PFN]
        if len(pfn):
            fl = f.flags[pfn]
            super().rss_add(cmm, pfn, +1, flags=fl)
            f.flags[pfn] = fl & _U32(~PG_anon_exclusive & 0xFFFFFFFF)
        cmm.rss[MM_SWAPENTS] += nswap
        for r, b in zip(rows.tolist(), bases.tolist()):
            self.pmd_rmap.add(r, pmm, b, cmm, b)
        self.stats.add("tables_shared_fork", len(rows))

    # --- unsharing and releasing -----------------------------------------------------------------
    def _unshare(self, mm, row: int, base: int, why: str) -> int:
        """tfork_one_pte_table(): give ``mm`` its own copy of shared table ``row`` (mapping the
        2 MiB at ``base``). Every page in it gains a PTE (mapcount +1), every swap entry a
        reference; RSS does not change (the mm counted the table's pages already). Allocates
        the new table first (OutOfFrames leaves everything as it was). Returns the new row."""
        pt = self.pt
        new = pt.alloc_table(PTE_LEVEL)                     # the mm already counts one table here
        pmd, i = self._pmd_slot(mm, base)
        cur = pt.entry_row(int(pt.rows[pmd, i]))
        if cur != row or pt.row_refs[row] <= 1:
            pt.free_table(new)                              # reclaim cannot do this; be safe
            return cur
        vals = pt.rows[row].copy()
        pt.rows[new] = vals
        present = P.np_present(vals)
        pfn = P.np_pfn(vals[present])
        pfn = pfn[pfn != ZERO_PFN]
        if len(pfn):
            self.frames.mapcount[pfn] += 1
        sw = P.np_swap(vals) & ~P.np_marker(vals)
        if sw.any():
            swap = self.sys.swap
            for e in vals[sw].tolist():
                swap.duplicate(P.pte_swp_type(e), P.pte_swp_offset(e))
        pt.rows[pmd, i] = _U64(pt.table_entry(new))
        pt.row_refs[row] -= 1
        self.pmd_rmap.remove(row, mm, int(pt.row_refs[row]))
        self.stats.add("tables_unshared")
        self.stats.add(f"tables_unshared_{why}")
        return new

    def _release(self, mm, row: int, base: int, why: str) -> None:
        """``mm`` stops using shared table ``row`` without copying it: its PMD entry goes, its
        RSS loses what the table maps, the table loses one reference (dereference_pte_table()
        in On-Demand-Fork). Pages and swap entries stay, for the other users."""
        pt = self.pt
        vals = pt.rows[row]
        present = P.np_present(vals)
        pfn = P.np_pfn(vals[present])
        pfn = pfn[pfn != ZERO_PFN]
        super().rss_add(mm, pfn, -1)
        mm.rss[MM_SWAPENTS] -= int(np.count_nonzero(P.np_swap(vals) & ~P.np_marker(vals)))
        pmd, i = self._pmd_slot(mm, base)
        pt.rows[pmd, i] = 0
        pt.release_table(row, acct=mm)
        self.pmd_rmap.remove(row, mm, int(pt.row_refs[row]))
        self.stats.add("tables_released")
        self.stats.add(f"tables_released_{why}")

    def _shared_leaves(self, mm, start: int, end: int):
        """(row, lo, hi, base) of each shared table meeting [start, end)."""
        if not self.pmd_rmap:
            return []
        pt = self.pt
        rows, los, his, addrs = pt.leaves(mm.pgd, start, end)
        if not len(rows):
            return []
        k = np.flatnonzero(pt.row_refs[rows] > 1)
        return [(int(rows[j]), int(los[j]), int(his[j]), int(addrs[j]) & ~_PMD_LOW) for j in k.tolist()]

    def _unshare_range(self, mm, start: int, end: int, why: str, need=None) -> None:
        """Unshare every shared table meeting [start, end) (those whose slice satisfies
        ``need``, if given)."""
        for row, lo, hi, base in self._shared_leaves(mm, start, end):
            if need is None or need(self.pt.rows[row, lo:hi]):
                self._unshare(mm, row, base, why)

    # --- faults ------------------------------------------------------------------------------
    def fault(self, mm, vma, row: int, idx: np.ndarray, base: int, write: bool) -> None:
        if self.pt.row_refs[row] > 1:
            if write:
                row = self._unshare(mm, row, base, "fault")
            else:
                prev = self._fanout
                self._fanout = (mm, row)
                try:
                    self.stats.add("faults_shared_table", len(idx))
                    return super().fault(mm, vma, row, idx, base, write)
                finally:
                    self._fanout = prev
        return super().fault(mm, vma, row, idx, base, write)

    def rss_add(self, mm, pfns: np.ndarray, sign: int = 1, flags: np.ndarray | None = None) -> None:
        """add_mm_counter(); during a read fault into a shared table, for every user of it."""
        fo = self._fanout
        if fo is not None and mm is fo[0]:
            users = self.pmd_rmap.mms(fo[1])
            if users:
                for m in users:
                    super().rss_add(m, pfns, sign, flags)
                return
        super().rss_add(mm, pfns, sign, flags)

    def table_users(self, mm, row: int):
        """The mms using leaf table ``row`` (the pmd-rmap's list when it is shared): a page
        swapped in or brought back by swapoff into a shared table is mapped once, read-only
        and not exclusive, and counted in every user's RSS (linux/swap.py does the rest)."""
        return self.pmd_rmap.mms(row) or (mm,)

    # --- range operations -----------------------------------------------------------------------
    def zap_range(self, mm, vma, start: int, end: int, drop_markers: bool = True,
                  even_cows: bool = True) -> None:
        """zap_pmd_range() as On-Demand-Fork does it: a shared table this mm stops using
        altogether is released, one it keeps using in part is copied first."""
        if self.pmd_rmap:
            self._zap_shared(mm, vma, start, end, drop_markers, even_cows)
        super().zap_range(mm, vma, start, end, drop_markers, even_cows)

    def _zap_shared(self, mm, vma, start, end, drop_markers, even_cows) -> None:
        pt = self.pt
        teardown = mm.vmas.lookup(vma.vm_start) is not vma      # munmap / exit: VMA detached
        for row, lo, hi, base in self._shared_leaves(mm, start, end):
            if teardown:
                if not mm.vmas.intersecting(base, base + PMD_SIZE):
                    self._release(mm, row, base, "unmap")
                else:
                    self._unshare(mm, row, base, "unmap")
                continue
            if not pt.rows[row, lo:hi].any():
                continue                                    # nothing would change
            whole = lo == 0 and hi == PTRS_PER_TABLE and even_cows
            if whole and (drop_markers or not P.np_marker(pt.rows[row]).any()):
                self._release(mm, row, base, "zap")
            else:
                self._unshare(mm, row, base, "zap")

    def change_protection(self, mm, vma, start: int, end: int) -> None:
        self._unshare_range(mm, start, end, "mprotect")
        super().change_protection(mm, vma, start, end)

    def move_ptes(self, mm, old_vma, old_start: int, new_vma, new_start: int, length: int) -> None:
        self._unshare_range(mm, old_start, old_start + length, "mremap")
        self._unshare_range(mm, new_start, new_start + length, "mremap")
        super().move_ptes(mm, old_vma, old_start, new_vma, new_start, length)

    def mlock_range(self, mm, vma, start: int, end: int) -> None:
        """mlock_fixup(): locked pages are per-mm state a shared table cannot carry."""
        self._unshare_range(mm, start, end, "mlock")

    # --- madvise ------------------------------------------------------------------------------------
    def madvise_free(self, mm, vma, start: int, end: int) -> None:
        self._unshare_range(mm, start, end, "madvise", need=lambda v: bool(v.any()))
        super().madvise_free(mm, vma, start, end)

    def madvise_cold(self, mm, vma, start: int, end: int, pageout: bool) -> list[int]:
        """MADV_COLD / PAGEOUT act on pages mapped only here: none in a shared table is, so
        shared tables are skipped (Linux skips the same pages: their mapcount is 2)."""
        shared = self._shared_leaves(mm, start, end)
        if not shared:
            return super().madvise_cold(mm, vma, start, end, pageout)
        victims: list[int] = []
        cur = start
        for _row, _lo, _hi, base in shared:
            if cur < base:
                victims += super().madvise_cold(mm, vma, cur, base, pageout)
            cur = max(cur, base + PMD_SIZE)
            self.stats.add("madvise_cold_skipped_tables")
        if cur < end:
            victims += super().madvise_cold(mm, vma, cur, end, pageout)
        return victims

    def guard_install(self, mm, vma, start: int, end: int) -> None:
        self._unshare_range(mm, start, end, "guard")
        super().guard_install(mm, vma, start, end)

    def guard_remove(self, mm, vma, start: int, end: int) -> None:
        self._unshare_range(mm, start, end, "guard",
                            need=lambda v: bool((v == _U64(P.GUARD_PTE)).any()))
        super().guard_remove(mm, vma, start, end)

    # --- reverse map and reclaim ------------------------------------------------------------------------
    def unmap_one(self, mm, vma, row: int, slot: int, pfn: int, addr: int = -1) -> bool:
        """try_to_unmap_one() for one mm (the per-process RSS limit): a shared table is
        copied first, so only this mm loses the page. No frame for the copy: keep the page."""
        if self.pt.row_refs[row] > 1:
            base = next((b for m, b in self.pmd_rmap.get(row) or () if m is mm), None)
            if base is None:
                return False
            try:
                row = self._unshare(mm, row, base, "rss_limit")
            except OutOfFrames:
                return False
        return super().unmap_one(mm, vma, row, slot, pfn, addr)

    def _shared_users(self, row: int) -> list | None:
        """The pmd-rmap entries of a shared table, counting the walk's steps."""
        users = self.pmd_rmap.get(row)
        if users is not None:
            self.stats.add("rmap_steps", len(users))
            self.stats.add("table_rmap_steps", len(users))
        return users

    def try_to_unmap(self, pfn: int) -> bool:
        """try_to_unmap(): the anon_vma / i_mmap walk finds the PTEs; one in a shared table is
        replaced once and accounted in every mm the pmd-rmap lists."""
        if not self.pmd_rmap:
            return super().try_to_unmap(pfn)
        done: set[tuple[int, int]] = set()
        for mm, vma, addr in list(self.rmap_walk(pfn)):
            row, slot = self._mapped_at(mm, addr, pfn)
            if row < 0 or (row, slot) in done:
                continue
            done.add((row, slot))
            users = self._shared_users(row)
            before = list(mm.rss)
            ok = super().unmap_one(mm, vma, row, slot, pfn)
            if users is not None:
                delta = [a - b for a, b in zip(mm.rss, before)]
                for m, _b in users:
                    if m is not mm:
                        for k in range(len(delta)):
                            m.rss[k] += delta[k]
                if ok:
                    self.stats.add("shared_ptes_unmapped")
            if not ok:
                return False
        return int(self.frames.mapcount[pfn]) == 0

    def page_referenced(self, pfn: int) -> tuple[int, int]:
        """folio_referenced(): one accessed bit per PTE — a PTE in a shared table is one bit,
        whichever of its users touched the page. Clearing a young one is
        ptep_clear_flush_young(): every mm using the table may cache the translation, so the
        pmd-rmap is walked to flush each (one rmap step per user)."""
        if not self.pmd_rmap:
            return super().page_referenced(pfn)
        young = 0
        vm_flags = 0
        done: set[tuple[int, int]] = set()
        for mm, vma, addr in self.rmap_walk(pfn):
            row, slot = self._mapped_at(mm, addr, pfn)
            if row < 0:
                continue
            vm_flags |= vma.vm_flags
            if (row, slot) in done:
                continue
            done.add((row, slot))
            e = int(self.pt.rows[row, slot])
            if e & P.ACCESSED:
                self.pt.rows[row, slot] = _U64(e & ~P.ACCESSED)
                young += 1
                self._shared_users(row)
        return young, vm_flags

    # --- costs and self-check -----------------------------------------------------------------------------
    def metadata(self) -> dict[str, int]:
        out = super().metadata()
        out["pmd_rmap"] = self.pmd_rmap.bytes()
        return out

    def _leaf_bases(self, mm) -> Iterator[tuple[int, int]]:
        """(leaf row, address it maps) for every PTE table ``mm`` points at."""
        pt = self.pt
        priv = self.frames.private
        for i in np.flatnonzero(pt.rows[mm.pgd]).tolist():
            pud = pt.entry_row(int(pt.rows[mm.pgd, i]))
            for j in np.flatnonzero(pt.rows[pud]).tolist():
                pmd = pt.entry_row(int(pt.rows[pud, j]))
                ents = pt.rows[pmd]
                nz = np.flatnonzero(ents)
                leaves = priv[P.np_pfn(ents[nz])].astype(np.int64)
                top = (i << 39) | (j << 30)
                for k, r in zip(nz.tolist(), leaves.tolist()):
                    yield r, top | (k << PMD_SHIFT)

    def check(self, mms: list) -> list[str]:
        """Linux's rmap invariants, plus: the pmd-rmap lists exactly the (mm, address) pairs
        that reach each shared table; a shared table holds no writable PTE, no exclusive anon
        page and no exclusive swap entry; and its whole range is mapped, in every user, by
        shareable VMAs that agree (bounds, protection, file and offset)."""
        out = super().check(mms)
        pt = self.pt
        f = self.frames
        found: dict[int, list] = {}
        for mm in mms:
            for r, base in self._leaf_bases(mm):
                if pt.row_refs[r] > 1:
                    found.setdefault(r, []).append((mm, base))
        listed = self.pmd_rmap.users
        for r, users in found.items():
            want = sorted((id(m), b) for m, b in users)
            have = sorted((id(m), b) for m, b in listed.get(r, ()))
            if want != have:
                out.append(f"sharedpt: table row {r} is used at {[hex(b) for _, b in users]} by "
                           f"{len(users)} mm(s) but the pmd-rmap lists {len(have)}")
            vals = pt.rows[r]
            present = P.np_present(vals)
            if ((vals[present] & P.NP_RW) != 0).any():
                out.append(f"sharedpt: shared table row {r} holds a writable PTE")
            pfn = P.np_pfn(vals[present])
            pfn = pfn[pfn != ZERO_PFN]
            if (f.flags[pfn] & _U32(PG_anon_exclusive)).any():
                out.append(f"sharedpt: shared table row {r} maps a PageAnonExclusive page")
            sw = P.np_swap(vals) & ~P.np_marker(vals)
            if ((vals[sw] & _U64(P.SWP_EXCLUSIVE)) != 0).any():
                out.append(f"sharedpt: shared table row {r} holds an exclusive swap entry")
            sigs = []
            for m, base in users:
                sig, cur = [], base
                for v in m.vmas.intersecting(base, base + PMD_SIZE):
                    if v.vm_start > cur or v.vm_flags & _NEVER_SHARED:
                        break
                    s, e = max(v.vm_start, base), min(v.vm_end, base + PMD_SIZE)
                    key = (v.vm_flags & _SAME_FLAGS, v.vm_page_prot, id(v.vm_file),
                           v.linear_page_index(s) - (s >> 12))
                    if sig and sig[-1][1] == s and sig[-1][2] == key:
                        sig[-1] = (sig[-1][0], e, key)      # a split by madvise: same mapping
                    else:
                        sig.append((s, e, key))
                    cur = v.vm_end
                if cur < base + PMD_SIZE:
                    out.append(f"sharedpt: shared table row {r} at {base:#x} is not wholly inside "
                               f"shareable VMAs of one of its mms")
                sigs.append(sig)
            if any(s != sigs[0] for s in sigs[1:]):
                out.append(f"sharedpt: the users of shared table row {r} map its range differently")
        for r in listed:
            if r not in found:
                out.append(f"sharedpt: the pmd-rmap lists table row {r}, which no two live mms share")
        return out


__all__ = ["SharedPTDesign", "PMD_RMAP_ENTRY_BYTES"]
