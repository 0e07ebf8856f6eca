"""Tests of vmlab.host's files and SysV shared memory: logical paths mapped into the machine's
private directories, the file system calls made by the worker, msync and file mappings,
shmget/shmat/shmdt/shmctl with the model's dicts, the private IPC namespace, and cleanup.

Marked ``host``; skipped where not Linux. Each test says what the host kernel shows through
the backend.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("the host backend needs Linux", allow_module_level=True)

from vmlab.constants import (BUS_ADRERR, IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_PRIVATE, IPC_RMID,
                             IPC_SET, IPC_STAT, MAP_PRIVATE, MAP_SHARED, MREMAP_MAYMOVE, MS_ASYNC,
                             MS_SYNC, PAGE_SIZE as P, PROT_READ, PROT_WRITE, SEGV_MAPERR,
                             SHM_LOCK, SHM_RDONLY, SHM_UNLOCK)
from vmlab.errors import BusError, ProcessKilled, SegmentationFault
from vmlab.host import HostMachine
from vmlab.host.machine import _fs_type

pytestmark = pytest.mark.host

RW = PROT_READ | PROT_WRITE
SHM_STAT, SHM_INFO, SHM_LOCKED = 13, 14, 0o2000


@pytest.fixture
def m():
    with HostMachine() as machine:
        yield machine


@pytest.fixture
def p(m):
    return m.spawn()


def sysvipc_ids() -> set[int]:
    with open("/proc/sysvipc/shm") as fh:
        return {int(line.split()[1]) for line in fh.read().splitlines()[1:] if line.strip()}


# --- logical paths -------------------------------------------------------------------------

def test_logical_paths_land_in_private_dirs(m):
    """/tmp/... and /dev/shm/... go to a private directory on tmpfs, other paths to one on a
    disk filesystem; parent directories are made; a relative path is ENOENT, as in the model."""
    tmp, shm, disk = m.host_path("/tmp/a"), m.host_path("/dev/shm/b"), m.host_path("/data/x/c")
    assert _fs_type(tmp) == _fs_type(shm) == "tmpfs"
    assert _fs_type(disk) not in ("tmpfs", "ramfs", "")
    assert os.path.isdir(os.path.dirname(disk))
    assert tmp.startswith(m._state.dirs["tmpfs"]) and disk.startswith(m._state.dirs["disk"])
    assert os.path.dirname(m.host_path("/../../etc/passwd")).startswith(m._state.dirs["disk"])
    with pytest.raises(OSError) as info:
        m.host_path("relative")
    assert info.value.errno == errno.ENOENT


def test_create_file_file_data_unlink(m):
    """create_file() writes bytes or makes a sparse file of a size, refuses an existing name;
    file_data() reads it back; unlink() removes it and then fails with ENOENT."""
    m.create_file("/data/f", b"hello")
    m.create_file("/tmp/g", 3 * P)
    assert m.file_data("/data/f") == b"hello"
    assert m.file_data("/tmp/g") == bytes(3 * P)
    with pytest.raises(FileExistsError):
        m.create_file("/data/f", b"again")
    m.unlink("/data/f")
    for fn in (m.unlink, m.file_data):
        with pytest.raises(OSError) as info:
            fn("/data/f")
        assert info.value.errno == errno.ENOENT


# --- file system calls -----------------------------------------------------------------------

def test_file_calls_round_trip(p):
    """open/pwrite/pread/fstat/ftruncate/fsync/close in the worker: pread stops at end of
    file; fstat has the model's five fields; a closed fd is EBADF; opening a missing file
    without O_CREAT is ENOENT; pread on an O_WRONLY fd is EBADF; ftruncate on O_RDONLY is
    EINVAL (fs/open.c do_ftruncate())."""
    fd = p.open("/data/f", os.O_RDWR | os.O_CREAT, 0o644)
    assert p.pwrite(fd, b"abcdef", 0) == 6
    assert p.pread(fd, 100, 2) == b"cdef"
    st = p.fstat(fd)
    assert set(st) == {"st_size", "st_ino", "st_dev", "st_nlink", "st_blocks"}
    assert st["st_size"] == 6 and st["st_nlink"] == 1
    p.ftruncate(fd, 2 * P)
    p.fsync(fd)
    assert p.fstat(fd)["st_size"] == 2 * P
    p.close(fd)
    for call, args in ((p.pread, (fd, 1, 0)), (p.close, (fd,))):
        with pytest.raises(OSError) as info:
            call(*args)
        assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        p.open("/data/missing", os.O_RDONLY)
    assert info.value.errno == errno.ENOENT
    wfd = p.open("/data/f", os.O_WRONLY)
    with pytest.raises(OSError) as info:
        p.pread(wfd, 1, 0)
    assert info.value.errno == errno.EBADF
    rfd = p.open("/data/f", os.O_RDONLY)
    with pytest.raises(OSError) as info:
        p.ftruncate(rfd, 0)
    assert info.value.errno == errno.EINVAL


def test_fds_are_inherited_and_unlink_keeps_inode(p):
    """A forked child shares the parent's open files; after p.unlink() the open file still
    reads (nlink 0) and the name is gone."""
    fd = p.open("/tmp/f", os.O_RDWR | os.O_CREAT)
    p.pwrite(fd, b"shared", 0)
    c = p.fork()
    assert c.pread(fd, 6, 0) == b"shared"
    p.unlink("/tmp/f")
    assert c.fstat(fd)["st_nlink"] == 0 and c.pread(fd, 6, 0) == b"shared"
    with pytest.raises(OSError):
        c.open("/tmp/f", os.O_RDONLY)
    c.exit()


@pytest.mark.parametrize("path", ["/data/f", "/tmp/f"], ids=["disk", "tmpfs"])
def test_file_mappings_shared_private_sigbus(m, p, path):
    """A store through MAP_SHARED reaches the file (msync MS_SYNC, then file_data); one
    through MAP_PRIVATE does not; an access to a whole page past end of file is SIGBUS with
    BUS_ADRERR at that byte, and nothing else is touched."""
    m.create_file(path, b"x" * 100)
    fd = p.open(path, os.O_RDWR)
    sh = p.mmap(0, 2 * P, RW, MAP_SHARED, fd, 0)
    pr = p.mmap(0, P, RW, MAP_PRIVATE, fd, 0)
    p.write(sh, b"S")
    p.write(pr + 1, b"P")
    p.msync(sh, P, MS_SYNC)
    assert m.file_data(path) == b"S" + b"x" * 99
    assert p.read(pr, 2) == b"SP"
    with pytest.raises(BusError) as info:
        p.write(sh + P + 10, b"z")
    assert info.value.addr == sh + P + 10 and info.value.code == BUS_ADRERR
    with pytest.raises(OSError) as info:
        p.msync(sh + 1, P, MS_ASYNC)
    assert info.value.errno == errno.EINVAL


# --- SysV shm ----------------------------------------------------------------------------------

def test_shm_stat_set_lock_rmid(p):
    """shmget/shmat/IPC_STAT: the dict has the model's shape, segsz, cpid and nattch right;
    IPC_SET changes the mode bits; SHM_LOCK/SHM_UNLOCK toggle SHM_LOCKED; IPC_INFO and SHM_INFO
    answer; SHM_STAT by index returns the id; IPC_RMID of an attached segment keeps it until
    shmdt, then the id is EINVAL."""
    shmid = p.shmget(IPC_PRIVATE, 3000, IPC_CREAT | 0o600)
    addr = p.shmat(shmid)
    ds = p.shmctl(shmid, IPC_STAT)
    assert set(ds) == {"shm_perm", "shm_segsz", "shm_atime", "shm_dtime", "shm_ctime",
                       "shm_cpid", "shm_lpid", "shm_nattch"}
    assert set(ds["shm_perm"]) == {"key", "uid", "gid", "cuid", "cgid", "mode", "seq"}
    assert ds["shm_segsz"] == 3000 and ds["shm_cpid"] == p.pid and ds["shm_nattch"] == 1
    assert ds["shm_perm"]["mode"] == 0o600 and ds["shm_perm"]["key"] == IPC_PRIVATE
    p.shmctl(shmid, IPC_SET, {"shm_perm": {"mode": 0o640}})
    assert p.shmctl(shmid, IPC_STAT)["shm_perm"]["mode"] & 0o777 == 0o640
    p.shmctl(shmid, SHM_LOCK)
    assert p.shmctl(shmid, IPC_STAT)["shm_perm"]["mode"] & SHM_LOCKED
    p.shmctl(shmid, SHM_UNLOCK)
    assert not p.shmctl(shmid, IPC_STAT)["shm_perm"]["mode"] & SHM_LOCKED
    assert p.shmctl(0, IPC_INFO)["shmmni"] > 0
    assert p.shmctl(0, SHM_INFO)["used_ids"] >= 1
    p.write(addr, b"seg")
    p.shmctl(shmid, IPC_RMID)
    assert p.read(addr, 3) == b"seg"
    p.shmdt(addr)
    with pytest.raises(OSError) as info:
        p.shmctl(shmid, IPC_STAT)
    assert info.value.errno == errno.EINVAL


def test_shmat_shared_readonly_and_detach(p):
    """A segment attached twice shares its bytes; SHM_RDONLY gives a read-only attachment; a
    child inherits both attachments (nattch 4); after shmdt the address is unmapped
    (SEGV_MAPERR, not a refusal of the worker's own memory)."""
    shmid = p.shmget(IPC_PRIVATE, P, IPC_CREAT | 0o600)
    a = p.shmat(shmid)
    b = p.shmat(shmid, 0, SHM_RDONLY)
    p.write(a, b"both")
    assert p.read(b, 4) == b"both"
    with pytest.raises(SegmentationFault):
        p.write(b, b"x")
    c = p.fork()
    assert p.shmctl(shmid, IPC_STAT)["shm_nattch"] == 4
    c.exit()
    p.shmdt(b)
    p.shmdt(a)
    with pytest.raises(SegmentationFault) as info:
        p.read(a, 1)
    assert info.value.code == SEGV_MAPERR
    p.shmctl(shmid, IPC_RMID)


def test_sigbus_past_end_of_segment_id_0(p):
    """A SysV segment grown past its size by mremap(MREMAP_MAYMOVE) raises SIGBUS
    (BUS_ADRERR) past the segment's end (shm_fault() -> shmem_fault()), also for the segment
    of id 0, whose maps line shows inode 0 like anonymous memory does."""
    shmid = p.shmget(IPC_PRIVATE, 2 * P, IPC_CREAT | 0o600)
    a = p.shmat(shmid)
    b = p.mremap(a, 2 * P, 4 * P, MREMAP_MAYMOVE)
    assert p.read(b + P, 1) == b"\0"
    with pytest.raises(BusError) as info:
        p.read(b + P, P + 1)
    assert info.value.addr == b + 2 * P and info.value.code == BUS_ADRERR
    p.shmdt(b)
    p.shmctl(shmid, IPC_RMID)


def test_private_ipc_namespace(m, p):
    """As root the machine gets a private IPC namespace: the first segment has id 0 and the
    host's /proc/sysvipc/shm does not list it."""
    if os.geteuid() != 0:
        pytest.skip("unshare(CLONE_NEWIPC) needs CAP_SYS_ADMIN")
    assert m.capabilities["ipc_namespace"] is True
    before = sysvipc_ids()
    shmid = p.shmget(IPC_PRIVATE, P, IPC_CREAT | 0o600)
    assert shmid == 0
    assert sysvipc_ids() == before


def test_shared_namespace_segments_removed_on_close():
    """With ipc_namespace=False the segments live in the host's namespace; close() removes
    the ones this machine's processes created, including one still attached by a process
    that was killed from outside."""
    with HostMachine(ipc_namespace=False) as m:
        assert m.capabilities["ipc_namespace"] is False
        p = m.spawn()
        a = p.shmget(IPC_PRIVATE, P, IPC_CREAT | 0o600)
        b = p.shmget(0x5EED0000 + os.getpid() % 0xFFFF, P, IPC_CREAT | IPC_EXCL | 0o600)
        p.shmat(b)
        assert {a, b} <= sysvipc_ids()
        os.kill(p.pid, signal.SIGKILL)
        with pytest.raises(ProcessKilled):
            p.shmctl(a, IPC_STAT)
    assert not {a, b} & sysvipc_ids()


def test_close_removes_dirs_even_after_a_crash():
    """close() removes both private directories, also when a worker holding files open and
    mapped was killed from outside."""
    m = HostMachine()
    p = m.spawn()
    fd = p.open("/data/f", os.O_RDWR | os.O_CREAT)
    p.pwrite(fd, b"x" * P, 0)
    p.mmap(0, P, RW, MAP_SHARED, fd, 0)
    p.open("/tmp/t", os.O_RDWR | os.O_CREAT)
    dirs = list(m._state.dirs.values())
    assert len(dirs) == 2 and all(os.path.isdir(d) for d in dirs)
    os.kill(p.pid, signal.SIGKILL)
    m.close()
    assert not any(os.path.exists(d) for d in dirs)
