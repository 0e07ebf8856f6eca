"""Ports the logic of LTP testcases/kernel/syscalls/mlock/ mlock01.c .. mlock05.c,
mlock2/ mlock201.c .. mlock203.c and mlockall/ mlockall01.c .. mlockall03.c.

Ported:
- mlock01.c: mlock of 1, 1024, 1 MiB and 10 MiB succeeds (on a private anonymous mapping of
  that length instead of a malloc() buffer).
- mlock02.c case 1: mlock of an unmapped page: ENOMEM.
- mlock03.c: mlock then munlock of every mapping listed in /proc/PID/maps (errors ignored, as
  upstream) does not shrink [stack]. Upstream compares the sizes it parsed from the same
  maps line before and after, which can never differ; here /proc/PID/maps is read again
  after the loop, which is what the test means to check.
- mlock04.c, with a MAP_SHARED|MAP_ANONYMOUS PROT_WRITE mapping for the shared file
  mapping: mlock and munlock of write-only shared memory succeed.
- mlock05.c: after mlock of a 1 MiB PROT_WRITE private mapping, its smaps Rss and Locked are
  both 1 MiB.
- mlock201.c: all eight cases (VmLck grows by the locked pages; mlock2(0) makes the range
  present, MLOCK_ONFAULT leaves only the already written pages present), on the same
  8-page MAP_SHARED|MAP_ANONYMOUS PROT_WRITE mapping; mincore() residency is read as the
  pagemap present bit, which is the same here because the memory is only ever touched
  through this one mapping.
- mlock202.c cases 1 and 4: unknown flags (-1): EINVAL; an unmapped range: ENOMEM.
- mlock203.c: locking an MLOCK_ONFAULT page again with mlock2(0) does not count it twice in
  VmLck.
- mlockall01.c: MCL_CURRENT, MCL_FUTURE and MCL_CURRENT|MCL_FUTURE succeed.
- mlockall02.c case 3 (flags 0) and mlockall03.c case 3 (~(MCL_CURRENT|MCL_FUTURE)):
  EINVAL.

Not ported: mlock02.c cases 2 and 3, mlock202.c cases 2 and 3, mlockall02.c and
mlockall03.c cases 1 and 2: they need setrlimit(RLIMIT_MEMLOCK) and seteuid("nobody"), which
the shared API does not have (the host worker runs as root with CAP_IPC_LOCK).
"""

import errno

import pytest

from portlib import ANON, MB, P, RW, expect_errno, maps, npresent, smaps_entry, status_kb
from vmlab.constants import (MAP_ANONYMOUS, MAP_SHARED, MCL_CURRENT, MCL_FUTURE, MLOCK_ONFAULT,
                             PROT_READ, PROT_WRITE)

SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS


@pytest.mark.parametrize("length", [1, 1024, 1024 * 1024, 1024 * 1024 * 10],
                         ids=["1B", "1KiB", "1MiB", "10MiB"])
def test_mlock01(machine, length):
    """mlock01: mlock of a buffer of the given length succeeds."""
    p = machine.spawn()
    addr = p.mmap(0, length, RW, ANON)
    p.mlock(addr, length)
    p.munmap(addr, length)


def test_mlock02_unmapped_enomem(machine):
    """mlock02 test_enomem1: mlock of a page that was mapped and unmapped: ENOMEM."""
    p = machine.spawn()
    addr = p.mmap(0, P, PROT_READ, ANON)
    p.munmap(addr, P)
    expect_errno(errno.ENOMEM, p.mlock, addr, P)


def stack_size(m, p) -> int:
    return next(e - s for s, e, _pr, name in maps(m, p) if name == "[stack]")


def test_mlock03_stack_not_shrunk(machine):
    """mlock03: mlock and munlock of every mapping in /proc/PID/maps, failures ignored, leave
    the [stack] mapping at least as large as before."""
    p = machine.spawn()
    first = stack_size(machine, p)
    for start, end, _perms, _name in maps(machine, p):
        for op in (p.mlock, p.munlock):
            try:
                op(start, end - start)
            except OSError:
                pass
    assert stack_size(machine, p) >= first, "stack size is decreased"


def test_mlock04_write_only_shared(machine):
    """mlock04: mlock of a 40 KiB PROT_WRITE shared mapping succeeds (and munlock)."""
    p = machine.spawn()
    length = 40960
    buf = p.mmap(0, length, PROT_WRITE, SHARED_ANON)
    p.mlock(buf, length)
    p.munlock(buf, length)
    p.munmap(buf, length)


