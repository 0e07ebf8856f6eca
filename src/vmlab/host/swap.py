"""Temporary swap files on the host: what ``HostMachine.swapon``/``swapoff`` do.

The model's ``Machine.swapon(size, priority)`` adds a swap area to the simulated machine. On
the host the same call makes a real swap area the way an administrator would (mm/swapfile.c
``SYSCALL_DEFINE2(swapon)``, man 8 mkswap "Files with holes"):

    1. create ``DIR/vmlab-swap-<pid>-<n>`` with mode 0600 on a disk filesystem (swapon refuses
       tmpfs; ``claim_swapfile()``/``setup_swap_extents()`` need a block-mapped file);
    2. allocate every block (``posix_fallocate``; a file that still has holes is written with
       zeros instead, as ``dd`` would);
    3. write the swap header (``mkswap``);
    4. ``swapon(2)``, with ``SWAP_FLAG_PREFER | prio`` when a priority is given
       (include/linux/swap.h).

``swapoff`` is ``swapoff(2)`` (``try_to_unuse()`` brings every page back) and removes the file.

Nothing may stay behind: a swap area outlives the process that added it. So

* every file this process adds is in a registry, and an ``atexit`` hook swaps off and removes
  whatever is still there when the interpreter exits;
* ``HostMachine.close()`` (also its context manager and finalizer) swaps off the machine's own;
* a process killed outright (SIGKILL) runs neither: the next ``swapon`` from any vmlab process
  first sweeps ``/proc/swaps`` for ``vmlab-swap-<pid>-*`` files whose pid is gone and removes
  them (``sweep_stale()``), holding the swap lock, before it adds its own.

Swap areas are machine-wide in both directions: pages of *any* process may be written to any
active area (the highest priority first), and ``swapoff`` of an area brings back every page on
it, whoever owns it (mm/swapfile.c ``try_to_unuse()``). So one vmlab process's swap file must
never come or go while another vmlab run relies on its own pages staying swapped out: the
exclusive lock serialises the processes that add swap files.

A swap area is machine-wide: while one is on, every process on the host may swap. Runs that
need the host to have *no* swap (``vmlab verify`` scenarios that page out without swap) and
runs that add one therefore take one lock file in opposite modes (``swap_lock()``): adding a
swap area holds it exclusively until the area is gone, a no-swap run holds it shared.

Needs root (CAP_SYS_ADMIN) and ``mkswap`` (util-linux); otherwise ``HostUnsupported`` says so.
Imports nothing from the model.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from ..errors import VMLabError, syscall_error

PAGE = 4096
SWAP_FLAG_PREFER = 0x8000           # include/linux/swap.h
SWAP_FLAG_PRIO_MASK = 0x7FFF
MIN_SWAP_PAGES = 10                 # mkswap refuses fewer (util-linux: "swap space needs to be
                                    # at least 40 KiB")
_NAME = re.compile(r"vmlab-swap-(\d+)-\d+$")
LOCK_NAME = "vmlab-swap.lock"


class SwapUnavailable(VMLabError):
    """The host cannot add a swap area (not root, no mkswap, no disk filesystem)."""


_lock = threading.Lock()
_active: set[str] = set()           # swap files this process added and has not removed
_held = [None]                      # fd of the exclusive swap lock while _active is not empty
_seq = [0]
_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.swapon.argtypes = (ctypes.c_char_p, ctypes.c_int)
        _libc.swapoff.argtypes = (ctypes.c_char_p,)
    return _libc


def why_not() -> str | None:
    """Why this process cannot add a swap file, or None if it can."""
    if not os.path.exists("/proc/swaps"):
        return "the host has no /proc/swaps (not Linux, or CONFIG_SWAP is off)"
    if os.geteuid() != 0:
        return "adding a swap area needs root (CAP_SYS_ADMIN for swapon(2))"
    if shutil.which("mkswap") is None:
        return "mkswap (util-linux) is not installed"
    return None


def active_areas() -> list[dict]:
    """/proc/swaps as dicts: name, type, size_kb, used_kb, priority."""
    out = []
    try:
        with open("/proc/swaps") as fh:
            lines = fh.read().splitlines()[1:]
    except OSError:
        return out
    for ln in lines:
        f = ln.split()
        if len(f) >= 5:
            out.append({"name": f[0].replace("\\040", " "), "type": f[1], "size_kb": int(f[2]),
                        "used_kb": int(f[3]), "priority": int(f[4])})
    return out


def _lock_path() -> str:
    return os.path.join(tempfile.gettempdir(), LOCK_NAME)


def swap_lock(shared: bool, timeout: float = 300.0) -> int:
    """Take the host-wide swap lock (flock): exclusive while this process adds a swap area,
    shared while a run relies on the host having none. Returns the fd; release_lock() it."""
    fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, mode)
            return fd
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN) or time.monotonic() > deadline:
                os.close(fd)
                raise SwapUnavailable(f"the vmlab swap lock {_lock_path()} stayed busy "
                                      f"({'a swap file is on' if shared else 'a no-swap run is going'})")
            time.sleep(0.05)


def release_lock(fd: int | None) -> None:
    if fd is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """swapoff and remove vmlab swap files whose creating process is gone (it was killed
    before its atexit hook ran). Returns the paths removed."""
    gone = []
    for a in active_areas():
        m = _NAME.search(a["name"])
        if not m or a["name"] in _active:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if _c().swapoff(a["name"].encode()) == 0 or ctypes.get_errno() == errno.EINVAL:
            try:
                os.unlink(a["name"])
            except OSError:
                pass
            gone.append(a["name"])
    return gone


def _allocate(path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)                    # whatever the umask: swapon warns otherwise
        try:
            os.posix_fallocate(fd, 0, size)
            ok = os.fstat(fd).st_blocks * 512 >= size
        except OSError:
            ok = False
        if not ok:                              # no fallocate here: write every block
            os.ftruncate(fd, 0)
            zeros = bytes(1 << 20)
            left = size
            while left:
                left -= os.write(fd, zeros[:min(left, len(zeros))])
        os.fsync(fd)
    finally:
        os.close(fd)


def add_swapfile(directory: str, size: int, priority: int | None = None) -> str:
    """Create, format and enable a swap file of ``size`` bytes (rounded up to pages) in
    ``directory``; returns its path (its name in /proc/swaps)."""
    why = why_not()
    if why:
        raise SwapUnavailable(why)
    size = max(MIN_SWAP_PAGES, (int(size) + PAGE - 1) // PAGE) * PAGE
    flags = 0
    if priority is not None:
        if not 0 <= int(priority) <= SWAP_FLAG_PRIO_MASK:
            raise syscall_error(errno.EINVAL, f"swapon: priority {priority} out of 0..32767")
        flags = SWAP_FLAG_PREFER | (int(priority) & SWAP_FLAG_PRIO_MASK)
    with _lock:
        if _held[0] is None:                    # one exclusive lock for all of this process's
            _held[0] = swap_lock(shared=False)  # files (flock conflicts between two fds)
        # under the lock: a dead process's file must go before ours is added, or our pages
        # could be written to it and then pulled back in by whoever swaps it off later
        sweep_stale()
        while True:                             # never reuse a name (pid reuse, leftovers)
            _seq[0] += 1
            path = os.path.join(directory, f"vmlab-swap-{os.getpid()}-{_seq[0]}")
            if not os.path.lexists(path):
                break
        _active.add(path)
    try:
        _allocate(path, size)
        r = subprocess.run(["mkswap", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode:
            raise SwapUnavailable(f"mkswap {path} failed: {r.stderr.strip()}")
        if _c().swapon(path.encode(), flags) != 0:
            e = ctypes.get_errno()
            raise syscall_error(e, f"swapon {path}")
    except BaseException:
        _discard(path)
        raise
    return path


def _discard(path: str) -> None:
    """Remove a registered file that is not (or no longer) an active swap area."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    finally:
        with _lock:
            _active.discard(path)
            lock = None
            if not _active:
                lock, _held[0] = _held[0], None
        release_lock(lock)


def remove_swapfile(path: str) -> None:
    """swapoff(2) one of this process's swap files and delete it. ENOMEM (the pages do not
    fit in memory) leaves it on and registered."""
    if path not in _active:
        raise syscall_error(errno.EINVAL, f"swapoff: {path} is not a swap file vmlab added")
    if _c().swapoff(path.encode()) != 0:
        e = ctypes.get_errno()
        if e != errno.EINVAL:                   # EINVAL: it is not on (any more)
            raise syscall_error(e, f"swapoff {path}")
    _discard(path)


def remove_all(paths=None) -> list[str]:
    """Remove the given swap files (default: every one this process added); errors are
    collected, not raised, so that one failure does not leave the others on."""
    failed = []
    for p in list(_active if paths is None else paths):
        if p not in _active:
            continue
        try:
            remove_swapfile(p)
        except Exception as e:                  # keep going: the others must still go
            failed.append(f"{p}: {e}")
    return failed


def owned() -> list[str]:
    return list(_active)


atexit.register(remove_all)
