"""x86-64 four-level page tables, as numpy rows of 512 entries.

Models the page-table walk of mm/memory.c and mm/pgtable-generic.c on x86-64 with 4-level
paging (p4d folded): PGD -> PUD -> PMD -> PTE, 9 bits each, 4 KiB pages. Freeing of tables
follows mm/memory.c:free_pgd_range() exactly (floor/ceiling rounding), because VmPTE and
meminfo's PageTables show how many tables a process holds.

Layout. Every table of every process lives in one pool, ``rows``: a 2-D uint64 array of shape
(capacity, 512). A table is a row; each table is also backed by a frame of the mem_map (flag
PG_pgtable, ``frames.private[pfn]`` = its row), so page tables take RAM like Linux's do. An
upper-level entry holds the backing frame's pfn with _PAGE_TABLE bits, as on x86; the row is
found through the frame. Leaf rows hold real PTE values (pte.py).

Keeping all tables in one array means a bulk operation over many tables (fork of a 1 GiB
region touches 512 leaf tables) is one fancy-indexed numpy operation, not 512.

Contract for callers: ``rows`` may be reallocated when a table is allocated, so never keep a
reference to ``self.rows`` across a call that can allocate; keep row numbers instead.

Accounting: walks that allocate take an ``acct`` object with integer attributes ``nr_ptes``,
``nr_pmds``, ``nr_puds`` (the mm's mm_inc_nr_ptes() & co.), updated as tables come and go.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from . import pte as P
from .frames import PG_pgtable, ZERO_PFN, FrameTable

PTRS_PER_TABLE = 512
PTE_LEVEL, PMD_LEVEL, PUD_LEVEL, PGD_LEVEL = 1, 2, 3, 4
LEVEL_SHIFT = {PTE_LEVEL: 12, PMD_LEVEL: 21, PUD_LEVEL: 30, PGD_LEVEL: 39}
PMD_SHIFT, PUD_SHIFT, PGDIR_SHIFT = 21, 30, 39
PMD_SIZE, PUD_SIZE, PGDIR_SIZE = 1 << 21, 1 << 30, 1 << 39
PMD_MASK, PUD_MASK, PGDIR_MASK = ~(PMD_SIZE - 1), ~(PUD_SIZE - 1), ~(PGDIR_SIZE - 1)
_ACCT_FIELD = {PTE_LEVEL: "nr_ptes", PMD_LEVEL: "nr_pmds", PUD_LEVEL: "nr_puds"}
_U64 = (1 << 64) - 1


def _mask(a: int, mask: int) -> int:
    return a & mask & _U64


class PageTables:
    """The machine's pool of page-table pages and the walks over them.

    Fields: ``rows`` (o) the tables; ``row_pfn`` (c per allocation) backing frame of each row,
    -1 when the row is free; ``row_level`` (c) 1..4; ``row_refs`` (o) how many upper entries
    point at the row (1 normally; more when a design shares tables); ``ntables`` (d) rows in use.

    A free row is all zeros: free_table() takes back only empty tables and new rows are
    zeroed, so allocating a table never clears it (check() verifies this).
    """

    def __init__(self, frames: FrameTable, capacity: int = 64):
        self.frames = frames
        self.rows = np.zeros((capacity, PTRS_PER_TABLE), np.uint64)
        self.row_pfn = np.full(capacity, -1, np.int64)
        self.row_level = np.zeros(capacity, np.int8)
        self.row_refs = np.zeros(capacity, np.int32)
        self._free_rows = list(range(capacity - 1, -1, -1))
        self.ntables = 0

    # --- table allocation ---------------------------------------------------------------------
    def _grow(self, need: int = 1) -> None:
        """Add rows: an eighth more (at least 16, at least ``need``), so the pool stays close
        to the tables in use (the bytes-per-page budget counts its capacity)."""
        cap = len(self.rows)
        add = max(16, cap // 8, need)
        self.rows = np.concatenate([self.rows, np.zeros((add, PTRS_PER_TABLE), np.uint64)])
        self.row_pfn = np.concatenate([self.row_pfn, np.full(add, -1, np.int64)])
        self.row_level = np.concatenate([self.row_level, np.zeros(add, np.int8)])
        self.row_refs = np.concatenate([self.row_refs, np.zeros(add, np.int32)])
        self._free_rows = list(range(cap + add - 1, cap - 1, -1)) + self._free_rows

    def alloc_table(self, level: int, acct=None) -> int:
        """pte_alloc_one() / pmd_alloc_one() / ...: a zeroed table backed by a fresh frame.

        May raise OutOfFrames (from the frame allocator) before changing anything.
        Net: one frame leaves the free list with PG_pgtable; ntables +1; acct nr_* +1.
        """
        pfn = self.frames.alloc(content=0)
        if not self._free_rows:
            self._grow()
        row = self._free_rows.pop()                       # already zero (see the class)
        self.row_pfn[row] = pfn
        self.row_level[row] = level
        self.row_refs[row] = 1
        self.frames.flags[pfn] = PG_pgtable
        self.frames.private[pfn] = row
        self.ntables += 1
        if acct is not None and level in _ACCT_FIELD:
            f = _ACCT_FIELD[level]
            setattr(acct, f, getattr(acct, f) + 1)
        return row

    def free_rows(self) -> np.ndarray:
        """The rows not in use (for check())."""
        return np.array(self._free_rows, dtype=np.intp)

    def free_table(self, row: int, acct=None) -> None:
        """pte_free() & co.: give the table's frame back. The table must be empty."""
        assert self.row_pfn[row] >= 0, f"free_table: row {row} is not allocated"
        assert not self.rows[row].any(), f"free_table: row {row} (level {self.row_level[row]}) still has entries"
        level = int(self.row_level[row])
        pfn = int(self.row_pfn[row])
        self.frames.flags[pfn] = 0
        self.frames.refcount[pfn] = 0
        self.frames.private[pfn] = 0
        self.frames.free(pfn)
        self.row_pfn[row] = -1
        self.row_level[row] = 0
        self.row_refs[row] = 0
        self._free_rows.append(row)
        self.ntables -= 1
        if acct is not None and level in _ACCT_FIELD:
            f = _ACCT_FIELD[level]
            setattr(acct, f, getattr(acct, f) - 1)

    def table_entry(self, row: int) -> int:
        """The upper-level entry pointing at ``row``: its frame's pfn with _PAGE_TABLE bits."""
        return P.mk_pte(int(self.row_pfn[row]), P.TABLE)

    def entry_row(self, entry: int) -> int:
        """Follow an upper-level entry to the row of the table it points at."""
        return int(self.frames.private[P.pte_pfn(entry)])

    # --- walks ----------------------------------------------------------------------------------
    def lookup_leaf(self, pgd: int, addr: int) -> int:
        """The PTE table covering ``addr``, or -1 if some level is missing (no allocation)."""
        row = pgd
        for level in (PGD_LEVEL, PUD_LEVEL, PMD_LEVEL):
            e = int(self.rows[row, (addr >> LEVEL_SHIFT[level]) & 511])
            if not e:
                return -1
            row = self.entry_row(e)
        return row

    def get_pte(self, pgd: int, addr: int) -> int:
        row = self.lookup_leaf(pgd, addr)
        return 0 if row < 0 else int(self.rows[row, (addr >> 12) & 511])

    def leaf_for(self, pgd: int, addr: int, acct=None) -> int:
        """__pte_alloc() down the levels: the PTE table covering ``addr``, allocating as needed."""
        row = pgd
        for level in (PGD_LEVEL, PUD_LEVEL, PMD_LEVEL):
            i = (addr >> LEVEL_SHIFT[level]) & 511
            e = int(self.rows[row, i])
            if e:
                row = self.entry_row(e)
            else:
                new = self.alloc_table(level - 1, acct)
                self.rows[row, i] = self.table_entry(new)
                row = new
        return row

    def iter_leaves(self, pgd: int, start: int, end: int, alloc: bool = False,
                    acct=None) -> Iterator[tuple[int, int, int, int]]:
        """Each PTE table meeting [start, end): yields (row, lo, hi, addr_of_lo).

        ``lo:hi`` is the slice of the table inside the range. Missing tables are skipped unless
        ``alloc`` is set, in which case they are created (and the caller must fill them).
        ``start`` and ``end`` are page aligned.
        """
        addr = start
        while addr < end:
            nxt = min(end, (addr | (PMD_SIZE - 1)) + 1)
            if alloc:
                row = self.leaf_for(pgd, addr, acct)
            else:
                row, skip_to = self._lookup_or_skip(pgd, addr)
                if row < 0:
                    addr = min(end, skip_to)
                    continue
            lo = (addr >> 12) & 511
            yield row, lo, lo + ((nxt - addr) >> 12), addr
            addr = nxt

    def _lookup_or_skip(self, pgd: int, addr: int) -> tuple[int, int]:
        """lookup_leaf, but on a miss also say where the next possibly-populated table starts."""
        row = pgd
        for level in (PGD_LEVEL, PUD_LEVEL, PMD_LEVEL):
            shift = LEVEL_SHIFT[level]
            e = int(self.rows[row, (addr >> shift) & 511])
            if not e:
                return -1, ((addr >> shift) + 1) << shift
            row = self.entry_row(e)
        return row, 0

    def leaf_rows(self, pgd: int, start: int, end: int, alloc: bool = False,
                  acct=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All PTE tables meeting [start, end) as arrays (rows, lo, hi, addr) for vector work."""
        got = list(self.iter_leaves(pgd, start, end, alloc, acct))
        if not got:
            e = np.empty(0, np.intp)
            return e, e, e, np.empty(0, np.int64)
        a = np.array(got, dtype=np.int64)
        return a[:, 0].astype(np.intp), a[:, 1].astype(np.intp), a[:, 2].astype(np.intp), a[:, 3]

    # --- vector walks: one PMD table at a time ---------------------------------------------------
    def _pmd_table(self, pgd: int, addr: int, alloc: bool, acct) -> tuple[int, int]:
        """(row of the PMD table covering addr, or -1; address where the search may resume)."""
        row = pgd
        for level in (PGD_LEVEL, PUD_LEVEL):
            shift = LEVEL_SHIFT[level]
            i = (addr >> shift) & 511
            e = int(self.rows[row, i])
            if e:
                row = self.entry_row(e)
            elif alloc:
                new = self.alloc_table(level - 1, acct)
                self.rows[row, i] = self.table_entry(new)
                row = new
            else:
                return -1, ((addr >> shift) + 1) << shift
        return row, 0

    def leaves(self, pgd: int, start: int, end: int, alloc: bool = False,
               acct=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All PTE tables meeting [start, end) as arrays (rows, lo, hi, addr_of_lo).

        Vectorized per PMD table (each covers 1 GiB): missing PTE tables are skipped, or with
        ``alloc`` created in one batch (frames first, so an allocation failure changes
        nothing at this level).
        """
        out_rows, out_lo, out_hi, out_addr = [], [], [], []
        start &= ~0xFFF
        end = (end + 0xFFF) & ~0xFFF
        addr = start
        while addr < end:
            pmd, resume = self._pmd_table(pgd, addr, alloc, acct)
            if pmd < 0:
                addr = min(end, resume)
                continue
            span_end = min(end, (addr | (PUD_SIZE - 1)) + 1)
            i0 = (addr >> PMD_SHIFT) & 511
            i1 = ((span_end - 1) >> PMD_SHIFT & 511) + 1
            ents = self.rows[pmd, i0:i1]
            if alloc:
                missing = np.flatnonzero(ents == 0)
                if len(missing):
                    new_rows = self.alloc_tables(PTE_LEVEL, len(missing), acct)
                    self.rows[pmd, i0 + missing] = (self.row_pfn[new_rows].astype(np.uint64)
                                                    << P.NP_PFN_SHIFT) | np.uint64(P.TABLE)
                    ents = self.rows[pmd, i0:i1]
            have = np.flatnonzero(ents)
            if len(have):
                rows = self.frames.private[P.np_pfn(ents[have])].astype(np.intp)
                pmd_addr = (addr & PUD_MASK) + ((i0 + have.astype(np.int64)) << PMD_SHIFT)
                lo_addr = np.maximum(pmd_addr, addr)
                hi_addr = np.minimum(pmd_addr + PMD_SIZE, span_end)
                out_rows.append(rows)
                out_lo.append(((lo_addr - pmd_addr) >> 12).astype(np.intp))
                out_hi.append(((hi_addr - pmd_addr) >> 12).astype(np.intp))
                out_addr.append(lo_addr)
            addr = span_end
        if not out_rows:
            e = np.empty(0, np.intp)
            return e, e, e, np.empty(0, np.int64)
        return (np.concatenate(out_rows), np.concatenate(out_lo), np.concatenate(out_hi),
                np.concatenate(out_addr))

    def mapped_pages(self, pgd: int, start: int, end: int
                     ) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray]]:
        """Per PTE table meeting [start, end): (row, lo, addr_of_lo, slots, pfns) of the
        present PTEs that map a page other than the zero page; ``slots`` count from ``lo``
        (the PTE at ``addr_of_lo + slot * 4096`` is ``rows[row, lo + slot]``). Tables with no
        such PTE are skipped. For the self-checks that recount a reverse map."""
        rows_, los, his, addrs = self.leaves(pgd, start, end)
        for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
            vals = self.rows[row, lo:hi]
            slots = np.flatnonzero(P.np_present(vals))
            if not len(slots):
                continue
            pfn = P.np_pfn(vals[slots])
            keep = pfn != ZERO_PFN
            if keep.any():
                yield row, lo, a, slots[keep], pfn[keep]

    def ensure_leaves_at(self, pgd: int, addrs: np.ndarray, acct=None) -> np.ndarray:
        """The PTE tables covering each address in ``addrs`` (sorted, distinct 2 MiB ranges),
        creating the missing ones in bulk per PMD table. Returns their rows, aligned with addrs.

        Unlike leaves(alloc=True) this creates tables only where asked, as copy_pmd_range()
        does for the PMD entries the parent actually has.
        """
        out = np.empty(len(addrs), np.intp)
        slot = (addrs >> PMD_SHIFT) & 511
        pud_of = addrs >> PUD_SHIFT
        i, n = 0, len(addrs)
        while i < n:
            j = i + int(np.searchsorted(pud_of[i:], pud_of[i], side="right"))
            pmd, _ = self._pmd_table(pgd, int(addrs[i]), True, acct)
            sl = slot[i:j]
            ents = self.rows[pmd, sl]
            missing = np.flatnonzero(ents == 0)
            if len(missing):
                new_rows = self.alloc_tables(PTE_LEVEL, len(missing), acct)
                self.rows[pmd, sl[missing]] = ((self.row_pfn[new_rows].astype(np.uint64) << P.NP_PFN_SHIFT)
                                               | np.uint64(P.TABLE))
                ents = self.rows[pmd, sl]
            out[i:j] = self.frames.private[P.np_pfn(ents)]
            i = j
        return out

    @staticmethod
    def groups(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        """Batches for vector work over the tables from leaves(): all whole tables together as
        one (rows, slice(0, 512)), then each partial table alone. Yields (rows, slice, k) with
        k the positions of those tables in the input arrays."""
        full = (lo == 0) & (hi == PTRS_PER_TABLE)
        if full.any():
            k = np.flatnonzero(full)
            yield rows[k], slice(0, PTRS_PER_TABLE), k
        for k in np.flatnonzero(~full).tolist():
            yield rows[k:k + 1], slice(int(lo[k]), int(hi[k])), np.array([k])

    def alloc_tables(self, level: int, n: int, acct=None) -> np.ndarray:
        """n zeroed tables at once (frames first: all or nothing). Returns their rows."""
        pfns = self.frames.alloc_many(n)
        if len(self._free_rows) < n:
            self._grow(n - len(self._free_rows))
        # the n rows n pops would give, in ascending order: a batch's order is free, and
        # consecutive ascending rows let fork work on views instead of gathered copies
        rows = np.sort(np.array(self._free_rows[-n:], dtype=np.intp))
        del self._free_rows[-n:]                           # already zero (see the class)
        self.row_pfn[rows] = pfns
        self.row_level[rows] = level
        self.row_refs[rows] = 1
        self.frames.flags[pfns] = PG_pgtable
        self.frames.private[pfns] = rows.astype(np.uint64)
        self.ntables += n
        if acct is not None and level in _ACCT_FIELD:
            f = _ACCT_FIELD[level]
            setattr(acct, f, getattr(acct, f) + n)
        return rows

    # --- freeing tables (mm/memory.c: free_pgd_range and helpers) ------------------------------
    def free_pgd_range(self, pgd: int, addr: int, end: int, floor: int, ceiling: int,
                       acct=None) -> None:
        """Free the PTE/PMD/PUD tables covering [addr, end) that lie wholly inside [floor, ceiling).

        ``ceiling`` 0 means the top of the address space (USER_PGTABLES_CEILING). The PTEs in
        the range must already be zapped. Rounding rules are free_pgd_range()'s: a table is
        freed only if no address it maps could belong to a VMA outside [floor, ceiling).
        """
        addr &= PMD_MASK
        if addr < floor:
            addr += PMD_SIZE
            if not addr:
                return
        if ceiling:
            ceiling = _mask(ceiling, PMD_MASK)
            if not ceiling:
                return
        if ((end - 1) & _U64) > ((ceiling - 1) & _U64):
            end -= PMD_SIZE
        if addr > ((end - 1) & _U64):
            return
        while True:
            nxt = min(((addr | (PGDIR_SIZE - 1)) + 1), end) if end else (addr | (PGDIR_SIZE - 1)) + 1
            i = (addr >> PGDIR_SHIFT) & 511
            e = int(self.rows[pgd, i])
            if e:
                self._free_pud_range(pgd, i, self.entry_row(e), addr, nxt, floor, ceiling, acct)
            addr = nxt
            if addr == end or addr >= (1 << 48):
                break

    def _free_pud_range(self, pgd, pgd_i, pud, addr, end, floor, ceiling, acct):
        start = addr
        while True:
            nxt = min((addr | (PUD_SIZE - 1)) + 1, end)
            i = (addr >> PUD_SHIFT) & 511
            e = int(self.rows[pud, i])
            if e:
                self._free_pmd_range(pud, i, self.entry_row(e), addr, nxt, floor, ceiling, acct)
            addr = nxt
            if addr == end:
                break
        # free the PUD table itself (free_p4d_range's tail, p4d folded into pgd)
        start = _mask(start, PGDIR_MASK)
        if start < floor:
            return
        if ceiling:
            ceiling = _mask(ceiling, PGDIR_MASK)
            if not ceiling:
                return
        if ((end - 1) & _U64) > ((ceiling - 1) & _U64):
            return
        self.rows[pgd, pgd_i] = 0
        self.free_table(pud, acct)

    def _free_pmd_range(self, pud, pud_i, pmd, addr, end, floor, ceiling, acct):
        start = addr
        while True:
            nxt = min((addr | (PMD_SIZE - 1)) + 1, end)
            i = (addr >> PMD_SHIFT) & 511
            e = int(self.rows[pmd, i])
            if e:
                # free_pte_range(): the PTE table goes unconditionally
                self.rows[pmd, i] = 0
                self.release_table(self.entry_row(e), acct)
            addr = nxt
            if addr == end:
                break
        start = _mask(start, PUD_MASK)
        if start < floor:
            return
        if ceiling:
            ceiling = _mask(ceiling, PUD_MASK)
            if not ceiling:
                return
        if ((end - 1) & _U64) > ((ceiling - 1) & _U64):
            return
        self.rows[pud, pud_i] = 0
        self.free_table(pmd, acct)

    def release_table(self, row: int, acct=None) -> None:
        """Drop one reference to a PTE table (one upper entry stopped pointing at it)."""
        self.row_refs[row] -= 1
        if self.row_refs[row] == 0:
            self.free_table(row, acct)
        elif acct is not None:
            acct.nr_ptes -= 1

    def free_pgd(self, pgd: int) -> None:
        """pgd_free(): the top table, once every lower table is gone."""
        self.free_table(pgd)

    # --- whole-hierarchy views (for check and proc) -----------------------------------------
    def tables_under(self, pgd: int) -> dict[int, list[int]]:
        """Rows reachable from ``pgd`` by level: {4: [pgd], 3: [...], 2: [...], 1: [...]}."""
        out = {PGD_LEVEL: [pgd], PUD_LEVEL: [], PMD_LEVEL: [], PTE_LEVEL: []}
        for level in (PGD_LEVEL, PUD_LEVEL, PMD_LEVEL):
            for row in out[level]:
                ents = self.rows[row]
                nz = ents[ents != 0]
                if len(nz):
                    pfns = P.np_pfn(nz)
                    out[level - 1].extend(self.frames.private[pfns].astype(np.int64).tolist())
        return out

    def nbytes(self) -> int:
        return self.rows.nbytes + self.row_pfn.nbytes + self.row_level.nbytes + self.row_refs.nbytes
