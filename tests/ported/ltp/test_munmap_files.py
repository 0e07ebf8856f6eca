"""Ports the logic of LTP testcases/kernel/syscalls/munmap/ munmap01.c and munmap02.c with
the file they map upstream (test_munmap.py runs them with shared anonymous memory).

- munmap01.c: a file of 3 pages + 1 byte (lseek to 3 pages, write "a") mapped MAP_SHARED,
  PROT_READ|PROT_WRITE; after munmap a child's write to the first byte raises SIGSEGV.
- munmap02.c: the same mapping with its last two pages unmapped: a write to the first
  unmapped page raises SIGSEGV.

Not ported here: munmap03.c (EINVAL cases on an anonymous mapping) and munmap04.c
(vm.max_map_count), which map no file; both are in test_munmap.py. Each test runs on the
model's disk and on tmpfs.
"""

import pytest

import vmlab
from filelib import sized_file
from portlib import P, RW
from vmlab.constants import MAP_SHARED, SEGV_MAPERR

FS = pytest.mark.parametrize("path", ["/data/mmapfile", "/tmp/mmapfile"], ids=["disk", "tmpfs"])


@FS
def test_munmap01_file_unmapped_segfaults(machine, path):
    """munmap01 (file): munmap of the whole 3-page shared file mapping succeeds; a child
    writing 50 to its first byte gets SIGSEGV (SEGV_MAPERR)."""
    p = machine.spawn()
    fd = sized_file(p, path, 3 * P)
    addr = p.mmap(0, 3 * P, RW, MAP_SHARED, fd, 0)
    p.munmap(addr, 3 * P)
    child = p.fork()
    with pytest.raises(vmlab.SegmentationFault) as info:
        child.write(addr, bytes([50]))
    assert info.value.code == SEGV_MAPERR and info.value.addr == addr
    child.exit()


@FS
def test_munmap02_file_partial_unmap_segfaults(machine, path):
    """munmap02 (file): unmapping pages 1..2 of a 3-page shared file mapping succeeds; a
    write to page 1 raises SIGSEGV at its first byte, while page 0 is still mapped and
    writable."""
    p = machine.spawn()
    fd = sized_file(p, path, 3 * P)
    base = p.mmap(0, 3 * P, RW, MAP_SHARED, fd, 0)
    p.munmap(base + P, 2 * P)
    with pytest.raises(vmlab.SegmentationFault) as info:
        p.write(base + P, bytes([50]))
    assert info.value.code == SEGV_MAPERR and info.value.addr == base + P
    p.write(base, bytes([50]))
    p.munmap(base, P)
