"""Process: a simulated process's system calls and memory accesses, with Linux's errnos.

Arguments are converted the way the C ABI would see them: addresses and lengths as
``unsigned long`` (a negative Python int wraps, so ``munmap(a, -1)`` fails like it does in
C), protections, flags and advice as ``int``. Every call validates before it changes
anything; a failing call raises OSError with Linux's errno and leaves the model as it was.
Bad accesses raise vmlab.SegmentationFault / vmlab.BusError and change nothing.
"""

from __future__ import annotations

import errno

from ..constants import MAP_ANONYMOUS, MAP_HUGETLB, PAGE_SIZE
from ..errors import ProcessKilled, syscall_error
from ..kernel import brk as kbrk
from ..kernel import fork as kfork
from ..kernel import madvise as kmadvise
from ..kernel import mlock as kmlock
from ..kernel import mmap as kmmap
from ..kernel import mprotect as kmprotect
from ..kernel import mremap as kmremap
from ..kernel import uaccess
from ..kernel.exit import do_exit
from ..kernel.oom import with_oom_retry

ULONG = (1 << 64) - 1


def _ulong(v: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what}: expected an int, got {type(v).__name__}")
    return v & ULONG


def _cint(v: int, what: str) -> int:
    """A C int: wrap to 32 bits, keep the sign."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what}: expected an int, got {type(v).__name__}")
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _syscall(fn):
    """Run the kernel's deferred work (kswapd) after every operation, failed or not."""
    import functools

    @functools.wraps(fn)
    def wrapper(self, *a, **kw):
        self.machine.kernel.current = self._task
        try:
            return fn(self, *a, **kw)
        finally:
            self.machine.kernel.after_syscall()
    return wrapper


