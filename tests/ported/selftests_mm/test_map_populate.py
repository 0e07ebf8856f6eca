"""Ports the logic of linux tools/testing/selftests/mm/map_populate.c: MAP_POPULATE on a
writable MAP_PRIVATE file mapping must break COW up front.

Upstream: the parent maps a one-page tmpfile() MAP_SHARED, stores 0xdeadbabe (an unsigned
long) and msync()s; a child maps the file MAP_PRIVATE|MAP_POPULATE, PROT_READ|PROT_WRITE
and checks it reads 0xdeadbabe; then the parent stores 0x22222BAD through its shared mapping
and msync()s; the child's private mapping must still read 0xdeadbabe ("MAP_POPULATE COW
private page", "The mapping state"). The socketpair that orders the two processes upstream is
not needed: the test drives both processes in that order. tmpfile() lives wherever the
temporary directory is, so the test runs on the disk and on tmpfs.

Added (the state behind the check, through pagemap): right after the populating mmap the
child's page is present and no longer a page-cache page (PM_FILE clear): it is the child's own
anonymous copy.
"""

import pytest

from filelib import O_CREAT, O_RDWR
from portlib import P, RW
from vmlab.constants import MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MS_SYNC, PM_FILE, PM_PRESENT

MMAP_SZ = 4096


def ulong(v: int) -> bytes:
    return v.to_bytes(8, "little")


@pytest.mark.parametrize("path", ["/data/tmpfile", "/tmp/tmpfile"], ids=["disk", "tmpfs"])
def test_map_populate_private_cow(machine, path):
    """map_populate: a MAP_PRIVATE|MAP_POPULATE writable mapping made before the parent's
    store through MAP_SHARED keeps reading the old value 0xdeadbabe, never 0x22222BAD."""
    p = machine.spawn()
    fd = p.open(path, O_RDWR | O_CREAT, 0o600)
    p.ftruncate(fd, MMAP_SZ)
    smap = p.mmap(0, MMAP_SZ, RW, MAP_SHARED, fd, 0)
    p.write(smap, ulong(0xDEADBABE))
    p.msync(smap, MMAP_SZ, MS_SYNC)

    child = p.fork()
    cmap = child.mmap(0, MMAP_SZ, RW, MAP_PRIVATE | MAP_POPULATE, fd, 0)
    assert child.read(cmap, 8) == ulong(0xDEADBABE), "MAP_PRIVATE | MAP_POPULATE changed file"
    entry = child.pagemap(cmap, 1)[0]
    assert entry & PM_PRESENT and not entry & PM_FILE

    p.write(smap, ulong(0x22222BAD))
    p.msync(smap, MMAP_SZ, MS_SYNC)

    assert child.read(cmap, 8) != ulong(0x22222BAD), "MAP_POPULATE COW private page"
    assert child.read(cmap, 8) == ulong(0xDEADBABE), "The mapping state"
    child.exit()
    assert p.pread(fd, 8, 0) == ulong(0x22222BAD)
    p.munmap(smap, P)
