"""Ports the logic of linux tools/testing/selftests/mm/madv_populate.c.

Ported: sense_support, test_prot_read, test_prot_write, test_holes (middle, end, beginning,
for MADV_POPULATE_READ and MADV_POPULATE_WRITE), test_populate_read, test_populate_write, all
on 2 MiB of private anonymous memory as upstream; range_is_populated() /
range_is_not_populated() are the pagemap present bit of every page.

Not ported: test_softdirty. It needs clear_refs (not in the shared API), and soft-dirty is
compiled out of the reference host kernel (CONFIG_MEM_SOFT_DIRTY off, docs/host.md), so
pagemap bit 55 is never set there.
"""

import errno

import pytest

from portlib import ANON, MB, P, RW, expect_errno, npresent
from vmlab.constants import MADV_POPULATE_READ, MADV_POPULATE_WRITE, PROT_READ, PROT_WRITE

SIZE = 2 * MB
PAGES = SIZE // P


def test_sense_support(machine):
    """sense_support(): both advices succeed on one page of private anonymous memory."""
    p = machine.spawn()
    addr = p.mmap(0, P, RW, ANON)
    p.madvise(addr, P, MADV_POPULATE_READ)
    p.madvise(addr, P, MADV_POPULATE_WRITE)
    p.munmap(addr, P)


def test_prot_read(machine):
    """test_prot_read: on a PROT_READ mapping MADV_POPULATE_READ succeeds and
    MADV_POPULATE_WRITE fails with EINVAL."""
    p = machine.spawn()
    addr = p.mmap(0, SIZE, PROT_READ, ANON)
    p.madvise(addr, SIZE, MADV_POPULATE_READ)
    expect_errno(errno.EINVAL, p.madvise, addr, SIZE, MADV_POPULATE_WRITE)


def test_prot_write(machine):
    """test_prot_write: on a PROT_WRITE mapping MADV_POPULATE_READ fails with EINVAL and
    MADV_POPULATE_WRITE succeeds."""
    p = machine.spawn()
    addr = p.mmap(0, SIZE, PROT_WRITE, ANON)
    expect_errno(errno.EINVAL, p.madvise, addr, SIZE, MADV_POPULATE_READ)
    p.madvise(addr, SIZE, MADV_POPULATE_WRITE)


@pytest.mark.parametrize("advice", [MADV_POPULATE_READ, MADV_POPULATE_WRITE],
                         ids=["read", "write"])
@pytest.mark.parametrize("where", ["middle", "end", "beginning"])
def test_holes(machine, where, advice):
    """test_holes: with the second page unmapped, populating a range that contains the hole
    (whole range, first two pages, or just the hole) fails with ENOMEM."""
    p = machine.spawn()
    addr = p.mmap(0, SIZE, RW, ANON)
    p.munmap(addr + P, P)
    start, length = {"middle": (addr, SIZE), "end": (addr, 2 * P),
                     "beginning": (addr + P, P)}[where]
    expect_errno(errno.ENOMEM, p.madvise, start, length, advice)


@pytest.mark.parametrize("advice", [MADV_POPULATE_READ, MADV_POPULATE_WRITE],
                         ids=["read", "write"])
def test_populate(machine, advice):
    """test_populate_read / test_populate_write: a fresh mapping has no page present; after
    the advice every page is present."""
    p = machine.spawn()
    addr = p.mmap(0, SIZE, RW, ANON)
    assert npresent(p, addr, PAGES) == 0, "range initially not populated"
    p.madvise(addr, SIZE, advice)
    assert npresent(p, addr, PAGES) == PAGES, "range is populated"
