"""Ports the logic of LTP testcases/kernel/syscalls/ipc/shmctl/ shmctl01.c, shmctl02.c and
shmctl07.c.

- shmctl01.c: IPC_STAT and SHM_STAT (by the segment's kernel index) of an IPC_PRIVATE
  segment report shm_segsz = SHM_SIZE and shm_cpid = the creator; shm_nattch (the same in
  both) follows 20 children that attach and detach, and 20 children that inherit an
  attachment over fork and detach it. Upstream checks shm_ctime against the wall clock taken
  before and after shmget; the API has no clock, so here shm_ctime must be set and be no later
  than the shm_atime of the next shmat, which is no later than the shm_dtime of its shmdt (the
  model's clock is its own: docs/deviations.md). Upstream finds the index by scanning
  SHM_STAT from 0 to SHM_INFO's return value; the API returns SHM_INFO as a dict, so the scan
  runs up to SHMMNI.
- shmctl02.c (current version), the cases without a second user: EFAULT for IPC_SET with no
  buffer (NULL), EINVAL for command -1, for id -1 and for the id of a removed segment.
- shmctl07.c: SHM_LOCK sets SHM_LOCKED in shm_perm.mode and SHM_UNLOCK clears it.

Not ported: shmctl02's EACCES/EPERM cases (they run as "nobody"; the API has no
credentials) and its IPC_STAT EFAULT case (the API returns the buffer, so no bad pointer can
be passed); the libc-wrapper variant (both backends make the raw system call).
"""

import errno

import pytest

from filelib import SHM_LOCKED, SHM_RW, SHM_SIZE, SHM_STAT, ipc_key
from portlib import expect_errno
from vmlab.constants import (IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_PRIVATE, IPC_RMID, IPC_SET,
                             IPC_STAT, SHM_LOCK, SHM_UNLOCK)

NCHILD = 20


def shm_index(p, shm_id: int) -> int:
    """get_shm_idx_from_id(): the kernel index whose SHM_STAT answers with shm_id."""
    for i in range(p.shmctl(0, IPC_INFO)["shmmni"]):
        try:
            if p.shmctl(i, SHM_STAT)["id"] == shm_id:
                return i
        except OSError as e:
            assert e.errno == errno.EINVAL
    raise AssertionError(f"no index maps to shm id {shm_id}")


@pytest.fixture
def seg(machine):
    p = machine.spawn()
    shm_id = p.shmget(IPC_PRIVATE, SHM_SIZE, IPC_CREAT | SHM_RW)
    yield p, shm_id, shm_index(p, shm_id)
    if p.alive:
        p.shmctl(shm_id, IPC_RMID)


def nattch(p, shm_id, shm_idx) -> int:
    """check_nattch(): IPC_STAT and SHM_STAT agree; returns the count."""
    a = p.shmctl(shm_id, IPC_STAT)["shm_nattch"]
    b = p.shmctl(shm_idx, SHM_STAT)["shm_nattch"]
    assert a == b, f"IPC_STAT nattch={a} SHM_STAT nattch={b}"
    return a


def test_shmctl01_basic(seg):
    """shmctl01 "Basic checks": IPC_STAT and SHM_STAT give shm_segsz = SHM_SIZE and
    shm_cpid = the creating process; shm_ctime <= shm_atime (next shmat) <= shm_dtime (its
    shmdt)."""
    p, shm_id, shm_idx = seg
    for ds in (p.shmctl(shm_id, IPC_STAT), p.shmctl(shm_idx, SHM_STAT)):
        assert ds["shm_segsz"] == SHM_SIZE
        assert ds["shm_cpid"] == p.pid
        assert ds["shm_ctime"] > 0
    assert p.shmctl(shm_idx, SHM_STAT)["id"] == shm_id
    addr = p.shmat(shm_id)
    atime = p.shmctl(shm_id, IPC_STAT)["shm_atime"]
    p.shmdt(addr)
    ds = p.shmctl(shm_id, IPC_STAT)
    assert ds["shm_ctime"] <= atime <= ds["shm_dtime"]
    assert ds["shm_lpid"] == p.pid


def test_shmctl01_children_attach(seg):
    """shmctl01 "Children attach SHM": 20 children forked before any attach: nattch 0; each
    attaches: nattch 20; each detaches: nattch 0."""
    p, shm_id, shm_idx = seg
    children = [p.fork() for _ in range(NCHILD)]
    assert nattch(p, shm_id, shm_idx) == 0
    addrs = [c.shmat(shm_id) for c in children]
    assert nattch(p, shm_id, shm_idx) == NCHILD
    for c, a in zip(children, addrs):
        c.shmdt(a)
    assert nattch(p, shm_id, shm_idx) == 0
    for c in children:
        c.exit()


def test_shmctl01_children_inherit(seg):
    """shmctl01 "Children inherit SHM": attached before 20 forks: nattch 21; the children
    detach: nattch 1; the parent detaches: nattch 0."""
    p, shm_id, shm_idx = seg
    addr = p.shmat(shm_id)
    children = [p.fork() for _ in range(NCHILD)]
    assert nattch(p, shm_id, shm_idx) == NCHILD + 1
    for c in children:
        c.shmdt(addr)
    assert nattch(p, shm_id, shm_idx) == 1
    p.shmdt(addr)
    assert nattch(p, shm_id, shm_idx) == 0
    for c in children:
        c.exit()


@pytest.mark.parametrize("case", ["efault-set-null", "einval-cmd", "einval-id", "einval-removed"])
def test_shmctl02_errors(machine, case):
    """shmctl02: IPC_SET with a NULL buffer: EFAULT; command -1: EINVAL; id -1: EINVAL; the
    id of a segment removed with IPC_RMID: EINVAL."""
    p = machine.spawn()
    shm_id2 = p.shmget(ipc_key(), SHM_SIZE, IPC_CREAT | IPC_EXCL | SHM_RW)
    shm_rem = p.shmget(IPC_PRIVATE, SHM_SIZE, IPC_CREAT | SHM_RW)
    p.shmctl(shm_rem, IPC_RMID)
    shmid, cmd, err = {"efault-set-null": (shm_id2, IPC_SET, errno.EFAULT),
                       "einval-cmd": (shm_id2, -1, errno.EINVAL),
                       "einval-id": (-1, IPC_STAT, errno.EINVAL),
                       "einval-removed": (shm_rem, IPC_STAT, errno.EINVAL)}[case]
    expect_errno(err, p.shmctl, shmid, cmd, None)
    p.shmctl(shm_id2, IPC_RMID)


def test_shmctl07_lock_unlock(machine):
    """shmctl07: shmctl(SHM_LOCK) succeeds and sets SHM_LOCKED in shm_perm.mode;
    shmctl(SHM_UNLOCK) succeeds and clears it."""
    p = machine.spawn()
    shm_id = p.shmget(IPC_PRIVATE, SHM_SIZE, IPC_CREAT | SHM_RW)
    p.shmctl(shm_id, SHM_LOCK)
    assert p.shmctl(shm_id, IPC_STAT)["shm_perm"]["mode"] & SHM_LOCKED
    p.shmctl(shm_id, SHM_UNLOCK)
    assert not p.shmctl(shm_id, IPC_STAT)["shm_perm"]["mode"] & SHM_LOCKED
    p.shmctl(shm_id, IPC_RMID)
