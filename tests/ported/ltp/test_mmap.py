"""Ports the logic of LTP testcases/kernel/syscalls/mmap/ (mmap01.c .. mmap20.c, and the
anonymous-memory tests mmap23.c, mmap24.c), the parts that apply to anonymous memory.

Ported:
- mmap06.c: the two EINVAL cases (length 0; flags without MAP_PRIVATE, MAP_SHARED or
  MAP_SHARED_VALIDATE), on anonymous mappings instead of a file.
- mmap10.c: the anonymous-memory cases, with and without MADV_MERGEABLE ("add_ksm"): a
  10 MiB - 4 KiB mapping with one page written, three children that each unmap a middle part
  and exit, then the parent unmaps everything.
- mmap12.c, as its anonymous analogue: MAP_POPULATE makes every page present at once and
  the memory reads as zeros (upstream maps a sparse file).
- mmap14.c: MAP_LOCKED adds exactly the mapping's size to VmLck.
- mmap15.c, as its anonymous analogue: a MAP_FIXED mapping at the last page of the address
  space fails with ENOMEM or EINVAL.
- mmap17.c, as its anonymous analogue: MAP_FIXED_NOREPLACE over an existing mapping fails
  with EEXIST.
- mmap23.c: MAP_32BIT with 2 GiB fails with ENOMEM.
- mmap24.c: MAP_32BIT mappings all end below 2 GiB, run out with ENOMEM, while the same
  request without MAP_32BIT still succeeds.

Not ported yet (file-backed: they come with the file issue): mmap01.c (zeroes past EOF, not
written back), mmap02.c, mmap03.c, mmap04.c, mmap05.c (read/exec/none file mappings),
mmap06.c's six EACCES cases (fd not open for reading), mmap07.c (EACCES), mmap08.c (EBADF),
mmap09.c (ftruncate of a mapped file), mmap10.c's /dev/zero cases, mmap13.c (SIGBUS past
EOF), mmap16.c (ext4 out of space), mmap19.c (two files, swapped addresses), mmap20.c
(MAP_SHARED_VALIDATE with an unknown flag on a file: EOPNOTSUPP), mmap001.c and mmap21.c
(large file written through a mapping).

Not ported, other reasons: mmap11.c (thread stacks freed by glibc; no threads in the API),
mmap18.c (MAP_GROWSDOWN used as a thread stack: growth happens on a fault below the VMA,
which neither backend's access API can make: the host worker refuses addresses outside
VMAs and the model has no stack expansion), mmap22.c (MAP_DROPPABLE reclaimed under a
memory cgroup limit).
"""

import errno

import pytest

from portlib import (ANON, GB, MB, P, RW, expect_errno, npresent, status_kb, vma_at)
from vmlab.constants import (MADV_MERGEABLE, MAP_32BIT, MAP_ANONYMOUS, MAP_FIXED,
                             MAP_FIXED_NOREPLACE, MAP_LOCKED, MAP_POPULATE, MAP_SHARED,
                             PROT_NONE, PROT_READ, PROT_WRITE)


@pytest.mark.parametrize("flags", [MAP_SHARED | MAP_ANONYMOUS, ANON], ids=["shared", "private"])
def test_mmap06_length_zero_einval(machine, flags):
    """mmap06 "length argument is 0": mmap of 0 bytes fails with EINVAL."""
    p = machine.spawn()
    expect_errno(errno.EINVAL, p.mmap, 0, 0, RW, flags)


def test_mmap06_no_mapping_type_einval(machine):
    """mmap06 "flags contains none of MAP_PRIVATE, MAP_SHARED, or MAP_SHARED_VALIDATE":
    EINVAL."""
    p = machine.spawn()
    expect_errno(errno.EINVAL, p.mmap, 0, 1024, RW, MAP_ANONYMOUS)


