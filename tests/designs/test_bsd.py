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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 8 * PAGE, RW, PRIV)
    p.fill(a, 8 * PAGE, 0x41)
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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 16 * PAGE, RW, PRIV)
    p.fill(a, 16 * PAGE, 1)
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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 8 * PAGE, RW, PRIV)
    p.fill(a, 8 * PAGE, 1)
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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 8 * PAGE, RW, PRIV)
    p.fill(a, 8 * PAGE, 1)
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
    m = machine("bsd:collapse=0")
    p = m.spawn()
    a = p.mmap(0, 4 * PAGE, RW, PRIV)
    p.fill(a, 4 * PAGE, 7)
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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 2 * PAGE, RW, PRIV)
    p.fill(a, 2 * PAGE, 5)
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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 8 * PAGE, RW, PRIV)
    p.fill(a, 8 * PAGE, 0x33)
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
    m = machine(ram="32M", swap="16M")
    p = m.spawn()
    a = p.mmap(0, 64 * PAGE, RW, PRIV)
    p.fill(a, 64 * PAGE, 0x5A)
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
    m = machine(ram="32M", swap="16M")
    p = m.spawn()
    a = p.mmap(0, 32 * PAGE, RW, PRIV)
    p.fill(a, 32 * PAGE, 0x66)
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
    m = machine()
    p = m.spawn()
    a = p.mmap(0, 200 * PAGE, RW, PRIV)
    p.fill(a, 200 * PAGE, 1)
    md = m.design.metadata()
    assert md["vm_object"] == 264 * len(m.design.objects)
    assert md["pv_entry"] == 2 * 4096                     # 200 mappings: two chunks
    m.check()
