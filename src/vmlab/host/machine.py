"""HostMachine and HostProcess: the model's public API, answered by the real kernel.

What it models
    Nothing: this is the reference the model is checked against. ``HostMachine`` offers the
    methods of ``vmlab.Machine`` that a real Linux host can carry out, with the same names,
    arguments, return values and exceptions, so one program or test runs on either backend.
    Each ``HostProcess`` is a real process (worker.py) making real system calls; ``/proc`` is
    the host's own, read for the worker's real pid.

How
    One *reaper* process per machine spawns the top-level workers and adopts orphans (see
    worker.py). Every worker is driven over its own Unix stream socket with framed pickles.
    The driver holds, per worker, the socket and a pidfd (``pidfd_open(2)``), which names the
    process without pid-reuse races: ``exit()`` waits on it, ``close()`` kills through it.

Errors, as in the model
    - a failing system call raises ``OSError`` with the host's errno
      (``vmlab.errors.syscall_error``);
    - a bad access raises ``SegmentationFault``/``BusError`` with the address and si_code, and
      touches nothing (all-or-nothing, as the model does: see worker.py);
    - a worker that dies or stops answering raises ``ProcessKilled``;
    - what the host cannot do raises ``HostUnsupported(reason)`` (not Linux; kpageflags
      without root; a scenario step that would change the worker interpreter's own memory).

Files and SysV shm
    Paths given to ``open``, ``unlink``, ``create_file`` and ``file_data`` are the model's
    logical paths. Those under /tmp/ and /dev/shm/ (tmpfs in the model) live in a private
    directory on the host's /dev/shm (tmpfs); every other path lives in a private directory on
    a disk filesystem (/tmp, else /var/tmp, whichever is not tmpfs). Both directories are made
    on first use. File descriptors are the worker's real ones (the model hands out the lowest
    free fd from 3; the host's numbers may differ). Workers share a private SysV IPC namespace
    where the host allows it (``ipc_namespace=True``, CAP_SYS_ADMIN), so segment ids start at
    0 and keys cannot collide with other programs.

Cleanup
    ``close()`` (also the context manager, a ``weakref.finalize`` and interpreter exit) kills
    every worker with SIGKILL through its pidfd, waits for each to be gone, then ends the
    reaper. Then it removes the machine's file directories and, when the workers shared the
    host's IPC namespace, the SysV segments that this machine's processes created (a private
    namespace takes its segments with it when its last process exits). Each step runs even if
    an earlier one failed. If the driver dies instead, each worker sees end-of-file on its
    socket, and the reaper and top-level workers also have PR_SET_PDEATHSIG(SIGKILL); the
    file directories are then left behind.
"""

from __future__ import annotations

import errno
import operator
import os
import posixpath
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field

from ..constants import PAGE_SIZE
from ..errors import (BusError, InvariantError, ProcessKilled, SegmentationFault, VMLabError,
                      syscall_error)
from ..units import parse_size
from . import probe
from . import swap as _swap
from . import worker as _w

ADDR_NO_RANDOMIZE = 0x0040000
_U64 = 1 << 64
_PROC_PID_FILES = ("maps", "smaps", "smaps_rollup", "status")
_PROC_GLOBAL_FILES = ("/proc/meminfo", "/proc/vmstat")
_PID_PATH = re.compile(r"/proc/(\d+)/([a-z_]+)")


