"""Ports the logic of LTP testcases/kernel/syscalls/madvise/ (madvise01.c .. madvise12.c),
the parts that apply to anonymous memory.

Ported:
- madvise01.c: every advice returns 0. The advices upstream gives to its tmpfs file mapping
  (NORMAL, RANDOM, SEQUENTIAL, WILLNEED, DONTNEED, REMOVE, DONTFORK, DOFORK, MERGEABLE,
  UNMERGEABLE, DONTDUMP, DODUMP) go to a shared anonymous mapping, which is shmem as tmpfs
  is; the ones it gives to private anonymous memory (HUGEPAGE, NOHUGEPAGE, FREE, WIPEONFORK,
  KEEPONFORK, COLD, PAGEOUT) go to private anonymous memory, 40 KiB each as upstream.
  Upstream turns EINVAL into TCONF ("not supported"); here each advice must succeed, as it
  does on the reference host.
- madvise02.c: the error cases on anonymous memory, with a read-only, mlock()ed shared
  anonymous mapping for "file1" (upstream mlocks file1 for the DONTNEED case before running
  any case), the same with its last page unmapped for "file2", and the read-only shared
  anonymous page: unaligned start, unknown advice 1212, REMOVE and DONTNEED on locked memory,
  FREE and WIPEONFORK on shared memory (EINVAL); NORMAL and WILLNEED over an unmapped page
  (ENOMEM).
- madvise03.c: MADV_DONTNEED gives zero-fill-on-demand pages.
- madvise04.c, on a shared anonymous mapping for the file: MADV_DONTDUMP and MADV_DODUMP
  succeed (and set / clear the "dd" VmFlag).
- madvise05.c: MADV_WILLNEED on a populated 32 MiB mapping made PROT_NONE succeeds.
- madvise09.c, the part before its memory-pressure phase: MADV_FREE pages are not freed at
  once, and pages written again afterwards keep the new data.
- madvise10.c: all four MADV_WIPEONFORK / MADV_KEEPONFORK cases.
- madvise12.c: MADV_GUARD_INSTALL makes a child's write SIGSEGV without modifying anything;
  after MADV_GUARD_REMOVE the memory is unchanged and writable.

Not ported: madvise01.c's MADV_HWPOISON case and madvise07.c (they poison memory; the
reference host has CONFIG_MEMORY_FAILURE off, so LTP reports TCONF there), madvise02.c's
MERGEABLE/UNMERGEABLE EINVAL cases (LTP skips them when CONFIG_KSM is on, as on the
reference host), its WILLNEED-on-malloc EBADF case (LTP skips it on kernels with swap
prefetch) and its private file mapping case (file-backed), madvise06.c (swap + memory
cgroup), madvise08.c (core dumps), madvise09.c's memory-pressure phase (memory cgroup and
swap), madvise11.c (soft offline of real pages).
"""

import errno

import pytest

import vmlab
from portlib import ANON, MB, P, RW, expect_errno, map_fixed, reserve, vmflags
from vmlab.constants import (MADV_COLD, MADV_DODUMP, MADV_DOFORK, MADV_DONTDUMP, MADV_DONTFORK,
                             MADV_DONTNEED, MADV_FREE, MADV_GUARD_INSTALL, MADV_GUARD_REMOVE,
                             MADV_HUGEPAGE, MADV_KEEPONFORK, MADV_MERGEABLE, MADV_NOHUGEPAGE,
                             MADV_NORMAL, MADV_PAGEOUT, MADV_RANDOM, MADV_REMOVE,
                             MADV_SEQUENTIAL, MADV_UNMERGEABLE, MADV_WILLNEED, MADV_WIPEONFORK,
                             MAP_ANONYMOUS, MAP_POPULATE, MAP_SHARED, PROT_NONE, PROT_READ)

SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS
FILE_SIZE = 40960                     # 1280 * strlen("abcdefghijklmnopqrstuvwxyz12345\n")

SHARED_ADVICES = {"MADV_NORMAL": MADV_NORMAL, "MADV_RANDOM": MADV_RANDOM,
                  "MADV_SEQUENTIAL": MADV_SEQUENTIAL, "MADV_WILLNEED": MADV_WILLNEED,
                  "MADV_DONTNEED": MADV_DONTNEED, "MADV_REMOVE": MADV_REMOVE,
                  "MADV_DONTFORK": MADV_DONTFORK, "MADV_DOFORK": MADV_DOFORK,
                  "MADV_MERGEABLE": MADV_MERGEABLE, "MADV_UNMERGEABLE": MADV_UNMERGEABLE,
                  "MADV_DONTDUMP": MADV_DONTDUMP, "MADV_DODUMP": MADV_DODUMP}
