"""Ports the logic of LTP testcases/kernel/syscalls/mprotect/, the cases that map a file
(test_mprotect.py runs the rest, and these with shared anonymous memory).

- mprotect01.c test3: mprotect(PROT_WRITE) of a MAP_SHARED, PROT_READ mapping of a file
  opened O_RDONLY fails with EACCES. Upstream maps /dev/zero opened O_RDONLY; there are no
  device files in the model, so a regular file on the disk and on tmpfs stands in (the check
  is the same: mprotect_fixup() refuses VM_WRITE without VM_MAYWRITE). Added as a contrast:
  the same call on a MAP_PRIVATE mapping succeeds (a private mapping keeps VM_MAYWRITE).
- mprotect02.c: a page-sized file of "abc...z" repeated, mapped MAP_SHARED, PROT_READ (27
  bytes): a child's memcpy into it raises SIGSEGV; after mprotect(PROT_WRITE) a child's
  memcpy goes through.
- mprotect03.c: a 26-byte file mapped MAP_SHARED, PROT_READ|PROT_WRITE, then
  mprotect(PROT_READ): a child's memcpy raises SIGSEGV.
- mprotect05.c: an empty file mapped MAP_SHARED, PROT_READ, 5 pages: mprotect(PROT_EXEC) of
  page 1, mprotect(PROT_WRITE) of page 3 and mprotect(PROT_READ) of pages 1..4 succeed; the
  mapping is then one VMA again (upstream checks only that the calls succeed: the bug it
  guards against, 2fcd07b7ccd5, made the last call fail).

Not ported: mprotect01.c test1/test2 and mprotect04.c map no file (test_mprotect.py).
"""

import errno

import pytest

import vmlab
from filelib import O_CREAT, O_RDONLY, O_RDWR, file_with, reopen
from portlib import P, RW, expect_errno, vma_at
from vmlab.constants import (MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE,
                             SEGV_ACCERR)

BUF = b"abcdefghijklmnopqrstuvwxyz"
FS = pytest.mark.parametrize("path", ["/data/mprotect", "/tmp/mprotect"], ids=["disk", "tmpfs"])


@FS
@pytest.mark.parametrize("flags,err", [(MAP_SHARED, errno.EACCES), (MAP_PRIVATE, None)],
                         ids=["shared-eacces", "private-ok"])
def test_mprotect01_write_on_read_only_fd(machine, path, flags, err):
    """mprotect01 test3: a PROT_READ mapping of a file opened O_RDONLY cannot be made
    writable when it is MAP_SHARED (EACCES); a MAP_PRIVATE one can (contrast, not upstream)."""
    p = machine.spawn()
    fd = reopen(p, path, b"\0" * P, O_RDONLY)
    addr = p.mmap(0, P, PROT_READ, flags, fd, 0)
    if err is None:
        p.mprotect(addr, P, PROT_WRITE)
    else:
        expect_errno(err, p.mprotect, addr, P, PROT_WRITE)


def test_mprotect02_file_read_only_then_write(machine):
    """mprotect02 (file): a child's write into a PROT_READ shared file mapping raises
    SIGSEGV (SEGV_ACCERR); after mprotect(PROT_WRITE) of the mapping a child's write works."""
    p = machine.spawn()
    data = (BUF * (P // len(BUF) + 1))[:P]
    fd = file_with(p, "/data/mprotect02.tmp", data, O_RDWR | O_CREAT, 0o777)
    size = len(BUF) + 1                              # sizeof(buf), with the NUL
    addr = p.mmap(0, size, PROT_READ, MAP_SHARED, fd, 0)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault) as info:
        child.write(addr, BUF)
    assert info.value.code == SEGV_ACCERR
    child.exit()
    p.mprotect(addr, size, PROT_WRITE)
    child = p.fork()
    child.write(addr, BUF)
    child.exit()
    p.munmap(addr, size)
    p.close(fd)
    p.unlink("/data/mprotect02.tmp")


def test_mprotect03_file_remove_write(machine):
    """mprotect03 (file): mprotect(PROT_READ) of a PROT_READ|PROT_WRITE shared mapping of
    a 26-byte file succeeds and a child's write then raises SIGSEGV."""
    p = machine.spawn()
    fd = file_with(p, "/data/mprotect03.tmp", BUF, O_RDWR | O_CREAT, 0o777)
    addr = p.mmap(0, len(BUF), RW, MAP_SHARED, fd, 0)
    p.mprotect(addr, len(BUF), PROT_READ)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault) as info:
        child.write(addr, BUF)
    assert info.value.code == SEGV_ACCERR
    child.exit()
    p.munmap(addr, len(BUF))


@FS
def test_mprotect05_file_split_and_merge(machine, path):
    """mprotect05: on a 5-page PROT_READ shared mapping of an empty file, mprotect
    PROT_EXEC of page 1, PROT_WRITE of page 3, PROT_READ of pages 1..4 all succeed, and the
    five pages are one VMA again."""
    p = machine.spawn()
    fd = p.open(path, O_RDWR | O_CREAT, 0o777)
    addr = p.mmap(0, 5 * P, PROT_READ, MAP_SHARED, fd, 0)
    p.mprotect(addr + P, P, PROT_EXEC)
    p.mprotect(addr + 3 * P, P, PROT_WRITE)
    p.mprotect(addr + P, 4 * P, PROT_READ)
    assert vma_at(machine, p, addr) == (addr, addr + 5 * P)
    p.munmap(addr, 5 * P)
    p.close(fd)
    p.unlink(path)
