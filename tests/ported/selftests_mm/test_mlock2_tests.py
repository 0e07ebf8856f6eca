"""Ports the logic of linux tools/testing/selftests/mm/mlock2-tests.c.

Ported: test_mlock_lock, test_mlock_onfault, test_lock_onfault_of_present, test_munlockall0,
test_munlockall1, test_vma_management(call_mlock=true), test_mlockall (test_vma_management
under mlockall(MCL_CURRENT|MCL_ONFAULT|MCL_FUTURE)), test_mlock_droppable and
test_mlockall_future_droppable. The lock state is read as upstream does, from the smaps entry
of the region: VmFlags "lo" (and "lf" for lock-on-fault), Size against Rss (lock_check():
everything resident; is_vma_lock_on_fault(): not everything resident), plus the Locked: field
and, per page, the pagemap present bit. get_vm_area() is /proc/PID/maps.

Adaptation: each region is mapped with MAP_FIXED inside a reserved PROT_NONE window, so its
VMA cannot merge with a neighbour the test does not own (the host process has many).
Everything of upstream is ported; nothing is skipped.
"""

from portlib import ANON, P, RW, map_fixed, present, reserve, smaps_entry, vma_at
from vmlab.constants import (MAP_ANONYMOUS, MAP_DROPPABLE, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT,
                             MLOCK_ONFAULT)


def region(p, npages: int, flags: int = ANON) -> int:
    base = reserve(p, (npages + 2) * P)
    return map_fixed(p, base + P, npages * P, RW, flags)


def lock_check(m, p, addr) -> bool:
    """lock_check(): VmFlags has "lo" and the VMA is fully resident (and Locked = Size)."""
    e = smaps_entry(m, p, addr)
    return "lo" in e["VmFlags"] and e["Rss"] == e["Size"] and e["Locked"] == e["Size"]


def is_vma_lock_on_fault(m, p, addr) -> bool:
    """is_vma_lock_on_fault(): VmFlags has "lo" and not every page is resident."""
    e = smaps_entry(m, p, addr)
    return "lo" in e["VmFlags"] and e["Rss"] < e["Size"]


def locked_flag(m, p, addr) -> bool:
    return "lo" in smaps_entry(m, p, addr)["VmFlags"]


def test_mlock_lock(machine):
    """test_mlock_lock: mlock2(0) on 2 pages marks the VMA "lo" and faults both pages in;
    munlock clears "lo"."""
    p = machine.spawn()
    a = region(p, 2)
    p.mlock2(a, 2 * P, 0)
    assert lock_check(machine, p, a)
    assert present(p, a, 2) == [True, True]
    p.munlock(a, 2 * P)
    assert not locked_flag(machine, p, a)


def test_mlock_onfault(machine):
    """test_mlock_onfault: after mlock2(MLOCK_ONFAULT) and a write to the first page, the VMA
    is "lo lf" with only that page resident; after munlock neither page is in a
    lock-on-fault VMA."""
    p = machine.spawn()
    a = region(p, 2)
    p.mlock2(a, 2 * P, MLOCK_ONFAULT)
    assert present(p, a, 2) == [False, False]
    p.write(a, b"a")
    assert is_vma_lock_on_fault(machine, p, a)
    assert {"lo", "lf"} <= set(smaps_entry(machine, p, a)["VmFlags"])
    assert present(p, a, 2) == [True, False]
    assert smaps_entry(machine, p, a)["Locked"] == 4
    p.munlock(a, 2 * P)
    assert not is_vma_lock_on_fault(machine, p, a)
    assert not is_vma_lock_on_fault(machine, p, a + P)


def test_lock_onfault_of_present(machine):
    """test_lock_onfault_of_present: with the first page already faulted in,
    mlock2(MLOCK_ONFAULT) over both pages gives a lock-on-fault VMA and faults nothing more."""
    p = machine.spawn()
    a = region(p, 2)
    p.write(a, b"a")
    p.mlock2(a, 2 * P, MLOCK_ONFAULT)
    assert is_vma_lock_on_fault(machine, p, a) or is_vma_lock_on_fault(machine, p, a + P)
    assert present(p, a, 2) == [True, False]


