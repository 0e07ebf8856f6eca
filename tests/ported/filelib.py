"""Helpers for the ported tests that use files and SysV shared memory (importable like
portlib.py: tests/ported is on sys.path while these tests run).

Paths are the model's logical paths: those under /tmp/ and /dev/shm/ are tmpfs files, every
other path (the tests use /data/...) is a file on the simulated disk. On the host backend
HostMachine.host_path() maps them into the machine's private directories, so every test may
use fixed names. File descriptors are whatever the backend hands out: tests never assume a
number.
"""

from __future__ import annotations

import os
import random

from vmlab.constants import MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE

P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
O_RDONLY, O_WRONLY, O_RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
O_CREAT, O_EXCL, O_TRUNC = os.O_CREAT, os.O_EXCL, os.O_TRUNC

# include/uapi/linux/shm.h and LTP's libnewipc.h
SHM_RD, SHM_WR = 0o400, 0o200
SHM_RW = SHM_RD | SHM_WR
SHM_SIZE = 2048          # libnewipc.h SHM_SIZE
INT_SIZE = 4             # libnewipc.h INT_SIZE
SHM_LOCKED = 0o2000      # shm_perm.mode bit set by SHM_LOCK
SHM_DEST = 0o1000        # shm_perm.mode bit set by IPC_RMID while attached
SHM_HUGETLB = 0o4000
SHM_STAT = 13
SHM_INFO = 14
SHMMIN = 1
SHMMAX = (1 << 64) - 1 - (1 << 24)      # include/uapi/linux/shm.h: ULONG_MAX - (1UL << 24)


def file_with(p, path: str, data: bytes, flags: int = O_RDWR | O_CREAT,
              mode: int = 0o666) -> int:
    """open(path, flags, mode) and write ``data`` at offset 0 (LTP's SAFE_OPEN + SAFE_WRITE);
    returns the fd."""
    fd = p.open(path, flags, mode)
    if data:
        assert p.pwrite(fd, data, 0) == len(data)
    return fd


def reopen(p, path: str, data: bytes, flags: int) -> int:
    """Create the file with ``data`` through a read-write fd, close it, and open it again
    with ``flags`` (the "fchmod, close, reopen read-only" set-up of mmap02..mmap05)."""
    p.close(file_with(p, path, data))
    return p.open(path, flags)


def sized_file(p, path: str, size: int, flags: int = O_RDWR | O_CREAT) -> int:
    """A file of ``size`` zero bytes made the LTP way: seek to size and write one byte, i.e.
    a sparse file of size + 1 bytes whose last byte is 0."""
    fd = p.open(path, flags, 0o666)
    p.pwrite(fd, b"\0", size)
    return fd


def read_file(p, path: str) -> bytes:
    """The whole file, read through a fresh read-only fd of process p."""
    fd = p.open(path, O_RDONLY)
    try:
        return p.pread(fd, p.fstat(fd)["st_size"], 0)
    finally:
        p.close(fd)


def shared_file_map(p, fd: int, length: int, prot: int = RW, offset: int = 0) -> int:
    return p.mmap(0, length, prot, MAP_SHARED, fd, offset)


def ipc_key() -> int:
    """A key for shmget: LTP's GETIPCKEY() derives one from ftok() of a temporary path. On the
    host backend the machine normally has a private IPC namespace, but a random positive key
    also keeps clear of other programs where it has not."""
    return random.randrange(0x1000, 0x7FFF0000)
