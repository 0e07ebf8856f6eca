"""Ports the logic of linux tools/testing/selftests/mm/mremap_test.c.

Ported:
- The remap_region() table (main(): test_cases[0..14]): a MAP_SHARED|MAP_ANONYMOUS source
  placed at an address aligned to ``src_alignment`` but not to twice that
  (get_source_mapping()), the first min(threshold, size) bytes set to a random pattern, moved
  with mremap(MREMAP_MAYMOVE|MREMAP_FIXED) to a destination computed as remap_region() does
  (aligned to ``dest_alignment`` but not twice that, after an optional 40 MiB preamble
  mapping), and the pattern checked at the destination (and the preamble's pattern after the
  move). The default threshold of 4 MiB is used, as upstream. Expected failures: overlapping
  source and destination (EINVAL), a 1 KiB-aligned destination (EINVAL), a 1 KiB-aligned
  source (the source mapping cannot even be made: EINVAL).
- mremap_expand_merge, mremap_expand_merge_offset: growing in place into a hole merges into
  one VMA (checked in /proc/PID/maps, like is_range_mapped()).
- mremap_move_within_range, mremap_move_1mb_from_start: a move inside a larger mapping, or to
  a destination whose aligned-down start is unmapped, does not corrupt the unmoved part.
- mremap_shrink_multiple_vmas (in place and with MREMAP_FIXED), mremap_move_multiple_vmas and
  mremap_move_multiple_vmas_split (with and without MREMAP_DONTUNMAP): one mremap over a range
  of several VMAs and holes (Linux 6.17+).

Adaptations: instead of probing low addresses with MAP_FIXED_NOREPLACE, every test reserves a
PROT_NONE window and places its mappings inside it with MAP_FIXED (the host process is an
interpreter with mappings of its own, under ASLR); "free" target areas are made by unmapping
part of the window. The random pattern comes from a fixed seed instead of time().

Not ported: the three 1 GiB "perf" cases (upstream runs them only with -t 0 or a threshold of
at least 1 GiB; they time page-table moves, which says nothing about contents here) and
mremap_move_multi_invalid_vmas (needs userfaultfd).
"""

import errno

import pytest

from portlib import (ANON, GB, KB, MB, P, RW, expect_errno, map_fixed, pattern,
                     range_in_one_vma, reserve)
from vmlab.constants import (MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_SHARED,
                             MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_NONE)

SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS
MODEL_RAM = "4G"        # the 2 GiB shared regions must fit the commit limit (shmem_acct_size)
THRESHOLD = 4 * MB                       # VALIDATION_DEFAULT_THRESHOLD
PREAMBLE = 10 * 4 * MB                   # test_cases[14].config.dest_preamble_size
PMD, PUD = 2 * MB, GB
SEED = 1234

_RAND = None


def rand_bytes() -> bytes:
    """main()'s rand_addr buffer: max(preamble, threshold) pseudo-random bytes."""
    global _RAND
    if _RAND is None:
        _RAND = pattern(max(PREAMBLE, THRESHOLD), SEED)
    return _RAND


def odd_aligned(addr: int, align: int) -> int:
    """The first address >= addr that is a multiple of align but not of 2*align, the rule of
    get_source_mapping()/remap_region() that avoids coincidental larger alignment."""
    a = (addr + align - 1) // align * align
    if not a & align:
        a += align
    return a


def remap_region(p, src_align, dest_align, size, overlapping=False, preamble=0):
    """remap_region(): returns (src, requested dest, the moved address or the OSError)."""
    rand = rand_bytes()
    threshold = min(THRESHOLD, size)
    window = 2 * size + preamble + 4 * max(src_align, dest_align, P) + 2 * MB
    base = reserve(p, window)
    src = odd_aligned(base, src_align)
    map_fixed(p, src, size, RW, SHARED_ANON)
    p.write(src, rand[:threshold])

    offset = -dest_align if overlapping else dest_align
    addr = (src + size + offset) & ~(dest_align - 1)
    addr += preamble
    if not addr & dest_align:
        addr |= dest_align
    assert addr + size <= base + window
    if preamble:
        map_fixed(p, addr - preamble, preamble, RW, SHARED_ANON)
        p.write(addr - preamble, rand[:preamble])
    try:
        got = p.mremap(src, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, addr)
    except OSError as e:
        return src, addr, e
    assert got == addr
    assert p.read(got, threshold) == rand[:threshold], "data after remap doesn't match"
    if preamble:
        assert p.read(addr - preamble, preamble) == rand[:preamble], \
            "preamble data after remap doesn't match"
    return src, addr, got


