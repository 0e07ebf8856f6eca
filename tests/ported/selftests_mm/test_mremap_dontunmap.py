"""Ports the logic of linux tools/testing/selftests/mm/mremap_dontunmap.c.

Ported: kernel_support_for_mremap_dontunmap (a one-page PROT_NONE move succeeds),
mremap_dontunmap_simple, mremap_dontunmap_simple_fixed, mremap_dontunmap_partial_mapping,
mremap_dontunmap_partial_mapping_overwrite, and mremap_dontunmap_simple_shmem with a shared
anonymous mapping standing in for the memfd (both are shmem objects; memfd_create is not in
the shared API yet). check_region_contains_byte() becomes a read of the whole range.

Adaptation: where upstream relies on mmap placing the destination somewhere free, the tests
here map inside a reserved PROT_NONE window only when they need known neighbours; otherwise
they use addresses returned by mmap/mremap as upstream does.
"""

from portlib import ANON, P, RW, map_fixed, reserve
from vmlab.constants import (MAP_ANONYMOUS, MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED,
                             MREMAP_MAYMOVE, PROT_NONE)

DONTUNMAP = MREMAP_DONTUNMAP | MREMAP_MAYMOVE


def test_kernel_support_for_mremap_dontunmap(machine):
    """kernel_support_for_mremap_dontunmap(): moving one PROT_NONE page with
    MREMAP_DONTUNMAP|MREMAP_MAYMOVE succeeds and both mappings can be unmapped."""
    p = machine.spawn()
    src = p.mmap(0, P, PROT_NONE, ANON)
    dst = p.mremap(src, P, P, DONTUNMAP, 0)
    assert dst != src
    p.munmap(dst, P)
    p.munmap(src, P)


def test_mremap_dontunmap_simple(machine):
    """mremap_dontunmap_simple: the pages move to the new place ('a' there) while the old
    range stays mapped with no pages (reads zeros)."""
    p = machine.spawn()
    n = 5 * P
    src = p.mmap(0, n, RW, ANON)
    p.fill(src, n, ord("a"))
    dst = p.mremap(src, n, n, DONTUNMAP, 0)
    assert p.read(dst, n) == b"a" * n, "pages did not migrate"
    assert p.read(src, n) == bytes(n), "source should have no ptes"
    p.munmap(dst, n)
    p.munmap(src, n)


def test_mremap_dontunmap_simple_shmem(machine):
    """mremap_dontunmap_simple_shmem (shared anonymous memory for the memfd): the destination
    shows 'a' and, the memory being shmem, so does the source."""
    p = machine.spawn()
    n = 5 * P
    src = p.mmap(0, n, RW, MAP_SHARED | MAP_ANONYMOUS)
    p.fill(src, n, ord("a"))
    dst = p.mremap(src, n, n, DONTUNMAP, 0)
    assert p.read(dst, n) == b"a" * n, "pages did not migrate"
    assert p.read(src, n) == b"a" * n, "shmem source should still show the same memory"
    p.munmap(dst, n)
    p.munmap(src, n)


def test_mremap_dontunmap_simple_fixed(machine):
    """mremap_dontunmap_simple_fixed: with MREMAP_FIXED onto an existing mapping full of 'X',
    the destination ends up with the source's 'a' and the source reads zeros."""
    p = machine.spawn()
    n = 5 * P
    dst = p.mmap(0, n, RW, ANON)
    p.fill(dst, n, ord("X"))
    src = p.mmap(0, n, RW, ANON)
    p.fill(src, n, ord("a"))
    got = p.mremap(src, n, n, MREMAP_FIXED | DONTUNMAP, dst)
    assert got == dst
    assert p.read(dst, n) == b"a" * n, "pages did not migrate"
    assert p.read(src, n) == bytes(n), "source should have no ptes"
    p.munmap(dst, n)
    p.munmap(src, n)


def test_mremap_dontunmap_partial_mapping(machine):
    """mremap_dontunmap_partial_mapping: moving the last 5 of 10 pages leaves the first 5
    with 'a', the last 5 reading zeros, and the destination with 'a'."""
    p = machine.spawn()
    src = p.mmap(0, 10 * P, RW, ANON)
    p.fill(src, 10 * P, ord("a"))
    dst = p.mremap(src + 5 * P, 5 * P, 5 * P, DONTUNMAP, 0)
    assert p.read(src, 5 * P) == b"a" * (5 * P)
    assert p.read(src + 5 * P, 5 * P) == bytes(5 * P)
    assert p.read(dst, 5 * P) == b"a" * (5 * P)
    p.munmap(dst, 5 * P)
    p.munmap(src, 10 * P)


def test_mremap_dontunmap_partial_mapping_overwrite(machine):
    """mremap_dontunmap_partial_mapping_overwrite: a 5-page source moved with MREMAP_FIXED
    over the first half of a 10-page 'X' mapping: source zeros, destination 'a' then 'X'."""
    p = machine.spawn()
    base = reserve(p, 17 * P)
    src = map_fixed(p, base + P, 5 * P)
    p.fill(src, 5 * P, ord("a"))
    dst = map_fixed(p, base + 7 * P, 10 * P)
    p.fill(dst, 10 * P, ord("X"))
    got = p.mremap(src, 5 * P, 5 * P, MREMAP_FIXED | DONTUNMAP, dst)
    assert got == dst
    assert p.read(src, 5 * P) == bytes(5 * P), "first 5 pages of source should have no ptes"
    assert p.read(dst, 5 * P) == b"a" * (5 * P)
    assert p.read(dst + 5 * P, 5 * P) == b"X" * (5 * P), "last 5 pages should be retained"
    p.munmap(dst, 10 * P)
    p.munmap(src, 5 * P)
