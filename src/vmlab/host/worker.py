"""The host backend's worker: one real Linux process per simulated process.

What it is
    ``HostMachine`` (machine.py) drives real processes over Unix stream sockets. Each of them
    runs this file as a script::

        python -S -s -P .../worker.py --fd N --parent PID            # a worker
        python -S -s -P .../worker.py --fd N --parent PID --reaper   # the reaper

    A *worker* stands for one simulated process. It makes the real system calls the model's
    ``Process`` methods name (mmap, munmap, mprotect, mremap, madvise, mlock, mlock2, munlock,
    mlockall, munlockall, brk) through libc's ``syscall()`` with the raw x86-64 (or arm64)
    numbers, and it reads, writes, fills and touches its own mappings through ctypes. msync
    and the SysV shm calls (shmget, shmat, shmdt, shmctl) are raw system calls too; the file
    calls (open, close, pread, pwrite, ftruncate, fsync, fstat, unlink) are ``os``'s, on real
    paths the driver has mapped into the machine's private directories.
    ``fork`` is a real ``fork()`` of the worker; the child becomes a new worker.

    The *reaper* is one per HostMachine. It spawns the top-level workers (fork + exec of this
    file) and, being a child subreaper (PR_SET_CHILD_SUBREAPER) that ignores SIGCHLD, it adopts
    and reaps every orphaned worker, so a child may outlive its parent (an "exit order"
    scenario) without leaving zombies, whatever the host's pid 1 does. Where it may, it first
    moves into a private SysV IPC namespace (``--ipc-ns``), which all its workers share.

Protocol (the same both ways)
    A message is an 8-byte little-endian length followed by a pickle. A request is a tuple
    ``(op, *args)``; the answer is one of ``("ok", value)``, ``("errno", errno, what)``,
    ``("segv", addr, si_code)``, ``("bus", addr, si_code)``, ``("unsupported", reason)`` or
    ``("crash", traceback)``. Two requests carry raw bytes: ``("write", addr, n)`` is followed
    by n bytes, which the worker receives straight into the target memory; ``("read", addr, n)``
    is answered by ``("ok", n)`` and n bytes sent straight from the mapping. ``fork`` (and the
    reaper's ``spawn``) first pass the new process's socket as one byte carrying SCM_RIGHTS
    (or one plain byte if fork failed) and then answer ``("ok", pid)``.

    Who keeps which end: the forking worker creates a socketpair, forks, sends one end to the
    driver and closes it before it answers; the child closes that end *and its parent's
    channel*, says ``("ready", info)`` on the new channel and serves it. Channels are
    close-on-exec, so an exec'd worker
    inherits only the end it is given. So every worker's channel has exactly two holders, the
    worker and the driver, and a worker sees end-of-file (and exits) as soon as the driver
    closes its side or dies.

Invariants
    - A worker never touches memory it did not map itself (mmap/mremap results and the part of
      the brk heap above the break it found at start-up). Memory ranges are validated against
      /proc/self/maps before any access; range system calls that would hit the interpreter's
      own mappings are refused ("unsupported") instead of being made.
    - Accesses are all-or-nothing: the whole range is checked first and the first bad address
      raises SIGSEGV/SIGBUS *as an answer*, touching nothing (a real CPU would complete the
      pages before it). The checks follow arch/x86/mm/fault.c ``access_error()``: a write needs
      VM_WRITE; a read needs any of VM_READ|VM_WRITE|VM_EXEC (``vma_is_accessible()``), except
      that an execute-only VMA carrying a protection key (arch/x86/mm/pkeys.c
      ``execute_only_pkey()``) refuses reads with SEGV_PKUERR; a page of a file (or shmem)
      mapping past end of file raises SIGBUS/BUS_ADRERR (mm/filemap.c ``filemap_fault()``,
      mm/shmem.c ``shmem_fault()``).
    - The worker's own memory stays out of the way: it runs with PYTHONMALLOC=malloc and glibc
      tunables that give the brk heap 64 MiB of headroom at start-up and send no allocation
      below 32 MiB to mmap, so Python does not create anonymous mappings next to the regions
      under test; big reads and writes stream between the socket and the mapping without a
      buffer. After start-up glibc's cached break (``__curbrk``) is poisoned so that malloc
      can never move the break under a region the scenario made with brk(); should malloc
      ever need more heap it falls back to mmap.
    - This file imports only the standard library (it runs with ``-S``), and nothing here runs
      on import, so the driver may import it for the framing helpers.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import platform
import signal
import socket
import stat
import struct
import sys
import traceback

# --- framing (shared with the driver) -------------------------------------------------------

HDR = struct.Struct("<Q")
FD_MARK = b"F"          # the one byte that carries a passed socket (SCM_RIGHTS)
NO_FD_MARK = b"E"       # sent instead when fork failed (the errno answer follows)


def send_msg(sock: socket.socket, obj) -> None:
    """Send one framed pickle."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(HDR.pack(len(data)) + data)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly n bytes (never more: a passed fd may follow); EOFError at end of stream."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("channel closed")
        got += k
    return bytes(buf)


def recv_msg(sock: socket.socket):
    """Receive one framed pickle; EOFError when the other side has gone."""
    (n,) = HDR.unpack(recv_exact(sock, HDR.size))
    return pickle.loads(recv_exact(sock, n))