PRIVATE_ADVICES = {"MADV_HUGEPAGE": MADV_HUGEPAGE, "MADV_NOHUGEPAGE": MADV_NOHUGEPAGE,
                   "MADV_FREE": MADV_FREE, "MADV_WIPEONFORK": MADV_WIPEONFORK,
                   "MADV_KEEPONFORK": MADV_KEEPONFORK, "MADV_COLD": MADV_COLD,
                   "MADV_PAGEOUT": MADV_PAGEOUT}


@pytest.mark.parametrize("name", list(SHARED_ADVICES))
def test_madvise01_shared(machine, name):
    """madvise01, advices given to the shared (tmpfs / shared anonymous) mapping: 0."""
    p = machine.spawn()
    sfile = p.mmap(0, FILE_SIZE, RW, SHARED_ANON)
    p.write(sfile, b"abcdefghijklmnopqrstuvwxyz12345\n" * 1280)
    p.madvise(sfile, FILE_SIZE, SHARED_ADVICES[name])


@pytest.mark.parametrize("name", list(PRIVATE_ADVICES))
def test_madvise01_private_anon(machine, name):
    """madvise01, advices given to private anonymous memory: 0."""
    p = machine.spawn()
    amem = p.mmap(0, FILE_SIZE, RW, ANON)
    p.madvise(amem, FILE_SIZE, PRIVATE_ADVICES[name])


@pytest.fixture
def madvise02(machine):
    """madvise02 setup(): file1 = 16 read-only shared pages, mlock()ed (tcases_filter);
    file2 = the same with its last page unmapped; shared_anon = one read-only shared page."""
    p = machine.spawn()
    size = 16 * P
    file1 = p.mmap(0, size, PROT_READ, SHARED_ANON)
    file2 = p.mmap(0, size, PROT_READ, SHARED_ANON)
    # the call passes 16 pages for this one-page mapping too: keep the rest of that range
    # inside memory the test owns (a PROT_NONE window)
    shared_anon = map_fixed(p, reserve(p, size), 4096, PROT_READ, SHARED_ANON)
    p.munmap(file2 + size - P, P)
    p.mlock(file1, size)
    return p, size, {"file1": file1, "file2": file2, "nonalign": file1 + 100,
                     "shared_anon": shared_anon}


MADVISE02 = [
    ("MADV_NORMAL nonalign", "nonalign", MADV_NORMAL, errno.EINVAL),
    ("advice 1212", "file1", 1212, errno.EINVAL),
    ("MADV_REMOVE locked", "file1", MADV_REMOVE, errno.EINVAL),
    ("MADV_DONTNEED locked", "file1", MADV_DONTNEED, errno.EINVAL),
    ("MADV_NORMAL hole", "file2", MADV_NORMAL, errno.ENOMEM),
    ("MADV_WILLNEED hole", "file2", MADV_WILLNEED, errno.ENOMEM),
    ("MADV_FREE shared", "file1", MADV_FREE, errno.EINVAL),
    ("MADV_WIPEONFORK shared", "file1", MADV_WIPEONFORK, errno.EINVAL),
    ("MADV_WIPEONFORK shared_anon", "shared_anon", MADV_WIPEONFORK, errno.EINVAL),
]


@pytest.mark.parametrize("name,target,advice,err", MADVISE02, ids=[c[0] for c in MADVISE02])
def test_madvise02_errors(madvise02, name, target, advice, err):
    """madvise02: each error case fails with the errno upstream expects."""
    p, size, addrs = madvise02
    expect_errno(err, p.madvise, addrs[target], size, advice)


def test_madvise03_dontneed_zero_fill(machine):
    """madvise03: after memset(1) and MADV_DONTNEED, private anonymous memory reads as
    zeros (zero-fill-on-demand)."""
    p = machine.spawn()
    size = 8 * 1024
    addr = p.mmap(0, size, RW, ANON)
    p.fill(addr, size, 1)
    p.madvise(addr, size, MADV_DONTNEED)
    assert p.read(addr, size) == bytes(size)


