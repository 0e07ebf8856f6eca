"""Ports the logic of linux tools/testing/selftests/mm/merge.c (mainline, with the
merge_with_fork fixture), the cases about anonymous memory.

Ported (every TEST_F that needs only anonymous memory):
- merge: mprotect_unfaulted_left, mprotect_unfaulted_right, mprotect_unfaulted_both,
  mprotect_faulted_left_unfaulted_right, mprotect_unfaulted_left_faulted_right,
  forked_target_vma, forked_source_vma, mremap_unfaulted_to_faulted,
  mremap_unfaulted_behind_faulted, mremap_unfaulted_between_faulted,
  mremap_unfaulted_between_faulted_unfaulted,
  mremap_unfaulted_between_correctly_placed_faulted, mremap_correct_placed_faulted.
- merge_with_fork, variants "forked" and "unforked": mremap_faulted_to_unfaulted_prev,
  mremap_faulted_to_unfaulted_next, mremap_faulted_to_unfaulted_prev_unfaulted_next,
  mremap_faulted_to_unfaulted_prev_faulted_next (MREMAP_DONTUNMAP moves next to unfaulted
  VMAs; in the forked variant the steps after the fault run in the child, whose VMA has
  "uncowed parents" and must not merge).

The child side of a fork is the Process that fork() returns; the assertions upstream makes in
the child are made on it. find_vma_procmap() (PROCMAP_QUERY) becomes /proc/PID/maps.

Adaptation: the carve-out is a PROT_NONE reservation of 2112 pages instead of 30, so that the
"move it further away" steps (ptr + 1000 or 2000 pages) also land inside memory the test owns
rather than wherever the address space happens to be free; those far destinations are
surrounded by PROT_NONE, as a free area is by nothing mergeable.

Not ported: handle_uprobe_upon_merged_vma (file mapping plus perf_event_open uprobes) and
ksm_merge (prctl(PR_SET_MEMORY_MERGE), not in the shared API).
"""

import pytest

from portlib import ANON, P, RW, map_fixed, reserve, vma_at
from vmlab.constants import (MAP_NORESERVE, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE,
                             PROT_EXEC, PROT_READ, PROT_WRITE)

CARVEOUT_PAGES = 2112
MOVE = MREMAP_MAYMOVE | MREMAP_FIXED
RWX = PROT_READ | PROT_WRITE | PROT_EXEC


@pytest.fixture
def carve(machine):
    """FIXTURE_SETUP(merge): a process and its PROT_NONE carve-out; returns (p, c) where
    c(i) is the address of carve-out page i."""
    p = machine.spawn()
    base = reserve(p, CARVEOUT_PAGES * P)
    return p, (lambda i: base + i * P)


def vma(m, p, addr):
    got = vma_at(m, p, addr)
    assert got is not None, f"no VMA at {addr:#x}"
    return got


# --- mprotect ---------------------------------------------------------------------------------------
def test_mprotect_unfaulted_left(machine, carve):
    """mprotect_unfaulted_left: RO unfaulted | RW faulted; mprotect of the RW part to RO
    merges both into one 10-page VMA."""
    p, c = carve
    ptr = map_fixed(p, c(1), 10 * P, RW, ANON | MAP_NORESERVE)
    p.mprotect(ptr, 5 * P, PROT_READ)
    p.write(ptr + 5 * P, b"x")
    p.mprotect(ptr + 5 * P, 5 * P, PROT_READ)
    assert vma(machine, p, ptr) == (ptr, ptr + 10 * P)


def test_mprotect_unfaulted_right(machine, carve):
    """mprotect_unfaulted_right: RW faulted | RO unfaulted; mprotect of the RW part to RO
    merges into one 10-page VMA."""
    p, c = carve
    ptr = map_fixed(p, c(1), 10 * P, RW, ANON | MAP_NORESERVE)
    p.mprotect(ptr + 5 * P, 5 * P, PROT_READ)
    p.write(ptr, b"x")
    p.mprotect(ptr, 5 * P, PROT_READ)
    assert vma(machine, p, ptr) == (ptr, ptr + 10 * P)