def send_fd(sock: socket.socket, fd: int) -> None:
    socket.send_fds(sock, [FD_MARK], [fd])


# --- constants (this file cannot import vmlab: it runs with -S and without vmlab on the path) --

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
ADDR_NO_RANDOMIZE = 0x0040000
SEGV_MAPERR, SEGV_ACCERR, SEGV_PKUERR = 1, 2, 4
BUS_ADRERR = 2
MAP_SHARED, MAP_SHARED_VALIDATE, MAP_TYPE = 0x01, 0x03, 0x0F
MAP_FIXED, MAP_ANONYMOUS = 0x10, 0x20
MAP_NORESERVE, MAP_FIXED_NOREPLACE = 0x4000, 0x100000
MREMAP_FIXED, MREMAP_DONTUNMAP = 2, 4
MADV_GUARD_INSTALL = 102
PM_GUARD_REGION = 1 << 58
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
LAYOUT_ALIGN = 2 << 20          # model_layout: congruence of the floor plug (one PMD)
TOUCH_CHUNK = 512               # pages per strided copy in touch(); one page table's worth

# System call numbers: arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h
SYSCALLS = {
    "x86_64": dict(mmap=9, mprotect=10, munmap=11, brk=12, mremap=25, madvise=28, mlock=149,
                   munlock=150, mlockall=151, munlockall=152, mlock2=325,
                   msync=26, shmget=29, shmat=30, shmctl=31, shmdt=67),
    "aarch64": dict(mmap=222, mprotect=226, munmap=215, brk=214, mremap=216, madvise=233,
                    mlock=228, munlock=229, mlockall=230, munlockall=231, mlock2=284,
                    msync=227, shmget=194, shmctl=195, shmat=196, shmdt=197),
}

# SysV shm (include/uapi/linux/ipc.h, shm.h). The layouts are the kernel's 64-bit ones, which
# the raw shmctl system call always uses on x86-64 and arm64 (asm-generic/ipcbuf.h, shmbuf.h;
# checked with offsetof() in a C probe on the reference host: struct shmid64_ds is 112 bytes,
# shm_segsz at 48, shm_cpid at 80, shm_nattch at 88).
CLONE_NEWIPC = 0x08000000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
SHM_STAT, SHM_INFO, SHM_STAT_ANY = 13, 14, 15
SHM_RND, SHM_REMAP = 0o20000, 0o40000
SHMID64_DS = struct.Struct("<iIIIIIHH4xQQQqqqiiQQQ")   # ipc64_perm + shmid64_ds
SHMINFO64 = struct.Struct("<9Q")                        # struct shminfo64 (IPC_INFO)
SHM_INFO_S = struct.Struct("<i4x5Q")                    # struct shm_info (SHM_INFO)

