"""Ports the logic of LTP testcases/kernel/syscalls/msync/ msync01.c .. msync04.c.

Ported:
- msync01.c: 256 bytes of 1 stored at offset 100 of a shared file mapping, msync(MS_ASYNC),
  and read() at offset 100 returns them. (The buffer upstream writes to make the file is a
  zero-initialised global, so the file starts as a page of zeros.)
- msync02.c: "Testing" written with write() at offset 100 of a mapped file, then
  msync(MS_INVALIDATE): the mapping shows the new bytes. (Upstream fills the file from an
  uninitialised stack buffer; here it is a page of 'a'.)
- msync03.c: all six cases: EBUSY (MS_INVALIDATE on a MAP_LOCKED mapping), EINVAL
  (MS_ASYNC|MS_SYNC; flags -1; an unaligned address; the address RLIM_INFINITY, which is what
  getrlimit(RLIMIT_DATA).rlim_max gives on Linux), ENOMEM (a page that is not mapped:
  upstream takes sbrk(0) + 4 pages; here an address that was just unmapped).
- msync04.c: a store through a shared mapping of a disk file makes the page dirty
  (KPF_DIRTY in /proc/kpageflags) and msync(MS_SYNC) cleans it. As upstream, the test skips
  when no pfn is visible (not root on the host), and upstream's "storage was written too
  quickly" case (dirty bit already clear, file already updated) is a skip as well. Upstream
  runs it on every filesystem except tmpfs; here it runs on the model's disk and on the host's
  disk directory.

Nothing skipped.
"""

import errno

import pytest

from filelib import O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, file_with
from portlib import P, RW, expect_errno, has_pfns, pfn, reserve
from vmlab.constants import KPF_DIRTY, MAP_LOCKED, MAP_SHARED, MS_ASYNC, MS_INVALIDATE, MS_SYNC


def test_msync01_async_reaches_file(machine):
    """msync01: memset(addr + 100, 1, 256) through a shared mapping of a one-page file,
    msync(MS_ASYNC) succeeds, and read() of 256 bytes at offset 100 returns only 1s."""
    p = machine.spawn()
    fd = file_with(p, "/data/msync_file", bytes(P))
    addr = p.mmap(0, P, RW, MAP_SHARED, fd, 0)
    p.fill(addr + 100, 256, 1)
    p.msync(addr, P, MS_ASYNC)
    assert p.pread(fd, 256, 100) == b"\x01" * 256
    p.munmap(addr, P)
    p.close(fd)


def test_msync02_invalidate_shows_write(machine):
    """msync02: after write(fd) of "Testing" at offset 100 of a file mapped MAP_SHARED,
    msync(MS_INVALIDATE) succeeds and the mapping reads "Testing" at offset 100."""
    p = machine.spawn()
    fd = file_with(p, "/data/msync_file", b"a" * P)
    addr = p.mmap(0, P, RW, MAP_SHARED, fd, 0)
    p.pwrite(fd, b"Testing", 100)
    p.msync(addr, P, MS_INVALIDATE)
    assert p.read(addr + 100, 7) == b"Testing"
    p.munmap(addr, P)


MSYNC03 = ["locked-invalidate", "async-and-sync", "bad-flags", "unaligned", "rlim-infinity",
           "unmapped"]


@pytest.mark.parametrize("case", MSYNC03)
def test_msync03_errors(machine, case):
    """msync03: MS_INVALIDATE on a MAP_LOCKED shared mapping: EBUSY; MS_ASYNC|MS_SYNC,
    flags -1, an address one byte into the mapping and the address RLIM_INFINITY: EINVAL; a
    page that is not mapped: ENOMEM."""
    p = machine.spawn()
    fd = file_with(p, "/data/msync_file", b"a" * P)
    addr1 = p.mmap(0, P, RW, MAP_SHARED | MAP_LOCKED, fd, 0)
    free = reserve(p, P)
    p.munmap(free, P)
    addr, flags, err = {
        "locked-invalidate": (addr1, MS_INVALIDATE, errno.EBUSY),
        "async-and-sync": (addr1, MS_ASYNC | MS_SYNC, errno.EINVAL),
        "bad-flags": (addr1, -1, errno.EINVAL),
        "unaligned": (addr1 + 1, MS_SYNC, errno.EINVAL),
        "rlim-infinity": ((1 << 64) - 1, MS_SYNC, errno.EINVAL),
        "unmapped": (free, MS_SYNC, errno.ENOMEM),
    }[case]
    expect_errno(err, p.msync, addr, P, flags)


def test_msync04_sync_cleans_dirty_page(machine):
    """msync04: "AAAAAAAAAA" written to a new disk file, the file mapped MAP_SHARED (one
    page) and the fd closed; a store of 'B' at offset 8 leaves the page dirty in
    /proc/kpageflags, and after msync(MS_SYNC) the page is clean and the file holds the 'B'."""
    if not has_pfns(machine):
        pytest.skip("no pfns in pagemap (needs CAP_SYS_ADMIN)")
    p = machine.spawn()
    fd = file_with(p, "/data/msync04/testfile", b"A" * 10, O_CREAT | O_TRUNC | O_RDWR, 0o644)
    area = p.mmap(0, P, RW, MAP_SHARED, fd, 0)
    p.close(fd)
    p.write(area + 8, b"B")

    def dirty() -> bool:
        frame = pfn(p.pagemap(area, 1)[0])
        return bool(frame) and bool(machine.kpageflags(frame) >> KPF_DIRTY & 1)

    if not dirty():
        fd = p.open("/data/msync04/testfile", O_RDONLY)
        if p.pread(fd, 9, 0)[8:9] == b"B":
            pytest.skip("write file ok but msync couldn't be tested: the page was already "
                        "written back")
        pytest.fail("write file failed")
    p.msync(area, P, MS_SYNC)
    assert not dirty(), "msync() failed to write dirty page despite succeeding"
    fd = p.open("/data/msync04/testfile", O_RDONLY)
    assert p.pread(fd, 10, 0) == b"AAAAAAAABA"
    p.munmap(area, P)
