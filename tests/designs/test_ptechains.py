"""The `ptechains` design (Linux 2.5-2.6.5 pte-chain rmap): its structures and its costs.

Each test builds a small workload and looks at the chains themselves (designs/ptechains/
chains.py): PG_direct for a page mapped once, 64-byte nodes of NRPTE = 7 pointers once it is
mapped more than once, the slot-by-slot search of page_remove_rmap, and the reverse-map walks
of reclaim. Machine.check() (which runs the design's own recount) must stay clean throughout.
"""

from __future__ import annotations

import numpy as np
import pytest

import vmlab
from vmlab.constants import (MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MREMAP_FIXED,
                             MREMAP_MAYMOVE, PROT_READ, PROT_WRITE)
from vmlab.designs.ptechains import NRPTE, PTE_CHAIN_BYTES
from vmlab.errors import InvariantError
from vmlab.hw import pte as P

RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


def _pfn(m, p, addr: int) -> int:
    e = m.system.pagetables.get_pte(p.mm.pgd, addr)
    assert P.pte_present(e)
    return P.pte_pfn(e)


def _machine(**kw) -> vmlab.Machine:
    return vmlab.Machine(**{"ram": "64M", "design": "ptechains", **kw})


def _shared_pages(npages: int, nkids: int, byte: int):
    """A process with ``npages`` private anonymous pages filled with ``byte``, and ``nkids``
    forked children: (machine, parent, children, address, pfn of the first page)."""
    m = _machine()
    p = m.spawn()
    a = p.mmap(0, npages << 12, RW, ANON)
    p.fill(a, npages << 12, byte)
    kids = [p.fork() for _ in range(nkids)]
    return m, p, kids, a, _pfn(m, p, a)


def test_nrpte_and_node_size():
    """A pte_chain node is one 64-byte cache line: next_and_idx plus 7 eight-byte pointers."""
    assert NRPTE == 7
    assert PTE_CHAIN_BYTES == 64 == 8 + NRPTE * 8


def test_page_mapped_once_is_direct_and_fork_makes_a_chain():
    """A page with one PTE keeps the pointer in struct page (PG_direct, no node); fork's
    second PTE turns it into a chain node holding both pointers in its last two slots."""
    m = _machine()
    d = m.design
    p = m.spawn()
    a = p.mmap(0, 8 << 12, RW, ANON)
    p.fill(a, 8 << 12, 0x11)
    pfn = _pfn(m, p, a)
    assert d.chains.direct[pfn] >= 0 and d.chains.head[pfn] < 0
    assert d.metadata()["pte_chain"] == 0
    c = p.fork()
    m.check()
    assert d.chains.direct[pfn] < 0
    head = int(d.chains.head[pfn])
    assert int(d.chains.idx[head]) == NRPTE - 2
    assert d.chains.length(pfn) == 2 and d.chains.nodes_of(pfn) == 1
    assert d.metadata()["pte_chain"] == 8 * PTE_CHAIN_BYTES
    assert c.read(a, 1) == b"\x11"