# Environment for every worker and the reaper. PYTHONMALLOC=malloc keeps pymalloc's 1 MiB
# mmap'd arenas out of the address space; the glibc tunables make the first sbrk take 64 MiB of
# headroom, fix the mmap threshold at its maximum (32 MiB) and never trim the heap.
WORKER_ENV = {
    "PYTHONMALLOC": "malloc",
    "GLIBC_TUNABLES": ("glibc.malloc.top_pad=67108864:glibc.malloc.mmap_threshold=33554432:"
                       "glibc.malloc.trim_threshold=1099511627776"),
    "LC_ALL": "C",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class Segv(Exception):
    def __init__(self, addr: int, code: int):
        self.addr, self.code = addr, code


class Bus(Exception):
    def __init__(self, addr: int, code: int = BUS_ADRERR):
        self.addr, self.code = addr, code


class Unsupported(Exception):
    pass


def _s64(x: int) -> int:
    """A syscall argument as the signed 64-bit register value C would pass."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def _page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


class _Libc:
    """libc through ctypes: syscall(), prctl(), personality(), raw memory views."""

    def __init__(self):
        self.lib = ctypes.CDLL(None, use_errno=True)
        self._syscall = self.lib.syscall
        self._syscall.restype = ctypes.c_long
        self._syscall.argtypes = [ctypes.c_long] * 7
        self.prctl = self.lib.prctl
        self.prctl.restype = ctypes.c_int
        self.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        self.personality = self.lib.personality
        self.personality.restype = ctypes.c_int
        self.personality.argtypes = [ctypes.c_ulong]
        nr = SYSCALLS.get(platform.machine())
        self.nr = nr
        frommem = ctypes.pythonapi.PyMemoryView_FromMemory
        frommem.restype = ctypes.py_object
        frommem.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
        self._frommem = frommem

    def syscall(self, name: str, what: str, *args: int) -> int:
        """Make one raw system call; raise OSError(errno) the way glibc's syscall() reports it."""
        if self.nr is None:
            raise Unsupported(f"no system call table for {platform.machine()}")
        argv = [_s64(a) for a in args] + [0] * (6 - len(args))
        ctypes.set_errno(0)
        r = self._syscall(self.nr[name], *argv)
        if r == -1:
            e = ctypes.get_errno()
            if e:
                raise OSError(e, os.strerror(e), what)
        return r & ((1 << 64) - 1)

    def view(self, addr: int, n: int, writable: bool) -> memoryview:
        """A memoryview over [addr, addr+n) without allocating a ctypes type per length."""
        return self._frommem(addr, n, 0x200 if writable else 0x100)     # format "B"


# --- /proc/self/maps -------------------------------------------------------------------------

class Vma:
    __slots__ = ("start", "end", "perms", "offset", "inode", "path", "name")

    def __init__(self, line: bytes):
        f = line.split(None, 5)
        rng = f[0].decode()
        lo, hi = rng.split("-")
        self.name = rng                       # the /proc/self/map_files/ entry
        self.start, self.end = int(lo, 16), int(hi, 16)
        self.perms = f[1].decode()
        self.offset = int(f[2], 16)
        self.inode = int(f[4])
        self.path = f[5].strip().decode(errors="replace") if len(f) > 5 else ""


def read_maps() -> list[Vma]:
    with open("/proc/self/maps", "rb") as fh:
        return [Vma(line) for line in fh.read().splitlines() if line]


# --- the worker --------------------------------------------------------------------------------

class Worker:
    """Serve one channel; see the module header for the protocol and the invariants."""

    def __init__(self, sock: socket.socket, libc: _Libc, model_layout: bool = False,
                 layout_top: int | None = None):
        self.sock = sock
        self.libc = libc
        self.plugs: list[list[int]] = []            # [start, end) of the layout plugs
        self.owned: list[list[int]] = []            # sorted, disjoint [start, end) it mapped
        self.guard_used = False                    # MADV_GUARD_INSTALL seen (in this mm)
        self.shmem_pages: dict[int, int] = {}      # inode -> pages of its shared anon objects
        self.start_brk = self._start_brk()
        self.brk_floor = libc.syscall("brk", "brk", 0) if libc.nr else 0
        self.brk_cur = self.brk_floor
        self.curbrk_poisoned = self._poison_curbrk()
        self.atomic_add = self._find_atomic_add()
        self.drain_buf = bytearray(1 << 16)
        if model_layout and libc.nr:
            self._plug_holes(layout_top)

    def _plug(self, lo: int, hi: int) -> None:
        """One plug: a PROT_NONE shared anonymous mapping (its own shmem file, so it never
        merges with anything; MAP_NORESERVE, so it is not charged to Committed_AS)."""
        flags = MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE
        self.libc.syscall("mmap", "plug", lo, hi - lo, 0, flags, -1, 0)
        self.plugs.append([lo, hi])

    def _plug_holes(self, layout_top: int | None = None) -> None:
        """The model's address space is empty below its [vdso], so its first mmap lands right
        under the vdso and later ones are stacked below it, top-down. The interpreter's is not:
        it leaves holes between its libraries (a small mmap fills one) and anonymous mappings a
        new region could merge with. Fill every hole of the mmap area with a plug, and put one
        plug page under its lowest mapping, so that top-down placement (mm/mmap.c
        unmapped_area_topdown()) stacks the scenario's mappings below the plugs exactly as the
        model stacks them below its vdso. A probe mapping checks the result; a hole the maps
        walk missed (above the highest mapping, below mmap_base) is plugged where the probe
        lands. With ``layout_top`` (the model's first free address below its vdso) the floor
        plug reaches down to an address congruent to it modulo 2 MiB, so that every region is
        placed at the same offset within its page table (and its 64 KiB fault-around window,
        and its 2 MiB huge-page frame) as in the model."""
        maps = read_maps()
        stack = next((v for v in maps if v.path == "[stack]"), None)
        top = stack.start if stack is not None else 1 << 47
        area = [v for v in maps if v.start >= _page_up(self.brk_floor) and v.end <= top]
        if not area:
            return
        for lo, hi in zip(area, area[1:]):
            if hi.start > lo.end:
                self._plug(lo.end, hi.start)
        floor = area[0].start - PAGE
        if layout_top is not None:
            floor -= (floor - layout_top) % LAYOUT_ALIGN
        self._plug(floor, area[0].start)
        probe_flags = MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE
        for _ in range(64):
            r = self.libc.syscall("mmap", "probe", 0, PAGE, 0, probe_flags, -1, 0)
            if r == floor - PAGE:
                self.libc.syscall("munmap", "probe", r, PAGE)
                return
            # r is the top page of a hole: plug the rest of it (from the mapping below r)
            below = max((v.end for v in read_maps() if v.end <= r), default=r)
            self.plugs.append([r, r + PAGE])
            if below < r:
                self._plug(below, r)

    def op_drain(self):
        """Drain the per-CPU folio batches of every CPU this worker may run on (the fallback
        of HostMachine.drain()): on each CPU in turn, lock and unlock a scratch page. mlock's
        and munlock's mlock_fixup() both end in mlock_vma_pages_range(), which calls
        lru_add_drain() (mm/mlock.c) and so empties that CPU's LRU and mlock batches. The
        scratch page is mapped and unmapped here, so the address space is unchanged after."""
        cpus = sorted(os.sched_getaffinity(0))
        flags = 0x02 | MAP_ANONYMOUS                        # MAP_PRIVATE
        scratch = self.libc.syscall("mmap", "drain", 0, PAGE, 3, flags, -1, 0)
        try:
            for cpu in cpus:
                os.sched_setaffinity(0, {cpu})
                self.libc.syscall("mlock", "drain", scratch, PAGE)
                self.libc.syscall("munlock", "drain", scratch, PAGE)
        finally:
            os.sched_setaffinity(0, cpus)
            self.libc.syscall("munmap", "drain", scratch, PAGE)
        return len(cpus)

    # -- start-up helpers --

    @staticmethod
    def _start_brk() -> int:
        """mm->start_brk, field 47 of /proc/self/stat (fs/proc/array.c do_task_stat)."""
        with open("/proc/self/stat", "rb") as fh:
            data = fh.read()
        fields = data[data.rindex(b")") + 2:].split()
        return int(fields[47 - 3])

    def _poison_curbrk(self) -> bool:
        """Make glibc's sbrk() fail from now on (see the module header)."""
        try:
            cur = ctypes.c_void_p.in_dll(self.libc.lib, "__curbrk")
        except ValueError:
            return False
        cur.value = (1 << 64) - 1
        return True

    @staticmethod
    def _find_atomic_add():
        """libatomic's __atomic_fetch_add_1 is one ``lock xadd``: a single write access."""
        for name in ("libatomic.so.1", "libatomic.so"):
            try:
                lib = ctypes.CDLL(name)
                f = getattr(lib, "__atomic_fetch_add_1")    # getattr: no name mangling
            except (OSError, AttributeError):
                continue
            f.restype = ctypes.c_ubyte
            f.argtypes = [ctypes.c_void_p, ctypes.c_ubyte, ctypes.c_int]
            return f
        return None

    def info(self) -> dict:
        return {
            "pid": os.getpid(),
            "personality": self.libc.personality(0xFFFFFFFF),
            "start_brk": self.start_brk,
            "brk_floor": self.brk_floor,
            "curbrk_poisoned": self.curbrk_poisoned,
            "touch_write": "atomic-rmw" if self.atomic_add else "load-store",
            "page_size": PAGE,
            "machine": platform.machine(),
            "plugs": [list(x) for x in self.plugs],
        }

    # -- the owned set --

    def _add(self, lo: int, hi: int) -> None:
        if hi <= lo:
            return
        merged: list[list[int]] = []
        for s, e in sorted(self.owned + [[lo, hi]]):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.owned = merged

    def _remove(self, lo: int, hi: int) -> None:
        if hi <= lo:
            return
        out = []
        for s, e in self.owned:
            if e <= lo or s >= hi:
                out.append([s, e])
                continue
            if s < lo:
                out.append([s, lo])
            if e > hi:
                out.append([hi, e])
        self.owned = out

    def _is_owned(self, lo: int, hi: int) -> bool:
        """Is [lo, hi) inside memory this worker mapped (or its brk range)?"""
        ranges = self.owned + [[_page_up(self.brk_floor), _page_up(self.brk_cur)]]
        ranges.sort()
        cur = lo
        for s, e in ranges:
            if e <= cur:
                continue
            if s > cur:
                return False
            cur = e
            if cur >= hi:
                return True
        return cur >= hi

    def _guard(self, what: str, addr: int, length: int) -> None:
        """Refuse a range system call that would change the interpreter's own mappings."""
        if addr % PAGE or length <= 0 or addr + length > 1 << 64:
            return              # the kernel rejects it (EINVAL) or does nothing
        hi = _page_up(addr + length)
        for v in read_maps():
            lo_o, hi_o = max(addr, v.start), min(hi, v.end)
            if lo_o < hi_o and not self._is_owned(lo_o, hi_o):
                raise Unsupported(
                    f"{what}: [{addr:#x}, {hi:#x}) overlaps the host worker's own mapping "
                    f"{v.name} {v.perms} {v.path or '[anon]'}; the host backend only changes "
                    f"memory the scenario mapped")

    # -- access validation (the all-or-nothing SIGSEGV/SIGBUS check) --

    def _pkey_exec_only(self, v: Vma) -> bool:
        with open("/proc/self/smaps", "rb") as fh:
            inside = False
            for line in fh.read().splitlines():
                if line[:1] in b"0123456789abcdef" and b"-" in line.split(b" ", 1)[0]:
                    inside = line.split(b" ", 1)[0].decode() == v.name
                elif inside and line.startswith(b"ProtectionKey:"):
                    return int(line.split()[1]) != 0
        return False

    def _file_pages(self, v: Vma) -> int | None:
        """Pages of the backing file (or shmem object) of a mapping; None if not a file.

        /proc/self/map_files/ names the very file (shmem and deleted files included) but needs
        CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE). Without it: the sizes of the shared anonymous
        objects this worker created, else the path, when it still names the same inode."""
        if v.inode == 0 and not v.path.startswith("/"):
            return None                 # anonymous (a SysV segment of id 0 has inode 0 too)
        try:
            st = os.stat(f"/proc/self/map_files/{v.name}")
        except OSError:
            if v.inode in self.shmem_pages:
                return self.shmem_pages[v.inode]
            try:
                st = os.stat(v.path)
            except (OSError, ValueError):
                return None
            if st.st_ino != v.inode:
                return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return (st.st_size + PAGE - 1) // PAGE

    def validate(self, addr: int, n: int, write: bool) -> None:
        """Raise Segv/Bus/Unsupported at the first address of [addr, addr+n) the access cannot
        reach, before anything is touched (arch/x86/mm/fault.c do_user_addr_fault order:
        find_vma, then access_error, then the fault handler's SIGBUS)."""
        if n <= 0:
            return
        end = addr + n
        cur = addr
        for v in read_maps():
            if v.end <= cur:
                continue
            if v.start > cur:
                raise Segv(cur, SEGV_MAPERR)
            hi = min(end, v.end)
            if not self._is_owned(cur, hi):
                raise Unsupported(
                    f"access at {cur:#x}: this is the host worker's own mapping {v.name} "
                    f"{v.perms} {v.path or '[anon]'}, not memory the scenario mapped")
            r, w, x = v.perms[0] == "r", v.perms[1] == "w", v.perms[2] == "x"
            if write and not w:
                raise Segv(cur, SEGV_ACCERR)
            if not write:
                if not (r or w or x):
                    raise Segv(cur, SEGV_ACCERR)
                if x and not r and not w and self._pkey_exec_only(v):
                    raise Segv(cur, SEGV_PKUERR)
            npages = self._file_pages(v)
            if npages is not None:
                eof = v.start + (npages - v.offset // PAGE) * PAGE
                if eof < hi:
                    raise Bus(max(cur, eof))
            if self.guard_used:
                self._check_guards(cur, hi)
            cur = v.end
            if cur >= end:
                return
        raise Segv(cur, SEGV_MAPERR)

    def _check_guards(self, lo: int, hi: int) -> None:
        """Guard regions (MADV_GUARD_INSTALL) live in page tables, not VMAs: ask pagemap.
        A guard marker faults with VM_FAULT_SIGSEGV (mm/memory.c handle_pte_marker()), which
        x86 reports as SEGV_MAPERR (bad_area_nosemaphore); a C probe here agrees."""
        first = lo // PAGE
        last = (hi - 1) // PAGE
        fd = os.open("/proc/self/pagemap", os.O_RDONLY)
        try:
            for base in range(first, last + 1, 512):
                cnt = min(512, last + 1 - base)
                data = os.pread(fd, cnt * 8, base * 8)
                for i, (e,) in enumerate(struct.iter_unpack("<Q", data)):
                    if e & PM_GUARD_REGION:
                        raise Segv(max(lo, (base + i) * PAGE), SEGV_MAPERR)
        finally:
            os.close(fd)

    # -- operations --

    def op_ping(self):
        return os.getpid()

    def op_info(self):
        return self.info()

    def op_mmap(self, addr, length, prot, flags, fd, offset):
        if flags & MAP_FIXED:
            self._guard("mmap", addr, length)
        r = self.libc.syscall("mmap", "mmap", addr, length, prot, flags, fd, offset)
        self._add(r, r + _page_up(length))
        if flags & MAP_TYPE in (MAP_SHARED, MAP_SHARED_VALIDATE) and flags & MAP_ANONYMOUS:
            # shmem_zero_setup(): a shmem file of exactly this size (remember it for SIGBUS)
            v = next((v for v in read_maps() if v.start <= r < v.end), None)
            if v is not None and v.inode:
                self.shmem_pages[v.inode] = _page_up(length) // PAGE
        return r

    def op_munmap(self, addr, length):
        self._guard("munmap", addr, length)
        self.libc.syscall("munmap", "munmap", addr, length)
        self._remove(addr, _page_up(addr + length))
        return 0

    def op_mprotect(self, addr, length, prot):
        self._guard("mprotect", addr, length)
        return self.libc.syscall("mprotect", "mprotect", addr, length, prot)

    def op_madvise(self, addr, length, advice):
        self._guard("madvise", addr, length)
        r = self.libc.syscall("madvise", "madvise", addr, length, advice)
        if advice == MADV_GUARD_INSTALL:
            self.guard_used = True
        return r

    def op_mremap(self, old, old_len, new_len, flags, new_addr):
        if old_len:
            self._guard("mremap", old, old_len)
        if flags & MREMAP_FIXED:
            self._guard("mremap", new_addr, new_len)
        r = self.libc.syscall("mremap", "mremap", old, old_len, new_len, flags, new_addr)
        old_hi, new_hi = old + _page_up(old_len), r + _page_up(new_len)
        if flags & MREMAP_DONTUNMAP:
            self._add(r, new_hi)
        elif r == old:
            if new_hi > old_hi:
                self._add(old_hi, new_hi)
            else:
                self._remove(new_hi, old_hi)
        else:
            self._remove(old, old_hi)
            self._add(r, new_hi)
        return r

    def op_mlock(self, addr, length):
        return self.libc.syscall("mlock", "mlock", addr, length)

    def op_mlock2(self, addr, length, flags):
        return self.libc.syscall("mlock2", "mlock2", addr, length, flags)

    def op_munlock(self, addr, length):
        return self.libc.syscall("munlock", "munlock", addr, length)

    def op_mlockall(self, flags):
        return self.libc.syscall("mlockall", "mlockall", flags)

    def op_munlockall(self):
        return self.libc.syscall("munlockall", "munlockall")

    def op_brk(self, addr):
        """Raw brk: returns the new break, or the old one when the kernel refuses."""
        if addr and self.start_brk <= addr < self.brk_floor:
            raise Unsupported(
                f"brk({addr:#x}): the break cannot go below {self.brk_floor:#x} on the host, "
                f"where the worker's own malloc heap lives (start_brk is {self.start_brk:#x})")
        r = self.libc.syscall("brk", "brk", addr)
        self.brk_cur = r
        return r

    # -- files (real paths: the driver maps the scenario's logical paths into its own dirs) --

    def op_open(self, path, flags, mode):
        return os.open(path, flags, mode)

    def op_close(self, fd):
        os.close(fd)
        return None

    def op_pread(self, fd, count, offset):
        if count < 0:
            raise OSError(22, os.strerror(22), "pread: negative count")
        if count:
            try:                      # never allocate more than the file can give
                count = max(0, min(count, os.fstat(fd).st_size - max(offset, 0)))
            except OSError:
                pass
        return os.pread(fd, count, offset)

    def op_pwrite(self, fd, data, offset):
        return os.pwrite(fd, data, offset)

    def op_ftruncate(self, fd, length):
        os.ftruncate(fd, length)
        return None

    def op_fsync(self, fd):
        os.fsync(fd)
        return None

    def op_fstat(self, fd):
        st = os.fstat(fd)
        return {"st_size": st.st_size, "st_ino": st.st_ino, "st_dev": st.st_dev,
                "st_nlink": st.st_nlink, "st_blocks": st.st_blocks}

    def op_unlink(self, path):
        os.unlink(path)
        return None

    def op_memfd_create(self, name, flags):
        return os.memfd_create(name, flags)

    def op_fcntl(self, fd, cmd, arg):
        import fcntl
        return fcntl.fcntl(fd, cmd, arg)

    def op_msync(self, addr, length, flags):
        """msync(2) changes no mapping, so it needs no guard."""
        return self.libc.syscall("msync", "msync", addr, length, flags)

    # -- SysV shared memory --

    def op_shmget(self, key, size, shmflg):
        return self.libc.syscall("shmget", "shmget", key, size, shmflg)

    def _shm_stat(self, shmid, cmd=IPC_STAT):
        buf = ctypes.create_string_buffer(SHMID64_DS.size)
        r = self.libc.syscall("shmctl", "shmctl", shmid, cmd, ctypes.addressof(buf))
        f = SHMID64_DS.unpack(buf.raw)
        out = {"shm_perm": {"key": f[0], "uid": f[1], "gid": f[2], "cuid": f[3], "cgid": f[4],
                            "mode": f[5], "seq": f[6]},
               "shm_segsz": f[10], "shm_atime": f[11], "shm_dtime": f[12], "shm_ctime": f[13],
               "shm_cpid": f[14], "shm_lpid": f[15], "shm_nattch": f[16]}
        return out, r, buf

    def op_shmat(self, shmid, addr, shmflg):
        """shmat(2). With SHM_REMAP the attach replaces what is mapped there, so the range is
        guarded like a MAP_FIXED mmap; the attached range joins the owned set."""
        if shmflg & SHM_REMAP and addr:
            lo = addr & ~(PAGE - 1) if shmflg & SHM_RND else addr
            try:
                size = self._shm_stat(shmid)[0]["shm_segsz"]
            except OSError:
                size = 0              # the shmat below fails with the kernel's errno
            if lo and size:
                self._guard("shmat", lo, size)
        r = self.libc.syscall("shmat", "shmat", shmid, addr, shmflg)
        size = self._shm_stat(shmid)[0]["shm_segsz"]
        self._add(r, r + _page_up(size))
        self.shmem_pages[shmid] = _page_up(size) // PAGE     # its inode number is the id
        return r

    def op_shmdt(self, addr):
        """shmdt(2) unmaps every VMA of the segment attached at addr; afterwards the owned set
        keeps only what is still mapped."""
        self.libc.syscall("shmdt", "shmdt", addr)
        mapped = [[v.start, v.end] for v in read_maps()]
        kept = []
        for s, e in self.owned:
            for ms, me in mapped:
                lo, hi = max(s, ms), min(e, me)
                if lo < hi:
                    kept.append([lo, hi])
        self.owned = []
        for s, e in kept:
            self._add(s, e)
        return 0

    def op_shmctl(self, shmid, cmd, buf):
        """shmctl(2) with the model's dicts: IPC_STAT/SHM_STAT/SHM_STAT_ANY return a dict shaped
        like struct shmid_ds (SHM_STAT adds "id", the system call's result); IPC_SET takes one
        (shm_perm uid, gid, mode; missing fields keep their values; None passes NULL);
        IPC_INFO and SHM_INFO return struct shminfo / shm_info as dicts; IPC_RMID, SHM_LOCK and
        SHM_UNLOCK pass NULL and return None."""
        sc = self.libc.syscall
        if cmd in (IPC_STAT, SHM_STAT, SHM_STAT_ANY):
            out, r, _ = self._shm_stat(shmid, cmd)
            if cmd != IPC_STAT:
                out["id"] = r
            return out
        if cmd == IPC_SET:
            if buf is None:
                sc("shmctl", "shmctl", shmid, cmd, 0)
                return None
            try:
                raw = bytearray(self._shm_stat(shmid)[2].raw)
            except OSError:
                raw = bytearray(SHMID64_DS.size)     # IPC_SET reports the kernel's errno
            f = list(SHMID64_DS.unpack(raw))
            perm = buf.get("shm_perm", buf)
            f[1] = perm.get("uid", f[1]) & 0xFFFFFFFF
            f[2] = perm.get("gid", f[2]) & 0xFFFFFFFF
            f[5] = perm.get("mode", f[5]) & 0xFFFFFFFF
            cbuf = ctypes.create_string_buffer(SHMID64_DS.pack(*f), SHMID64_DS.size)
            sc("shmctl", "shmctl", shmid, cmd, ctypes.addressof(cbuf))
            return None
        if cmd == IPC_INFO:
            cbuf = ctypes.create_string_buffer(SHMINFO64.size)
            sc("shmctl", "shmctl", shmid, cmd, ctypes.addressof(cbuf))
            f = SHMINFO64.unpack(cbuf.raw)
            return {"shmmax": f[0], "shmmin": f[1], "shmmni": f[2], "shmseg": f[3],
                    "shmall": f[4]}
        if cmd == SHM_INFO:
            cbuf = ctypes.create_string_buffer(SHM_INFO_S.size)
            sc("shmctl", "shmctl", shmid, cmd, ctypes.addressof(cbuf))
            f = SHM_INFO_S.unpack(cbuf.raw)
            return {"used_ids": f[0], "shm_tot": f[1], "shm_rss": f[2], "shm_swp": f[3]}
        # IPC_RMID, SHM_LOCK, SHM_UNLOCK take no buffer; anything else gets a scratch one so
        # that the kernel, not the worker, decides (an unknown command is EINVAL there)
        scratch = ctypes.create_string_buffer(SHMID64_DS.size)
        sc("shmctl", "shmctl", shmid, cmd, ctypes.addressof(scratch))
        return None

    def op_fill(self, addr, length, byte):
        self.validate(addr, length, write=True)
        if length > 0:
            ctypes.memset(addr, byte, length)
        return None

    def op_touch(self, addr, length, write):
        """One access per page: a load, or a store of the byte already there (lock xadd 0 when
        libatomic is present, so the store is the page's only access, as in the model)."""
        self.validate(addr, length, write=write)
        if length <= 0:
            return None
        end = addr + length
        if write and self.atomic_add is not None:
            f = self.atomic_add
            p = addr
            while p < end:
                f(p, 0, 5)
                p = (p | (PAGE - 1)) + 1
            return None
        mv = self.libc.view(addr, length, writable=write)
        first = mv[0]
        if write:
            mv[0] = first
        step = PAGE * TOUCH_CHUNK
        off = PAGE - (addr % PAGE)
        while off < length:
            sl = slice(off, min(length, off + step), PAGE)
            chunk = mv[sl].tobytes()
            if write:
                mv[sl] = chunk
            off += step
        return None

    def op_fork(self):
        """fork(2). Sends the child's channel first (FD_MARK + SCM_RIGHTS, or NO_FD_MARK when
        fork failed), then the answer, so that when the driver has the answer this worker
        holds nothing but its own channel."""
        parent_end, child_end = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            parent_end.close()
            child_end.close()
            self.sock.sendall(NO_FD_MARK)
            raise
        if pid == 0:
            # The child: drop the parent's channel and the driver's end of the new one.
            old = self.sock
            self.sock = child_end
            old.close()
            parent_end.close()
            send_msg(self.sock, ("ready", self.info()))   # settled: fork() may return
            return _NO_REPLY
        child_end.close()
        send_fd(self.sock, parent_end.fileno())
        parent_end.close()
        return pid

    def op_exit(self):
        send_msg(self.sock, ("ok", None))
        self.sock.close()
        os._exit(0)

    # -- the loop --

    def handle(self, req) -> None:
        op, args = req[0], req[1:]
        if op == "read":
            addr, n = args
            self.validate(addr, n, write=False)
            send_msg(self.sock, ("ok", n))
            if n > 0:
                self._stream(lambda: self.sock.sendall(self.libc.view(addr, n, writable=False)))
            return
        if op == "write":
            addr, n = args
            try:
                self.validate(addr, n, write=True)
            except BaseException:
                self._drain(n)
                raise
            if n > 0:
                self._stream(lambda: self._recv_into(self.libc.view(addr, n, writable=True), n))
            send_msg(self.sock, ("ok", None))
            return
        fn = getattr(self, "op_" + op, None)
        if fn is None:
            raise Unsupported(f"unknown request {op!r}")
        r = fn(*args)
        if r is not _NO_REPLY:
            send_msg(self.sock, ("ok", r))

    def _recv_into(self, mv: memoryview, n: int) -> None:
        got = 0
        while got < n:
            k = self.sock.recv_into(mv[got:], n - got)
            if k == 0:
                raise EOFError("channel closed")
            got += k

    @staticmethod
    def _stream(fn) -> None:
        """Move a payload between socket and mapping; a failure here leaves the byte stream out
        of step with the driver, so it ends the worker (the driver reports ProcessKilled)."""
        try:
            fn()
        except Exception:
            traceback.print_exc()
            os._exit(70)

    def _drain(self, n: int) -> None:
        view = memoryview(self.drain_buf)
        while n > 0:
            k = self.sock.recv_into(view, min(n, len(view)))
            if k == 0:
                raise EOFError("channel closed")
            n -= k

    def serve(self) -> None:
        send_msg(self.sock, ("ready", self.info()))
        while True:
            try:
                req = recv_msg(self.sock)
            except (EOFError, OSError):
                os._exit(0)
            try:
                self.handle(req)
            except (EOFError, BrokenPipeError, ConnectionError):
                os._exit(0)
            except Segv as e:
                send_msg(self.sock, ("segv", e.addr, e.code))
            except Bus as e:
                send_msg(self.sock, ("bus", e.addr, e.code))
            except Unsupported as e:
                send_msg(self.sock, ("unsupported", str(e)))
            except OSError as e:
                send_msg(self.sock, ("errno", e.errno, e.filename or str(e)))
            except Exception:
                send_msg(self.sock, ("crash", traceback.format_exc()))


_NO_REPLY = object()


# --- the reaper ----------------------------------------------------------------------------------

def worker_argv(python: str, fd: int, parent: int, reaper: bool = False,
                model_layout: bool = False, layout_top: int | None = None) -> list[str]:
    argv = [python, "-S", "-s", "-P", os.path.abspath(__file__),
            "--fd", str(fd), "--parent", str(parent)]
    argv += ["--reaper"] if reaper else []
    argv += ["--model-layout"] if model_layout else []
    return argv + (["--layout-top", str(layout_top)] if layout_top is not None else [])


class Reaper:
    """Spawn top-level workers on request; adopt and reap orphans (see the module header)."""

    def __init__(self, sock: socket.socket, libc: _Libc, no_aslr: bool,
                 model_layout: bool = False, layout_top: int | None = None,
                 ipc_ns: bool = False):
        self.sock = sock
        self.libc = libc
        self.model_layout = model_layout
        self.layout_top = layout_top
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if no_aslr:
            cur = libc.personality(0xFFFFFFFF)
            libc.personality(cur | ADDR_NO_RANDOMIZE)
        # A private SysV IPC namespace (unshare(CLONE_NEWIPC), which needs CAP_SYS_ADMIN): every
        # worker spawned from here inherits it, so the machine's segments start from id 0 with
        # the default limits, as in the model, are invisible to the rest of the host, and are
        # destroyed by the kernel when the namespace's last process exits.
        self.ipc_ns = "off"
        if ipc_ns:
            ctypes.set_errno(0)
            if libc.lib.unshare(CLONE_NEWIPC) == 0:
                self.ipc_ns = "private"
            else:
                self.ipc_ns = f"refused: {os.strerror(ctypes.get_errno())}"

    def spawn(self) -> None:
        """fork + exec a top-level worker; answer like Worker.op_fork (channel first)."""
        parent_end, child_end = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            parent_end.close()
            child_end.close()
            self.sock.sendall(NO_FD_MARK)
            raise
        if pid == 0:
            try:
                fd = child_end.fileno()
                os.set_inheritable(fd, True)
                env = dict(WORKER_ENV)
                if "PYTHONHOME" in os.environ:
                    env["PYTHONHOME"] = os.environ["PYTHONHOME"]
                os.execve(sys.executable, worker_argv(sys.executable, fd, os.getppid(),
                                                      model_layout=self.model_layout,
                                                      layout_top=self.layout_top), env)
            finally:
                os._exit(127)
        child_end.close()
        send_fd(self.sock, parent_end.fileno())
        parent_end.close()
        send_msg(self.sock, ("ok", pid))

    def serve(self) -> None:
        send_msg(self.sock, ("ready", {"pid": os.getpid(),
                                       "personality": self.libc.personality(0xFFFFFFFF),
                                       "ipc_ns": self.ipc_ns}))
        while True:
            try:
                req = recv_msg(self.sock)
            except (EOFError, OSError):
                os._exit(0)
            try:
                if req[0] == "spawn":
                    self.spawn()
                elif req[0] == "ping":
                    send_msg(self.sock, ("ok", os.getpid()))
                else:
                    send_msg(self.sock, ("unsupported", f"reaper: unknown request {req[0]!r}"))
            except (EOFError, BrokenPipeError, ConnectionError):
                os._exit(0)
            except OSError as e:
                send_msg(self.sock, ("errno", e.errno, f"spawn: {e.strerror}"))


# --- entry point --------------------------------------------------------------------------------

def main(argv: list[str]) -> None:
    fd = int(argv[argv.index("--fd") + 1])
    parent = int(argv[argv.index("--parent") + 1])
    libc = _Libc()
    # Die with the parent (the reaper dies with the driver; top-level workers with the reaper).
    # PR_SET_PDEATHSIG is cleared in forked children, which rely on end-of-file instead.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)     # children are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # ^C is the driver's business
    os.set_inheritable(fd, False)       # no exec'd worker may inherit its parent's channel
    sock = socket.socket(fileno=fd)
    top = int(argv[argv.index("--layout-top") + 1]) if "--layout-top" in argv else None
    if "--reaper" in argv:
        Reaper(sock, libc, "--no-aslr" in argv, "--model-layout" in argv, top,
               ipc_ns="--ipc-ns" in argv).serve()
    else:
        Worker(sock, libc, "--model-layout" in argv, top).serve()


if __name__ == "__main__":
    main(sys.argv)