class Process:
    """A simulated process. Obtain one from Machine.spawn() or Process.fork()."""

    def __init__(self, machine, task):
        self.machine = machine
        self._task = task

    # --- identity ----------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self._task.pid

    @property
    def ppid(self) -> int:
        return self._task.ppid

    @property
    def alive(self) -> bool:
        return self._task.alive

    @property
    def exit_reason(self) -> str:
        return self._task.exit_reason

    @property
    def mm(self):
        """The process's mm_struct (read-only use: reports, the explainer, tests)."""
        return self._task.mm

    def __repr__(self) -> str:
        return f"<vmlab.Process pid={self.pid}{'' if self.alive else ' dead'}>"

    def _k(self):
        if not self._task.alive:
            raise ProcessKilled(self._task.pid, self._task.exit_reason or "exited")
        return self.machine.kernel

    # --- mmap family ---------------------------------------------------------------------------
    @_syscall
    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
        """mmap(2). Returns the address of the new mapping."""
        k = self._k()
        addr = _ulong(addr, "mmap addr")
        length = _ulong(length, "mmap length")
        prot = _cint(prot, "mmap prot")
        flags = _cint(flags, "mmap flags") & 0xFFFFFFFF
        fd = _cint(fd, "mmap fd")
        offset = _ulong(offset, "mmap offset")
        if offset & (PAGE_SIZE - 1):
            raise syscall_error(errno.EINVAL, "mmap: offset not page aligned")
        file = None
        if not flags & MAP_ANONYMOUS:
            from ..kernel.files import fd_table
            file = fd_table(self._task).get(fd)
            if file is None:
                raise syscall_error(errno.EBADF, f"mmap: fd {fd} is not an open file")
            if flags & MAP_HUGETLB:
                raise syscall_error(errno.EINVAL, "mmap: MAP_HUGETLB on a file that is not on hugetlbfs")
        elif flags & MAP_HUGETLB:
            # hugetlb_file_setup(): MAP_HUGE_SHIFT bits name the page size (0 = default);
            # x86-64 has 2 MiB and 1 GiB. The model reserves no huge pages.
            size_log = (flags >> 26) & 0x3F
            if size_log not in (0, 21, 30):
                raise syscall_error(errno.EINVAL, "mmap: MAP_HUGETLB with an unsupported page size")
            raise syscall_error(errno.ENOMEM, "mmap: MAP_HUGETLB: no huge pages reserved")
        a, populate = kmmap.do_mmap(k, self._task, addr, length, prot, flags, offset >> 12, file)
        if populate:
            kmlock.mm_populate(k, self._task, a, kmmap.page_align(length))
        return a

    @_syscall
    def munmap(self, addr: int, length: int) -> None:
        """munmap(2)."""
        kmmap.sys_munmap(self._k(), self._task, _ulong(addr, "munmap addr"), _ulong(length, "munmap length"))

    @_syscall
    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2)."""
        kmprotect.do_mprotect(self._k(), self._task, _ulong(addr, "mprotect addr"),
                              _ulong(length, "mprotect length"), _cint(prot, "mprotect prot"))

    @_syscall
    def mremap(self, addr: int, old_len: int, new_len: int, flags: int = 0, new_addr: int = 0) -> int:
        """mremap(2). Returns the (possibly new) address."""
        k = self._k()
        return with_oom_retry(k, self._task, lambda: kmremap.do_mremap(
            k, self._task, _ulong(addr, "mremap addr"), _ulong(old_len, "mremap old_len"),
            _ulong(new_len, "mremap new_len"), _cint(flags, "mremap flags") & 0xFFFFFFFF,
            _ulong(new_addr, "mremap new_addr")))

    @_syscall
    def madvise(self, addr: int, length: int, advice: int) -> None:
        """madvise(2)."""
        kmadvise.do_madvise(self._k(), self._task, _ulong(addr, "madvise addr"),
                            _ulong(length, "madvise length"), _cint(advice, "madvise advice"))

    @_syscall
    def mlock(self, addr: int, length: int) -> None:
        """mlock(2)."""
        kmlock.do_mlock(self._k(), self._task, _ulong(addr, "mlock addr"), _ulong(length, "mlock length"),
                        kmlock.VM_LOCKED)

    @_syscall
    def mlock2(self, addr: int, length: int, flags: int = 0) -> None:
        """mlock2(2): flags 0 or MLOCK_ONFAULT."""
        kmlock.sys_mlock2(self._k(), self._task, _ulong(addr, "mlock2 addr"),
                          _ulong(length, "mlock2 length"), _cint(flags, "mlock2 flags") & 0xFFFFFFFF)

    @_syscall
    def munlock(self, addr: int, length: int) -> None:
        """munlock(2)."""
        kmlock.do_munlock(self._k(), self._task, _ulong(addr, "munlock addr"), _ulong(length, "munlock length"))

    @_syscall
    def mlockall(self, flags: int) -> None:
        """mlockall(2): MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT."""
        kmlock.do_mlockall(self._k(), self._task, _cint(flags, "mlockall flags"))

    @_syscall
    def munlockall(self) -> None:
        """munlockall(2)."""
        kmlock.do_munlockall(self._k(), self._task)

    @_syscall
    def brk(self, addr: int) -> int:
        """brk(2) as the raw system call: returns the new break (the old one on failure)."""
        return kbrk.sys_brk(self._k(), self._task, _ulong(addr, "brk addr"))

    # --- process lifecycle ----------------------------------------------------------------------
    @_syscall
    def fork(self) -> "Process":
        """fork(2): a child with a copy-on-write copy of this address space."""
        k = self._k()
        child = kfork.do_fork(k, self._task)
        return self.machine._adopt(child)

    @_syscall
    def exit(self, status: int = 0) -> None:
        """exit(2): the address space is torn down at once."""
        if self._task.alive:
            do_exit(self.machine.kernel, self._task, reason=f"exited with status {status}")

    # --- memory accesses -----------------------------------------------------------------------------
    @_syscall
    def read(self, addr: int, length: int) -> bytes:
        """Load ``length`` bytes from ``addr`` (faulting pages in as the CPU would)."""
        k = self._k()
        addr, length = self._range(addr, length, "read")
        return uaccess.user_read(k, self._task, addr, length)

    @_syscall
    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at ``addr``."""
        k = self._k()
        data = bytes(data)
        addr, _ = self._range(addr, len(data), "write")
        uaccess.user_write(k, self._task, addr, data)

    @_syscall
    def fill(self, addr: int, length: int, byte: int) -> None:
        """memset(addr, byte, length)."""
        k = self._k()
        addr, length = self._range(addr, length, "fill")
        if not 0 <= byte <= 255:
            raise ValueError(f"fill: byte must be 0..255, got {byte}")
        uaccess.user_fill(k, self._task, addr, length, byte)

    @_syscall
    def touch(self, addr: int, length: int, write: bool = False) -> None:
        """One load per page of the range, or one store of the byte already there."""
        k = self._k()
        addr, length = self._range(addr, length, "touch")
        uaccess.user_touch(k, self._task, addr, length, bool(write))

    def _range(self, addr: int, length: int, what: str) -> tuple[int, int]:
        if isinstance(addr, bool) or not isinstance(addr, int) or not isinstance(length, int):
            raise TypeError(f"{what}: addr and length must be ints")
        if length < 0:
            raise ValueError(f"{what}: negative length {length}")
        if addr < 0 or addr + length > (1 << 64):
            from ..constants import SEGV_MAPERR
            from ..errors import SegmentationFault
            raise SegmentationFault(addr & ULONG, SEGV_MAPERR, self.pid)
        return addr, length

    # --- files ------------------------------------------------------------------------------------
    @_syscall
    def open(self, path: str, flags: int = 0, mode: int = 0o644) -> int:
        """open(2): os.O_* flags; returns an fd (the lowest free one from 3)."""
        from ..kernel.files import do_open
        return do_open(self._k(), self._task, path, _cint(flags, "open flags"), mode)

    @_syscall
    def close(self, fd: int) -> None:
        """close(2)."""
        from ..kernel.files import do_close
        do_close(self._k(), self._task, fd)

    @_syscall
    def pread(self, fd: int, count: int, offset: int) -> bytes:
        """pread(2): up to ``count`` bytes at ``offset`` (fewer at end of file)."""
        from ..kernel.files import do_pread
        return do_pread(self._k(), self._task, fd, count, offset)

    @_syscall
    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """pwrite(2): returns the bytes written (all of them)."""
        from ..kernel.files import do_pwrite
        return do_pwrite(self._k(), self._task, fd, bytes(data), offset)

    @_syscall
    def ftruncate(self, fd: int, length: int) -> None:
        """ftruncate(2)."""
        from ..kernel.files import do_ftruncate
        do_ftruncate(self._k(), self._task, fd, length)

    @_syscall
    def fsync(self, fd: int) -> None:
        """fsync(2): write the file's dirty pages back to the disk."""
        from ..kernel.files import do_fsync
        do_fsync(self._k(), self._task, fd)

    def fstat(self, fd: int) -> dict:
        """fstat(2), the fields the model keeps: st_size, st_ino, st_dev, st_nlink, st_blocks."""
        from ..kernel.files import do_fstat
        self._k()
        return do_fstat(self._task, fd)

    @_syscall
    def unlink(self, path: str) -> None:
        """unlink(2)."""
        self._k()
        self.machine.unlink(path)

    @_syscall
    def memfd_create(self, name: str, flags: int = 0) -> int:
        """memfd_create(2): an anonymous tmpfs file ("/memfd:NAME (deleted)"), open read-write;
        MFD_ALLOW_SEALING lets fcntl(F_ADD_SEALS) seal it. Size it with ftruncate."""
        from ..kernel.files import do_memfd_create
        return do_memfd_create(self._k(), self._task, name, _cint(flags, "memfd_create flags"))

    @_syscall
    def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        """fcntl(2), the file-seal commands: F_ADD_SEALS (arg: F_SEAL_* bits), F_GET_SEALS."""
        from ..kernel.files import do_fcntl
        return do_fcntl(self._k(), self._task, fd, _cint(cmd, "fcntl cmd"), _cint(arg, "fcntl arg"))

    @_syscall
    def msync(self, addr: int, length: int, flags: int) -> None:
        """msync(2): MS_ASYNC, MS_SYNC, MS_INVALIDATE."""
        from ..kernel.msync import do_msync
        do_msync(self._k(), self._task, _ulong(addr, "msync addr"), _ulong(length, "msync length"),
                 _cint(flags, "msync flags"))

    # --- SysV shared memory --------------------------------------------------------------------------
    @_syscall
    def shmget(self, key: int, size: int, shmflg: int) -> int:
        """shmget(2): a segment id (IPC_PRIVATE, IPC_CREAT, IPC_EXCL, permission bits)."""
        from ..kernel.shm import do_shmget
        return do_shmget(self._k(), self._task, _cint(key, "shmget key"), _ulong(size, "shmget size"),
                         _cint(shmflg, "shmget flags"))

    @_syscall
    def shmat(self, shmid: int, addr: int = 0, shmflg: int = 0) -> int:
        """shmat(2): attach; returns the address (SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC)."""
        from ..kernel.shm import do_shmat
        return do_shmat(self._k(), self._task, _cint(shmid, "shmat id"), _ulong(addr, "shmat addr"),
                        _cint(shmflg, "shmat flags"))

    @_syscall
    def shmdt(self, addr: int) -> None:
        """shmdt(2)."""
        from ..kernel.shm import do_shmdt
        do_shmdt(self._k(), self._task, _ulong(addr, "shmdt addr"))

    @_syscall
    def shmctl(self, shmid: int, cmd: int, buf: dict | None = None):
        """shmctl(2): IPC_STAT returns a dict like struct shmid_ds; IPC_SET takes one;
        IPC_RMID, SHM_LOCK, SHM_UNLOCK, IPC_INFO, SHM_INFO, SHM_STAT."""
        from ..kernel.shm import do_shmctl
        return do_shmctl(self._k(), self._task, _cint(shmid, "shmctl id"), _cint(cmd, "shmctl cmd"), buf)

    # --- options the model adds ---------------------------------------------------------------------
    def set_rss_limit(self, limit: int | str | None) -> None:
        """Limit this process's resident memory (the seeds' per-mm quota; Linux ignores
        RLIMIT_RSS). Enforced after every operation by unmapping the process's own least
        recently used pages (reclaim/rsslimit.py). None removes the limit."""
        from ..units import parse_size
        self._k()
        self._task.mm.rss_limit = None if limit is None else parse_size(limit, "rss limit") >> 12
        self.machine.kernel.after_syscall()

    # --- introspection -------------------------------------------------------------------------------
    def pagemap(self, addr: int, npages: int) -> list[int]:
        """/proc/PID/pagemap entries for ``npages`` pages from ``addr`` (as root reads them)."""
        from ..proc.collect import pagemap_entries
        self._k()
        return pagemap_entries(self.machine, self._task, addr, npages)

    def maps(self) -> str:
        return self.machine.procfs(f"/proc/{self.pid}/maps")

    def smaps(self) -> str:
        return self.machine.procfs(f"/proc/{self.pid}/smaps")
