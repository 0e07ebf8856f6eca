"""Ports the logic of Linux tools/testing/selftests/memfd/memfd_test.c: memfd_create() and the
file seals F_SEAL_SEAL, F_SEAL_WRITE, F_SEAL_SHRINK and F_SEAL_GROW (test_create,
test_basic, test_seal_write, test_seal_shrink, test_seal_grow, test_share_mmap's EBUSY case).

Each test runs on the model and, with --backend=host, on the host kernel (tests/ported/
conftest.py). Not ported: the FUSE, hugetlbfs (MFD_HUGETLB: the model has no hugetlbfs), exec
seal (MFD_EXEC/F_SEAL_EXEC: there is no exec in the API) and multi-thread cases.
"""

import errno

import pytest

from portlib import P, RW, expect_errno
from vmlab.constants import (F_ADD_SEALS, F_GET_SEALS, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK,
                             F_SEAL_WRITE, MAP_PRIVATE, MAP_SHARED, MFD_ALLOW_SEALING, PROT_READ,
                             PROT_WRITE)

SIZE = 4 * P


def _memfd(p, flags=MFD_ALLOW_SEALING, size=SIZE):
    fd = p.memfd_create("kern_memfd_basic", flags)
    p.ftruncate(fd, size)
    return fd


def test_create_name_limits(machine):
    """test_create: a name of 249 bytes is accepted, one byte more is EINVAL (NAME_MAX minus
    the "memfd:" prefix); unknown flags are EINVAL."""
    p = machine.spawn()
    p.close(p.memfd_create("x" * 249, 0))
    expect_errno(errno.EINVAL, p.memfd_create, "x" * 250, 0)
    expect_errno(errno.EINVAL, p.memfd_create, "test", 0x100)


def test_basic_seals_accumulate_and_seal_seal_stops_them(machine):
    """test_basic: seals add up; after F_SEAL_SEAL further F_ADD_SEALS fail with EPERM. A memfd
    created without MFD_ALLOW_SEALING starts with F_SEAL_SEAL."""
    p = machine.spawn()
    fd = _memfd(p)
    assert p.fcntl(fd, F_GET_SEALS) == 0
    p.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_WRITE)
    assert p.fcntl(fd, F_GET_SEALS) == F_SEAL_SHRINK | F_SEAL_WRITE
    p.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SEAL)
    assert p.fcntl(fd, F_GET_SEALS) == F_SEAL_SHRINK | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SEAL
    expect_errno(errno.EPERM, p.fcntl, fd, F_ADD_SEALS, F_SEAL_GROW)
    nos = _memfd(p, flags=0)
    assert p.fcntl(nos, F_GET_SEALS) == F_SEAL_SEAL
    expect_errno(errno.EPERM, p.fcntl, nos, F_ADD_SEALS, F_SEAL_WRITE)


def test_seal_write(machine):
    """test_seal_write: after F_SEAL_WRITE reads work, pwrite and a shared writable mmap fail
    with EPERM, a shared read-only mmap cannot be mprotect'ed writable (EACCES), and a private
    writable mmap still works (COW)."""
    p = machine.spawn()
    fd = _memfd(p)
    p.pwrite(fd, b"abcd", 0)
    p.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)
    assert p.pread(fd, 4, 0) == b"abcd"
    expect_errno(errno.EPERM, p.pwrite, fd, b"x", 0)
    expect_errno(errno.EPERM, p.mmap, 0, SIZE, RW, MAP_SHARED, fd, 0)
    a = p.mmap(0, SIZE, PROT_READ, MAP_SHARED, fd, 0)
    assert p.read(a, 4) == b"abcd"
    expect_errno(errno.EACCES, p.mprotect, a, SIZE, RW)
    b = p.mmap(0, SIZE, RW, MAP_PRIVATE, fd, 0)
    p.write(b, b"W")
    assert p.read(b, 2) == b"Wb" and p.pread(fd, 1, 0) == b"a"


def test_seal_write_busy_while_mapped_writable(machine):
    """test_share_mmap / mfd_fail_add_seals: F_SEAL_WRITE is refused with EBUSY while a shared
    writable mapping exists, and allowed once it is gone."""
    p = machine.spawn()
    fd = _memfd(p)
    a = p.mmap(0, SIZE, RW, MAP_SHARED, fd, 0)
    expect_errno(errno.EBUSY, p.fcntl, fd, F_ADD_SEALS, F_SEAL_WRITE)
    p.munmap(a, SIZE)
    p.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)
    assert p.fcntl(fd, F_GET_SEALS) == F_SEAL_WRITE


@pytest.mark.parametrize("seal, shrink_ok, grow_ok", [(F_SEAL_SHRINK, False, True),
                                                      (F_SEAL_GROW, True, False)])
def test_seal_shrink_and_grow(machine, seal, shrink_ok, grow_ok):
    """test_seal_shrink / test_seal_grow: ftruncate down (SHRINK) or up, and pwrite past the
    end (GROW), fail with EPERM; the other direction still works."""
    p = machine.spawn()
    fd = _memfd(p)
    p.fcntl(fd, F_ADD_SEALS, seal)
    if grow_ok:
        p.ftruncate(fd, SIZE * 2)
        p.pwrite(fd, b"z", SIZE * 2)
    else:
        expect_errno(errno.EPERM, p.ftruncate, fd, SIZE * 2)
        expect_errno(errno.EPERM, p.pwrite, fd, b"z", SIZE)
        p.pwrite(fd, b"z", 0)                     # inside the file: fine
    if shrink_ok:
        p.ftruncate(fd, P)
    else:
        expect_errno(errno.EPERM, p.ftruncate, fd, P)
