"""The bsd design's own structures: shadow chains, collapse and bypass, copy-up, pv entries,
the per-object swap pager (src/vmlab/designs/bsd/). Every test ends with Machine.check(),
which recounts the objects, entries and pv lists (designs/bsd/check.py)."""

from __future__ import annotations

import pytest

import vmlab
from vmlab.constants import (MADV_DONTNEED, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE,
                             MAP_SHARED, PROT_READ, PROT_WRITE)
from vmlab.designs.bsd.measure import chain_stats
from vmlab.hw import pte as P

PAGE = 4096
RW = PROT_READ | PROT_WRITE
PRIV = MAP_PRIVATE | MAP_ANONYMOUS


def machine(spec="bsd", **kw):
    kw.setdefault("ram", "64M")
    return vmlab.Machine(design=spec, **kw)


def filled(pages, byte, spec="bsd", **kw):
    """A machine with one process and a private anonymous region of ``pages`` pages, every
    byte written with ``byte``: (machine, process, address)."""
    m = machine(spec, **kw)
    p = m.spawn()
    a = p.mmap(0, pages * PAGE, RW, PRIV)
    p.fill(a, pages * PAGE, byte)
    return m, p, a


def entries(proc, addr):
    vma = proc.mm.vmas.lookup(addr)
    return vma.design_state


def chain_of(proc, addr):
    """The object chain of the entry mapping ``addr``: [top, backing, ...]."""
    vma = proc.mm.vmas.lookup(addr)
    p = vma.linear_page_index(addr)
    e = next(e for e in vma.design_state if e.lo <= p < e.hi)
    return e, e.obj.chain()


def stats(m):
    return chain_stats(m.design, [t.mm for t in m.kernel.live_tasks()])


def test_fork_marks_needs_copy_and_first_write_shadows():
    """Fork binds the child's entry to the parent's object with NEEDS_COPY on both sides and
    copies no PTE; the child's first write stacks a shadow object over the shared one
    (vm_object_shadow) and copies the page up into it."""
    m, p, a = filled(8, 0x41)
    (pe, [top]) = chain_of(p, a)
    c = p.fork()
    ce, cchain = chain_of(c, a)
    assert pe.nc and ce.nc and cchain == [top] and top.ref_count == 2
    assert m.design.stats.get("ptes_copied_fork", 0) == 0
    assert not any(v & (1 << 63) for v in c.pagemap(a, 8))     # the child has no PTE yet
    created = m.design.stats["objects_created"]
    c.write(a + PAGE, b"child")
    ce, cchain = chain_of(c, a)
    assert not ce.nc and len(cchain) == 2 and cchain[1] is top
    assert m.design.stats["objects_created"] == created + 1
    assert m.design.stats["copy_ups"] == 1 and m.design.stats["pages_copied_cow"] == 1
    assert p.read(a + PAGE, 5) == b"AAAAA" and c.read(a + PAGE, 5) == b"child"
    m.check()


def test_read_after_fork_maps_the_backing_page_and_adds_pv_entries():
    """A read fault after fork maps the parent's page from the shared object, read-only, with
    a pv entry of its own: the page's pv list then names both processes."""
    m = machine()
    p = m.spawn()
    a = p.mmap(0, PAGE, RW, PRIV)
    p.write(a, b"x")
    c = p.fork()
    assert c.read(a, 1) == b"x"
    row = m.system.pagetables.lookup_leaf(p.mm.pgd, a)
    crow = m.system.pagetables.lookup_leaf(c.mm.pgd, a)
    pe = int(m.system.pagetables.rows[row, (a >> 12) & 511])
    ce = int(m.system.pagetables.rows[crow, (a >> 12) & 511])
    pfn = P.pte_pfn(pe)
    assert P.pte_pfn(ce) == pfn and not ce & P.RW and not pe & P.RW
    assert sorted((mm is p.mm, va) for (_mid, va), mm in m.design.pv[pfn].items()) == \
        [(False, a), (True, a)]
    assert {x.mm for x in m.design.rmap_walk(pfn)} == {p.mm, c.mm}
    c.exit()
    assert len(m.design.pv[pfn]) == 1
    m.check()


def test_collapse_when_the_sibling_exits():
    """Parent and child both write after fork (two shadows over one object); when the child
    exits, the old object has one shadow left and vm_object_collapse() merges it into the
    parent's: the parent's chain is one object again and no page is left behind."""
    m, p, a = filled(16, 1)
    c = p.fork()
    p.fill(a, 4 * PAGE, 2)
    c.fill(a + 8 * PAGE, 4 * PAGE, 3)
    assert len(chain_of(p, a)[1]) == 2
    c.exit()
    _, chain = chain_of(p, a)
    assert len(chain) == 1 and m.design.stats["shadow_collapses"] == 1
    st = stats(m)
    assert st["objects"] == 1 and st["pages"] == 16 and st["hidden"] == 0
    assert p.read(a, 1) == b"\x02" and p.read(a + 8 * PAGE, 1) == b"\x01"
    m.check()


