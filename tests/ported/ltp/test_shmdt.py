"""Ports the logic of LTP testcases/kernel/syscalls/ipc/shmdt/ shmdt01.c and shmdt02.c.

- shmdt01.c: a segment of INT_SIZE attached and written (4); after shmdt() shm_nattch is 0
  and a store to the old address raises SIGSEGV.
- shmdt02.c: shmdt() of an address where nothing is attached (PROBE_FREE_ADDR()) and of an
  address that is not page aligned fails with EINVAL.

Nothing skipped.
"""

import errno

import pytest

import vmlab
from filelib import INT_SIZE, SHM_RW, ipc_key
from portlib import expect_errno
from vmlab.constants import IPC_CREAT, IPC_EXCL, IPC_RMID, IPC_STAT, SEGV_MAPERR, SHMLBA


def test_shmdt01_detached(machine):
    """shmdt01: shmdt() succeeds, shm_nattch is then 0 and writing to the detached address
    raises SIGSEGV."""
    p = machine.spawn()
    shm_id = p.shmget(ipc_key(), INT_SIZE, SHM_RW | IPC_CREAT | IPC_EXCL)
    shared = p.shmat(shm_id, 0, 0)
    p.write(shared, (4).to_bytes(4, "little"))
    p.shmdt(shared)
    assert p.shmctl(shm_id, IPC_STAT)["shm_nattch"] == 0
    with pytest.raises(vmlab.SegmentationFault) as info:
        p.write(shared, (2).to_bytes(4, "little"))
    assert info.value.code == SEGV_MAPERR
    p.shmctl(shm_id, IPC_RMID)


@pytest.mark.parametrize("case", ["not-attached", "unaligned"])
def test_shmdt02_einval(machine, case):
    """shmdt02: shmdt(a free address) and shmdt(that address + SHMLBA - 1): EINVAL."""
    p = machine.spawn()
    shm_id = p.shmget(ipc_key(), SHMLBA * 2, SHM_RW | IPC_CREAT | IPC_EXCL)
    free = p.shmat(shm_id, 0, 0)                  # PROBE_FREE_ADDR()
    p.shmdt(free)
    p.shmctl(shm_id, IPC_RMID)
    addr = free if case == "not-attached" else free + SHMLBA - 1
    expect_errno(errno.EINVAL, p.shmdt, addr)
