"""Ports the logic of LTP testcases/kernel/syscalls/munlock/ munlock01.c .. munlock03.c and
munlockall/ munlockall01.c.

Ported:
- munlock01.c: munlock of 1, 1024, 1 MiB and 10 MiB after mlock succeeds (on a private
  anonymous mapping of that length instead of a malloc() buffer).
- munlock02.c: munlock of 8 locked pages whose pages 2..5 were unmapped: ENOMEM.
- munlock03.c: munlock with len = -8 * page_size (a huge size_t, so the range wraps): EINVAL.
- munlockall01.c: VmLck is 0 at start, non-zero after mlockall(MCL_CURRENT|MCL_FUTURE), and
  0 again after munlockall().

Not ported: munlockall02.c (EPERM for a non-root caller; needs seteuid("nobody"), which the
shared API does not have; modern kernels also let anyone call munlockall, so LTP reports
TCONF there).
"""

import errno

import pytest

from portlib import ANON, P, RW, expect_errno, status_kb
from vmlab.constants import MCL_CURRENT, MCL_FUTURE


@pytest.mark.parametrize("length", [1, 1024, 1024 * 1024, 1024 * 1024 * 10],
                         ids=["1B", "1KiB", "1MiB", "10MiB"])
def test_munlock01(machine, length):
    """munlock01: munlock of a locked buffer of the given length succeeds."""
    p = machine.spawn()
    addr = p.mmap(0, length, RW, ANON)
    p.mlock(addr, length)
    p.munlock(addr, length)


def test_munlock02_hole_enomem(machine):
    """munlock02: 8 pages written and locked, pages 2..5 unmapped; munlock of 8 pages from
    page 2 fails with ENOMEM."""
    p = machine.spawn()
    length = 8 * P
    addr = p.mmap(0, length, RW, ANON)
    p.fill(addr, length, 0x20)
    p.mlock(addr, length)
    addr += 2 * P
    p.munmap(addr, 4 * P)
    expect_errno(errno.ENOMEM, p.munlock, addr, length)


def test_munlock03_negative_length(machine):
    """munlock03: after mlock(addr, 1024), munlock(addr, -8 * page_size) fails with
    EINVAL."""
    p = machine.spawn()
    addr = p.mmap(0, 1024, RW, ANON)
    p.mlock(addr, 1024)
    expect_errno(errno.EINVAL, p.munlock, addr, -8 * P)


def test_munlockall01(machine):
    """munlockall01: VmLck 0 at start; mlockall(MCL_CURRENT|MCL_FUTURE) makes it non-zero;
    after munlockall() it is 0 again."""
    p = machine.spawn()
    assert status_kb(machine, p, "VmLck") == 0
    p.mlockall(MCL_CURRENT | MCL_FUTURE)
    assert status_kb(machine, p, "VmLck") > 0
    p.munlockall()
    assert status_kb(machine, p, "VmLck") == 0
