"""Ports the logic of linux tools/testing/selftests/mm/cow.c, the non-anonymous cases where a
private mapping sits over a file page (test_cow.py has the anonymous ones and the zero page).

Ported: non_anon_test_cases "Basic COW" (test_cow) as run by run_with_memfd() and
run_with_tmpfile(): a one-page file of zeros, a PROT_READ|PROT_WRITE MAP_PRIVATE mapping
(mem) and a PROT_READ MAP_SHARED mapping (smem) of it, both faulted in by a read; memset(mem,
0xff) must leave smem reading what it read before. memfd_create() is replaced by a tmpfs file
(/dev/shm/...: memfds are shmem files too), tmpfile() by a file on the disk; upstream's
fallocate() of the page by a pwrite() of a page of zeros (same contents, and the page exists
in the file). Added to upstream's check: the file itself is unchanged (read with pread), the
private mapping reads 0xff, and pagemap shows the private page as an exclusive anonymous page
(PM_FILE clear) while the shared mapping still maps the page-cache page (PM_FILE set).

Added, in the same spirit ("writes through a private mapping never reach the file or a shared
mapping"), on both file kinds:
- before the first private write, the private mapping reads through to the page cache, so a
  store through a writable shared mapping shows in it; after the COW it no longer does;
- after fork(), a store by either process into the private file mapping is seen by neither
  the other process, nor the shared mapping, nor the file, whether the page was still the
  page-cache page at fork time or already a private copy.

Not ported: "R/O longterm GUP pin" and "R/O longterm GUP-fast pin" (need
/sys/kernel/debug/gup_test); run_with_huge_zeropage and run_with_memfd_hugetlb (no THP or
hugetlb in the model); run_with_zeropage is in test_cow.py.
"""

import pytest

from filelib import O_CREAT, O_RDWR
from portlib import P, RW, exclusive
from vmlab.constants import MAP_PRIVATE, MAP_SHARED, PM_FILE, PM_PRESENT, PROT_READ

FILES = pytest.mark.parametrize("path", ["/dev/shm/memfd", "/data/tmpfile"],
                                ids=["memfd", "tmpfile"])


def one_page_file(p, path):
    """The file consists of a single page filled with zeroes."""
    fd = p.open(path, O_RDWR | O_CREAT, 0o600)
    p.pwrite(fd, bytes(P), 0)
    return fd


@FILES
def test_basic_cow_private_over_file(machine, path):
    """Basic COW with memfd / tmpfile: memset(mem, 0xff) of the private mapping leaves the
    shared mapping (and the file) reading the old zeros; the private page becomes an exclusive
    anonymous page, the shared one stays a file page."""
    p = machine.spawn()
    fd = one_page_file(p, path)
    mem = p.mmap(0, P, RW, MAP_PRIVATE, fd, 0)
    smem = p.mmap(0, P, PROT_READ, MAP_SHARED, fd, 0)
    p.touch(mem, P)                                  # FORCE_READ: fault the page in
    p.touch(smem, P)
    old = p.read(smem, P)
    p.fill(mem, P, 0xFF)
    assert p.read(smem, P) == old, "Other mapping modified"
    assert p.read(mem, P) == b"\xff" * P
    assert p.pread(fd, P, 0) == old
    priv, shared = p.pagemap(mem, 1)[0], p.pagemap(smem, 1)[0]
    assert priv & PM_PRESENT and not priv & PM_FILE and exclusive(priv)
    assert shared & PM_PRESENT and shared & PM_FILE


@FILES
def test_private_reads_through_until_cow(machine, path):
    """Before its first write the private mapping maps the page-cache page, so a store
    through a writable shared mapping shows in it; after the private write (the COW) later
    shared stores show in the shared mapping and the file only."""
    p = machine.spawn()
    fd = one_page_file(p, path)
    mem = p.mmap(0, P, RW, MAP_PRIVATE, fd, 0)
    wmem = p.mmap(0, P, RW, MAP_SHARED, fd, 0)
    p.touch(mem, P)
    p.write(wmem, b"A")
    assert p.read(mem, 1) == b"A"
    p.fill(mem, P, 0xFF)
    p.write(wmem, b"B")
    assert p.read(mem, 1) == b"\xff"
    assert p.read(wmem, 1) == b"B" and p.pread(fd, 1, 0) == b"B"


@FILES
@pytest.mark.parametrize("copied", [False, True], ids=["pagecache-page", "private-copy"])
@pytest.mark.parametrize("writer", ["parent", "child"])
def test_cow_after_fork_private_file(machine, path, writer, copied):
    """After fork, a memset(0xff) of a private file mapping by one process is not seen by the
    other process, the shared mapping or the file; with ``copied`` the parent had already
    written the page (its private copy, 0x11) before the fork."""
    p = machine.spawn()
    fd = one_page_file(p, path)
    mem = p.mmap(0, P, RW, MAP_PRIVATE, fd, 0)
    smem = p.mmap(0, P, PROT_READ, MAP_SHARED, fd, 0)
    if copied:
        p.fill(mem, P, 0x11)
    else:
        p.touch(mem, P)
    before = p.read(mem, P)
    child = p.fork()
    writing, other = (p, child) if writer == "parent" else (child, p)
    writing.fill(mem, P, 0xFF)
    assert writing.read(mem, P) == b"\xff" * P
    assert other.read(mem, P) == before
    assert p.read(smem, P) == child.read(smem, P) == bytes(P)
    assert p.pread(fd, P, 0) == bytes(P)
    child.exit()
