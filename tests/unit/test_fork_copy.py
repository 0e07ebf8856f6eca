"""Fork's vector copy (designs/linux/fork.py): the batched rmap update over runs of
ascending frames, the in-place path over consecutive page-table rows, and the page-table pool's
"free rows are zero" invariant that lets table allocation skip clearing."""

import numpy as np
import pytest

import vmlab
from vmlab import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE
from vmlab.designs.linux.fork import _dup_rmap, _row_slice, _runs
from vmlab.hw.frames import PG_anon_exclusive, PG_swapbacked

RW = PROT_READ | PROT_WRITE
PRIV = MAP_PRIVATE | MAP_ANONYMOUS


def _reference(word: np.ndarray, pfn: np.ndarray) -> tuple[np.ndarray, list[int]]:
    out = word.copy()
    counted = []
    for p in pfn.tolist():
        if p == 0:
            continue
        out[p] = (int(out[p]) + (1 << 32)) & ~PG_anon_exclusive & 0xFFFFFFFFFFFFFFFF
        counted.append(p)
    return out, counted


def _word(n: int, rng) -> np.ndarray:
    """Frame words with random flags (exclusive set on about half) and small mapcounts."""
    flags = rng.integers(0, 1 << 20, n, dtype=np.uint64) | np.uint64(PG_swapbacked)
    mapcount = rng.integers(0, 4, n, dtype=np.uint64)
    return flags | (mapcount << np.uint64(32))


def _ascending_with_gaps(rng, n: int, every: int, gap: int, start: int = 7) -> np.ndarray:
    """n ascending pfns from ``start`` leaving ``gap`` frames out after each ``every``."""
    out, p = [], start
    while len(out) < n:
        out.extend(range(p, p + every))
        p += every + gap
    return np.array(out[:n], np.int64)


CASES = {
    "contiguous": lambda rng: np.arange(11, 11 + 3000, dtype=np.int64),
    "page-table frame every 512": lambda rng: _ascending_with_gaps(rng, 4096, 512, 1),
    "wide gaps (gather path)": lambda rng: _ascending_with_gaps(rng, 2048, 8, 4),
    "zero page first": lambda rng: np.concatenate([[0], np.arange(50, 50 + 2000)]),
    "zero page first, then gaps": lambda rng: np.concatenate(
        [[0], _ascending_with_gaps(rng, 3000, 512, 2, start=40)]),
    "zero page first, then frame 1": lambda rng: np.arange(0, 2500, dtype=np.int64),
    "empty, empty, then frames": lambda rng: np.concatenate([[0, 0], np.arange(1, 2500)]),
    "two zeros first": lambda rng: np.concatenate([[0, 0], np.arange(50, 50 + 2000)]),
    "zeros inside": lambda rng: np.where(np.arange(2000) % 97 == 5, 0, np.arange(60, 2060)),
    "shuffled": lambda rng: rng.permutation(np.arange(1, 3001, dtype=np.int64)),
    "short": lambda rng: np.array([9, 3, 0, 12], np.int64),
    "two runs swapped": lambda rng: np.concatenate([np.arange(1010, 2010), np.arange(10, 1010)]),
    "descending": lambda rng: np.arange(3000, 1000, -1, dtype=np.int64),
}


_PTE_BITS = 0x8000000000000067        # NX, dirty, accessed, user, rw, present
_ZERO_PTE = 0x8000000000000025        # the zero page: NX, accessed, user, present


def _ptes(pfn: np.ndarray, rng, writable: str = "all") -> np.ndarray:
    """PTEs for pfns: some pages clean (a run of frames whose bits differ still counts),
    pfn 0 alternately an empty PTE and the zero page; ``writable`` "all", "none", "one" (a
    single read-write PTE somewhere among read-only ones) or "first" (only the first)."""
    bits = np.full(len(pfn), _PTE_BITS, np.uint64)
    bits[rng.random(len(pfn)) < 0.01] &= np.uint64(~0x40 & 0xFFFFFFFFFFFFFFFF)
    if writable != "all":
        bits &= np.uint64(~0x2 & 0xFFFFFFFFFFFFFFFF)
    if writable == "one":
        bits[int(rng.integers(len(pfn)))] |= np.uint64(0x2)
    if writable == "first":
        bits[0] |= np.uint64(0x2)
    ptes = (pfn.astype(np.uint64) << np.uint64(12)) | bits
    zeros = np.flatnonzero(pfn == 0)
    ptes[zeros[0::2]] = 0
    ptes[zeros[1::2]] = _ZERO_PTE
    return ptes


@pytest.mark.parametrize("case", sorted(CASES))
def test_dup_rmap_matches_a_page_at_a_time_update(case):
    rng = np.random.default_rng(sorted(CASES).index(case))
    pfn = np.asarray(CASES[case](rng), np.int64)
    word = _word(int(pfn.max()) + 40, rng)
    want, counted = _reference(word, pfn)
    for want_pfns, writable in ((True, "all"), (False, "none"), (False, "one"), (False, "first")):
        w = word.copy()
        ptes = _ptes(pfn, rng, writable)
        count, got, rw = _dup_rmap(w, ptes, want_pfns=want_pfns)
        assert np.array_equal(w, want)
        assert count == len(counted)
        if want_pfns:
            assert sorted(got.tolist()) == sorted(counted)
        assert rw is None or rw == bool((ptes & np.uint64(0x2)).any())


