"""Ports the logic of LTP testcases/kernel/syscalls/mremap/ mremap01.c, mremap04.c and
mremap06.c with the file or SysV segment they use upstream (test_mremap.py runs anonymous
analogues of all three).

- mremap01.c: a file of 1000 pages (+ 1 byte) mapped MAP_SHARED, PROT_WRITE; the file is
  stretched to 2000 pages (+ 1 byte) and the mapping grown to 2000 pages with
  MREMAP_MAYMOVE; every byte of the grown mapping is written ((char)index) and
  msync(MS_SYNC) succeeds. Added: read() then returns those bytes, i.e. the grown part maps
  the file too.
- mremap04.c: a SysV segment of 2 pages (IPC_CREAT, SHM_R|SHM_W) attached with shmat;
  growing its first page to 2 pages without MREMAP_MAYMOVE fails with ENOMEM.
- mremap06.c: the vma_merge() "case 3" vm_pgoff regression (7e7757876f25): a 4-page file
  whose pages start with '0'..'3' (written through a shared mapping that is then unmapped,
  so the page tables are gone); per case, map it shared, move page 1 onto page 3 and back
  with MREMAP_MAYMOVE|MREMAP_FIXED (with page 1 or 3 made read-only in between for the
  "incompatible" cases) and read pages 0..2 through the mapping. Upstream allocates the file
  with fallocate(); here it is ftruncate() (the pages' contents are what is checked).

Not ported here: mremap02/03/05/07/08/09 (no file; test_mremap.py).
"""

import errno

import pytest

from filelib import O_CREAT, O_RDWR, O_TRUNC, SHM_RW, ipc_key, sized_file
from portlib import P, expect_errno
from vmlab.constants import (IPC_CREAT, IPC_RMID, MAP_SHARED, MREMAP_FIXED, MREMAP_MAYMOVE,
                             MS_SYNC, PROT_READ, PROT_WRITE)

RW = PROT_READ | PROT_WRITE
MOVE = MREMAP_MAYMOVE | MREMAP_FIXED


def test_mremap01_expand_file_mapping(machine):
    """mremap01: a 1000-page shared file mapping grown to 2000 pages with MREMAP_MAYMOVE
    after the file was stretched; all 2000 pages can be written and msync(MS_SYNC) of them
    succeeds; the file then holds the written bytes."""
    memsize = 1000 * P
    newsize = 2 * memsize
    p = machine.spawn()
    fd = sized_file(p, "/data/mremapfile", memsize)
    addr = p.mmap(0, memsize, PROT_WRITE, MAP_SHARED, fd, 0)
    p.pwrite(fd, b"\0", newsize)
    addr = p.mremap(addr, memsize, newsize, MREMAP_MAYMOVE)
    data = bytes(range(256)) * (newsize // 256)
    p.write(addr, data)
    p.msync(addr, newsize, MS_SYNC)
    assert p.pread(fd, newsize, 0) == data
    p.munmap(addr, newsize)


def test_mremap04_shm_cannot_expand_without_maymove(machine):
    """mremap04: a 2-page SysV segment attached by shmat; mremap of its first page to 2
    pages with no flags: the segment's second page is in the way and MREMAP_MAYMOVE is not
    set, so ENOMEM."""
    memsize, newsize = P, 2 * P
    p = machine.spawn()
    shmid = p.shmget(ipc_key(), newsize, IPC_CREAT | SHM_RW)
    shmaddr = p.shmat(shmid, 0, 0)
    expect_errno(errno.ENOMEM, p.mremap, shmaddr, memsize, newsize, 0)
    p.shmdt(shmaddr)
    p.shmctl(shmid, IPC_RMID)


@pytest.mark.parametrize("incompatible", [0, 3, 1],
                         ids=["all-compatible", "third-incompatible", "first-incompatible"])
def test_mremap06_file_merge_case3_pgoff(machine, incompatible):
    """mremap06: page 1 of a fresh 4-page shared file mapping moved onto page 3 and back
    (page ``incompatible`` made read-only in between, if any); pages 0..2 then read '0', '1',
    '2' from the file through the mapping."""
    g = P                                                # MMAP_GRANULARITY on x86-64
    mmap_size, mremap_size = 4 * g, 3 * g
    p = machine.spawn()
    fd = p.open("/data/testfile", O_CREAT | O_RDWR | O_TRUNC, 0o600)
    p.ftruncate(fd, mmap_size)
    buf = p.mmap(0, mmap_size, RW, MAP_SHARED, fd, 0)
    for i in range(4):
        p.write(buf + i * g, bytes([0x30 + i]))
    p.munmap(buf, mmap_size)                             # "clear the page tables"

    buf = p.mmap(0, mmap_size, RW, MAP_SHARED, fd, 0)
    assert p.mremap(buf + g, g, g, MOVE, buf + mremap_size) == buf + mremap_size
    if incompatible:
        p.mprotect(buf + (incompatible - 1) * g, g, PROT_READ)
    assert p.mremap(buf + mremap_size, g, g, MOVE, buf + g) == buf + g
    for i in range(3):
        assert p.read(buf + i * g, 1) == bytes([0x30 + i]), f"page {i} wrong value"
    p.munmap(buf, mremap_size)