SUCCESS_CASES = [
    # (name, src_alignment, dest_alignment, region_size, preamble)
    ("8KB, src PTE-aligned, dst PTE-aligned", P, P, 2 * P, 0),
    ("2MB, src 1MB-aligned, dst PTE-aligned", MB, P, 2 * MB, 0),
    ("2MB, src 1MB-aligned, dst 1MB-aligned", MB, MB, 2 * MB, 0),
    ("4MB, src PMD-aligned, dst PTE-aligned", PMD, P, 4 * MB, 0),
    ("4MB, src PMD-aligned, dst 1MB-aligned", PMD, MB, 4 * MB, 0),
    ("4MB, src PMD-aligned, dst PMD-aligned", PMD, PMD, 4 * MB, 0),
    ("2GB, src PUD-aligned, dst PTE-aligned", PUD, P, 2 * GB, 0),
    ("2GB, src PUD-aligned, dst 1MB-aligned", PUD, MB, 2 * GB, 0),
    ("2GB, src PUD-aligned, dst PMD-aligned", PUD, PMD, 2 * GB, 0),
    ("2GB, src PUD-aligned, dst PUD-aligned", PUD, PUD, 2 * GB, 0),
    ("5MB, src 1MB-aligned, dst 1MB-aligned", MB, MB, 5 * MB, 0),
    ("5MB, src 1MB-aligned, dst 1MB-aligned, 40MB preamble", MB, MB, 5 * MB, PREAMBLE),
]


@pytest.mark.parametrize("name,src_align,dest_align,size,preamble", SUCCESS_CASES,
                         ids=[c[0] for c in SUCCESS_CASES])
def test_remap_region(machine, name, src_align, dest_align, size, preamble):
    """test_cases[3..14]: moving a shared anonymous region of the given size between the
    given alignments keeps its contents (and leaves a mapping just below the destination
    intact)."""
    p = machine.spawn()
    _src, addr, got = remap_region(p, src_align, dest_align, size, preamble=preamble)
    assert got == addr, f"mremap failed: {got}"


def test_remap_overlapping_fails(machine):
    """test_cases[0] "Source and Destination Regions Overlapping": the destination computed
    one page back from the end of a one-page source is the source itself; mremap refuses
    with EINVAL."""
    p = machine.spawn()
    src, addr, got = remap_region(p, P, P, P, overlapping=True)
    assert addr == src
    assert isinstance(got, OSError) and got.errno == errno.EINVAL


