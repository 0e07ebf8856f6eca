"""Unit tests of the file system calls (kernel/files.py) that the ported LTP cases do not
reach."""

from __future__ import annotations

import os

import vmlab

P = 4096


def _meminfo(m) -> dict[str, int]:
    return {k.rstrip(":"): int(v) for k, v, *_ in
            (line.split() for line in m.procfs("/proc/meminfo").splitlines())}


def test_pread_of_a_tmpfs_hole_reads_zeros_and_allocates_nothing(design):
    """read() of a tmpfs hole copies from the zero page: shmem_file_read_iter() asks
    shmem_get_folio(SGP_READ), which does not allocate (mm/shmem.c). Host (Linux 6.18):
    `truncate -s 64M /dev/shm/f; cat /dev/shm/f >/dev/null` leaves meminfo Shmem unchanged.
    A page written, and a page out on swap, are still read back."""
    m = vmlab.Machine(ram="32M", swap="16M", design=design)
    p = m.spawn()
    fd = p.open("/dev/shm/holes", os.O_RDWR | os.O_CREAT)
    p.ftruncate(fd, 64 * P)
    p.pwrite(fd, b"abc", 10 * P)
    before = _meminfo(m)
    assert p.pread(fd, 64 * P, 0) == bytes(10 * P) + b"abc" + bytes(54 * P - 3)
    after = _meminfo(m)
    assert after["Shmem"] == before["Shmem"] == 4
    assert after["Cached"] == before["Cached"]
    a = p.mmap(0, 64 * P, vmlab.PROT_READ | vmlab.PROT_WRITE, vmlab.MAP_SHARED, fd, 0)
    p.write(a + 20 * P, b"swapped")
    p.madvise(a + 20 * P, P, vmlab.MADV_PAGEOUT)
    assert _meminfo(m)["SwapFree"] < _meminfo(m)["SwapTotal"]
    assert p.pread(fd, 7, 20 * P) == b"swapped"
    m.check()