class HostUnsupported(VMLabError):
    """The host cannot do this (not Linux, not root, no swap, or it would be unsafe)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self):
        return (type(self), (self.reason,))


def _arg(value, name: str) -> int:
    """An integer system-call argument: anything a C ``long`` or ``unsigned long`` can hold."""
    v = operator.index(value)
    if not -(1 << 63) <= v < _U64:
        raise OverflowError(f"{name}={value!r} does not fit in a 64-bit register")
    return v


def _count(value, name: str) -> int:
    v = operator.index(value)
    if v < 0:
        raise ValueError(f"{name} cannot be negative, got {value!r}")
    return v


@dataclass
class _Worker:
    """Driver-side record of one worker process. (o) owned by _MachineState."""
    pid: int                            # (c) the real pid
    sock: socket.socket | None          # the driver's end of the worker's channel
    pidfd: int | None                   # pidfd_open(pid), or None where unavailable
    alive: bool = True
    info: dict = field(default_factory=dict)

    def close_handles(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class _MachineState:
    """Everything close() needs, kept apart from HostMachine so a finalizer can hold it."""

    def __init__(self, timeout: float | None):
        self.timeout = timeout
        self.reaper: subprocess.Popen | None = None
        self.reaper_sock: socket.socket | None = None
        self.workers: dict[int, _Worker] = {}
        self.closed = False
        self.dirs: dict[str, str] = {}          # "disk"/"tmpfs" -> private host directory
        self.shm_ids: set[int] = set()          # ids shmget returned to this machine
        self.ipc_private = False                # the workers share a private IPC namespace
        self.swapfiles: list[str] = []          # swap files HostMachine.swapon added

    def adopt(self, pid: int, fd: int) -> _Worker:
        sock = socket.socket(fileno=fd)
        sock.settimeout(self.timeout)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        w = _Worker(pid, sock, pidfd)
        self.workers[pid] = w
        return w

    def gone(self, w: _Worker, timeout: float) -> bool:
        """Wait until the process has exited (its memory is freed by then). True if it has."""
        if w.pidfd is not None:
            p = select.poll()
            p.register(w.pidfd, select.POLLIN)
            return bool(p.poll(int(timeout * 1000)))
        deadline = _now() + timeout
        while _now() < deadline:
            try:
                with open(f"/proc/{w.pid}/stat", "rb") as fh:
                    if fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                        return True
            except FileNotFoundError:
                return True
            select.select([], [], [], 0.002)
        return False

    def kill(self, w: _Worker) -> None:
        if not w.alive:
            return
        w.alive = False
        try:
            if w.pidfd is not None:
                signal.pidfd_send_signal(w.pidfd, signal.SIGKILL)
            else:
                os.kill(w.pid, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass

    def shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        live = [w for w in self.workers.values() if w.alive]
        for w in live:
            self.kill(w)
        for w in live:
            self.gone(w, 5.0)
        for w in self.workers.values():
            w.close_handles()
        if self.reaper_sock is not None:
            self.reaper_sock.close()            # the reaper sees EOF and exits
            self.reaper_sock = None
        if self.reaper is not None:
            try:
                self.reaper.wait(5.0)
            except subprocess.TimeoutExpired:
                self.reaper.kill()
                self.reaper.wait()
        try:
            self._remove_segments()
        finally:
            for d in self.dirs.values():
                shutil.rmtree(d, ignore_errors=True)
            self.dirs.clear()
            # swap files: after the workers are gone (nothing left to swap in), and whatever
            # failed above; a file swapoff cannot remove yet stays registered for atexit
            _swap.remove_all(self.swapfiles)
            self.swapfiles = [p for p in self.swapfiles if p in _swap.owned()]

    def _remove_segments(self) -> None:
        """IPC_RMID every segment shmget returned to this machine that one of its processes
        created and that still exists (only needed in the host's own IPC namespace)."""
        if self.ipc_private or not self.shm_ids:
            return
        pids = set(self.workers)
        try:
            lines = _read_text("/proc/sysvipc/shm").splitlines()[1:]
        except OSError:
            return
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        for line in lines:
            f = line.split()
            if len(f) > 4 and int(f[1]) in self.shm_ids and int(f[4]) in pids:
                libc.shmctl(int(f[1]), 0, None)          # IPC_RMID
        self.shm_ids.clear()


def _now() -> float:
    return time.monotonic()


def _recv_fd(sock: socket.socket) -> int | None:
    """The marker byte that precedes a fork/spawn answer: the new channel, or None if fork
    failed (the errno answer follows)."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1, socket.MSG_CMSG_CLOEXEC)
    if msg == _w.NO_FD_MARK and not fds:
        return None
    if msg != _w.FD_MARK or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise EOFError("expected a passed socket")
    return fds[0]


class HostMachine:
    """The host kernel behind vmlab's Machine API.

    Model-only arguments are accepted so the same program runs on both backends:
    ``ram`` and ``swap`` are checked to be sizes and otherwise ignored (the host has the RAM
    and swap it has: see ``host_info()``); ``design`` must be ``"linux"``; ``seed`` is
    ignored (the host is not deterministic). Host-only arguments: ``no_aslr=True`` starts
    workers with personality(ADDR_NO_RANDOMIZE); ``timeout`` bounds each request (seconds);
    ``model_layout=True`` makes every spawned worker fill the holes of its mmap area with
    inert plugs at start-up, so that the scenario's mappings are stacked top-down next to each
    other as in the model and never merge with the interpreter's own (worker.py
    ``_plug_holes``; used by ``vmlab verify``); ``layout_top`` (an address: the model's first
    free address below its vdso) then also aligns that stack with the model's modulo 2 MiB.
    ``ipc_namespace=True`` (the default) puts the machine's processes in a private SysV IPC
    namespace where the host allows it (``capabilities["ipc_namespace"]`` says whether it did).
    """

    def __init__(self, ram=None, swap=None, design: str = "linux", seed=None, *,
                 no_aslr: bool = False, timeout: float | None = 120.0,
                 model_layout: bool = False, layout_top: int | None = None,
                 ipc_namespace: bool = True):
        if not sys.platform.startswith("linux"):
            raise HostUnsupported(f"the host backend needs Linux; this is {sys.platform}")
        if design != "linux":
            raise ValueError(f"design={design!r}: the host kernel is Linux; other designs exist "
                             f"only in the model")
        self.requested = {
            "ram": parse_size(ram, "ram") if ram is not None else None,
            "swap": parse_size(swap, "swap") if swap is not None else None,
            "seed": seed,
        }
        self.no_aslr = bool(no_aslr)
        self.model_layout = bool(model_layout)
        self.layout_top = None if layout_top is None else _count(layout_top, "layout_top")
        self.ipc_namespace = bool(ipc_namespace)
        self._drain_fallback: str | None = None
        self._state = _MachineState(timeout)
        self._finalizer = weakref.finalize(self, _MachineState.shutdown, self._state)
        self.capabilities = probe.capabilities()
        self.capabilities["no_aslr"] = self.no_aslr
        self.capabilities["ipc_namespace"] = False
        self._procs: dict[int, HostProcess] = {}
        try:
            self._start_reaper()
        except BaseException:
            self.close()
            raise

    # -- life cycle --

    def _start_reaper(self) -> None:
        st = self._state
        ours, theirs = socket.socketpair()
        argv = _w.worker_argv(sys.executable, theirs.fileno(), os.getpid(), reaper=True,
                              model_layout=self.model_layout, layout_top=self.layout_top)
        if self.no_aslr:
            argv.append("--no-aslr")
        if self.ipc_namespace:
            argv.append("--ipc-ns")
        env = dict(_w.WORKER_ENV)
        if "PYTHONHOME" in os.environ:
            env["PYTHONHOME"] = os.environ["PYTHONHOME"]
        try:
            st.reaper = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            theirs.close()
        ours.settimeout(st.timeout)
        st.reaper_sock = ours
        try:
            kind, info = _w.recv_msg(ours)
        except (EOFError, OSError) as e:
            raise HostUnsupported(f"the host worker did not start ({e})") from None
        if kind != "ready":
            raise HostUnsupported(f"the host worker did not start: {info!r}")
        if self.no_aslr and not info["personality"] & ADDR_NO_RANDOMIZE:
            raise HostUnsupported("personality(ADDR_NO_RANDOMIZE) was refused on this host")
        st.ipc_private = info.get("ipc_ns") == "private"
        self.capabilities["ipc_namespace"] = st.ipc_private

    def close(self) -> None:
        """Kill and reap every worker, then the reaper. Safe to call twice."""
        self._finalizer()
        for p in self._procs.values():
            p._w.alive = False
        self._procs.clear()

    def __enter__(self) -> "HostMachine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HostMachine(no_aslr={self.no_aslr!r})"

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def processes(self) -> list["HostProcess"]:
        """The live processes, in pid order."""
        return [p for _, p in sorted(self._procs.items()) if p.alive]

    # -- processes --

    def spawn(self) -> "HostProcess":
        """A new process: a fresh exec of the worker (an interpreter, so not an empty mm)."""
        st = self._state
        if st.closed:
            raise ValueError("spawn on a closed HostMachine")
        try:
            _w.send_msg(st.reaper_sock, ("spawn",))
            fd = _recv_fd(st.reaper_sock)
            reply = _w.recv_msg(st.reaper_sock)
        except (EOFError, OSError) as e:
            raise RuntimeError(f"the host backend's reaper process failed ({e!r})") from None
        if fd is None:
            _raise(reply, None)             # fork failures come back as OSError(errno)
            raise RuntimeError(f"the reaper answered {reply!r} without a channel")
        pid = _raise(reply, None)
        w = st.adopt(pid, fd)
        try:
            kind, info = _w.recv_msg(w.sock)
        except (EOFError, OSError) as e:
            st.kill(w)
            raise ProcessKilled(pid, f"worker failed to start ({e!r})") from None
        w.info = info
        return self._register(w, parent=None)

    def _register(self, w: _Worker, parent: "HostProcess | None") -> "HostProcess":
        p = HostProcess(self, w, parent)
        self._procs[w.pid] = p
        return p

    def check(self) -> None:
        """The model recounts itself here; on the host, check that every worker answers."""
        bad = []
        for p in self.processes:
            try:
                if p._call("ping") != p.pid:
                    bad.append(f"pid {p.pid}: answered with the wrong pid")
            except ProcessKilled as e:
                bad.append(str(e))
        if bad:
            raise InvariantError(bad)

    def drain(self) -> str:
        """Empty the per-CPU folio batches of every CPU (mm/swap.c lru_add_drain_all()), so
        that /proc shows the settled state the model shows (docs/notes/procfs.md §0): pages on
        their LRU, MADV_FREE'd pages lazy-free, munlock-on-unmap done. Returns how it drained.

        The way: ``migrate_pages(0, maxnode, nodes, nodes)`` with the same node set on both
        sides. kernel_migrate_pages() -> do_migrate_pages() starts with lru_add_drain_all(),
        then finds nothing to move (every node maps to itself); about 0.1 ms here. Where that
        system call is missing (no CONFIG_NUMA/CONFIG_MIGRATION) or refused, each live worker
        locks and unlocks a scratch page on every CPU it may run on (worker.py ``op_drain``).
        """
        if self._drain_fallback is None:
            err = _migrate_pages_drain()
            if err is None:
                return "migrate_pages"
            self._drain_fallback = err
        for p in self.processes:
            p._call("drain")
        return f"mlock/munlock on every CPU ({self._drain_fallback})"

    # -- files --

    def _dir(self, kind: str) -> str:
        """The machine's private directory of one kind ("disk" or "tmpfs"), made on first use."""
        st = self._state
        if st.closed:
            raise ValueError("file access on a closed HostMachine")
        d = st.dirs.get(kind)
        if d is None:
            if kind == "tmpfs":
                d = tempfile.mkdtemp(prefix="vmlab-", dir=_tmpfs_base())
            else:
                d = tempfile.mkdtemp(prefix="vmlab-host-", dir=_disk_base())
            st.dirs[kind] = d
        return d

    def host_path(self, path: str) -> str:
        """The real path on this host of a logical path of the scenario. Paths under /tmp/ and
        /dev/shm/ go to the machine's tmpfs directory, all others to its disk directory; the
        parent directories are made (the model's directories are implicit)."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise syscall_error(errno.ENOENT, f"{path!r}: use an absolute path")
        norm = posixpath.normpath(path).lstrip("/")
        if not norm:
            raise syscall_error(errno.EISDIR, f"{path!r} is a directory")
        kind = "tmpfs" if path.startswith(_TMPFS_PREFIXES) else "disk"
        real = os.path.join(self._dir(kind), norm)
        os.makedirs(os.path.dirname(real), exist_ok=True)
        return real

    def create_file(self, path: str, data: bytes | int = 0) -> None:
        """Put a file on the machine (scenario set-up): ``data`` is its contents, or a size in
        bytes of zeros (a sparse file). FileExistsError if it exists. A disk file is written
        back and its pages dropped from the page cache (fsync, POSIX_FADV_DONTNEED), so that,
        as in the model, its pages start on the disk."""
        real = self.host_path(path)
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if isinstance(data, int):
                os.ftruncate(fd, _count(data, "size"))
            else:
                view = memoryview(data).cast("B")
                done = 0
                while done < view.nbytes:
                    done += os.write(fd, view[done:])
            if not path.startswith(_TMPFS_PREFIXES):
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def unlink(self, path: str) -> None:
        """unlink(2) of a logical path."""
        try:
            os.unlink(self.host_path(path))
        except OSError as e:
            raise syscall_error(e.errno, f"unlink: {path}") from None

    def file_data(self, path: str) -> bytes:
        """The file's contents as a reader sees them now."""
        try:
            with open(self.host_path(path), "rb") as fh:
                return fh.read()
        except OSError as e:
            raise syscall_error(e.errno, f"file_data: {path}") from None

    # -- swap --

    def swapon(self, size, priority: int | None = None, name: str | None = None) -> str:
        """Add a real swap area of ``size`` (a size string or bytes) to the host, as the model's
        ``Machine.swapon`` adds one to the simulated machine: a swap file on a disk
        filesystem, 0600, mkswap, swapon(2) (host/swap.py). Returns its name in /proc/swaps,
        for ``swapoff``. ``name`` (the model's label) is ignored. Removed at ``close()`` and at
        interpreter exit. Not root, or no mkswap: ``HostUnsupported`` with the reason. The area
        is machine-wide: every process on the host may swap while it is on."""
        if self._state.closed:
            raise ValueError("swapon on a closed HostMachine")
        nbytes = parse_size(size, "swap size") if isinstance(size, str) else _count(size, "size")
        try:
            path = _swap.add_swapfile(_disk_base(), nbytes, priority)
        except _swap.SwapUnavailable as e:
            raise HostUnsupported(str(e)) from None
        self._state.swapfiles.append(path)
        self.capabilities["swap"] = True
        return path

    def swapoff(self, name: str) -> None:
        """swapoff(2) of an area this machine's ``swapon`` added (its pages come back into
        memory), then delete its file. EINVAL for any other area."""
        st = self._state
        if name not in st.swapfiles:
            raise syscall_error(errno.EINVAL, f"swapoff: {name!r} is not a swap area this "
                                "HostMachine added")
        _swap.remove_swapfile(name)
        st.swapfiles.remove(name)
        self.capabilities["swap"] = any(a for a in _swap.active_areas())

    # -- introspection --

    def procfs(self, path: str) -> str:
        """The host's text for /proc/PID/{maps,smaps,smaps_rollup,status} of one of this
        machine's processes, or /proc/meminfo, /proc/vmstat."""
        if path in _PROC_GLOBAL_FILES:
            return _read_text(path)
        m = _PID_PATH.fullmatch(path)
        if m and m.group(2) in _PROC_PID_FILES:
            pid = int(m.group(1))
            p = self._procs.get(pid)
            if p is not None and p.alive:
                return _read_text(path)
        raise syscall_error(errno.ENOENT, f"procfs: {path}: not a file this machine shows")

    def _kpage(self, name: str, pfn) -> int:
        if not self.capabilities.get(name):
            raise HostUnsupported(f"/proc/{name} is not readable here (it needs root, "
                                  f"CAP_SYS_ADMIN)")
        pfn = _count(pfn, "pfn")
        fd = os.open(f"/proc/{name}", os.O_RDONLY)
        try:
            data = os.pread(fd, 8, pfn * 8)
        finally:
            os.close(fd)
        if len(data) != 8:
            raise syscall_error(errno.EINVAL, f"{name}: pfn {pfn:#x} is beyond the host's max_pfn")
        return int.from_bytes(data, "little")

    def kpagecount(self, pfn: int) -> int:
        """/proc/kpagecount[pfn] (root only): the page's mapcount as fs/proc/page.c reports it."""
        return self._kpage("kpagecount", pfn)

    def kpageflags(self, pfn: int) -> int:
        """/proc/kpageflags[pfn] (root only): KPF_* bits (vmlab.constants)."""
        return self._kpage("kpageflags", pfn)

    def host_info(self) -> dict:
        """Kernel release, page size, THP and overcommit settings, RAM and swap of the host."""
        return probe.host_info()


