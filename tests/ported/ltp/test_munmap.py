"""Ports the logic of LTP testcases/kernel/syscalls/munmap/ munmap01.c, munmap02.c,
munmap03.c and munmap04.c.

munmap01.c and munmap02.c map "a file or anonymous shared memory"; they are ported with
MAP_SHARED|MAP_ANONYMOUS (the file variant comes with the file issue). A SIGSEGV in the
process that touches the unmapped memory is vmlab.SegmentationFault.

munmap04.c needs the process to hold vm.max_map_count (65530) mappings; on the host backend
it is skipped, because the host worker's per-call bookkeeping of its own mappings makes 65k
mmap calls take minutes (measured: 20000 calls took 257 s).
"""

import errno

import pytest

import vmlab
from portlib import ANON, P, RW, expect_errno
from vmlab.constants import (MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_SHARED, PROT_NONE,
                             SEGV_MAPERR)

SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS


def test_munmap01_unmapped_region_segfaults(machine):
    """munmap01: after munmap of a 3-page shared mapping, a write to its first byte (made in
    a child, as upstream) raises SIGSEGV."""
    p = machine.spawn()
    addr = p.mmap(0, 3 * P, RW, SHARED_ANON)
    p.munmap(addr, 3 * P)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault) as info:
        child.write(addr, bytes([50]))
    assert info.value.code == SEGV_MAPERR
    child.exit()


def test_munmap02_partial_unmap_segfaults(machine):
    """munmap02: unmapping the last 2 of 3 pages succeeds and a write to the first unmapped
    page raises SIGSEGV; the first page stays mapped."""
    p = machine.spawn()
    addr = p.mmap(0, 3 * P, RW, SHARED_ANON)
    p.munmap(addr + P, 2 * P)
    with pytest.raises(vmlab.SegmentationFault) as info:
        p.write(addr + P, bytes([50]))
    assert info.value.addr == addr + P
    p.write(addr, bytes([50]))
    p.munmap(addr, P)


@pytest.mark.parametrize("case", ["outside-address-space", "zero-length", "unaligned"])
def test_munmap03_einval(machine, case):
    """munmap03: EINVAL for a range outside the address space (addr = RLIM_INFINITY, the
    rlim_max of RLIMIT_DATA), for a length of 0, and for an address that is not a multiple
    of the page size."""
    p = machine.spawn()
    mem = p.mmap(0, 2 * P, RW, ANON)
    addr, length = {"outside-address-space": ((1 << 64) - 1, 2 * P),
                    "zero-length": (mem, 0),
                    "unaligned": (mem + 1, P)}[case]
    expect_errno(errno.EINVAL, p.munmap, addr, length)


def test_munmap04_split_at_map_count_limit(machine, backend):
    """munmap04: with as many mappings as vm.max_map_count allows (3-page PROT_NONE mappings
    every 6 pages from 4 GiB up, until mmap fails), unmapping one page in the middle of a
    mapping (two splits) fails with ENOMEM."""
    if backend == "host":
        pytest.skip("65530 mmap calls through the host worker take minutes")
    p = machine.spawn()
    addr, maps = 0x100000000, []
    while True:
        try:
            maps.append(p.mmap(addr, 3 * P, PROT_NONE, ANON | MAP_FIXED_NOREPLACE))
        except OSError as e:
            if e.errno == errno.EEXIST:
                addr += 6 * P
                continue
            break
        addr += 6 * P
    assert 0 < len(maps) < 65530
    expect_errno(errno.ENOMEM, p.munmap, maps[2] + P, P)
