"""Ports the logic of LTP testcases/kernel/syscalls/mremap/ mremap01.c .. mremap09.c.

Ported:
- mremap01.c, anonymous analogue: grow a 1000-page PROT_WRITE mapping to 2000 pages with
  MREMAP_MAYMOVE and write every byte of it (upstream maps a file; its msync step has no
  counterpart for anonymous memory). Private memory is used because a shared anonymous
  object has a fixed size: growing it would leave the new half past its end.
- mremap02.c: an old address that is not page aligned: EINVAL.
- mremap03.c: an old range that is not mapped: EFAULT (with tst_get_bad_addr()'s one
  PROT_NONE page, and with a range that was unmapped).
- mremap04.c, anonymous analogue: growing the first page of a 2-page shared mapping without
  MREMAP_MAYMOVE fails with ENOMEM (upstream uses a SysV shm segment, not in the API).
- mremap05.c: all five cases (MREMAP_FIXED without MREMAP_MAYMOVE, unaligned new address,
  overlapping ranges: EINVAL; moves to a free and to an occupied address).
- mremap06.c, anonymous analogue: the vma_merge() "case 3" pgoff regression with a shared
  anonymous mapping for the file; MADV_DONTNEED drops the page tables (upstream unmaps the
  file mapping) so the later reads fault through vm_pgoff.
- mremap08.c, mremap09.c: both cases each.

Not ported: mremap07.c (MREMAP_DONTUNMAP with a userfaultfd handler thread).
"""

import errno

import pytest

from portlib import ANON, P, RW, expect_errno, map_fixed, reserve
from vmlab.constants import (MADV_DONTNEED, MAP_ANONYMOUS, MAP_SHARED, MREMAP_FIXED,
                             MREMAP_MAYMOVE, PROT_READ, PROT_WRITE)

SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS
MOVE = MREMAP_FIXED | MREMAP_MAYMOVE