@pytest.mark.parametrize("gens", [1, 3, 6])
def test_chain_depth_grows_without_collapse(gens):
    """With bsd:collapse=0 each fork-write-exit generation leaves one more object under the
    parent's entry (depth gens+1) and the pages the parent overwrote stay, hidden, in the
    objects below; with collapse the depth stays 1 and nothing is hidden."""
    for spec, depth in (("bsd", 1), ("bsd:collapse=0", gens + 1)):
        m = machine(spec)
        p = m.spawn()
        a = p.mmap(0, 32 * PAGE, RW, PRIV)
        p.fill(a, 32 * PAGE, 0xEE)
        for g in range(gens):
            c = p.fork()
            c.fill(a, PAGE, g)
            p.fill(a, 32 * PAGE, g)              # the parent rewrites everything
            c.exit()
        st = stats(m)
        assert st["max_depth"] == depth, spec
        assert st["hidden"] == (0 if depth == 1 else 32 * gens), spec
        assert p.read(a + 5 * PAGE, 1) == bytes([gens - 1])
        m.check()


def test_bypass_of_a_fully_shadowed_backing_object():
    """The all-shadowed bypass: the parent's shadow covers every page of the object it shadows,
    which a first child still uses (so it cannot be collapsed); at the next fork
    vm_map_copy_entry's collapse lets the parent's shadow skip it (object_bypasses)."""
    m, p, a = filled(8, 1)
    c1 = p.fork()
    p.fill(a, 8 * PAGE, 2)                       # every page copied up into the shadow
    shadow, chain = chain_of(p, a)[1][0], chain_of(p, a)[1]
    assert len(chain) == 2
    c2 = p.fork()
    assert m.design.stats.get("shadow_bypasses") == 1
    assert chain_of(p, a)[1] == [shadow]
    assert c1.read(a, 1) == b"\x01" and c2.read(a, 1) == b"\x02" and p.read(a, 1) == b"\x02"
    m.check()


def test_no_bypass_while_the_shadow_misses_a_page():
    """If the shadow lacks even one page of its backing object, it must not bypass it."""
    m, p, a = filled(8, 1)
    c1 = p.fork()
    p.fill(a, 7 * PAGE, 2)
    p.fork()
    assert m.design.stats.get("shadow_bypasses", 0) == 0
    assert len(chain_of(p, a)[1]) == 2 and p.read(a + 7 * PAGE, 1) == b"\x01"
    c1.exit()
    m.check()


def test_copy_up_moves_the_page_when_the_backing_object_is_private():
    """vm_fault's copy-up renames the page instead of copying it when the backing object is
    the first object's direct backing with one shadow and one reference (the sibling gone
    and, with collapse=0, not merged): copy_up_renames counts those, pages_copied_cow not."""
    m, p, a = filled(4, 7, "bsd:collapse=0")
    c = p.fork()
    p.write(a, b"p")                              # shadow + one copy
    c.exit()
    copies = m.design.stats["pages_copied_cow"]
    p.fill(a + PAGE, 3 * PAGE, 8)
    assert m.design.stats["pages_copied_cow"] == copies
    assert m.design.stats["copy_up_renames"] == 3
    assert p.read(a, 2) == b"p\x07" and p.read(a + 3 * PAGE, 1) == b"\x08"
    m.check()


def test_shadow_not_created_when_the_object_is_no_longer_shared():
    """vm_object_shadow() does not stack a new object over one nobody else references: after
    the child exits, the parent's first write just clears NEEDS_COPY."""
    m, p, a = filled(2, 5)
    c = p.fork()
    c.exit()
    created = m.design.stats["objects_created"]
    p.write(a, b"z")
    e, chain = chain_of(p, a)
    assert not e.nc and len(chain) == 1 and m.design.stats["objects_created"] == created
    m.check()


def test_no_zero_page_read_faults_allocate_in_the_first_object():
    """FreeBSD has no shared zero page for anonymous memory: a read fault allocates a zeroed
    page in the entry's object (v_zfod) and maps it read-only; the first write then only
    upgrades the PTE."""
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 4 * PAGE, RW, PRIV)
    assert p.read(a, 4 * PAGE) == bytes(4 * PAGE)
    e, chain = chain_of(p, a)
    assert chain[0].resident == 4 and m.design.stats["faults_anon"] == 4
    p.write(a, b"w")
    assert m.design.stats["pages_reused"] == 1 and chain[0].resident == 4
    m.check()


