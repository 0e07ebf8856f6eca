"""Ports the logic of LTP testcases/kernel/syscalls/ipc/shmat/ shmat01.c .. shmat04.c.

- shmat01.c: a segment of INT_SIZE (4) bytes attached at NULL (any address), at a free
  page-aligned address, at that address + SHMLBA - 1 with SHM_RND (rounded down), and with
  SHM_RDONLY: each time shm_nattch is 1, shm_segsz is 4, the address is the expected one, and
  a child storing an int there exits normally, or (SHM_RDONLY) gets SIGSEGV. The free address
  comes from PROBE_FREE_ADDR()'s method: attach a 2 * SHMLBA segment, detach, remove, align up.
- shmat02.c (current version): EINVAL for an invalid id (-1) and for an unaligned address
  without SHM_RND.
- shmat03.c (current version, the regression test for 8f89c007b6de): shmat(id, 1,
  SHM_RND|SHM_REMAP) must fail with EINVAL (the address rounds down to 0).
- shmat04.c (fc0c8f9089c2): a 3-page segment attached, mprotect(PROT_NONE) of its middle
  page, mprotect(PROT_WRITE) of its first two pages, shmdt: shm_nattch ends at 0 (the bug
  leaked an attachment when vma_merge() removed a VMA without calling its ->close). Added in
  a second test: after the two mprotect calls shm_nattch equals the number of VMAs the
  segment has in /proc/PID/maps, and that is 3, because Linux 6.x never merges away a VMA
  whose vm_ops have a close method (mm/vma.c can_merge_remove_vma()), which shm's do.

Not ported: shmat02's EACCES case (runs as "nobody"; the API has no credentials).
"""

import errno

import pytest

import vmlab
from filelib import INT_SIZE, SHM_RW, ipc_key
from portlib import P, expect_errno, maps
from vmlab.constants import (IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IPC_RMID, IPC_STAT, PROT_NONE,
                             PROT_WRITE, SEGV_ACCERR, SHM_RDONLY, SHM_REMAP, SHM_RND, SHMLBA)


def probe_free_addr(p) -> int:
    """LTP's PROBE_FREE_ADDR(): where a 2 * SHMLBA segment would be attached, aligned up to
    SHMLBA; the segment is detached and removed again."""
    shm_id = p.shmget(ipc_key(), SHMLBA * 2, SHM_RW | IPC_CREAT | IPC_EXCL)
    addr = p.shmat(shm_id, 0, 0)
    p.shmdt(addr)
    p.shmctl(shm_id, IPC_RMID)
    return (addr + SHMLBA - 1) & ~(SHMLBA - 1)


@pytest.mark.parametrize("case", ["null", "aligned", "unaligned-rnd", "rdonly"])
def test_shmat01_attach(machine, case):
    """shmat01: attaching at NULL, at an aligned address, at an unaligned one with SHM_RND
    (rounded down to SHMLBA) and read-only; nattch 1, segsz 4, the expected address; a child's
    store works, except in a SHM_RDONLY attachment where it raises SIGSEGV."""
    p = machine.spawn()
    aligned = probe_free_addr(p)
    shm_id = p.shmget(ipc_key(), INT_SIZE, SHM_RW | IPC_CREAT | IPC_EXCL)
    want, flag = {"null": (0, 0), "aligned": (aligned, 0),
                  "unaligned-rnd": (aligned + SHMLBA - 1, SHM_RND),
                  "rdonly": (aligned, SHM_RDONLY)}[case]
    addr = p.shmat(shm_id, want, flag)
    ds = p.shmctl(shm_id, IPC_STAT)
    assert ds["shm_nattch"] == 1
    assert ds["shm_segsz"] == INT_SIZE
    if want:
        assert addr == want & ~(SHMLBA - 1)
    child = p.fork()
    if case == "rdonly":
        with pytest.raises(vmlab.SegmentationFault) as info:
            child.write(addr, (10).to_bytes(4, "little"))
        assert info.value.code == SEGV_ACCERR
    else:
        child.write(addr, (10).to_bytes(4, "little"))
        assert p.read(addr, 4) == (10).to_bytes(4, "little")     # the segment is shared
    child.exit()
    p.shmdt(addr)
    p.shmctl(shm_id, IPC_RMID)


@pytest.mark.parametrize("case", ["invalid-id", "unaligned"])
def test_shmat02_einval(machine, case):
    """shmat02: shmat() of id -1 at a free aligned address, and of a valid segment at an
    address that is not page aligned without SHM_RND, both fail with EINVAL."""
    p = machine.spawn()
    aligned = probe_free_addr(p)
    shm_id2 = p.shmget(ipc_key(), INT_SIZE, SHM_RW | IPC_CREAT | IPC_EXCL)
    shmid, addr = {"invalid-id": (-1, aligned), "unaligned": (shm_id2, aligned + SHMLBA - 1)}[case]
    expect_errno(errno.EINVAL, p.shmat, shmid, addr, 0)
    p.shmctl(shm_id2, IPC_RMID)


def test_shmat03_rnd_remap_to_null(machine):
    """shmat03: shmat(id, 1, SHM_RND|SHM_REMAP), which rounds the address down to 0, fails
    with EINVAL (nothing gets mapped at the nil page)."""
    p = machine.spawn()
    shm_id = p.shmget(IPC_PRIVATE, P, 0o777)
    expect_errno(errno.EINVAL, p.shmat, shm_id, 1, SHM_RND | SHM_REMAP)
    p.shmctl(shm_id, IPC_RMID)


def _shmat04_setup(p):
    segment_id = p.shmget(ipc_key() + 1, 3 * P, IPC_CREAT | IPC_EXCL | 0o600)
    sh_mem = p.shmat(segment_id, 0, 0)
    assert p.shmctl(segment_id, IPC_STAT)["shm_nattch"] == 1
    p.mprotect(sh_mem + P, P, PROT_NONE)
    p.mprotect(sh_mem, 2 * P, PROT_WRITE)
    return segment_id, sh_mem


def test_shmat04_no_nattch_leak(machine):
    """shmat04: after the two mprotect() calls and shmdt(), shm_nattch is 0."""
    p = machine.spawn()
    segment_id, sh_mem = _shmat04_setup(p)
    p.shmdt(sh_mem)
    nattch = p.shmctl(segment_id, IPC_STAT)["shm_nattch"]
    p.shmctl(segment_id, IPC_RMID)
    assert nattch == 0


def test_shmat04_nattch_counts_unmerged_vmas(machine):
    """shmat04's intermediate state: mprotect(PROT_WRITE) of the first two pages does not
    merge them back into one VMA (shm VMAs have a close method, and Linux does not remove such
    a VMA by merging), so the segment is mapped by 3 VMAs and shm_nattch is 3."""
    p = machine.spawn()
    segment_id, sh_mem = _shmat04_setup(p)
    vmas = [(s, e, pr) for s, e, pr, _n in maps(machine, p) if sh_mem <= s < sh_mem + 3 * P]
    nattch = p.shmctl(segment_id, IPC_STAT)["shm_nattch"]
    p.shmdt(sh_mem)
    p.shmctl(segment_id, IPC_RMID)
    assert nattch == len(vmas)
    assert [pr for _s, _e, pr in vmas] == ["-w-s", "-w-s", "rw-s"]