def test_mprotect_unfaulted_both(machine, carve):
    """mprotect_unfaulted_both: RO unfaulted | RW faulted | RO unfaulted; mprotect of the
    middle to RO merges all three."""
    p, c = carve
    ptr = map_fixed(p, c(2), 9 * P, RW, ANON | MAP_NORESERVE)
    p.mprotect(ptr, 3 * P, PROT_READ)
    p.mprotect(ptr + 6 * P, 3 * P, PROT_READ)
    p.write(ptr + 3 * P, b"x")
    p.mprotect(ptr + 3 * P, 3 * P, PROT_READ)
    assert vma(machine, p, ptr) == (ptr, ptr + 9 * P)


def test_mprotect_faulted_left_unfaulted_right(machine, carve):
    """mprotect_faulted_left_unfaulted_right: RO faulted | RW faulted | RO unfaulted (the
    first two split from one faulted VMA); mprotect of the middle to RO merges all three."""
    p, c = carve
    ptr = map_fixed(p, c(2), 9 * P, RW, ANON | MAP_NORESERVE)
    p.mprotect(ptr + 6 * P, 3 * P, PROT_READ)
    p.write(ptr, b"x")
    p.mprotect(ptr, 3 * P, PROT_READ)
    p.mprotect(ptr + 3 * P, 3 * P, PROT_READ)
    assert vma(machine, p, ptr) == (ptr, ptr + 9 * P)


def test_mprotect_unfaulted_left_faulted_right(machine, carve):
    """mprotect_unfaulted_left_faulted_right: RO unfaulted | RW faulted | RO faulted;
    mprotect of the middle to RO merges all three."""
    p, c = carve
    ptr = map_fixed(p, c(2), 9 * P, RW, ANON | MAP_NORESERVE)
    p.mprotect(ptr, 3 * P, PROT_READ)
    p.write(ptr + 3 * P, b"x")
    p.mprotect(ptr + 6 * P, 3 * P, PROT_READ)
    p.mprotect(ptr + 3 * P, 3 * P, PROT_READ)
    assert vma(machine, p, ptr) == (ptr, ptr + 9 * P)


# --- fork ---------------------------------------------------------------------------------------------
def test_forked_target_vma(machine, carve):
    """forked_target_vma: in the child, a faulted VMA inherited from the parent (every page
    un-COWed) does not merge with a new adjacent mapping."""
    p, c = carve
    ptr = map_fixed(p, c(1), 5 * P)
    p.write(ptr, b"x")
    child = p.fork()
    for i in range(5):
        child.write(ptr + i * P, b"x")
    map_fixed(child, ptr + 5 * P, 5 * P)
    assert vma(machine, child, ptr) == (ptr, ptr + 5 * P)


def test_forked_source_vma(machine, carve):
    """forked_source_vma: in the child, an RWX mapping next to the inherited faulted VMA does
    not merge with it, not even after mprotect makes the inherited VMA RWX too."""
    p, c = carve
    ptr = map_fixed(p, c(1), 5 * P, RW, ANON | MAP_NORESERVE)
    p.write(ptr, b"x")
    child = p.fork()
    for i in range(5):
        child.write(ptr + i * P, b"x")
    ptr2 = map_fixed(child, c(6), 5 * P, RWX, ANON | MAP_NORESERVE)
    assert vma(machine, child, ptr2) == (ptr2, ptr2 + 5 * P)
    child.mprotect(ptr, 5 * P, RWX)
    assert vma(machine, child, ptr2) == (ptr2, ptr2 + 5 * P)


# --- mremap ------------------------------------------------------------------------------------------
def test_mremap_unfaulted_to_faulted(machine, carve):
    """mremap_unfaulted_to_faulted: an unfaulted VMA moved right after a faulted one merges
    with it."""
    p, c = carve
    ptr = map_fixed(p, c(1), 5 * P)
    ptr2 = map_fixed(p, c(7), 5 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr2 + 1000 * P)
    p.write(ptr, b"x")
    assert p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr + 5 * P) == ptr + 5 * P
    assert vma(machine, p, ptr) == (ptr, ptr + 10 * P)


def test_mremap_unfaulted_behind_faulted(machine, carve):
    """mremap_unfaulted_behind_faulted: an unfaulted VMA moved right before a faulted one
    merges with it."""
    p, c = carve
    ptr = map_fixed(p, c(6), 5 * P)
    ptr2 = map_fixed(p, c(14), 5 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr2 + 1000 * P)
    p.write(ptr, b"x")
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, c(1))
    assert vma(machine, p, ptr2) == (ptr2, ptr2 + 10 * P)