def test_dontneed_reads_zeros_over_a_shadowed_range():
    """Linux semantics over FreeBSD's: MADV_DONTNEED must make private memory read zeros.
    In a top object that shadows another, the range gets zero markers so the older data
    below stays hidden; the child, which shares the old object, still reads it."""
    m, p, a = filled(8, 0x33)
    c = p.fork()
    p.fill(a, 8 * PAGE, 0x44)
    p.madvise(a + 2 * PAGE, 3 * PAGE, MADV_DONTNEED)
    assert p.read(a + 2 * PAGE, 3 * PAGE) == bytes(3 * PAGE)
    assert p.read(a + PAGE, 1) == b"\x44" and c.read(a + 2 * PAGE, 1) == b"\x33"
    # and in the child, whose entry is still needs-copy: a fresh entry for the range
    c.madvise(a, PAGE, MADV_DONTNEED)
    assert c.read(a, PAGE) == bytes(PAGE) and c.read(a + PAGE, 1) == b"\x33"
    m.check()


def test_swap_blocks_belong_to_objects_not_ptes():
    """Paging out leaves no swap PTE: the PTE is cleared, the object holds the swap block
    (its swap pager), smaps Swap stays 0; a later fault finds the page through the object
    chain and reads it back."""
    m, p, a = filled(64, 0x5A, ram="32M", swap="16M")
    p.madvise(a, 64 * PAGE, MADV_PAGEOUT)
    e, chain = chain_of(p, a)
    assert chain[0].nswap > 0 and chain[0].swapped
    vals = p.pagemap(a, 64)
    assert not any(v & (1 << 62) for v in vals)          # no "swapped" PTEs
    before = chain[0].nswap
    assert p.read(a + 10 * PAGE, 2) == b"\x5a\x5a"
    assert chain[0].nswap == before - 1 and chain[0].page_at(chain[0].lo + 10) >= 0
    assert m.design.metadata()["swblock"] == 288 * chain[0].swblocks() > 0
    m.check()


def test_swapoff_brings_object_pages_back():
    """swapoff: every swap block of every object returns as a resident page (unuse_mm)."""
    m, p, a = filled(32, 0x66, ram="32M", swap="16M")
    c = p.fork()
    c.fill(a, 4 * PAGE, 0x77)
    p.madvise(a, 32 * PAGE, MADV_PAGEOUT)
    c.madvise(a, 32 * PAGE, MADV_PAGEOUT)
    assert sum(o.nswap for o in m.design.objects.values()) > 0
    m.swapoff(0)
    assert sum(o.nswap for o in m.design.objects.values()) == 0
    assert p.read(a, 1) == b"\x66" and c.read(a, 1) == b"\x77"
    m.check()


def test_shared_anonymous_memory_is_one_object_across_fork():
    """MAP_SHARED|MAP_ANONYMOUS stays shared after fork (its shmem object, no entries)."""
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS)
    c = p.fork()
    c.write(a, b"shared")
    assert p.read(a, 6) == b"shared" and not entries(p, a)
    m.check()


def test_metadata_counts_objects_pv_chunks():
    """metadata(): 264 bytes per vm_object, pv entries by 4 KiB chunk of 168 per process."""
    m, p, a = filled(200, 1)
    md = m.design.metadata()
    assert md["vm_object"] == 264 * len(m.design.objects)
    assert md["pv_entry"] == 2 * 4096                     # 200 mappings: two chunks
    m.check()


def test_cost_keys_fork_copies_no_pte_and_reclaim_walks_pv_entries():
    """The common cost keys on bsd: fork writes no PTE into the child (ptes_copied_fork stays
    0 however large the region), and reclaiming a page mapped by parent and child visits its
    two pv entries (rmap_steps) and clears both PTEs (rmap_unmapped)."""
    m, p, a = filled(64, 0x12, ram="32M", swap="16M")
    c = p.fork()
    assert m.design.stats["ptes_copied_fork"] == 0
    assert c.read(a, 64 * PAGE) == bytes([0x12]) * (64 * PAGE)     # maps all 64 read-only
    steps, unmapped = m.design.stats["rmap_steps"], m.design.stats["rmap_unmapped"]
    c.madvise(a, PAGE, MADV_PAGEOUT)          # not exclusive to c: PAGEOUT leaves it
    assert m.design.stats["rmap_unmapped"] == unmapped
    row = m.system.pagetables.lookup_leaf(p.mm.pgd, a)
    pfn = P.pte_pfn(int(m.system.pagetables.rows[row, (a >> 12) & 511]))
    out = m.events["pswpout"]
    m.kernel.reclaim_pages([pfn])
    assert m.design.stats["rmap_steps"] - steps == 2
    assert m.design.stats["rmap_unmapped"] - unmapped == 2
    assert pfn not in m.design.pv and m.events["pswpout"] == out + 1
    top = chain_of(p, a)[1][0]
    assert top.swap_at(top.lo) != 0 and top.page_at(top.lo) < 0     # the object's swap block
    assert p.read(a, 1) == b"\x12" and c.read(a, 1) == b"\x12"
    m.check()