def test_remap_misaligned_destination_fails(machine):
    """test_cases[1] "Destination Address Misaligned (1KB-aligned)": EINVAL."""
    p = machine.spawn()
    _src, addr, got = remap_region(p, P, P // 4, P)
    assert addr % P == KB
    assert isinstance(got, OSError) and got.errno == errno.EINVAL


def test_remap_misaligned_source_fails(machine):
    """test_cases[2] "Source Address Misaligned (1KB-aligned)": get_source_mapping() cannot
    map a 1 KiB-aligned source (mmap MAP_FIXED_NOREPLACE: EINVAL), so the case fails as
    expected; an mremap from a 1 KiB-aligned address fails with EINVAL as well."""
    p = machine.spawn()
    base = reserve(p, 4 * P)
    src = odd_aligned(base + P, KB)
    assert src % P == KB
    expect_errno(errno.EINVAL, p.mmap, src, P, RW, SHARED_ANON | MAP_FIXED_NOREPLACE)
    real = map_fixed(p, base, 2 * P, RW, SHARED_ANON)
    expect_errno(errno.EINVAL, p.mremap, real + KB, P, P, MREMAP_MAYMOVE | MREMAP_FIXED,
                 base + 2 * P)


def test_mremap_expand_merge(machine):
    """mremap_expand_merge: map 3 pages, unmap the middle one, grow the first page in place
    to 2 pages: the two parts merge into one VMA of 3 pages."""
    p = machine.spawn()
    base = reserve(p, 5 * P)
    start = map_fixed(p, base + P, 3 * P, RW, ANON)
    p.munmap(start + P, P)
    assert p.mremap(start, P, 2 * P, 0) == start
    assert range_in_one_vma(machine, p, start, start + 3 * P)


def test_mremap_expand_merge_offset(machine):
    """mremap_expand_merge_offset: map 3 pages, unmap the last, grow the second page in place
    to 2 pages: the mapping is one VMA of 3 pages again."""
    p = machine.spawn()
    base = reserve(p, 5 * P)
    start = map_fixed(p, base + P, 3 * P, RW, ANON)
    p.munmap(start + 2 * P, P)
    assert p.mremap(start + P, P, 2 * P, 0) == start + P
    assert range_in_one_vma(machine, p, start, start + 3 * P)


def test_mremap_move_within_range(machine):
    """mremap_move_within_range: in a zeroed 20 MiB private mapping, the upper 1 MiB of a
    2 MiB-aligned 2 MiB block is moved 2 MiB down; the lower 1 MiB of the block keeps its
    pattern."""
    p = machine.spawn()
    rand = rand_bytes()
    size = 20 * MB
    ptr = p.mmap(0, size, RW, ANON)
    p.fill(ptr, size, 0)
    src = (ptr + 6 * MB) & ~(2 * MB - 1)
    p.write(src, rand[:2 * MB])
    dest = src - 2 * MB
    assert p.mremap(src + MB, MB, MB, MREMAP_MAYMOVE | MREMAP_FIXED, dest + MB) == dest + MB
    assert p.read(src, MB) == rand[:MB], "data at src got corrupted due to unrelated mremap"
    assert p.read(dest + MB, MB) == rand[MB:2 * MB]


def _get_source_mapping(p, lo, hi, align, size, taken):
    """get_source_mapping() inside [lo, hi): the first multiple of align with
    (addr & (align-1)) == 0 and (addr & align) != 0 that is not taken; mapped MAP_SHARED."""
    addr = (lo + align - 1) // align * align
    while addr + size <= hi:
        free = all(addr + size <= s or addr >= e for s, e in taken)
        if free and not addr & (align - 1) and addr & align:
            map_fixed(p, addr, size, RW, SHARED_ANON)
            taken.append((addr, addr + size))
            return addr
        addr += align
    raise AssertionError("no suitably aligned address in the window")


def test_mremap_move_1mb_from_start(machine):
    """mremap_move_1mb_from_start: with source and destination at 1 MiB+256 KiB "alignment"
    and the first 1 MiB of the destination unmapped, moving the second MiB of the source
    onto the second MiB of the destination leaves the first MiB of the source intact."""
    p = machine.spawn()
    rand = rand_bytes()
    align, size = MB + 256 * KB, 6 * MB
    lo = reserve(p, 64 * MB)
    taken = []
    src = _get_source_mapping(p, lo, lo + 64 * MB, align, size, taken)
    dest = _get_source_mapping(p, lo, lo + 64 * MB, align, size, taken)
    p.write(src, rand[:2 * MB])
    p.munmap(dest, MB)
    assert p.mremap(src + MB, MB, MB, MREMAP_MAYMOVE | MREMAP_FIXED, dest + MB) == dest + MB
    assert p.read(src, MB) == rand[:MB], "data at src got corrupted due to unrelated mremap"


def _holey(p, npages, unmapped):
    """ptr: npages mapped in a window, with the listed pages unmapped; tgt: a free area of
    tgt_pages right after a guard page (made by unmapping part of the window)."""
    base = reserve(p, (3 * npages + 4) * P)
    ptr = map_fixed(p, base + P, npages * P, RW, ANON)
    for i in unmapped:
        p.munmap(ptr + i * P, P)
    return base, ptr


@pytest.mark.parametrize("inplace", [True, False], ids=["inplace", "fixed"])
def test_mremap_shrink_multiple_vmas(machine, inplace):
    """mremap_shrink_multiple_vmas: 10 pages with every odd page unmapped are shrunk to one
    page, in place or moved with MREMAP_FIXED to a free area; both succeed."""
    p = machine.spawn()
    size = 10 * P
    base, ptr = _holey(p, 10, [1, 3, 5, 7, 9])
    tgt = base + 12 * P
    p.munmap(tgt, size)
    if inplace:
        assert p.mremap(ptr, size, P, 0) == ptr
    else:
        assert p.mremap(ptr, size, P, MREMAP_MAYMOVE | MREMAP_FIXED, tgt) == tgt


def _multi_vma_ok(p, at, stream):
    """is_multiple_vma_range_ok(): pages 0, 2, 4-5 (one 2-page chunk), 6, 8, 10 hold the
    consecutive parts of the stream."""
    off = 0
    for i in range(0, 11, 2):
        n = 2 * P if i == 4 else P
        if p.read(at + i * P, n) != stream[off:off + n]:
            return False
        off += n
    return True


@pytest.mark.parametrize("dontunmap", [False, True], ids=["plain", "dontunmap"])
def test_mremap_move_multiple_vmas(machine, dontunmap):
    """mremap_move_multiple_vmas: 11 pages with pages 1, 3, 7, 9 unmapped are moved as one
    range to a free area, then next to themselves, then over a PROT_NONE mapping; each time
    every VMA keeps its contents."""
    p = machine.spawn()
    flags = MREMAP_FIXED | MREMAP_MAYMOVE | (MREMAP_DONTUNMAP if dontunmap else 0)
    size = 11 * P
    base = reserve(p, (size * 3) + 4 * P)
    ptr = map_fixed(p, base + P, size, RW, ANON)
    tgt = base + 2 * P + size
    p.munmap(tgt, 2 * size)
    for i in (1, 3, 7, 9):
        p.munmap(ptr + i * P, P)
    stream = pattern(7 * P, SEED)
    off = 0
    for i in range(0, 11, 2):
        n = 2 * P if i == 4 else P
        p.write(ptr + i * P, stream[off:off + n])
        off += n

    assert p.mremap(ptr, size, size, flags, tgt) == tgt
    assert _multi_vma_ok(p, tgt, stream)
    assert p.mremap(tgt, size, size, flags, tgt + size) == tgt + size
    assert _multi_vma_ok(p, tgt + size, stream)
    map_fixed(p, tgt, size, PROT_NONE, ANON)
    assert p.mremap(tgt + size, size, size, flags, tgt) == tgt
    assert _multi_vma_ok(p, tgt, stream)


@pytest.mark.parametrize("dontunmap", [False, True], ids=["plain", "dontunmap"])
def test_mremap_move_multiple_vmas_split(machine, dontunmap):
    """mremap_move_multiple_vmas_split: of 10 pages with page 5 unmapped, pages 2..8 (two
    VMAs split at both ends of the moved range, with the hole inside) are moved to a free
    area; every moved page keeps its contents."""
    p = machine.spawn()
    flags = MREMAP_FIXED | MREMAP_MAYMOVE | (MREMAP_DONTUNMAP if dontunmap else 0)
    size = 10 * P
    base, ptr = _holey(p, 10, [5])
    tgt = base + 12 * P
    p.munmap(tgt, size)
    stream = pattern(10 * P, SEED)
    for i in range(10):
        if i != 5:
            p.write(ptr + i * P, stream[i * P:(i + 1) * P])
    assert p.mremap(ptr + 2 * P, size - 3 * P, size - 3 * P, flags, tgt) == tgt
    for i in range(7):
        if i == 3:
            continue
        assert p.read(tgt + i * P, P) == stream[(i + 2) * P:(i + 3) * P], f"page {i} corrupted"