def test_mremap_unfaulted_between_faulted(machine, carve):
    """mremap_unfaulted_between_faulted: an unfaulted VMA moved between two faulted VMAs with
    different anon_vmas merges only with the one before it."""
    p, c = carve
    ptr = map_fixed(p, c(1), 5 * P)
    ptr2 = map_fixed(p, c(7), 5 * P)
    ptr3 = map_fixed(p, c(14), 5 * P)
    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr3 + 2000 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr2 + 1000 * P)
    p.write(ptr, b"x")
    p.write(ptr3, b"x")
    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr + 10 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr + 5 * P)
    assert vma(machine, p, ptr) == (ptr, ptr + 10 * P)
    assert vma(machine, p, ptr3) == (ptr3, ptr3 + 5 * P)


def test_mremap_unfaulted_between_faulted_unfaulted(machine, carve):
    """mremap_unfaulted_between_faulted_unfaulted: faulted | moved unfaulted | unfaulted
    merge into one 15-page VMA."""
    p, c = carve
    ptr = map_fixed(p, c(1), 5 * P)
    ptr2 = map_fixed(p, c(7), 5 * P)
    ptr3 = map_fixed(p, c(14), 5 * P)
    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr3 + 2000 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr2 + 1000 * P)
    p.write(ptr, b"x")
    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr + 10 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr + 5 * P)
    assert vma(machine, p, ptr) == (ptr, ptr + 15 * P)


def test_mremap_unfaulted_between_correctly_placed_faulted(machine, carve):
    """mremap_unfaulted_between_correctly_placed_faulted: two faulted pieces of one VMA
    (same anon_vma, linear pgoff) with a hole between them; an unfaulted VMA moved into the
    hole merges all three."""
    p, c = carve
    ptr = map_fixed(p, c(1), 15 * P)
    p.write(ptr, b"x")
    p.munmap(ptr + 5 * P, 5 * P)
    ptr2 = map_fixed(p, c(20), 5 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr + 5 * P)
    assert vma(machine, p, ptr) == (ptr, ptr + 15 * P)


def test_mremap_correct_placed_faulted(machine, carve):
    """mremap_correct_placed_faulted: pieces of one faulted VMA moved away and back to their
    original places merge again every time, in every order."""
    p, c = carve
    ptr = map_fixed(p, c(1), 15 * P)
    p.write(ptr, b"x")
    ptr3 = p.mremap(ptr + 10 * P, 5 * P, 5 * P, MOVE, ptr + 10 * P + 2000 * P)
    ptr2 = p.mremap(ptr + 5 * P, 5 * P, 5 * P, MOVE, ptr + 5 * P + 1000 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr + 5 * P)
    assert vma(machine, p, ptr) == (ptr, ptr + 10 * P)

    ptr = p.mremap(ptr, 5 * P, 5 * P, MOVE, ptr + 1000 * P)
    ptr = p.mremap(ptr, 5 * P, 5 * P, MOVE, c(1))
    assert vma(machine, p, ptr) == (ptr, ptr + 10 * P)

    ptr = p.mremap(ptr, 5 * P, 5 * P, MOVE, ptr + 1000 * P)
    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr2 + 5 * P)
    assert vma(machine, p, ptr2) == (ptr2, ptr2 + 10 * P)

    ptr = p.mremap(ptr, 5 * P, 5 * P, MOVE, c(1))
    assert vma(machine, p, ptr) == (ptr, ptr + 15 * P)

    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr2 + 1000 * P)
    ptr2 = p.mremap(ptr2, 5 * P, 5 * P, MOVE, ptr + 5 * P)
    assert vma(machine, p, ptr) == (ptr, ptr + 15 * P)

    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr3 + 1000 * P)
    ptr3 = p.mremap(ptr3, 5 * P, 5 * P, MOVE, ptr + 10 * P)
    assert vma(machine, p, ptr) == (ptr, ptr + 15 * P)


# --- merge_with_fork ------------------------------------------------------------------------------
FORKED = [True, False]
FORK_IDS = ["forked", "unforked"]
DONTUNMAP_MOVE = MOVE | MREMAP_DONTUNMAP


def maybe_fork(p, forked):
    """do_fork() of the merge_with_fork fixture: with the "forked" variant the rest of the
    test runs in the child."""
    return p.fork() if forked else p