def test_mlock05_prefaults(machine):
    """mlock05: after mlock of 1 MiB of PROT_WRITE private memory the smaps entry shows
    Rss and Locked of 1 MiB."""
    p = machine.spawn()
    buf = p.mmap(0, MB, PROT_WRITE, ANON)
    p.mlock(buf, MB)
    e = smaps_entry(machine, p, buf)
    assert e["start"] == buf
    assert e["Rss"] * 1024 == MB
    assert e["Locked"] * 1024 == MB
    p.munlock(buf, MB)


PAGES, HPAGES = 8, 4
MLOCK201 = [
    # (populate_pages, lock_pages, offset, exp_vmlcks, exp_present_pages, flag)
    (0, 1, 0, 1, 1, 0),
    (0, PAGES, 0, PAGES, PAGES, 0),
    (0, 2, 1, 3, 3, 0),
    (0, 2, -1, 2, 2, 0),
    (0, 1, 0, 1, 0, MLOCK_ONFAULT),
    (HPAGES, PAGES, 0, PAGES, HPAGES, MLOCK_ONFAULT),
    (1, HPAGES, 1, HPAGES + 1, 1, MLOCK_ONFAULT),
    (HPAGES, HPAGES, -1, HPAGES, HPAGES, MLOCK_ONFAULT),
]


@pytest.mark.parametrize("populate,lock,offset,exp_vmlck,exp_present,flag", MLOCK201)
def test_mlock201(machine, populate, lock, offset, exp_vmlck, exp_present, flag):
    """mlock201: mlock2 of lock_pages*page+offset bytes after writing populate_pages: VmLck
    grows by exp_vmlcks pages and exp_present_pages pages are resident."""
    p = machine.spawn()
    addr = p.mmap(0, PAGES * P, PROT_WRITE, SHARED_ANON)
    if populate:
        p.fill(addr, populate * P, 0)
    before = status_kb(machine, p, "VmLck")
    p.mlock2(addr, lock * P + offset, flag)
    after = status_kb(machine, p, "VmLck")
    assert (after - before) * 1024 // P == exp_vmlck
    assert npresent(p, addr, PAGES) == exp_present
    p.munlock(addr, lock * P + offset)
    p.munmap(addr, PAGES * P)


def test_mlock202_unknown_flags(machine):
    """mlock202 case 1: mlock2 with flags -1: EINVAL."""
    p = machine.spawn()
    addr = p.mmap(0, P, PROT_WRITE, ANON)
    expect_errno(errno.EINVAL, p.mlock2, addr, P, -1)


def test_mlock202_unmapped(machine):
    """mlock202 case 4: mlock2 of a page in the middle of an unmapped 8-page area: ENOMEM."""
    p = machine.spawn()
    area = p.mmap(0, 8 * P, PROT_READ, ANON)
    p.munmap(area, 8 * P)
    expect_errno(errno.ENOMEM, p.mlock2, area + 4 * P, P, 0)


def test_mlock203_relock_counts_once(machine):
    """mlock203: mlock2(MLOCK_ONFAULT) of one page raises VmLck by one page; locking it
    again with mlock2(0) leaves VmLck unchanged."""
    p = machine.spawn()
    addr = p.mmap(0, P, PROT_WRITE, ANON)
    before = status_kb(machine, p, "VmLck")
    p.mlock2(addr, P, MLOCK_ONFAULT)
    after1 = status_kb(machine, p, "VmLck")
    assert (after1 - before) * 1024 == P
    p.mlock2(addr, P, 0)
    assert status_kb(machine, p, "VmLck") == after1, "locking one memory again increased VmLck"
    p.munlock(addr, P)


@pytest.mark.parametrize("flags", [MCL_CURRENT, MCL_FUTURE, MCL_CURRENT | MCL_FUTURE],
                         ids=["MCL_CURRENT", "MCL_FUTURE", "MCL_CURRENT|MCL_FUTURE"])
def test_mlockall01(machine, flags):
    """mlockall01: mlockall with each valid flag combination succeeds."""
    p = machine.spawn()
    p.mlockall(flags)
    p.munlockall()


@pytest.mark.parametrize("flags", [0, ~(MCL_CURRENT | MCL_FUTURE)],
                         ids=["mlockall02-zero", "mlockall03-unknown"])
def test_mlockall_unknown_flags(machine, flags):
    """mlockall02 / mlockall03 "Unknown flag": mlockall(0) and
    mlockall(~(MCL_CURRENT|MCL_FUTURE)) fail with EINVAL."""
    p = machine.spawn()
    expect_errno(errno.EINVAL, p.mlockall, flags)