@pytest.mark.parametrize("children", [1, 5, 6, 13, 20])
def test_chain_nodes_pack_seven_pointers(children):
    """After k forks every page carries k+1 pointers in ceil((k+1)/7) nodes, and the design's
    metadata is exactly those nodes at 64 bytes each."""
    m = _machine(ram="128M")
    d = m.design
    p = m.spawn()
    npages = 16
    a = p.mmap(0, npages << 12, RW, ANON)
    p.fill(a, npages << 12, 0x22)
    for _ in range(children):
        p.fork()
    m.check()
    nodes = -(-(children + 1) // NRPTE)
    for i in range(npages):
        pfn = _pfn(m, p, a + (i << 12))
        assert d.chains.length(pfn) == children + 1
        assert d.chains.nodes_of(pfn) == nodes
    assert d.metadata()["pte_chain"] == npages * nodes * PTE_CHAIN_BYTES


def test_fork_pays_an_entry_per_copied_pte():
    """Fork adds one chain entry per PTE it copies (chain_ops = ptes_copied_fork) and
    allocates a node for each page that was PG_direct."""
    m = _machine()
    d = m.design
    p = m.spawn()
    a = p.mmap(0, 64 << 12, RW, ANON)
    p.fill(a, 64 << 12, 0x33)
    before = dict(d.stats)
    p.fork()
    copied = d.stats["ptes_copied_fork"] - before.get("ptes_copied_fork", 0)
    assert copied == 64
    assert d.stats["chain_ops"] - before.get("chain_ops", 0) == copied
    assert d.stats["pte_chain_alloc"] - before.get("pte_chain_alloc", 0) == 64
    m.check()


def test_exit_searches_each_chain_from_its_head():
    """page_remove_rmap compares slots from the head's first used one until it finds its
    pointer, and fills the hole with that first entry. Three children of a one-page process
    exiting oldest first cost 3 + 1 + 1 = 5 slot comparisons, and leave the parent's pointer
    alone in a node that is not collapsed back to PG_direct."""
    m, p, kids, a, pfn = _shared_pages(1, 3, 0x78)
    d = m.design
    assert d.stats["ptes_copied_fork"] == 3            # nothing else is mapped
    assert d.chains.length(pfn) == 4
    steps0 = d.stats.get("chain_search_steps", 0)
    for c in kids:
        c.exit()
        m.check()
    assert d.stats["chain_search_steps"] - steps0 == 5
    assert d.chains.length(pfn) == 1 and d.chains.nodes_of(pfn) == 1
    assert d.metadata()["pte_chain"] == PTE_CHAIN_BYTES
    p.munmap(a, 1 << 12)
    assert d.metadata()["pte_chain"] == 0
    m.check()


def test_cow_moves_the_entry_to_the_new_page():
    """A COW write removes the writer's pointer from the shared page's chain and gives the
    new private page a PG_direct pointer to the same PTE."""
    m, p, (c,), a, old = _shared_pages(4, 1, 0x44)
    d = m.design
    c.write(a, b"child")
    new = _pfn(m, c, a)
    assert new != old
    assert d.chains.length(old) == 1
    assert d.chains.direct[new] >= 0
    assert p.read(a, 1) == b"\x44" and c.read(a, 5) == b"child"
    m.check()


def test_file_pages_are_chained_and_fork_copies_shared_ptes():
    """Page-cache pages are on chains too (2.5 used pte chains for every mapped page), and
    2.5's fork copied the PTEs of a shared mapping, so the child maps them without faulting;
    with fork_copy_all=0 the shared mapping is left to fault in the child, as in Linux 6.x."""
    for spec, copied in (("ptechains", True), ("ptechains:fork_copy_all=0", False)):
        m = _machine(design=spec)
        d = m.design
        p = m.spawn()
        a = p.mmap(0, 8 << 12, RW, MAP_SHARED | MAP_ANONYMOUS)
        p.fill(a, 8 << 12, 0x55)
        pfn = _pfn(m, p, a)
        assert d.chains.length(pfn) == 1
        c = p.fork()
        m.check()
        assert d.chains.length(pfn) == (2 if copied else 1)
        assert (d.stats.get("ptes_copied_fork", 0) == 8) == copied
        c.touch(a, 8 << 12)
        assert d.chains.length(pfn) == 2
        m.check()


def test_mremap_moves_pointers_one_by_one():
    """mremap moves each PTE (page_remove_rmap at the old address, page_add_rmap at the new
    one), also for a whole 2 MiB table, which Linux 6.x would hand over in one piece."""
    m = _machine(ram="128M")
    d = m.design
    p = m.spawn()
    size = 2 << 20
    a = p.mmap(0, 2 * size, RW, ANON)
    a = (a + size - 1) & ~(size - 1)                   # a 2 MiB aligned start
    p.fill(a, size, 0x66)
    c = p.fork()
    ops0 = d.stats["chain_ops"]
    dst = p.mmap(0, 2 * size, RW, ANON)
    dst = (dst + size - 1) & ~(size - 1)
    got = p.mremap(a, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst)
    assert got == dst
    npages = size >> 12
    # every page: one removal and one addition for the move (the fixed target was empty)
    assert d.stats["chain_ops"] - ops0 == 2 * npages
    m.check()
    assert p.read(dst + 4096, 1) == b"\x66" and c.read(a + 4096, 1) == b"\x66"


def test_reclaim_walks_chains_and_collapses_singletons():
    """Under memory pressure reclaim finds a page's PTEs on its chain (one rmap step per
    entry), and page_referenced turns a single-entry chain back into PG_direct."""
    m = _machine(ram="16M", swap="64M")
    d = m.design
    p = m.spawn()
    n = 1024                                          # 4 MiB, shared with a child
    a = p.mmap(0, n << 12, RW, ANON)
    p.fill(a, n << 12, 0x77)
    c = p.fork()
    c.exit()                                          # every page keeps a 1-entry node
    assert d.metadata()["pte_chain"] == n * PTE_CHAIN_BYTES
    b = p.mmap(0, 24 << 20, RW, ANON)                 # more than RAM: reclaim runs
    p.fill(b, 24 << 20, 0x78)
    m.check()
    assert d.stats.get("rmap_steps", 0) > 0
    assert d.stats.get("rmap_unmapped", 0) > 0
    assert d.stats.get("pte_chain_collapses", 0) > 0
    assert d.metadata()["pte_chain"] < n * PTE_CHAIN_BYTES
    assert p.read(a, 1) == b"\x77" and p.read(b + (20 << 20), 1) == b"\x78"
    m.check()


def test_pageout_swapin_and_swapoff_keep_chains_exact():
    """A page paged out loses its PTE entries; swapping it back in (fault or swapoff) adds
    them again."""
    m = _machine(ram="64M")
    name = m.swapon("16M")
    p = m.spawn()
    a = p.mmap(0, 32 << 12, RW, ANON)
    p.fill(a, 32 << 12, 0x12)
    p.madvise(a, 32 << 12, MADV_PAGEOUT)
    m.check()
    e = m.system.pagetables.get_pte(p.mm.pgd, a)
    assert not P.pte_present(e)
    assert p.read(a, 1) == b"\x12"                    # swap-in: an entry again
    m.check()
    p.madvise(a, 32 << 12, MADV_PAGEOUT)
    m.swapoff(name)
    m.check()
    assert p.read(a + (31 << 12), 1) == b"\x12"


def test_rss_limit_unmaps_through_the_chain():
    """The per-process RSS limit unmaps PTEs of one mm; their chain entries go with them."""
    m = _machine(ram="64M", swap="16M")
    p = m.spawn()
    a = p.mmap(0, 256 << 12, RW, ANON)
    p.fill(a, 256 << 12, 0x21)
    c = p.fork()
    c.set_rss_limit(64 << 12)
    c.touch(a, 256 << 12)
    m.check()
    assert c.read(a, 1) == b"\x21"


def test_check_catches_a_missing_entry():
    """The design's check() is not vacuous: a chain entry dropped behind its back is found."""
    m = _machine()
    d = m.design
    p = m.spawn()
    a = p.mmap(0, 4 << 12, RW, ANON)
    p.fill(a, 4 << 12, 0x99)
    p.fork()
    pfn = _pfn(m, p, a)
    ptep = d.chains.entries(pfn)[0]
    d.chains.remove(np.array([pfn]), np.array([ptep]))
    with pytest.raises(InvariantError, match="not on its chain"):
        m.check()


def test_fork_heavy_costs_more_than_linux():
    """The issue's pathology in small: a parent forking 10 reading children needs a chain
    node per 7 mappings of each page, while linux's anon_vmas grow per process, not per page."""
    sizes = {}
    for design in ("linux", "ptechains"):
        m = vmlab.Machine(ram="64M", design=design)
        p = m.spawn()
        a = p.mmap(0, 512 << 12, RW, ANON)
        p.fill(a, 512 << 12, 0x31)
        for _ in range(10):
            p.fork().touch(a, 512 << 12)
        m.check()
        sizes[design] = sum(m.design.metadata().values())
    assert sizes["ptechains"] == 512 * 2 * PTE_CHAIN_BYTES       # 11 pointers: 2 nodes a page
    assert sizes["linux"] * 20 < sizes["ptechains"]


def test_page_referenced_visits_each_entry_once():
    """page_referenced() takes one rmap step per chain entry (parent and three children: 4),
    tests and clears the young bit of each PTE it names (a second call finds none young),
    and leaves a chain of more than one entry as it is."""
    m, _p, kids, _a, pfn = _shared_pages(1, 3, 0x72)
    d = m.design
    rows = m.system.pagetables.rows
    for ptep in d.chains.entries(pfn):                 # every mapping young
        rows[ptep >> 9, ptep & 511] |= np.uint64(P.ACCESSED)
    s0 = d.stats.get("rmap_steps", 0)
    young, _flags = d.page_referenced(pfn)
    assert young == 4
    assert d.stats["rmap_steps"] - s0 == 4
    young, _flags = d.page_referenced(pfn)
    assert young == 0
    assert d.stats["rmap_steps"] - s0 == 8
    assert d.chains.length(pfn) == 4 and d.chains.direct[pfn] < 0
    for c in kids:
        c.exit()
    d.page_referenced(pfn)                             # one entry left: back to PG_direct
    assert d.chains.direct[pfn] >= 0 and d.chains.head[pfn] < 0
    assert d.metadata()["pte_chain"] == 0
    m.check()


def test_rmap_walk_finds_moved_ptes_through_the_table_record():
    """A chain entry names a PTE, not an address: after a child mremaps the range, the walk
    turns the child's entry into its new address through the page-table page's record
    (ptep_to_mm / ptep_to_address), and each mapping is found in one step."""
    m, p, (c,), a, _ = _shared_pages(4, 1, 0x5C)
    d = m.design
    dst = c.mmap(0, 4 << 12, RW, ANON)
    c.munmap(dst, 4 << 12)
    got = c.mremap(a, 4 << 12, 4 << 12, MREMAP_MAYMOVE | MREMAP_FIXED, dst)
    assert got == dst
    pfn = _pfn(m, p, a + (2 << 12))
    s0 = d.stats.get("rmap_steps", 0)
    found = {(id(mp.mm), mp.addr) for mp in d.rmap_walk(pfn)}
    assert found == {(id(p.mm), a + (2 << 12)), (id(c.mm), dst + (2 << 12))}
    assert d.stats["rmap_steps"] - s0 == 2
    m.check()
