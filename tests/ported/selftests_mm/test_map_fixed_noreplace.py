"""Ports the logic of linux tools/testing/selftests/mm/map_fixed_noreplace.c.

All nine results of main() are ported: find_base_addr() (mmap 5 pages PROT_NONE, unmap them,
keep the address), mapping 5 pages there with MAP_FIXED_NOREPLACE, then with pages +1..+3
mapped: the four overlapping requests fail with EEXIST, the two adjacent one-page requests
succeed, and the final munmap of all 5 pages succeeds. Each failing request is also checked to
leave the existing mapping as it was (upstream only prints the maps).
"""

import errno

import pytest

from portlib import ANON, P, expect_errno, maps, vma_at
from vmlab.constants import MAP_FIXED_NOREPLACE, PROT_NONE

FLAGS = ANON | MAP_FIXED_NOREPLACE


def find_base_addr(p, size: int) -> int:
    """find_base_addr(): an address range that was just free."""
    addr = p.mmap(0, size, PROT_NONE, ANON)
    p.munmap(addr, size)
    return addr


def with_middle_mapped(p):
    """The state after the first two steps: pages base+1..base+3 mapped, base and base+4
    free."""
    base = find_base_addr(p, 5 * P)
    assert p.mmap(base, 5 * P, PROT_NONE, FLAGS) == base
    p.munmap(base, 5 * P)
    assert p.mmap(base + P, 3 * P, PROT_NONE, FLAGS) == base + P
    return base


def test_map_all_space_at_base(machine):
    """"mmap() 5*PAGE_SIZE at base": the whole area found free can be mapped with
    MAP_FIXED_NOREPLACE, at exactly the requested address, and unmapped again."""
    p = machine.spawn()
    base = find_base_addr(p, 5 * P)
    assert p.mmap(base, 5 * P, PROT_NONE, FLAGS) == base
    assert vma_at(machine, p, base) == (base, base + 5 * P)
    p.munmap(base, 5 * P)
    assert vma_at(machine, p, base) is None


def test_map_middle_three_pages(machine):
    """"mmap() 3*PAGE_SIZE at base+PAGE_SIZE" succeeds at the requested address."""
    p = machine.spawn()
    base = with_middle_mapped(p)
    assert vma_at(machine, p, base + P) == (base + P, base + 4 * P)


@pytest.mark.parametrize("first,npages", [(0, 5), (2, 1), (3, 2), (0, 2)],
                         ids=["same-and-wider", "contained", "overlap-end", "overlap-start"])
def test_overlapping_request_fails_eexist(machine, first, npages):
    """"Second mmap() 5*PAGE_SIZE at base", "mmap() ... at base+2*PAGE_SIZE" (contained),
    "... at base+(3*PAGE_SIZE)" (overlapping the end), "... bytes at base" (overlapping the
    start): each fails with EEXIST and changes nothing."""
    p = machine.spawn()
    base = with_middle_mapped(p)
    before = maps(machine, p)
    expect_errno(errno.EEXIST, p.mmap, base + first * P, npages * P, PROT_NONE, FLAGS)
    assert maps(machine, p) == before


@pytest.mark.parametrize("page", [0, 4], ids=["adjacent-to-start", "adjacent-to-end"])
def test_adjacent_request_succeeds(machine, page):
    """"mmap() PAGE_SIZE at base" and "... at base+(4*PAGE_SIZE)": one page touching the
    existing mapping is free and is mapped at the requested address."""
    p = machine.spawn()
    base = with_middle_mapped(p)
    assert p.mmap(base + page * P, P, PROT_NONE, FLAGS) == base + page * P


def test_unmap_base_area(machine):
    """"Base Address unmap() successful": after both adjacent pages are mapped, one munmap of
    the 5 pages removes everything."""
    p = machine.spawn()
    base = with_middle_mapped(p)
    assert p.mmap(base, P, PROT_NONE, FLAGS) == base
    assert p.mmap(base + 4 * P, P, PROT_NONE, FLAGS) == base + 4 * P
    p.munmap(base, 5 * P)
    assert all(e <= base or s >= base + 5 * P for s, e, _pr, _n in maps(machine, p))