@pytest.mark.parametrize("add_ksm", [False, True], ids=["anon", "anon-ksm"])
def test_mmap10_fork_and_partial_unmap(machine, add_ksm):
    """mmap10 (anonymous): map SIZE + SIZE - page, write the byte at SIZE, fork three
    children that each unmap [SIZE + page, 2*SIZE - page) and exit, then unmap it all in the
    parent; everything succeeds and the parent's mapping is gone."""
    size = 5 * MB
    p = machine.spawn()
    total = size + size - P
    mem = p.mmap(0, total, RW, ANON)
    if add_ksm:
        p.madvise(mem, total, MADV_MERGEABLE)
    p.write(mem + size, b"\0")
    for _ in range(3):
        child = p.fork()
        child.munmap(mem + size + P, size - 2 * P)
        assert vma_at(machine, child, mem + size + P) is None
        child.exit()
    assert p.read(mem + size + P, 1) == b"\0"          # the children's unmaps were their own
    p.munmap(mem, total)
    assert vma_at(machine, p, mem) is None and vma_at(machine, p, mem + size) is None


def test_mmap12_populate(machine):
    """mmap12 (anonymous analogue): after mmap(MAP_POPULATE) of 1 MiB every page is present
    in pagemap and every byte is zero."""
    p = machine.spawn()
    size = MB
    addr = p.mmap(0, size, RW, ANON | MAP_POPULATE)
    assert npresent(p, addr, size // P) == size // P, "all pages are present"
    assert p.read(addr, size) == bytes(size)


def test_mmap14_map_locked(machine):
    """mmap14: mmap(MAP_LOCKED) of 1 MiB raises VmLck by exactly 1024 kB."""
    p = machine.spawn()
    before = status_kb(machine, p, "VmLck")
    addr = p.mmap(0, MB, RW, ANON | MAP_LOCKED)
    assert status_kb(machine, p, "VmLck") - before == MB // 1024
    p.munmap(addr, MB)


def test_mmap15_high_address(machine):
    """mmap15 (anonymous analogue): a MAP_FIXED mapping of one page at -page_size (beyond
    the user address space) fails with ENOMEM or EINVAL."""
    p = machine.spawn()
    with pytest.raises(OSError) as info:
        p.mmap((1 << 64) - P, P, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED)
    assert info.value.errno in (errno.ENOMEM, errno.EINVAL)


def test_mmap17_fixed_noreplace_eexist(machine):
    """mmap17 (anonymous analogue): MAP_FIXED_NOREPLACE at an existing mapping fails with
    EEXIST."""
    p = machine.spawn()
    n = 22                                              # strlen("Writing to mapped file")
    addr = p.mmap(0, n, PROT_WRITE, ANON)
    expect_errno(errno.EEXIST, p.mmap, addr, n, PROT_WRITE, ANON | MAP_FIXED_NOREPLACE)


def test_mmap23_map_32bit_2gb_enomem(machine):
    """mmap23: a 2 GiB MAP_32BIT mapping cannot fit below 2 GiB: ENOMEM."""
    p = machine.spawn()
    expect_errno(errno.ENOMEM, p.mmap, 0, 2 * GB, RW, ANON | MAP_32BIT)


def test_mmap24_map_32bit_stays_below_2gb(machine):
    """mmap24: 32 MiB PROT_NONE MAP_32BIT chunks are placed below 0x80000000 until ENOMEM
    (at least one, fewer than 64); a chunk without MAP_32BIT can still be mapped."""
    p = machine.spawn()
    chunk = 32 * MB
    chunks = []
    for _ in range(64):
        try:
            addr = p.mmap(0, chunk, PROT_NONE, ANON | MAP_32BIT)
        except OSError as e:
            assert e.errno == errno.ENOMEM
            break
        chunks.append(addr)
        assert addr + chunk <= 0x80000000, f"mapping at {addr:#x} exceeds the 2 GiB limit"
    else:
        pytest.fail("MAP_32BIT did not fail with ENOMEM")
    assert chunks, "failed to map any chunk with MAP_32BIT"
    other = p.mmap(0, chunk, PROT_NONE, ANON)
    p.munmap(other, chunk)
