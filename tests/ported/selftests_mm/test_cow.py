"""Ports the logic of linux tools/testing/selftests/mm/cow.c, the cases that need no pinning,
on base pages.

Ported:
- anon_test_cases "Basic COW after fork()" (test_cow_in_parent) and "Basic COW after fork()
  with mprotect() optimization" (test_cow_in_parent_mprotect), as run by
  do_run_with_base_page(): one private anonymous page (MADV_NOHUGEPAGE, memset to 1), fork,
  the parent memsets 0xff, the child must still read what it read before.
- The other direction, child writes and the parent must not see it: cow.c checks that
  direction only through vmsplice pins ("vmsplice() + unmap in parent after fork()"); here it
  is checked without a pin, with and without the mprotect() round trip.
- Base-page versions of the do_run_with_thp() set-ups that do not need a THP:
  THP_RUN_SINGLE_PTE (MADV_DONTNEED all but one page, test that page), THP_RUN_PARTIAL_MREMAP
  (move the upper half with mremap(MREMAP_FIXED), test the lower half as cow.c does, and the
  moved half too), THP_RUN_PARTIAL_SHARED (share one page with a short-lived child through
  MADV_DONTFORK, undo with MADV_DOFORK, test the whole range).
- run_with_base_page_swap(): the same two cases (both directions) with the base page
  swapped out by MADV_PAGEOUT first. As upstream, the test skips when MADV_PAGEOUT did not
  swap the page out (pagemap bit 62 clear): that is the case on the reference host, which has
  no swap; the model gets a 64 MiB swap area.
- non_anon_test_cases "Basic COW" (test_cow) with run_with_zeropage(): a write to a private
  mapping that maps the shared zero page must not show through another mapping of it.

Not ported, and why:
- vmsplice() cases (test_vmsplice_in_child*, test_vmsplice_before/after_fork): need pipes and
  the R/O GUP pin vmsplice takes; the shared API has neither.
- io_uring cases (test_iouring_ro, test_iouring_fork): need a R/W longterm pin.
- "R/O GUP pin" / "R/O GUP-fast pin" cases (do_test_ro_pin, test_ro_pin*, test_ro_fast_pin):
  need /sys/kernel/debug/gup_test.
- The swapped-out THP runs (THP_RUN_*_SWAPOUT): THP is not modelled (see below).
- Every THP, PTE-mapped THP and hugetlb variant, and the anon THP collapse cases
  (MADV_COLLAPSE): base pages only (THP is not modelled).
- Non-anon runs with memfd, tmpfile, the huge zero page and memfd hugetlb: file-backed
  memory comes with a later issue.
"""

import errno

import pytest

from portlib import ANON, P, RW, exclusive, has_pfns, map_fixed, pfn, reserve
from vmlab.constants import (MADV_DOFORK, MADV_DONTFORK, MADV_DONTNEED, MADV_NOHUGEPAGE,
                             MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_FIXED,
                             MREMAP_MAYMOVE, PM_SWAP, PROT_NONE, PROT_READ)

WRITERS = ["parent", "child"]
MPROTECT = [False, True]


def base_pages(p, npages: int) -> int:
    """do_run_with_base_page(): map, MADV_NOHUGEPAGE (EINVAL tolerated), memset to 1."""
    mem = p.mmap(0, npages * P, RW, ANON)
    try:
        p.madvise(mem, npages * P, MADV_NOHUGEPAGE)
    except OSError as e:
        assert e.errno == errno.EINVAL
    p.fill(mem, npages * P, 1)
    return mem


def check_cow(p, mem: int, size: int, writer: str, do_mprotect: bool) -> None:
    """do_test_cow_in_parent(): after fork the other side snapshots the range; the writer
    optionally does mprotect(READ) + mprotect(READ|WRITE), then memsets 0xff; the other side
    must still read its snapshot."""
    child = p.fork()
    writing, other = (p, child) if writer == "parent" else (child, p)
    old = other.read(mem, size)
    if do_mprotect:
        writing.mprotect(mem, size, PROT_READ)
        writing.mprotect(mem, size, RW)
    writing.fill(mem, size, 0xFF)
    assert writing.read(mem, size) == b"\xff" * size
    assert other.read(mem, size) == old, f"leak from {writer} into the other process"
    child.exit()


@pytest.mark.parametrize("do_mprotect", MPROTECT, ids=["plain", "mprotect"])
@pytest.mark.parametrize("writer", WRITERS)
def test_basic_cow_after_fork(machine, writer, do_mprotect):
    """Basic COW after fork() (with the mprotect() optimization when do_mprotect), base page:
    a write by one process after fork is never seen by the other."""
    p = machine.spawn()
    mem = base_pages(p, 1)
    check_cow(p, mem, P, writer, do_mprotect)