@pytest.mark.parametrize("case", ["contiguous", "page-table frame every 512", "zeros inside",
                                  "two zeros first",
                                  "zero page first, then gaps"])
def test_ascending_frames_are_updated_as_one_slice(case, monkeypatch):
    """The batched path (no gather) is what these blocks take; a gather would mean the run
    detection failed and fork quietly lost its fast path."""
    rng = np.random.default_rng(1)
    pfn = np.asarray(CASES[case](rng), np.int64)
    word = _word(int(pfn.max()) + 40, rng)
    want, _ = _reference(word, pfn)

    def no_gather(*a, **k):
        raise AssertionError("gathered")
    monkeypatch.setattr(np, "take", no_gather)
    _dup_rmap(word, _ptes(pfn, rng))
    assert np.array_equal(word, want)


def test_whether_a_block_is_writable_comes_from_its_runs():
    rng = np.random.default_rng(5)
    pfn = _ascending_with_gaps(rng, 4096, 512, 1)
    for writable, expect in (("all", True), ("none", False), ("one", True), ("first", True)):
        word = _word(int(pfn.max()) + 40, rng)
        assert _dup_rmap(word, _ptes(pfn, rng, writable))[2] is expect


def test_a_second_fork_write_protects_the_one_page_written_since_the_first():
    """After a fork and the child's exit the parent's PTEs stay read-only; a page it writes
    again becomes writable (reused, PageAnonExclusive was cleared but it is mapped once).
    The next fork must write-protect that PTE, though every other one is read-only."""
    m = vmlab.Machine(ram="64M")
    p = m.spawn()
    size = 8 << 20
    a = p.mmap(0, size, RW, PRIV)
    p.fill(a, size, 0x21)
    p.fork().exit()
    page = a + 777 * PAGE_SIZE
    p.write(page, b"again")
    c = p.fork()
    m.check()
    c.write(page, b"child")
    assert p.read(page, 5) == b"again"
    p.write(page, b"paren")
    assert c.read(page, 5) == b"child"
    assert c.read(a + 5 * PAGE_SIZE, 1) == b"\x21"
    m.check()


def test_a_zero_page_pte_next_to_frame_1_is_not_counted():
    # pfn 0 then 1, 2, ... with the same bits: neighbours one frame apart from the start
    pfn = np.arange(0, 2000, dtype=np.int64)
    ptes = (pfn.astype(np.uint64) << np.uint64(12)) | np.uint64(_ZERO_PTE)
    word = np.zeros(2100, np.uint64)
    count, got, _ = _dup_rmap(word, ptes, want_pfns=True)
    assert count == 1999 and got[0] == 1
    assert word[0] == 0 and word[1] == 1 << 32 and word[1999] == 1 << 32 and word[2000] == 0


def test_row_slice_and_runs():
    assert _row_slice(np.array([4, 5, 6])) == slice(4, 7)
    assert _row_slice(np.array([4, 6, 7])) is None
    assert _row_slice(np.array([6, 5, 4])) is None
    assert _row_slice(np.array([9])) == slice(9, 10)
    p = np.array([1, 2, 3, 10, 11, 12])
    c = np.array([5, 6, 7, 8, 20, 21])
    assert _runs(p, c) == [(0, 3), (3, 4), (4, 6)]
    many = np.arange(0, 40, 2)
    assert _runs(many, many) == [(0, len(many))]


def _fork_and_compare(m, p, a, size):
    before = m.procfs(f"/proc/{p.pid}/smaps_rollup")
    c = p.fork()
    m.check()
    n = size // PAGE_SIZE
    for proc in (p, c):
        ents = proc.pagemap(a, n)
        present = [e for e in ents if e >> 63 & 1]
        assert present and not any(e >> 56 & 1 for e in present), "fork left a page exclusive"
    return before, c


def test_fork_of_a_large_region_in_address_order():
    """2,304 pages faulted in order: ascending frames with a page-table frame in between,
    some zero-page PTEs and a hole; fork shares all, the writes after it COW."""
    m = vmlab.Machine(ram="64M")
    p = m.spawn()
    size = 9 << 20
    a = p.mmap(0, size, RW, PRIV)
    p.fill(a, size, 0x5A)
    p.madvise(a + (1 << 20), 64 * PAGE_SIZE, vmlab.MADV_DONTNEED)       # a hole
    p.touch(a + (1 << 20), 16 * PAGE_SIZE)                              # zero-page PTEs
    _, c = _fork_and_compare(m, p, a, size)
    for pfn_ent in p.pagemap(a + (2 << 20), 4):
        assert m.kpagecount(pfn_ent & ((1 << 55) - 1)) == 2
    c.write(a + 5 * PAGE_SIZE, b"child")
    p.write(a + (3 << 20), b"parent")
    assert p.read(a + 5 * PAGE_SIZE, 5) == b"\x5a" * 5
    assert c.read(a + 5 * PAGE_SIZE, 5) == b"child"
    assert c.read(a + (3 << 20), 6) == b"\x5a" * 6
    assert p.read(a + (1 << 20), 4) == b"\0" * 4
    m.check()
    c.exit()
    m.check()