@pytest.mark.parametrize("forked", FORKED, ids=FORK_IDS)
def test_mremap_faulted_to_unfaulted_prev(machine, carve, forked):
    """mremap_faulted_to_unfaulted_prev: faulted A moved away, unfaulted B mapped where A's
    left neighbour would be, A moved back with MREMAP_DONTUNMAP right after B: they merge
    (6 pages), unless A was inherited through fork (then B stays 3 pages)."""
    p, c = carve
    ptr_a = map_fixed(p, c(4), 3 * P)
    p.write(ptr_a, b"x")
    q = maybe_fork(p, forked)
    ptr_a = q.mremap(ptr_a, 3 * P, 3 * P, MOVE, c(20))
    ptr_b = map_fixed(q, c(1), 3 * P)
    assert q.mremap(ptr_a, 3 * P, 3 * P, DONTUNMAP_MOVE, c(4)) == c(4)
    assert vma(machine, q, ptr_b) == (ptr_b, ptr_b + (3 if forked else 6) * P)


@pytest.mark.parametrize("forked", FORKED, ids=FORK_IDS)
def test_mremap_faulted_to_unfaulted_next(machine, carve, forked):
    """mremap_faulted_to_unfaulted_next: faulted A moved back with MREMAP_DONTUNMAP right
    before unfaulted B: they merge (6 pages), unless A was inherited through fork."""
    p, c = carve
    ptr_a = map_fixed(p, c(1), 3 * P)
    p.write(ptr_a, b"x")
    q = maybe_fork(p, forked)
    ptr_a = q.mremap(ptr_a, 3 * P, 3 * P, MOVE, c(20))
    map_fixed(q, c(4), 3 * P)
    ptr_a = q.mremap(ptr_a, 3 * P, 3 * P, DONTUNMAP_MOVE, c(1))
    assert ptr_a == c(1)
    assert vma(machine, q, ptr_a) == (ptr_a, ptr_a + (3 if forked else 6) * P)


@pytest.mark.parametrize("forked", FORKED, ids=FORK_IDS)
def test_mremap_faulted_to_unfaulted_prev_unfaulted_next(machine, carve, forked):
    """mremap_faulted_to_unfaulted_prev_unfaulted_next: faulted B moved with MREMAP_DONTUNMAP
    between unfaulted A and C: all three merge (9 pages), unless B was inherited through
    fork, in which case nothing merges (A and B stay 3 pages each)."""
    p, c = carve
    ptr_b = map_fixed(p, c(4), 3 * P)
    p.write(ptr_b, b"x")
    q = maybe_fork(p, forked)
    ptr_b = q.mremap(ptr_b, 3 * P, 3 * P, MOVE, c(20))
    ptr_a = map_fixed(q, c(1), 3 * P)
    map_fixed(q, c(7), 3 * P)
    ptr_b = q.mremap(ptr_b, 3 * P, 3 * P, DONTUNMAP_MOVE, c(4))
    assert ptr_b == c(4)
    assert vma(machine, q, ptr_a) == (ptr_a, ptr_a + (3 if forked else 9) * P)
    if forked:
        assert vma(machine, q, ptr_b) == (ptr_b, ptr_b + 3 * P)


@pytest.mark.parametrize("forked", FORKED, ids=FORK_IDS)
def test_mremap_faulted_to_unfaulted_prev_faulted_next(machine, carve, forked):
    """mremap_faulted_to_unfaulted_prev_faulted_next: B (split from faulted BC) moved back
    with MREMAP_DONTUNMAP between unfaulted A and faulted C: A, B and C merge (9 pages);
    when inherited through fork only B and C merge (6 pages)."""
    p, c = carve
    ptr_bc = map_fixed(p, c(4), 6 * P)
    p.write(ptr_bc, b"x")
    q = maybe_fork(p, forked)
    ptr_b = q.mremap(ptr_bc, 3 * P, 3 * P, MOVE, c(20))
    ptr_a = map_fixed(q, c(1), 3 * P)
    ptr_b = q.mremap(ptr_b, 3 * P, 3 * P, DONTUNMAP_MOVE, c(4))
    assert ptr_b == c(4)
    if forked:
        assert vma(machine, q, ptr_b) == (ptr_b, ptr_b + 6 * P)
    else:
        assert vma(machine, q, ptr_a) == (ptr_a, ptr_a + 9 * P)