def test_munlockall0(machine):
    """test_munlockall0: mlockall(MCL_CURRENT) locks and populates an existing 2-page
    mapping; munlockall() unlocks it."""
    p = machine.spawn()
    a = region(p, 2)
    p.mlockall(MCL_CURRENT)
    assert lock_check(machine, p, a), "locked memory area"
    p.munlockall()
    assert not locked_flag(machine, p, a), "no locked memory"


def test_munlockall1(machine):
    """test_munlockall1: mlockall(MCL_CURRENT|MCL_ONFAULT) gives a lock-on-fault VMA (one
    page written, one not resident); munlockall() undoes it; mlockall(MCL_CURRENT|
    MCL_FUTURE) then locks and populates the mapping; munlockall() unlocks it again."""
    p = machine.spawn()
    a = region(p, 2)
    p.mlockall(MCL_CURRENT | MCL_ONFAULT)
    p.write(a, b"a")
    assert is_vma_lock_on_fault(machine, p, a), "VMA marked for lock on fault"
    p.munlockall()
    assert not is_vma_lock_on_fault(machine, p, a)
    assert not is_vma_lock_on_fault(machine, p, a + P)
    p.mlockall(MCL_CURRENT | MCL_FUTURE)
    assert lock_check(machine, p, a)
    p.munlockall()
    assert not locked_flag(machine, p, a)


def vma_management(m, p, a) -> None:
    """test_vma_management() after the 3 pages at ``a`` were locked: one VMA; munlock of the
    middle page splits it in three; munlock of all three merges them back into one."""
    areas = [vma_at(m, p, a + i * P) for i in range(3)]
    assert areas[0] == areas[1] == areas[2] == (a, a + 3 * P), "VMAs are not merged to start"
    p.munlock(a + P, P)
    areas = [vma_at(m, p, a + i * P) for i in range(3)]
    assert areas == [(a, a + P), (a + P, a + 2 * P), (a + 2 * P, a + 3 * P)], \
        "failed to split VMA for munlock"
    p.munlock(a, 3 * P)
    areas = [vma_at(m, p, a + i * P) for i in range(3)]
    assert areas[0] == areas[1] == areas[2] == (a, a + 3 * P), "failed to merge VMAs after munlock"


def test_vma_management(machine):
    """test_vma_management(call_mlock=true): mlock2(MLOCK_ONFAULT) on 3 pages, then the split
    and re-merge by munlock."""
    p = machine.spawn()
    a = region(p, 3)
    p.mlock2(a, 3 * P, MLOCK_ONFAULT)
    vma_management(machine, p, a)


def test_mlockall(machine):
    """test_mlockall: under mlockall(MCL_CURRENT|MCL_ONFAULT|MCL_FUTURE) a new 3-page mapping
    is born "lo lf" with nothing resident; munlock splits and re-merges it as in
    test_vma_management."""
    p = machine.spawn()
    base = reserve(p, 5 * P)
    p.mlockall(MCL_CURRENT | MCL_ONFAULT | MCL_FUTURE)
    a = map_fixed(p, base + P, 3 * P)
    assert {"lo", "lf"} <= set(smaps_entry(machine, p, a)["VmFlags"])
    assert present(p, a, 3) == [False] * 3
    vma_management(machine, p, a)
    p.munlockall()


def test_mlock_droppable(machine):
    """test_mlock_droppable: mlock2(0) on a MAP_DROPPABLE mapping succeeds but does not lock
    it (no "lo")."""
    p = machine.spawn()
    p.munlockall()
    a = region(p, 2, MAP_ANONYMOUS | MAP_DROPPABLE)
    p.mlock2(a, 2 * P, 0)
    assert not locked_flag(machine, p, a), "droppable memory not locked"


def test_mlockall_future_droppable(machine):
    """test_mlockall_future_droppable: after mlockall(MCL_CURRENT|MCL_FUTURE) a new
    MAP_DROPPABLE mapping is not locked."""
    p = machine.spawn()
    base = reserve(p, 4 * P)
    p.mlockall(MCL_CURRENT | MCL_FUTURE)
    a = map_fixed(p, base + P, 2 * P, RW, MAP_ANONYMOUS | MAP_DROPPABLE)
    assert not locked_flag(machine, p, a), "droppable memory not locked"
    p.munlockall()