def test_fork_when_frames_and_table_rows_are_scattered():
    """The same after churn: frames come back in no order and the parent's table rows
    alternate with another region's, so fork takes the gather/scatter paths."""
    m = vmlab.Machine(ram="64M")
    p = m.spawn()
    rng = np.random.default_rng(3)
    regions = [p.mmap(0, 3 << 20, RW, PRIV) for _ in range(3)]
    for r in regions:
        p.fill(r, 3 << 20, 1)
    for r in regions[::2]:
        p.munmap(r, 3 << 20)
    size = 24 << 20
    a = p.mmap(0, size, RW, PRIV)
    b = p.mmap(0, size, RW, PRIV)
    for i in range(0, size, 2 << 20):             # a's and b's tables take turns in the pool
        p.touch(a + i, PAGE_SIZE, write=True)
        p.touch(b + i, PAGE_SIZE, write=True)
    order = rng.permutation(size // PAGE_SIZE)
    for i in order[:3000].tolist():
        p.write(a + i * PAGE_SIZE, bytes([i & 0xFF]))
    _, c = _fork_and_compare(m, p, a, size)
    for i in order[:50].tolist():
        assert c.read(a + i * PAGE_SIZE, 1) == bytes([i & 0xFF])
        c.write(a + i * PAGE_SIZE, b"\xff")
        assert p.read(a + i * PAGE_SIZE, 1) == bytes([i & 0xFF])
    m.check()


def test_check_finds_a_free_table_row_that_is_not_zero():
    m = vmlab.Machine(ram="16M")
    p = m.spawn()
    a = p.mmap(0, 1 << 20, RW, PRIV)
    p.fill(a, 1 << 20, 3)
    m.check()
    pt = m.design.pt
    free = pt.free_rows()
    assert len(free)
    pt.rows[free[0], 7] = 0x1234
    with pytest.raises(vmlab.InvariantError, match="free row"):
        m.check()


# --- property: big private regions in any physical layout fork correctly ---------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PAGES = 2560          # five tables: a block of whole tables long enough for the batched path


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(order=st.sampled_from(["ascending", "ascending", "descending", "shuffled",
                              "two halves swapped"]),
       holes=st.lists(st.tuples(st.integers(0, _PAGES - 1), st.integers(1, 64)), max_size=4),
       reads=st.lists(st.tuples(st.integers(0, _PAGES - 1), st.integers(1, 64)), max_size=3),
       offset=st.integers(0, 511), seed=st.integers(0, 2**16))
def test_fork_of_any_layout_keeps_contents_and_counts(order, holes, reads, offset, seed):
    """Pages written in some order (so frames ascend, descend or are mixed), with holes
    (MADV_DONTNEED) and zero-page ranges, at any alignment to the tables: after fork both
    processes read what was written, check() recounts every mapcount and RSS, and the
    writes after fork copy."""
    m = vmlab.Machine(ram="32M")
    p = m.spawn()
    rng = np.random.default_rng(seed)
    base = p.mmap(0, (_PAGES + 512) * PAGE_SIZE, RW, PRIV)
    a = base + offset * PAGE_SIZE
    idx = np.arange(_PAGES)
    if order == "descending":
        idx = idx[::-1]
    elif order == "shuffled":
        idx = rng.permutation(idx)
    elif order == "two halves swapped":
        idx = np.concatenate([idx[_PAGES // 2:], idx[:_PAGES // 2]])
    want = {}
    if order == "ascending":
        p.fill(a, _PAGES * PAGE_SIZE, 0x11)
        want = {i: 0x11 for i in range(_PAGES)}
    else:
        for i in idx.tolist():
            p.write(a + i * PAGE_SIZE, bytes([i % 251 + 1]))
            want[i] = i % 251 + 1
    for start, n in holes:
        n = min(n, _PAGES - start)
        p.madvise(a + start * PAGE_SIZE, n * PAGE_SIZE, vmlab.MADV_DONTNEED)
        for i in range(start, start + n):
            want[i] = 0
    for start, n in reads:
        n = min(n, _PAGES - start)
        for i in range(start, start + n):
            if want[i] == 0:
                p.read(a + i * PAGE_SIZE, 1)             # maps the zero page
    c = p.fork()
    m.check()
    probe = rng.choice(_PAGES, 40, replace=False).tolist()
    for i in probe:
        assert p.read(a + i * PAGE_SIZE, 1) == bytes([want[i]])
        assert c.read(a + i * PAGE_SIZE, 1) == bytes([want[i]])
    for i in probe[:10]:
        c.write(a + i * PAGE_SIZE, b"\xee")
        assert p.read(a + i * PAGE_SIZE, 1) == bytes([want[i]])
    m.check()
    c.exit()
    m.check()
