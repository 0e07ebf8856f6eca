"""Ports the logic of LTP testcases/kernel/syscalls/mprotect/ mprotect01.c .. mprotect05.c.

Ported:
- mprotect01.c: ENOMEM for a range at address 0 that nothing maps, EINVAL for an address
  that is not page aligned.
- mprotect02.c and mprotect03.c with a MAP_SHARED|MAP_ANONYMOUS mapping standing in for the
  shared file mapping: a write to a read-only mapping raises SIGSEGV (in a child, as
  upstream), and after mprotect(PROT_WRITE) it does not; mprotect(PROT_READ) of a writable
  shared mapping makes writes raise SIGSEGV.
- mprotect04.c: testfunc_protnone (after mprotect(PROT_NONE) a write raises SIGSEGV) and, of
  testfunc_protexec, the mprotect(PROT_EXEC) call and the resulting --x permissions.
- mprotect05.c with a shared anonymous mapping for the shared file mapping: splitting
  mprotect calls (PROT_EXEC on page 1, PROT_WRITE on page 3, PROT_READ on pages 1..4)
  succeed, and the five pages end up as one VMA again.

Not ported: mprotect01.c case 3 (EACCES for PROT_WRITE on a shared mapping of a file opened
read-only: needs a file descriptor; comes with the file issue) and the execution part of
mprotect04.c's testfunc_protexec (copying a function into the page and calling it: the API
has no instruction fetch).
"""

import errno

import pytest

import vmlab
from portlib import ANON, P, RW, expect_errno, map_fixed, reserve, vma_at, maps
from vmlab.constants import (MAP_ANONYMOUS, MAP_SHARED, PROT_EXEC, PROT_NONE, PROT_READ,
                             PROT_WRITE, SEGV_ACCERR)

SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS
BUF = b"abcdefghijklmnopqrstuvwxyz"


def test_mprotect01_enomem_unmapped(machine):
    """mprotect01 test1: mprotect(NULL, page + 1, PROT_READ) fails with ENOMEM."""
    p = machine.spawn()
    expect_errno(errno.ENOMEM, p.mprotect, 0, P + 1, PROT_READ)


def test_mprotect01_einval_unaligned(machine):
    """mprotect01 test2: an address that is not a multiple of the page size: EINVAL."""
    p = machine.spawn()
    addr = p.mmap(0, P, RW, ANON)
    expect_errno(errno.EINVAL, p.mprotect, addr + 1, 1024, PROT_READ)


def test_mprotect02_read_only_then_write(machine):
    """mprotect02: a child writing into a read-only shared mapping gets SIGSEGV; after
    mprotect(PROT_WRITE) a child's write goes through."""
    p = machine.spawn()
    addr = p.mmap(0, len(BUF) + 1, PROT_READ, SHARED_ANON)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault) as info:
        child.write(addr, BUF)
    assert info.value.code == SEGV_ACCERR
    child.exit()
    p.mprotect(addr, len(BUF) + 1, PROT_WRITE)
    child = p.fork()
    child.write(addr, BUF)
    child.exit()
    assert p.read(addr, len(BUF)) == BUF          # shared memory: the parent sees it


def test_mprotect03_remove_write(machine):
    """mprotect03: mprotect(PROT_READ) of a writable shared mapping succeeds and a child's
    write then raises SIGSEGV."""
    p = machine.spawn()
    addr = p.mmap(0, len(BUF), RW, SHARED_ANON)
    p.mprotect(addr, len(BUF), PROT_READ)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault) as info:
        child.write(addr, BUF)
    assert info.value.code == SEGV_ACCERR
    child.exit()


def test_mprotect04_prot_none(machine):
    """mprotect04 testfunc_protnone: after mprotect(PROT_NONE) a write raises SIGSEGV."""
    p = machine.spawn()
    addr = p.mmap(0, P, RW, ANON)
    p.mprotect(addr, P, PROT_NONE)
    with pytest.raises(vmlab.SegmentationFault):
        p.write(addr, b"\x01")


def test_mprotect04_prot_exec(machine):
    """mprotect04 testfunc_protexec (the system-call part): mprotect(PROT_EXEC) of a
    written private page succeeds and the VMA becomes execute-only (--xp)."""
    p = machine.spawn()
    base = reserve(p, 3 * P)
    addr = map_fixed(p, base + P, P)
    p.fill(addr, P, 0xC3)
    p.mprotect(addr, P, PROT_EXEC)
    perms = [pr for s, e, pr, _n in maps(machine, p) if s == addr]
    assert perms == ["--xp"]


def test_mprotect05_split_and_merge(machine):
    """mprotect05: on a 5-page read-only shared mapping, mprotect(PROT_EXEC) of page 1,
    mprotect(PROT_WRITE) of page 3 and mprotect(PROT_READ) of pages 1..4 all succeed; the
    mapping is then one VMA again."""
    p = machine.spawn()
    base = reserve(p, 7 * P)
    addr = map_fixed(p, base + P, 5 * P, PROT_READ, SHARED_ANON)
    p.mprotect(addr + P, P, PROT_EXEC)
    p.mprotect(addr + 3 * P, P, PROT_WRITE)
    p.mprotect(addr + P, 4 * P, PROT_READ)
    assert vma_at(machine, p, addr) == (addr, addr + 5 * P)