class HostProcess:
    """One real process behind the model's Process API. ``pid`` is the real pid."""

    def __init__(self, machine: HostMachine, w: _Worker, parent: "HostProcess | None"):
        self.machine = machine
        self._w = w
        self.pid = w.pid
        self.parent = parent

    def __repr__(self) -> str:
        return f"<HostProcess pid={self.pid} {'alive' if self.alive else 'exited'}>"

    @property
    def alive(self) -> bool:
        return self._w.alive and not self.machine._state.closed

    # -- the channel --

    def _dead(self, reason: str) -> ProcessKilled:
        self.machine._state.kill(self._w)
        self._w.close_handles()
        return ProcessKilled(self.pid, reason)

    def _send(self, req, payload: memoryview | None = None) -> None:
        if not self.alive:
            raise ProcessKilled(self.pid, "the process has exited")
        try:
            _w.send_msg(self._w.sock, req)
            if payload is not None and payload.nbytes:
                self._w.sock.sendall(payload)
        except TimeoutError:
            raise self._dead(f"no answer within {self.machine._state.timeout}s; killed") from None
        except OSError as e:
            raise self._dead(f"worker gone ({e.strerror or e})") from None

    def _recv(self):
        try:
            return _w.recv_msg(self._w.sock)
        except TimeoutError:
            raise self._dead(f"no answer within {self.machine._state.timeout}s; killed") from None
        except (EOFError, OSError) as e:
            raise self._dead(f"worker died ({e})") from None

    def _call(self, op: str, *args, payload: memoryview | None = None):
        self._send((op, *args), payload)
        return _raise(self._recv(), self.pid)

    # -- system calls --

    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int = -1,
             offset: int = 0) -> int:
        """mmap(2); returns the address. ``fd`` is a descriptor of the worker process."""
        return self._call("mmap", _arg(addr, "addr"), _arg(length, "length"), _arg(prot, "prot"),
                          _arg(flags, "flags"), _arg(fd, "fd"), _arg(offset, "offset"))

    def munmap(self, addr: int, length: int) -> int:
        return self._call("munmap", _arg(addr, "addr"), _arg(length, "length"))

    def mprotect(self, addr: int, length: int, prot: int) -> int:
        return self._call("mprotect", _arg(addr, "addr"), _arg(length, "length"),
                          _arg(prot, "prot"))

    def mremap(self, old_addr: int, old_size: int, new_size: int, flags: int = 0,
               new_addr: int = 0) -> int:
        """mremap(2) with all five arguments; returns the (possibly new) address."""
        return self._call("mremap", _arg(old_addr, "old_addr"), _arg(old_size, "old_size"),
                          _arg(new_size, "new_size"), _arg(flags, "flags"),
                          _arg(new_addr, "new_addr"))

    def madvise(self, addr: int, length: int, advice: int) -> int:
        return self._call("madvise", _arg(addr, "addr"), _arg(length, "length"),
                          _arg(advice, "advice"))

    def mlock(self, addr: int, length: int) -> int:
        return self._call("mlock", _arg(addr, "addr"), _arg(length, "length"))

    def mlock2(self, addr: int, length: int, flags: int = 0) -> int:
        return self._call("mlock2", _arg(addr, "addr"), _arg(length, "length"),
                          _arg(flags, "flags"))

    def munlock(self, addr: int, length: int) -> int:
        return self._call("munlock", _arg(addr, "addr"), _arg(length, "length"))

    def mlockall(self, flags: int) -> int:
        return self._call("mlockall", _arg(flags, "flags"))

    def munlockall(self) -> int:
        return self._call("munlockall")

    def brk(self, addr: int) -> int:
        """The raw brk system call: returns the new break (brk(0): the current one); on failure
        the old break. The host's first break sits above the worker's own malloc heap."""
        return self._call("brk", _arg(addr, "addr"))

    def msync(self, addr: int, length: int, flags: int) -> None:
        """msync(2): MS_ASYNC, MS_SYNC, MS_INVALIDATE."""
        self._call("msync", _arg(addr, "addr"), _arg(length, "length"), _arg(flags, "flags"))

    # -- files (logical paths; fds are the worker's own) --

    def open(self, path: str, flags: int = 0, mode: int = 0o644) -> int:
        """open(2) of a logical path (HostMachine.host_path); returns the worker's fd."""
        return self._call("open", self.machine.host_path(path), operator.index(flags),
                          operator.index(mode))

    def close(self, fd: int) -> None:
        self._call("close", operator.index(fd))

    def memfd_create(self, name: str, flags: int = 0) -> int:
        """memfd_create(2) in the worker; returns its fd."""
        return self._call("memfd_create", str(name), operator.index(flags))

    def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        """fcntl(2) in the worker (the model implements the seal commands)."""
        return self._call("fcntl", operator.index(fd), operator.index(cmd), operator.index(arg))

    def pread(self, fd: int, count: int, offset: int) -> bytes:
        """pread(2): up to ``count`` bytes at ``offset`` (fewer at end of file)."""
        return self._call("pread", operator.index(fd), operator.index(count),
                          operator.index(offset))

    def pwrite(self, fd: int, data, offset: int) -> int:
        """pwrite(2): returns the bytes written."""
        return self._call("pwrite", operator.index(fd), bytes(data), operator.index(offset))

    def ftruncate(self, fd: int, length: int) -> None:
        self._call("ftruncate", operator.index(fd), operator.index(length))

    def fsync(self, fd: int) -> None:
        self._call("fsync", operator.index(fd))

    def fstat(self, fd: int) -> dict:
        """fstat(2): st_size, st_ino, st_dev, st_nlink, st_blocks (the model's fields)."""
        return self._call("fstat", operator.index(fd))

    def unlink(self, path: str) -> None:
        """unlink(2) of a logical path, made by this process."""
        self._call("unlink", self.machine.host_path(path))

    # -- SysV shared memory --

    def shmget(self, key: int, size: int, shmflg: int) -> int:
        """shmget(2); the id is remembered so that close() can remove the segment."""
        shmid = self._call("shmget", _arg(key, "key"), _arg(size, "size"), _arg(shmflg, "shmflg"))
        self.machine._state.shm_ids.add(shmid)
        return shmid

    def shmat(self, shmid: int, addr: int = 0, shmflg: int = 0) -> int:
        """shmat(2); returns the address."""
        return self._call("shmat", _arg(shmid, "shmid"), _arg(addr, "addr"),
                          _arg(shmflg, "shmflg"))

    def shmdt(self, addr: int) -> None:
        self._call("shmdt", _arg(addr, "addr"))

    def shmctl(self, shmid: int, cmd: int, buf: dict | None = None):
        """shmctl(2) with the model's dicts: IPC_STAT (and SHM_STAT, which adds "id") returns
        one shaped like struct shmid_ds; IPC_SET takes one; IPC_INFO and SHM_INFO return
        dicts; IPC_RMID, SHM_LOCK, SHM_UNLOCK return None."""
        return self._call("shmctl", _arg(shmid, "shmid"), _arg(cmd, "cmd"), buf)

    # -- memory contents --

    def read(self, addr: int, length: int) -> bytes:
        addr, length = _count(addr, "addr"), _count(length, "length")
        self._send(("read", addr, length))
        n = _raise(self._recv(), self.pid)
        try:
            return _w.recv_exact(self._w.sock, n)
        except TimeoutError:
            raise self._dead(f"no answer within {self.machine._state.timeout}s; killed") from None
        except (EOFError, OSError) as e:
            raise self._dead(f"worker died ({e})") from None

    def write(self, addr: int, data) -> None:
        view = memoryview(data).cast("B")
        self._call("write", _count(addr, "addr"), view.nbytes, payload=view)

    def fill(self, addr: int, length: int, byte: int) -> None:
        """memset(addr, byte, length): one store per byte, so each page takes a write fault."""
        byte = operator.index(byte)
        if not 0 <= byte <= 255:
            raise ValueError(f"fill: byte must be 0..255, got {byte!r}")
        self._call("fill", _count(addr, "addr"), _count(length, "length"), byte)

    def touch(self, addr: int, length: int, write: bool = False) -> None:
        """One access per page of [addr, addr+length): a load, or a store of the byte already
        there (a single ``lock xadd $0`` where libatomic exists, else a load then a store)."""
        self._call("touch", _count(addr, "addr"), _count(length, "length"), bool(write))

    # -- processes --

    def fork(self) -> "HostProcess":
        """fork(2) of the real process; returns the child's handle."""
        self._send(("fork",))
        try:
            fd = _recv_fd(self._w.sock)
        except TimeoutError:
            raise self._dead(f"no answer within {self.machine._state.timeout}s; killed") from None
        except (EOFError, OSError) as e:
            raise self._dead(f"fork: lost the child's channel ({e})") from None
        reply = self._recv()
        if fd is None:
            _raise(reply, self.pid)
            raise self._dead(f"fork: answer {reply!r} without a channel")
        if reply[0] != "ok":
            os.close(fd)
        pid = _raise(reply, self.pid)
        st = self.machine._state
        w = st.adopt(pid, fd)
        try:
            _ready, w.info = _w.recv_msg(w.sock)   # the child has dropped its parent's channel
        except (EOFError, OSError) as e:
            st.kill(w)
            w.close_handles()
            raise ProcessKilled(pid, f"forked child failed to start ({e!r})") from None
        return self.machine._register(w, parent=self)

    def exit(self) -> None:
        """exit(2): the process ends; returns once it is gone (its memory freed, reaped)."""
        self._call("exit")
        st = self.machine._state
        self._w.alive = False
        if not st.gone(self._w, 10.0):
            st.kill(self._w)
            st.gone(self._w, 5.0)
        self._w.close_handles()

    # -- introspection --

    def pagemap(self, addr: int, npages: int) -> list[int]:
        """Raw 64-bit /proc/PID/pagemap entries for npages pages from addr (pfn bits are zero
        unless the driver has CAP_SYS_ADMIN)."""
        addr, npages = _count(addr, "addr"), _count(npages, "npages")
        if not self.alive:
            raise ProcessKilled(self.pid, "the process has exited")
        fd = os.open(f"/proc/{self.pid}/pagemap", os.O_RDONLY)
        try:
            data = b""
            want = npages * 8
            off = (addr // PAGE_SIZE) * 8
            while len(data) < want:
                chunk = os.pread(fd, want - len(data), off + len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - 7, 8)]