def test_mremap01_expand(machine):
    """mremap01: a 1000-page mapping grown to 2000 pages with MREMAP_MAYMOVE; every byte of
    the grown mapping can be written ((char)index) and reads back."""
    p = machine.spawn()
    memsize = 1000 * P
    newsize = 2 * memsize
    addr = p.mmap(0, memsize, PROT_WRITE, ANON)
    addr = p.mremap(addr, memsize, newsize, MREMAP_MAYMOVE)
    data = bytes(range(256)) * (newsize // 256)
    p.write(addr, data)
    assert p.read(addr, newsize) == data
    p.munmap(addr, newsize)


def test_mremap02_unaligned_old_address(machine):
    """mremap02: old address NULL + (page_size - 1), not page aligned: EINVAL."""
    p = machine.spawn()
    expect_errno(errno.EINVAL, p.mremap, P - 1, P, 2 * P, MREMAP_MAYMOVE)


@pytest.mark.parametrize("bad", ["prot-none-page", "unmapped"])
def test_mremap03_old_range_not_mapped(machine, bad):
    """mremap03: growing 1000 pages at an address where at most one PROT_NONE page (what
    tst_get_bad_addr() returns) or nothing is mapped fails with EFAULT."""
    p = machine.spawn()
    bad_addr = reserve(p, 1002 * P)          # keep the 1000-page range clear of other VMAs
    p.munmap(bad_addr + P, 1001 * P)         # leaving one PROT_NONE page at bad_addr
    if bad == "unmapped":
        p.munmap(bad_addr, P)
    expect_errno(errno.EFAULT, p.mremap, bad_addr, 1000 * P, 2000 * P, MREMAP_MAYMOVE)


def test_mremap04_cannot_expand_without_maymove(machine):
    """mremap04: growing the first page of a 2-page shared mapping to 2 pages in place is
    impossible (the second page is in the way) and MREMAP_MAYMOVE is not set: ENOMEM."""
    p = machine.spawn()
    shm = p.mmap(0, 2 * P, RW, SHARED_ANON)
    expect_errno(errno.ENOMEM, p.mremap, shm, P, 2 * P, 0)


def free_area(p, size):
    """get_test_area(size, free_area=1): an address range that was just free."""
    a = p.mmap(0, size, RW, ANON)
    p.munmap(a, size)
    return a


def test_mremap05_fixed_requires_maymove(machine):
    """mremap05 "MREMAP_FIXED requires MREMAP_MAYMOVE": EINVAL."""
    p = machine.spawn()
    old = p.mmap(0, P, RW, ANON)
    new = free_area(p, P)
    expect_errno(errno.EINVAL, p.mremap, old, P, P, MREMAP_FIXED, new)


def test_mremap05_new_addr_unaligned(machine):
    """mremap05 "new_addr has to be page aligned": EINVAL."""
    p = machine.spawn()
    old = p.mmap(0, P, RW, ANON)
    new = free_area(p, 2 * P) + 1
    expect_errno(errno.EINVAL, p.mremap, old, P, P, MOVE, new)


def test_mremap05_overlap(machine):
    """mremap05 "old/new area must not overlap": a 2-page old range moved onto its own
    start: EINVAL."""
    p = machine.spawn()
    old = p.mmap(0, 2 * P, RW, ANON)
    expect_errno(errno.EINVAL, p.mremap, old, 2 * P, P, MOVE, old)


def test_mremap05_move_to_free_address(machine):
    """mremap05 "mremap #1": a page holding 0x1 moved to a free address: mremap returns that
    address and the byte is there."""
    p = machine.spawn()
    old = p.mmap(0, P, RW, ANON)
    new = free_area(p, P)
    p.write(old, b"\x01")
    assert p.mremap(old, P, P, MOVE, new) == new
    assert p.read(new, 1) == b"\x01"


def test_mremap05_move_over_mapping(machine):
    """mremap05 "mremap #2": moved onto an existing mapping holding 0x2, the target shows
    the moved 0x1."""
    p = machine.spawn()
    old = p.mmap(0, P, RW, ANON)
    new = p.mmap(0, P, RW, ANON)
    p.write(old, b"\x01")
    p.write(new, b"\x02")
    assert p.mremap(old, P, P, MOVE, new) == new
    assert p.read(new, 1) == b"\x01"


@pytest.mark.parametrize("incompatible", [0, 3, 1],
                         ids=["all-compatible", "third-incompatible", "first-incompatible"])
def test_mremap06_merge_case3_pgoff(machine, incompatible):
    """mremap06: of 4 shared pages holding '0'..'3', page 1 is moved onto page 3 and back
    (with page ``incompatible`` made read-only in between, if any); afterwards pages 0..2
    still read '0', '1', '2' even with the page tables dropped, i.e. the merged VMA kept a
    correct vm_pgoff."""
    p = machine.spawn()
    g = P                                               # MMAP_GRANULARITY on x86-64
    base = reserve(p, 6 * g)
    buf = map_fixed(p, base + g, 4 * g, RW, SHARED_ANON)
    for i in range(4):
        p.write(buf + i * g, bytes([0x30 + i]))
    p.madvise(buf, 4 * g, MADV_DONTNEED)                # "clear the page tables"
    assert p.mremap(buf + g, g, g, MOVE, buf + 3 * g) == buf + 3 * g
    if incompatible:
        p.mprotect(buf + (incompatible - 1) * g, g, PROT_READ)
    assert p.mremap(buf + 3 * g, g, g, MOVE, buf + g) == buf + g
    p.madvise(buf, 3 * g, MADV_DONTNEED)
    for i in range(3):
        assert p.read(buf + i * g, 1) == bytes([0x30 + i]), f"page {i} wrong value"
    p.munmap(buf, 3 * g)


@pytest.mark.parametrize("free_dst", [True, False], ids=["free", "occupied"])
def test_mremap08_fixed_move(machine, free_dst):
    """mremap08: MREMAP_FIXED|MREMAP_MAYMOVE moves a page to a free address, or over an
    existing mapping (whose 0x7f disappears), returning the target and keeping the
    content."""
    p = machine.spawn()
    old = p.mmap(0, P, RW, ANON)
    new = p.mmap(0, P, RW, ANON)
    if free_dst:
        p.munmap(new, P)
    p.write(old, b"\x01")
    if not free_dst:
        p.write(new, b"\x7f")
    assert p.mremap(old, P, P, MOVE, new) == new
    assert p.read(new, 1) == b"\x01"


def test_mremap09_cannot_expand_into_occupied(machine):
    """mremap09: map 3 pages, unmap the middle one, grow the first page to 3 pages without
    MREMAP_MAYMOVE: the third page is in the way, ENOMEM."""
    p = machine.spawn()
    addr = p.mmap(0, 3 * P, RW, ANON)
    p.munmap(addr + P, P)
    expect_errno(errno.ENOMEM, p.mremap, addr, P, 3 * P, 0)
