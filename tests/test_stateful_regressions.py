"""Model bugs found by the stateful test (tests/test_stateful.py), one minimal reproduction each.

Each test is the hand-shrunk form of a failure the Hypothesis state machine found, checked
against the real kernel with `vmlab.host.HostMachine` on this machine (Linux 6.18, x86-64) and
against the kernel source named in its docstring. They fail until the model is fixed; while a
bug is open, tests/test_stateful.py steers around it (its AVOID set names these tests), so
delete the entry there when the test here passes.
"""

from __future__ import annotations

import errno

import pytest

import vmlab
from vmlab import (MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MCL_CURRENT, MREMAP_FIXED,
                   MREMAP_MAYMOVE, PROT_READ, PROT_WRITE)

P = 4096
RW = PROT_READ | PROT_WRITE


def _machine():
    m = vmlab.Machine(ram="32M")
    return m, m.spawn()


def _maps(m, p, lo, hi):
    """The /proc/PID/maps lines meeting [lo, hi)."""
    out = []
    for line in m.procfs(f"/proc/{p.pid}/maps").splitlines():
        a, b = (int(x, 16) for x in line.split()[0].split("-"))
        if a < hi and b > lo:
            out.append(line)
    return out


def test_brk_shrink_over_unmapped_heap():
    """brk() shrinking over a heap tail that was munmap'd must fail (return the old break).

    mm/mmap.c:SYSCALL_DEFINE1(brk): on a shrink, `brkvma = vma_find(&vmi, oldbrk)` looks for a
    VMA in [PAGE_ALIGN(brk), PAGE_ALIGN(old brk)); if there is none it jumps to `out`, which
    restores and returns `origbrk`. Host: brk(b+3P); munmap(b, 3P); brk(b+P) returned b+3P.
    The model returns b+P (success) and moves the break.
    """
    m, p = _machine()
    b = p.brk(0)
    assert p.brk(b + 3 * P) == b + 3 * P
    p.munmap(b, 3 * P)
    assert p.brk(b + P) == b + 3 * P
    assert p.brk(0) == b + 3 * P


def test_fork_child_loses_special_mapping_names():
    """A fork child's /proc/PID/maps must still name [vvar], [vvar_vclock] and [vdso].

    dup_mmap() copies the special mappings with their vm_ops (mm/mmap.c), whose ->name
    (special_mapping_name, mm/vma.c / mm/mmap.c) gives the label; every process on Linux is a
    fork child and shows [vdso]. Host: a forked worker's maps list all four names. The model's
    child prints the three lines with no name.
    """
    m, p = _machine()
    c = p.fork()
    names = [ln.split(None, 5)[5].strip() for ln in m.procfs(f"/proc/{c.pid}/maps").splitlines()
             if len(ln.split(None, 5)) > 5]
    for want in ("[vvar]", "[vvar_vclock]", "[vdso]", "[stack]", "[vsyscall]"):
        assert want in names, f"{want} missing from the child's maps: {names}"