def _raise(reply, pid: int | None):
    """Turn a worker's answer into a value or the exception the model would raise."""
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "errno":
        raise syscall_error(reply[1], f"{reply[2]}: the host kernel returned "
                                      f"{errno.errorcode.get(reply[1], reply[1])}")
    if kind == "segv":
        raise SegmentationFault(reply[1], reply[2], pid)
    if kind == "bus":
        raise BusError(reply[1], reply[2], pid)
    if kind == "unsupported":
        raise HostUnsupported(reply[1])
    if kind == "crash":
        raise RuntimeError(f"host worker {pid} failed:\n{reply[1]}")
    raise RuntimeError(f"host worker {pid}: unexpected answer {reply!r}")


_MIGRATE_PAGES = {"x86_64": 256, "aarch64": 238}


def _node_mask() -> int:
    """The nodes with memory (/sys/devices/system/node/has_memory, e.g. "0" or "0-1")."""
    try:
        text = _read_text("/sys/devices/system/node/has_memory").strip()
    except OSError:
        return 1
    mask = 0
    for part in text.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            mask |= 1 << n
    return mask or 1


def _migrate_pages_drain() -> str | None:
    """lru_add_drain_all() through migrate_pages(2) of the driver itself onto the nodes it is
    already on. None on success, else why not."""
    import ctypes
    import platform
    nr = _MIGRATE_PAGES.get(platform.machine())
    if nr is None:
        return f"no migrate_pages number for {platform.machine()}"
    mask = _node_mask()
    nbits = max(64, mask.bit_length() + 1)
    words = (nbits + 63) // 64
    arr = (ctypes.c_ulong * words)(*[(mask >> (64 * i)) & (_U64 - 1) for i in range(words)])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_ulong(words * 64 + 1),
                     arr, arr)
    if r < 0:
        e = ctypes.get_errno()
        return f"migrate_pages: {errno.errorcode.get(e, e)}"
    return None


