"""HostMachine.swapon/swapoff and their cleanup (vmlab.host.swap), marker ``host``.

What they show: a swap file the host backend adds is a real, active swap area (pages really go
to it), carries the requested priority, and is swapped off and deleted by ``swapoff``, by
``close()``, by interpreter exit and, after a process was SIGKILLed, by the next ``swapon``;
without root the call fails with a clear HostUnsupported instead. The root tests add small
(1 MiB) swap files for well under a second each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.host

if not sys.platform.startswith("linux"):
    pytest.skip("the host backend needs Linux", allow_module_level=True)

from vmlab.constants import MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE  # noqa: E402
from vmlab.host import HostMachine, HostUnsupported  # noqa: E402
from vmlab.host import swap as hswap  # noqa: E402

root = pytest.mark.skipif(hswap.why_not() is not None,
                          reason=f"adding a swap area: {hswap.why_not()}")
PAGE = 4096


def _names() -> set[str]:
    return {a["name"] for a in hswap.active_areas()}


def test_swapon_without_root_is_a_clear_refusal(monkeypatch):
    """Not root: swapon raises HostUnsupported saying why, and adds nothing."""
    monkeypatch.setattr(hswap.os, "geteuid", lambda: 1000)
    before = _names()
    with HostMachine() as m:
        with pytest.raises(HostUnsupported, match="root"):
            m.swapon("1M")
    assert _names() == before


@root
def test_swapon_adds_a_real_area_and_swapoff_removes_it():
    """The file is in /proc/swaps with the priority asked for, is mode 0600, takes pages that
    MADV_PAGEOUT sends out (pagemap bit 62), and swapoff brings them back and deletes it."""
    with HostMachine() as m:
        name = m.swapon(1 << 20, priority=7)
        area = [a for a in hswap.active_areas() if a["name"] == name]
        assert area and area[0]["priority"] == 7 and area[0]["type"] == "file"
        assert os.stat(name).st_mode & 0o777 == 0o600
        p = m.spawn()
        a = p.mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        p.fill(a, 4 * PAGE, 0x5A)
        p.madvise(a, 4 * PAGE, MADV_PAGEOUT)
        assert all(e >> 62 & 1 for e in p.pagemap(a, 4))
        m.swapoff(name)
        assert name not in _names() and not os.path.exists(name)
        assert all(e >> 63 & 1 for e in p.pagemap(a, 4))          # swapped back in
        assert p.read(a + PAGE, 2) == b"\x5a\x5a"
        with pytest.raises(OSError):
            m.swapoff(name)                                        # not ours any more


@root
def test_close_removes_the_machines_swap_files():
    """close() swaps off and deletes every swap file the machine added, even with pages on it."""
    m = HostMachine()
    try:
        names = [m.swapon(1 << 20), m.swapon(1 << 20)]
        p = m.spawn()
        a = p.mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        p.fill(a, 2 * PAGE, 1)
        p.madvise(a, 2 * PAGE, MADV_PAGEOUT)
    finally:
        m.close()
    for n in names:
        assert n not in _names() and not os.path.exists(n)
    assert not hswap.owned()


def _child(code: str) -> subprocess.CompletedProcess:
    prog = "import os, signal\nfrom vmlab.host import HostMachine\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          timeout=60)


@root
def test_interpreter_exit_removes_a_forgotten_swap_file():
    """A program that never closes its HostMachine still leaves no swap file behind (atexit)."""
    r = _child("""
        m = HostMachine()
        print(m.swapon(1 << 20), flush=True)
        # the program ends normally here: atexit hooks run
    """)
    name = r.stdout.strip()
    assert r.returncode == 0 and name, r.stderr
    assert name not in _names() and not os.path.exists(name)


@root
def test_a_killed_programs_swap_file_is_swept_by_the_next_swapon():
    """SIGKILL runs no cleanup; the next swapon (any vmlab process) removes the dead process's
    file, recognised by the pid in its name."""
    r = _child("""
        m = HostMachine()
        print(m.swapon(1 << 20), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    name = r.stdout.strip()
    assert r.returncode == -9 and name, r.stderr
    try:
        # left behind, still active -- unless another vmlab process (a parallel test worker)
        # took the lock first and swept it already, which is the same mechanism at work
        assert name in _names() or not os.path.exists(name)
        with HostMachine() as m:
            mine = m.swapon(1 << 20)
            assert name not in _names() and not os.path.exists(name)
            assert mine in _names()
        assert mine not in _names()
    finally:
        if name in _names():                                     # never leave it on
            hswap._c().swapoff(name.encode())
        if os.path.exists(name):
            os.unlink(name)


@root
def test_swap_lock_keeps_no_swap_runs_and_swap_files_apart():
    """While a no-swap run holds the lock shared, adding a swap file waits (here: times out)."""
    fd = hswap.swap_lock(shared=True)
    try:
        r = _child("""
            from vmlab.host import swap
            try:
                swap.swap_lock(shared=False, timeout=0.3)
                print("got it")
            except swap.SwapUnavailable as e:
                print("busy:", e)
        """)
        assert r.stdout.startswith("busy:"), r.stdout + r.stderr
    finally:
        hswap.release_lock(fd)