def test_mprotect_merge_with_next_false_hole():
    """mprotect over [A, B] where A's new protection merges it into B must not report a hole.

    mm/mprotect.c:do_mprotect_pkey walks with a VMA iterator: after mprotect_fixup() merged
    the range into the next VMA, `tmp = vma->vm_end` of the merged VMA and the walk goes on
    from there. Host: mmap 3 pages r--, mprotect(middle, rw-), mprotect(all 3, rw-) succeeds.
    The model iterates over a list taken before the merge, sees the absorbed VMA start below
    its cursor, returns ENOMEM ("range has a hole") and leaves the third page r--.
    """
    m, p = _machine()
    a = p.mmap(0, 3 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
    p.mprotect(a + P, P, RW)
    p.mprotect(a, 3 * P, RW)
    assert [ln.split()[1] for ln in _maps(m, p, a, a + 3 * P)] == ["rw-p"]
    m.check()


def test_mlock_merge_with_next_false_hole():
    """mlock/munlock over [A, B] where A's new flags merge it into B must not report a hole.

    mm/mlock.c:apply_vma_lock_flags continues from the VMA mlock_fixup() returns (the merged
    one). Same pattern as the mprotect bug: the model walks a stale list and returns ENOMEM.
    """
    m, p = _machine()
    a = p.mmap(0, 3 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.mlock(a + P, P)
    p.mlock(a, 3 * P)
    assert "Locked:               12 kB" in m.procfs(f"/proc/{p.pid}/smaps_rollup")
    p.munlock(a, 3 * P)
    assert "Locked:                0 kB" in m.procfs(f"/proc/{p.pid}/smaps_rollup")
    m.check()


@pytest.mark.parametrize("how", ["mlock", "mlockall"])
def test_populate_shmem_past_eof_crashes(how):
    """Populating a shared anonymous mapping grown (mremap) past its shmem object's end.

    The pages past the object's end fault with VM_FAULT_SIGBUS (mm/shmem.c:shmem_fault); gup
    turns that into -EFAULT, which mlock reports as ENOMEM (mm/mlock.c:__mlock_posix_error_return)
    after locking the range, and which mlockall ignores (mm/gup.c:__mm_populate with
    ignore_errors). Host: mmap 2 shared pages, mremap to 4 pages, mlock(4 pages) -> ENOMEM, VMA
    locked. The model raises IndexError from designs/linux/fault_shmem.py:shmem_get.
    """
    m, p = _machine()
    a = p.mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS)
    b = p.mremap(a, 2 * P, 4 * P, MREMAP_MAYMOVE)
    if how == "mlock":
        with pytest.raises(OSError) as e:
            p.mlock(b, 4 * P)
        assert e.value.errno == errno.ENOMEM
    else:
        p.mlockall(MCL_CURRENT)
    with pytest.raises(vmlab.BusError):
        p.read(b + 2 * P, 1)
    m.check()


def test_mremap_fixed_move_within_source_vma_crashes():
    """mremap(a+P, P, P, MAYMOVE|FIXED, a) inside one 2-page VMA: move the upper page down.

    The 6.17 multi-VMA path (mm/mremap.c:remap_move) first unmaps the target, then moves the
    source VMA's part. Host: succeeds, returns a, the page's contents move, a+P is unmapped.
    The model computes the pieces from a VMA object the target munmap already split and builds
    an empty VMA (AssertionError "VMA: bad bounds").
    """
    m, p = _machine()
    a = p.mmap(0, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.write(a, b"A")
    p.write(a + P, b"B")
    assert p.mremap(a + P, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, a) == a
    assert p.read(a, 1) == b"B"
    with pytest.raises(vmlab.SegmentationFault):
        p.read(a + P, 1)
    m.check()


def test_mremap_old_len_zero_splits_source():
    """mremap(addr, 0, n, MAYMOVE) of a shared mapping must leave the source VMA whole.

    With old_len 0 nothing is unmapped at the source (the source range is empty;
    do_vmi_munmap of length 0 is refused before any split). Host: after aliasing the second
    page of a 2-page shared mapping, maps shows the source as one 2-page VMA. The model splits
    the source at addr, and Machine.check() reports two VMAs that should have been merged.
    """
    m, p = _machine()
    a = p.mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS)
    b = p.mremap(a + P, 0, P, MREMAP_MAYMOVE)
    assert len(_maps(m, p, a, a + 2 * P)) == 1, _maps(m, p, a, a + 2 * P)
    p.write(b, b"x")
    assert p.read(a + P, 1) == b"x"
    m.check()


def test_check_false_merge_violation_in_fork_child():
    """Machine.check() must accept a fork child's VMAs that fork left unmerged.

    dup_mmap() copies the parent's VMA tree as it is (mm/mmap.c; "no merging happens at
    fork", docs/notes/syscalls.md §9) and clears VM_LOCKED|VM_LOCKONFAULT in the child, so two
    parent VMAs that differed only in their lock bits become adjacent, compatible and separate.
    Host: mmap 2 pages, mlock2(first page, MLOCK_ONFAULT), fork: the child's maps show two
    VMAs. The model's layout matches the host, but check() reports "should have been merged".
    """
    m, p = _machine()
    a = p.mmap(0, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.mlock2(a, P, vmlab.MLOCK_ONFAULT)
    c = p.fork()
    assert len(_maps(m, c, a, a + 2 * P)) == 2
    m.check()