@pytest.mark.parametrize("do_mprotect", MPROTECT, ids=["plain", "mprotect"])
@pytest.mark.parametrize("writer", WRITERS)
def test_basic_cow_after_fork_swapped_out(swap_machine, writer, do_mprotect):
    """run_with_base_page_swap(): the base page is swapped out with MADV_PAGEOUT before the
    fork; COW still keeps each process's writes to itself (skips, as upstream, when the page
    could not be swapped out)."""
    p = swap_machine.spawn()
    mem = base_pages(p, 1)
    p.madvise(mem, P, MADV_PAGEOUT)
    if not p.pagemap(mem, 1)[0] & PM_SWAP:
        pytest.skip("MADV_PAGEOUT did not work, is swap enabled?")
    check_cow(p, mem, P, writer, do_mprotect)


@pytest.mark.parametrize("do_mprotect", MPROTECT, ids=["plain", "mprotect"])
@pytest.mark.parametrize("writer", WRITERS)
def test_cow_single_pte_after_dontneed(machine, writer, do_mprotect):
    """THP_RUN_SINGLE_PTE on base pages: MADV_DONTNEED all but the first page of a populated
    range, then COW on the one page left behaves as for a lone page."""
    p = machine.spawn()
    mem = base_pages(p, 16)
    p.madvise(mem + P, 15 * P, MADV_DONTNEED)
    assert p.read(mem + P, 15 * P) == bytes(15 * P)
    check_cow(p, mem, P, writer, do_mprotect)


@pytest.mark.parametrize("half", ["stayed", "moved"])
@pytest.mark.parametrize("do_mprotect", MPROTECT, ids=["plain", "mprotect"])
@pytest.mark.parametrize("writer", WRITERS)
def test_cow_after_partial_mremap(machine, writer, do_mprotect, half):
    """THP_RUN_PARTIAL_MREMAP on base pages: the upper half of a populated range is moved
    with mremap(MREMAP_MAYMOVE|MREMAP_FIXED) onto a PROT_NONE mapping; COW after fork holds
    for the half that stayed (what cow.c tests) and for the half that moved."""
    p = machine.spawn()
    mem = base_pages(p, 16)
    dst = p.mmap(0, 8 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
    assert p.mremap(mem + 8 * P, 8 * P, 8 * P, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst
    assert p.read(dst, 8 * P) == b"\x01" * (8 * P)
    check_cow(p, mem if half == "stayed" else dst, 8 * P, writer, do_mprotect)


@pytest.mark.parametrize("do_mprotect", MPROTECT, ids=["plain", "mprotect"])
@pytest.mark.parametrize("writer", WRITERS)
def test_cow_after_partial_share(machine, writer, do_mprotect):
    """THP_RUN_PARTIAL_SHARED on base pages: only the first page is shared with a child that
    exits at once (MADV_DONTFORK on the rest, undone with MADV_DOFORK); COW after the next
    fork holds for previously shared and never shared pages alike."""
    p = machine.spawn()
    mem = base_pages(p, 16)
    p.madvise(mem + P, 15 * P, MADV_DONTFORK)
    short = p.fork()
    short.exit()
    p.madvise(mem + P, 15 * P, MADV_DOFORK)
    check_cow(p, mem, 16 * P, writer, do_mprotect)


def test_cow_with_shared_zeropage(machine):
    """non_anon "Basic COW" with run_with_zeropage(): a RW and a RO private mapping both read
    the shared zero page; memset of the RW one leaves the RO one reading zeros."""
    p = machine.spawn()
    mem = p.mmap(0, P, RW, ANON)
    smem = p.mmap(0, P, PROT_READ, ANON)
    p.touch(mem, P)
    p.touch(smem, P)
    old = p.read(smem, P)
    p.fill(mem, P, 0xFF)
    assert p.read(smem, P) == old == bytes(P)
    assert p.read(mem, P) == b"\xff" * P


@pytest.mark.structural                # pagemap after fork: a design may not copy PTEs
def test_cow_gives_each_process_its_own_page(machine):
    """The state test_cow_in_parent relies on, seen through pagemap: after fork and a write
    by the parent, both processes map the page, at different page frames, and the parent's
    copy is mapped exclusively."""
    p = machine.spawn()
    win = reserve(p, 3 * P)
    mem = map_fixed(p, win + P, P)
    p.fill(mem, P, 1)
    child = p.fork()
    before_p, before_c = p.pagemap(mem, 1)[0], child.pagemap(mem, 1)[0]
    p.fill(mem, P, 0xFF)
    after_p, after_c = p.pagemap(mem, 1)[0], child.pagemap(mem, 1)[0]
    assert exclusive(after_p)
    if has_pfns(machine):
        assert pfn(before_p) == pfn(before_c)
        assert pfn(after_p) != pfn(after_c)
        assert pfn(after_c) == pfn(before_c)
    assert child.read(mem, P) == b"\x01" * P
    child.exit()
