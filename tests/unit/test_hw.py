"""Unit tests of the hardware layer: PTE encodings, content tokens, the frame allocator."""

import numpy as np
import pytest

from vmlab.hw import pte as P
from vmlab.hw.content import BLOB_BASE, ContentStore, POISON
from vmlab.hw.frames import PG_buddy, FrameTable, OutOfFrames


def test_swap_pte_layout_matches_x86_64():
    """Type in bits 59-63, offset inverted in bits 9-58 (arch/x86/include/asm/pgtable_64.h)."""
    assert P.swp_entry_to_pte(0, 0) == ((1 << 50) - 1) << 9
    e = P.swp_entry_to_pte(3, 1234)
    assert e >> 59 == 3
    assert (~e >> 9) & ((1 << 50) - 1) == 1234
    assert not P.pte_present(e) and P.is_swap_pte(e)
    assert (P.pte_swp_type(e), P.pte_swp_offset(e)) == (3, 1234)


def test_swap_pte_vector_roundtrip():
    offs = np.array([0, 1, 7, 123456], np.uint64)
    ptes = P.np_swp_entry(2, offs)
    assert P.np_swap(ptes).all()
    assert (P.np_swp_type(ptes) == 2).all()
    assert P.np_swp_offset(ptes).tolist() == [0, 1, 7, 123456]


def test_protnone_is_present_but_not_hw_present():
    """pte_present() is P | PROTNONE on x86: mprotect(PROT_NONE) pages stay mapped."""
    e = P.mk_pte(42, P.PROTNONE | P.ACCESSED)
    assert P.pte_present(e) and not e & P.PRESENT and P.pte_pfn(e) == 42


def test_guard_marker_is_swap_type_31_offset_guard():
    """The pagemap frame of a guard page is 31 | 4 << 5 (seen on the host)."""
    assert P.pte_swp_type(P.GUARD_PTE) == 31 and P.pte_swp_offset(P.GUARD_PTE) == 4
    assert P.is_guard_pte(P.GUARD_PTE) and not P.is_guard_pte(P.swp_entry_to_pte(0, 4))


def test_content_tokens_share_and_copy_on_write():
    cs = ContentStore()
    t = cs.write(0, 10, b"abc")               # zero page + bytes -> a blob
    assert t >= BLOB_BASE and cs.read(t, 9, 5) == b"\0abc\0"
    u = cs.dup(t)                              # a COW copy shares the buffer
    assert u == t and cs.refs[t - BLOB_BASE] == 2
    v = cs.write(u, 10, b"X")                  # writing the shared copy makes its own buffer
    assert v != t and cs.read(t, 10, 1) == b"a" and cs.read(v, 10, 1) == b"X"
    w = cs.fill(v, 0, 4096, 7)                 # a full-page memset is a uniform token again
    assert w == 7 and cs.nblobs() == 1
    cs.release(t)
    assert cs.nblobs() == 0
    assert cs.check(np.array([w], np.uint64)) == []


def test_content_store_check_finds_leaked_blob():
    cs = ContentStore()
    t = cs.write(0, 0, b"x")
    assert cs.check(np.array([], np.uint64))       # held by nobody: reported
    assert cs.check(np.array([t], np.uint64)) == []


def test_frames_allocate_ascending_and_poison_on_free():
    f = FrameTable(64)
    a = f.alloc()
    b = f.alloc()
    assert (a, b) == (1, 2)                    # pfn 0 is the zero page
    f.refcount[a] = 0
    f.free(a)
    assert f.content[a] == np.uint64(POISON) and f.flags[a] & PG_buddy
    assert f.alloc() == a                      # LIFO: the hot frame comes back first
    with pytest.raises(AssertionError):
        f.free(0)


def test_frames_out_of_memory_changes_nothing():
    f = FrameTable(16)
    f.alloc_many(15)
    before = f.nfree
    with pytest.raises(OutOfFrames):
        f.alloc_many(1)
    assert f.nfree == before == 0
    assert f.check() == []