_TMPFS_PREFIXES = ("/tmp/", "/dev/shm/")     # the model's tmpfs paths (mm/fs.py)


def _fs_type(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (longest mount point in
    /proc/self/mounts that is a prefix of it)."""
    best, kind = "", ""
    try:
        text = _read_text("/proc/self/mounts")
    except OSError:
        return ""
    real = os.path.realpath(path)
    for line in text.splitlines():
        f = line.split()
        if len(f) < 3:
            continue
        mnt = f[1].replace("\\040", " ")
        if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, kind = mnt, f[2]
    return kind


def _tmpfs_base() -> str:
    """Where the machine's tmpfs files go: /dev/shm (tmpfs on Linux)."""
    for d in ("/dev/shm", "/run/shm"):
        if os.path.isdir(d) and os.access(d, os.W_OK) and _fs_type(d) == "tmpfs":
            return d
    raise HostUnsupported("no writable tmpfs (/dev/shm) for the model's /tmp and /dev/shm files")


def _disk_base() -> str:
    """Where the machine's disk files go: the first of /tmp, /var/tmp, the temp dir that is
    writable and not a memory filesystem."""
    for d in ("/tmp", "/var/tmp", tempfile.gettempdir()):
        if os.path.isdir(d) and os.access(d, os.W_OK) and \
                _fs_type(d) not in ("tmpfs", "ramfs", ""):
            return d
    raise HostUnsupported("no writable disk directory (/tmp or /var/tmp on a disk filesystem)")


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()