def test_shadow_depth_max_records_the_deepest_chain_built():
    """shadow_depth_max (shown by vmlab compare) is the longest chain a shadow was stacked
    on: 2 with collapse however many generations, generations + 1 without."""
    for spec, want in (("bsd", 2), ("bsd:collapse=0", 5)):
        m, p, a = filled(4, 1, spec)
        for g in range(4):
            c = p.fork()
            p.fill(a, PAGE, g)
            c.exit()
        assert m.design.stats["shadow_depth_max"] == want, spec
        m.check()


def test_no_bypass_over_an_object_that_has_swapped():
    """The bypass test gives up on a backing object that has had swap (as FreeBSD's
    vm_object_backing_scan(OBSC_TEST_ALL_SHADOWED) did for any non-OBJT_DEFAULT object up to
    FreeBSD 10): the parent's shadow keeps its backing object even though it shadows every
    index, and every process still reads its own data."""
    m, p, a = filled(8, 1, ram="32M", swap="16M")
    c1 = p.fork()
    assert c1.read(a, 8 * PAGE) == b"\x01" * (8 * PAGE)    # c1 maps the old pages
    p.fill(a, 8 * PAGE, 2)                    # p's shadow now covers every index
    bottom = chain_of(p, a)[1][1]
    m.kernel.reclaim_pages([int(x) for x in bottom.pfns()])
    assert bottom.swapped and bottom.nswap > 0
    p.fork()
    assert m.design.stats["shadow_bypasses"] == 0
    assert chain_of(p, a)[1][1] is bottom
    assert c1.read(a, 1) == b"\x01" and p.read(a, 1) == b"\x02"
    m.check()


def test_builtin_scenario_shows_chain_growth_without_collapse():
    """src/vmlab/scenarios/bsd-shadow-chain.vms under `vmlab compare`: the reads agree with
    linux, and over its eight fork-write-exit generations bsd collapses every old object (8
    collapses, chains never deeper than 2) while bsd:collapse=0 stacks a shadow on a chain of
    9 objects and keeps the 8 dead layers (8 more vm_objects at the end), whose pages then
    have to be swapped out when a second program fills the rest of memory: only
    bsd:collapse=0 writes to swap, and what it writes was mapped by no one (rmap_unmapped 0)."""
    from vmlab.compare import compare
    from vmlab.scenario import load
    runs = compare(load("bsd-shadow-chain"), ["linux", "bsd", "bsd:collapse=0"])
    assert all(not r.problems for r in runs), [r.problems for r in runs]
    lin, on, off = runs
    assert on.stats["shadow_collapses"] == 8 and off.stats["shadow_collapses"] == 0
    assert on.stats["shadow_depth_max"] == 2 and off.stats["shadow_depth_max"] == 9
    assert off.metadata_end["vm_object"] - on.metadata_end["vm_object"] == 8 * 264
    assert lin.vmstat["pswpout"] == on.vmstat["pswpout"] == 0 < off.vmstat["pswpout"]
    assert off.stats["rmap_unmapped"] == 0
    assert on.stats["ptes_copied_fork"] == 0 < lin.stats["ptes_copied_fork"]


def test_fault_kinds_add_up_to_pgfault():
    """Every page fault is counted under one kind. Fork copies no PTE on bsd, so the child's
    first touches fault on a none PTE and are served from the object chain (`faults_object`:
    a read maps the backing page, a write copies it up); the parent's writes to its now
    read-only PTEs are write-protect faults."""
    m, p, a = filled(16, 0x11)
    c = p.fork()
    assert c.read(a, 1) == b"\x11"                    # read fault, backing page mapped
    c.fill(a + PAGE, 15 * PAGE, 0x22)                  # 15 copy-up faults on none PTEs
    p.fill(a, 16 * PAGE, 0x33)                         # 16 write-protect faults
    kinds = ("faults_anon", "faults_wp", "faults_file", "faults_object", "faults_swap")
    s = m.design.stats
    assert s.get("faults_anon", 0) == 16
    assert s.get("faults_object", 0) == 1 + 15
    assert s.get("faults_wp", 0) == 16
    vm = dict(line.split() for line in m.procfs("/proc/vmstat").splitlines())
    assert sum(s.get(k, 0) for k in kinds) == int(vm["pgfault"])
    assert c.read(a, 1) == b"\x11" and c.read(a + PAGE, 1) == b"\x22"
    m.check()