def test_madvise04_dontdump_dodump(machine):
    """madvise04: MADV_DONTDUMP then MADV_DODUMP on a read-only shared mapping both
    succeed; the first sets the "dd" VmFlag and the second clears it."""
    p = machine.spawn()
    file = p.mmap(0, FILE_SIZE, PROT_READ, SHARED_ANON)
    p.madvise(file, FILE_SIZE, MADV_DONTDUMP)
    assert "dd" in vmflags(machine, p, file)
    p.madvise(file, FILE_SIZE, MADV_DODUMP)
    assert "dd" not in vmflags(machine, p, file)


def test_madvise05_willneed_prot_none(machine):
    """madvise05: 32 MiB mapped PROT_READ with MAP_POPULATE, made PROT_NONE, then
    MADV_WILLNEED: returns 0."""
    p = machine.spawn()
    size = 32 * MB
    addr = p.mmap(0, size, PROT_READ, ANON | MAP_POPULATE)
    p.mprotect(addr, size, PROT_NONE)
    p.madvise(addr, size, MADV_WILLNEED)
    p.munmap(addr, size)


def test_madvise09_free_not_immediate(machine):
    """madvise09 (before the memory pressure): 128 pages of 'a' marked MADV_FREE still read
    'a'; pages 0 and 10 written with 'b' afterwards read 'b' then 'a's."""
    p = machine.spawn()
    pages = 128
    ptr = p.mmap(0, pages * P, RW, ANON)
    p.fill(ptr, pages * P, ord("a"))
    p.madvise(ptr, pages * P, MADV_FREE)
    assert p.read(ptr + P, 1) == b"a", "MADV_FREE pages were freed immediately"
    for i in (0, 10):
        p.write(ptr + i * P, b"b")
    for i in range(pages):
        want = (b"b" + b"a" * (P - 1)) if i in (0, 10) else b"a" * P
        assert p.read(ptr + i * P, P) == want, f"page {i} corrupted"


MAP_SIZE = 16 * 1024
PATTERN = bytes(i % 3 for i in range(MAP_SIZE))
MADVISE10 = [
    # (desc, size, advise1, advise2, expect pattern?, grand_child)
    ("wipeonfork zeroes child", MAP_SIZE, MADV_NORMAL, MADV_WIPEONFORK, False, False),
    ("wipeonfork zero length", 0, MADV_NORMAL, MADV_WIPEONFORK, True, False),
    ("wipeonfork zeroes grandchild", MAP_SIZE, MADV_NORMAL, MADV_WIPEONFORK, False, True),
    ("keeponfork undoes wipeonfork", MAP_SIZE, MADV_WIPEONFORK, MADV_KEEPONFORK, True, False),
]


@pytest.mark.parametrize("desc,size,adv1,adv2,keeps,grand", MADVISE10,
                         ids=[c[0] for c in MADVISE10])
def test_madvise10_wipeonfork(machine, desc, size, adv1, adv2, keeps, grand):
    """madvise10: a 16 KiB private mapping holding i % 3 gets advise1 then advise2 over
    ``size`` bytes; the child (or grandchild) then sees zeros after MADV_WIPEONFORK, and the
    pattern with a zero length or after MADV_KEEPONFORK."""
    p = machine.spawn()
    addr = p.mmap(0, MAP_SIZE, RW, ANON)
    p.write(addr, PATTERN)
    p.madvise(addr, size, adv1)
    p.madvise(addr, size, adv2)
    child = p.fork()
    seer = child.fork() if grand else child
    expect = PATTERN if keeps else bytes(MAP_SIZE)
    assert seer.read(addr, MAP_SIZE) == expect
    assert p.read(addr, MAP_SIZE) == PATTERN


def test_madvise12_guard_regions(machine):
    """madvise12: after MADV_GUARD_INSTALL over zeroed memory a child's memset raises
    SIGSEGV; after MADV_GUARD_REMOVE nothing reads 'a' and another child can memset 'b'."""
    p = machine.spawn()
    size = 8 * 1024
    addr = p.mmap(0, size, RW, ANON)
    p.fill(addr, size, 0)
    p.madvise(addr, size, MADV_GUARD_INSTALL)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault):
        child.fill(addr, size, ord("a"))
    child.exit()
    p.madvise(addr, size, MADV_GUARD_REMOVE)
    assert b"a" not in p.read(addr, size), "memory content has been modified"
    child = p.fork()
    child.fill(addr, size, ord("b"))
    assert child.read(addr, size) == b"b" * size
    child.exit()
