"""Tests of vmlab.host, the real-kernel backend: what the host kernel answers through it.

These run real processes on this machine (marked ``host``; skipped where not Linux). Parts
that need page frame numbers or /proc/kpageflags skip themselves unless run as root. Each test
says what behaviour of Linux it shows, so the same assertions can later be run on the model.
"""

from __future__ import annotations

import errno
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("the host backend needs Linux", allow_module_level=True)

from vmlab.constants import (KPF_ZERO_PAGE, MADV_DONTNEED, MADV_GUARD_INSTALL, MAP_ANONYMOUS,
                             MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED,
                             MLOCK_ONFAULT, MREMAP_MAYMOVE, PAGE_SIZE as P, PM_FILE,
                             PM_GUARD_REGION, PM_MMAP_EXCLUSIVE, PM_PFRAME_MASK, PM_PRESENT,
                             PM_SWAP, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, SEGV_ACCERR,
                             SEGV_MAPERR)
from vmlab.errors import BusError, ProcessKilled, SegmentationFault
from vmlab.host import HostMachine, HostUnsupported

pytestmark = pytest.mark.host

RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


@pytest.fixture
def m():
    with HostMachine() as machine:
        yield machine


@pytest.fixture
def p(m):
    return m.spawn()


def isolated(p, npages: int, prot: int = RW, flags: int = ANON) -> int:
    """Map npages between two PROT_NONE guard pages so the VMA cannot merge with a neighbour;
    return its start."""
    base = p.mmap(0, (npages + 2) * P, PROT_NONE, ANON)
    return p.mmap(base + P, npages * P, prot, flags | MAP_FIXED)


def smaps_entry(m, pid: int, start: int) -> dict[str, str]:
    """The smaps fields of the VMA that starts at ``start`` (header line included as 'range')."""
    fields: dict[str, str] = {}
    inside = False
    for line in m.procfs(f"/proc/{pid}/smaps").splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and ":" not in head:
            inside = int(head.split("-")[0], 16) == start
            if inside:
                fields["range"] = line
            continue
        if inside:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def present(e: int) -> bool:
    return bool(e & PM_PRESENT)


def pfn(e: int) -> int:
    return e & PM_PFRAME_MASK


def exited(pid: int) -> bool:
    """No process with this pid exists any more (not even a zombie)."""
    return not os.path.exists(f"/proc/{pid}")


def dead(pid: int) -> bool:
    """The process has exited (it may still wait to be reaped by a parent we do not control)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True


# --- contents -----------------------------------------------------------------------------------

def test_mmap_write_read_round_trip(p):
    """Bytes written into a private anonymous mapping read back; untouched bytes read zero."""
    a = p.mmap(0, 3 * P, RW, ANON)
    msg = b"across a page boundary"
    p.write(a + P - 2, msg)
    assert p.read(a + P - 2, len(msg)) == msg
    assert p.read(a, 4) == b"\0\0\0\0"
    assert p.read(a + 2 * P, 0) == b""


def test_fill_and_touch(p):
    """fill() is memset; touch(write=True) stores the byte already there, so contents survive
    while every page becomes present and exclusive."""
    a = isolated(p, 4)
    p.fill(a + 10, 2 * P, 0xAB)
    assert p.read(a + 9, 3) == b"\0\xab\xab"
    assert p.read(a + 10 + 2 * P - 1, 2) == b"\xab\0"
    p.touch(a, 4 * P, write=True)
    assert p.read(a + 9, 3) == b"\0\xab\xab"
    assert all(present(e) and e & PM_MMAP_EXCLUSIVE for e in p.pagemap(a, 4))


def test_madvise_dontneed_zaps_private_anon(p):
    """MADV_DONTNEED on private anonymous memory drops the pages: they read back as zeros."""
    a = isolated(p, 2)
    p.fill(a, 2 * P, 0x11)
    assert p.madvise(a, 2 * P, MADV_DONTNEED) == 0
    assert not any(present(e) for e in p.pagemap(a, 2))
    assert p.read(a, 2 * P) == bytes(2 * P)


def test_mremap_moves_contents(p):
    """mremap with MREMAP_MAYMOVE keeps the contents; a moved region leaves nothing behind."""
    a = isolated(p, 1)
    p.write(a, b"keep me")
    b = p.mremap(a, P, 4 * P, MREMAP_MAYMOVE)
    assert p.read(b, 7) == b"keep me"
    if b != a:
        with pytest.raises(SegmentationFault) as ei:
            p.read(a, 1)
        assert ei.value.code == SEGV_MAPERR


def test_brk_grows_and_shrinks_above_the_workers_heap(p):
    """Raw brk: brk(0) is the break; growing it maps writable memory; shrinking unmaps it.
    The host refuses to move the break below the worker's own malloc heap."""
    cur = p.brk(0)
    base = (cur + P - 1) & ~(P - 1)
    assert p.brk(base + 2 * P) == base + 2 * P
    p.write(base + P, b"heap")
    assert p.read(base + P, 4) == b"heap"
    assert p.brk(base) == base
    with pytest.raises(SegmentationFault) as ei:
        p.read(base + P, 1)
    assert ei.value.code == SEGV_MAPERR
    with pytest.raises(HostUnsupported):
        p.brk(cur - P)


# --- fork -----------------------------------------------------------------------------------------

def test_fork_private_memory_is_copy_on_write(p):
    """After fork, private memory is shared copy-on-write: each side's writes stay its own."""
    a = p.mmap(0, 2 * P, RW, ANON)
    p.write(a, b"parent")
    c = p.fork()
    assert c.pid != p.pid and c.read(a, 6) == b"parent"
    c.write(a, b"child!")
    assert p.read(a, 6) == b"parent"
    p.write(a + P, b"later")
    assert c.read(a + P, 5) == b"\0" * 5
    assert c.read(a, 6) == b"child!"
    c.exit()


def test_fork_shared_anonymous_memory_stays_shared(p):
    """MAP_SHARED|MAP_ANONYMOUS memory is one object: a write by either process is seen by both."""
    a = p.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS)
    c = p.fork()
    c.write(a, b"from child")
    assert p.read(a, 10) == b"from child"
    p.write(a, b"from paren")
    assert c.read(a, 10) == b"from paren"
    assert all(e & PM_FILE for e in p.pagemap(a, 1) + c.pagemap(a, 1))    # shmem, bit 61
    c.exit()


def test_parent_may_exit_before_child(m, p):
    """A child outlives its parent (it is adopted by the machine's reaper) and is reaped."""
    a = p.mmap(0, P, RW, ANON)
    p.write(a, b"x")
    c = p.fork()
    p.exit()
    assert exited(p.pid)
    assert c.read(a, 1) == b"x"
    with pytest.raises(ProcessKilled):
        p.read(a, 1)
    c.exit()
    assert exited(c.pid)


# --- errors -------------------------------------------------------------------------------------

def _errno_of(fn, *args) -> int:
    with pytest.raises(OSError) as ei:
        fn(*args)
    return ei.value.errno


def test_syscall_errnos(p):
    """Linux's errnos: munmap of an unaligned address and mmap of length 0 are EINVAL;
    MAP_FIXED_NOREPLACE over a mapping is EEXIST; growing in place into a neighbour is ENOMEM."""
    a = p.mmap(0, 2 * P, RW, ANON)
    assert _errno_of(p.munmap, a + 1, P) == errno.EINVAL
    assert _errno_of(p.mmap, 0, 0, RW, ANON) == errno.EINVAL
    assert _errno_of(p.mmap, a, P, RW, ANON | MAP_FIXED_NOREPLACE) == errno.EEXIST
    p.mprotect(a + P, P, PROT_READ)                   # a different VMA right after a
    assert _errno_of(p.mremap, a, P, 2 * P, 0) == errno.ENOMEM
    assert p.read(a, 1) == b"\0"                      # failures changed nothing


def test_segv_codes(p):
    """No VMA: SEGV_MAPERR. A VMA whose protection forbids the access: SEGV_ACCERR."""
    a = isolated(p, 2)
    p.munmap(a + P, P)
    with pytest.raises(SegmentationFault) as ei:
        p.read(a + P, 1)
    assert (ei.value.addr, ei.value.code, ei.value.pid) == (a + P, SEGV_MAPERR, p.pid)
    p.mprotect(a, P, PROT_NONE)
    with pytest.raises(SegmentationFault) as ei:
        p.read(a + 5, 1)
    assert (ei.value.addr, ei.value.code) == (a + 5, SEGV_ACCERR)
    p.mprotect(a, P, PROT_READ)
    with pytest.raises(SegmentationFault) as ei:
        p.fill(a, 1, 7)
    assert (ei.value.addr, ei.value.code) == (a, SEGV_ACCERR)


def test_bad_access_is_all_or_nothing(p):
    """A write that runs into a PROT_NONE page faults at the first byte of that page and writes
    nothing before it (the model's rule; a real CPU would have stored the first bytes)."""
    a = isolated(p, 2)
    p.mprotect(a + P, P, PROT_NONE)
    with pytest.raises(SegmentationFault) as ei:
        p.write(a + P - 2, b"abcd")
    assert (ei.value.addr, ei.value.code) == (a + P, SEGV_ACCERR)
    assert not present(p.pagemap(a, 1)[0])            # not even faulted in
    assert p.read(a + P - 2, 2) == b"\0\0"


def test_x86_read_permission_follows_access_error(p):
    """On x86 a PROT_WRITE-only mapping is readable (vma_is_accessible); an execute-only one is
    readable unless protection keys make it execute-only (then SEGV_PKUERR, si_code 4)."""
    if platform.machine() != "x86_64":
        pytest.skip("x86-64 page-protection rules")
    a = isolated(p, 1, prot=PROT_WRITE)
    p.write(a, b"wo")
    assert p.read(a, 2) == b"wo"
    p.mprotect(a, P, PROT_EXEC)
    if p.machine.capabilities["pkeys"]:
        with pytest.raises(SegmentationFault) as ei:
            p.read(a, 1)
        assert ei.value.code == 4                      # SEGV_PKUERR
    else:
        assert p.read(a, 2) == b"wo"


def test_sigbus_past_end_of_shmem_object(p):
    """Shared anonymous memory is a shmem file of the original size: growing the mapping with
    mremap leaves pages past end of file, and touching them is SIGBUS/BUS_ADRERR."""
    s = p.mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS)
    s2 = p.mremap(s, 2 * P, 4 * P, MREMAP_MAYMOVE)
    p.write(s2 + P, b"ok")
    with pytest.raises(BusError) as ei:
        p.write(s2 + 2 * P + 5, b"x")
    assert ei.value.addr == s2 + 2 * P + 5


def test_guard_region_is_segv_maperr(p):
    """A MADV_GUARD_INSTALL page faults with SEGV_MAPERR although it lies inside a VMA, and its
    pagemap entry has the guard bit (58)."""
    a = isolated(p, 2)
    try:
        p.madvise(a + P, P, MADV_GUARD_INSTALL)
    except OSError as e:
        pytest.skip(f"no guard regions on this kernel ({e})")
    assert p.pagemap(a + P, 1)[0] & PM_GUARD_REGION
    p.write(a, b"ok")
    with pytest.raises(SegmentationFault) as ei:
        p.read(a + P - 1, 4)
    assert (ei.value.addr, ei.value.code) == (a + P, SEGV_MAPERR)
    assert p.read(a, 2) == b"ok"


def test_host_refuses_to_touch_its_own_memory(m, p):
    """The worker's interpreter lives in the same address space: the host backend refuses
    (HostUnsupported) to map over, unmap, or access memory the scenario did not map."""
    heap = next(int(line.split("-")[0], 16)
                for line in m.procfs(f"/proc/{p.pid}/maps").splitlines() if "[heap]" in line)
    with pytest.raises(HostUnsupported):
        p.mmap(heap, P, RW, ANON | MAP_FIXED)
    with pytest.raises(HostUnsupported):
        p.munmap(heap, P)
    with pytest.raises(HostUnsupported):
        p.read(heap, 1)
    assert p.read(p.mmap(0, P, RW, ANON), 1) == b"\0"    # and the worker is still fine


# --- introspection ------------------------------------------------------------------------------

def test_pagemap_bits_zero_page_and_exclusive(m, p):
    """pagemap: an untouched page is absent; a read fault maps the shared zero page (present,
    not exclusive, not file); a write makes the page present and exclusive (bit 56). As root:
    every read-faulted page of the region has the same pfn, and that pfn is KPF_ZERO_PAGE."""
    a = isolated(p, 8)
    assert not any(e & (PM_PRESENT | PM_SWAP) for e in p.pagemap(a, 8))
    p.touch(a, 8 * P)
    zero = p.pagemap(a, 8)
    assert all(present(e) and not e & PM_MMAP_EXCLUSIVE and not e & PM_FILE for e in zero)
    p.write(a, b"w")
    e0 = p.pagemap(a, 1)[0]
    assert present(e0) and e0 & PM_MMAP_EXCLUSIVE
    if m.capabilities["pfn"]:
        pfns = {pfn(e) for e in zero}
        assert len(pfns) == 1 and 0 not in pfns
        assert pfn(e0) not in pfns
        if m.capabilities["kpageflags"]:
            assert m.kpageflags(pfns.pop()) >> KPF_ZERO_PAGE & 1
    else:
        assert all(pfn(e) == 0 for e in zero)


def test_pagemap_after_fork_and_cow(m, p):
    """After fork a written page is mapped twice (not exclusive in either process, one pfn);
    after the child writes, each has its own exclusive copy."""
    a = isolated(p, 1)
    p.write(a, b"x")
    c = p.fork()
    pe, ce = p.pagemap(a, 1)[0], c.pagemap(a, 1)[0]
    assert present(pe) and present(ce)
    assert not pe & PM_MMAP_EXCLUSIVE and not ce & PM_MMAP_EXCLUSIVE
    if m.capabilities["pfn"]:
        assert pfn(pe) == pfn(ce) != 0
        assert m.kpagecount(pfn(pe)) == 2
    c.write(a, b"y")
    pe, ce = p.pagemap(a, 1)[0], c.pagemap(a, 1)[0]
    assert pe & PM_MMAP_EXCLUSIVE and ce & PM_MMAP_EXCLUSIVE
    if m.capabilities["pfn"]:
        assert pfn(pe) != pfn(ce)
    c.exit()


def test_smaps_shows_the_region(m, p):
    """/proc/PID/smaps has the region with its range, permissions and resident anonymous size."""
    a = isolated(p, 4)
    p.write(a, b"a")
    p.write(a + 2 * P, b"b")
    f = smaps_entry(m, p.pid, a)
    assert f["range"].startswith(f"{a:x}-{a + 4 * P:x} rw-p ")
    assert f["Size"] == "16 kB" and f["Rss"] == "8 kB" and f["Anonymous"] == "8 kB"
    assert f["Private_Dirty"] == "8 kB"
    assert f"{a:x}-{a + 4 * P:x}" in m.procfs(f"/proc/{p.pid}/maps")
    assert "VmRSS:" in m.procfs(f"/proc/{p.pid}/status")
    assert "AnonPages:" in m.procfs("/proc/meminfo") and "pgfault" in m.procfs("/proc/vmstat")


def test_mlock_shows_in_smaps(m, p):
    """mlock populates and locks the range (smaps Locked); mlock2(MLOCK_ONFAULT) locks only what
    is faulted in later."""
    a = isolated(p, 2)
    p.mlock(a, 2 * P)
    assert smaps_entry(m, p.pid, a)["Locked"] == "8 kB"
    p.munlock(a, 2 * P)
    assert smaps_entry(m, p.pid, a)["Locked"] == "0 kB"
    b = isolated(p, 2)
    p.mlock2(b, 2 * P, MLOCK_ONFAULT)
    assert smaps_entry(m, p.pid, b)["Locked"] == "0 kB"
    p.write(b, b"z")
    assert smaps_entry(m, p.pid, b)["Locked"] == "4 kB"


def test_procfs_only_shows_this_machines_processes(m, p):
    """procfs() answers for the machine's own processes and refuses others with ENOENT."""
    assert "Rss:" in m.procfs(f"/proc/{p.pid}/smaps_rollup")
    for path in (f"/proc/{os.getpid()}/maps", f"/proc/{p.pid}/environ", "/proc/cpuinfo"):
        with pytest.raises(OSError) as ei:
            m.procfs(path)
        assert ei.value.errno == errno.ENOENT


def test_capabilities_and_host_info(m):
    """capabilities and host_info describe this host truthfully."""
    caps = m.capabilities
    assert caps["linux"] is True and caps["kernel"] == platform.release()
    assert caps["root"] == (os.geteuid() == 0)
    info = m.host_info()
    assert info["page_size"] == P and info["kernel"] == platform.release()
    assert caps["swap"] == bool(info["swap_total"])
    if not caps["kpageflags"]:
        with pytest.raises(HostUnsupported):
            m.kpageflags(0)


def test_model_only_arguments():
    """ram/swap are validated as sizes and ignored; design must be 'linux'."""
    with pytest.raises(ValueError):
        HostMachine(design="bsd")
    with pytest.raises(ValueError):
        HostMachine(ram="lots")
    with HostMachine(ram="64M", swap="0", design="linux", seed=1) as m:
        assert m.requested["ram"] == 64 << 20


def test_no_aslr_addresses_are_repeatable():
    """With personality(ADDR_NO_RANDOMIZE) the first mmap lands at the same address each time."""
    firsts = []
    for _ in range(2):
        try:
            with HostMachine(no_aslr=True) as m:
                firsts.append(m.spawn().mmap(0, P, RW, ANON))
        except HostUnsupported as e:
            pytest.skip(str(e))
    assert firsts[0] == firsts[1]
    assert firsts[0] < 0x7FFFF7FFF000


# --- cleanup -------------------------------------------------------------------------------------

def test_close_leaves_no_processes():
    """close() kills and reaps every worker (forked ones too) and the reaper."""
    m = HostMachine()
    p = m.spawn()
    c = p.fork()
    g = c.fork()
    q = m.spawn()
    pids = [p.pid, c.pid, g.pid, q.pid, m._state.reaper.pid]
    assert all(os.path.exists(f"/proc/{x}") for x in pids)
    m.close()
    deadline = time.monotonic() + 5
    while not all(exited(x) for x in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(exited(x) for x in pids)
    with pytest.raises(ProcessKilled):
        p.read(0, 1)
    m.close()                                          # twice is fine


def test_workers_die_with_the_driver(tmp_path):
    """If the Python side is killed, every worker and the reaper go too (end-of-file on their
    sockets, and PR_SET_PDEATHSIG)."""
    src = Path(__import__("vmlab.host").host.__file__).resolve().parents[2]
    script = textwrap.dedent("""
        import os, signal
        from vmlab.host import HostMachine
        m = HostMachine()
        p = m.spawn(); c = p.fork(); q = m.spawn()
        print(p.pid, c.pid, q.pid, m._state.reaper.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == -signal.SIGKILL, out.stderr
    pids = [int(x) for x in out.stdout.split()]
    assert len(pids) == 4
    deadline = time.monotonic() + 5
    while not all(dead(x) for x in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(dead(x) for x in pids)


def minflt(pid: int) -> int:
    """Minor faults of a process so far (/proc/PID/stat field 10)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return int(fh.read().rsplit(b")", 1)[1].split()[7])


def test_touch_really_faults_each_page_once(p):
    """touch() takes one fault per fresh page: a load maps the zero page; a store (a single
    ``lock xadd`` where libatomic exists) allocates straight away, without a read fault first.
    The worker's own bookkeeping adds a few faults of its own, hence the slack."""
    n = 512
    a = isolated(p, n)
    before = minflt(p.pid)
    p.touch(a, n * P)
    reads = minflt(p.pid) - before
    assert n <= reads < n + 16
    b = isolated(p, n)
    before = minflt(p.pid)
    p.touch(b, n * P, write=True)
    writes = minflt(p.pid) - before
    per_page = 1 if p._w.info["touch_write"] == "atomic-rmw" else 2
    assert per_page * n <= writes < per_page * n + 16
    assert all(present(e) and e & PM_MMAP_EXCLUSIVE for e in p.pagemap(b, n))


def test_a_worker_killed_from_outside_is_reported(m, p):
    """A worker that dies under us raises ProcessKilled; the machine and its other processes
    carry on."""
    q = m.spawn()
    os.kill(p.pid, signal.SIGKILL)
    with pytest.raises(ProcessKilled):
        p.mmap(0, P, RW, ANON)
    assert not p.alive
    assert q.read(q.mmap(0, P, RW, ANON), 1) == b"\0"


def test_worker_adds_no_mappings_of_its_own(m, p):
    """The worker's own allocations stay in its pre-grown heap: after a scenario has mapped,
    written, read, touched, forked and unmapped again, /proc/PID/maps is what it was."""
    before = m.procfs(f"/proc/{p.pid}/maps")
    regions = []
    for i in range(1, 6):
        n = i * 256 * P
        a = p.mmap(0, n, RW, ANON)
        regions.append((a, n))
        p.write(a, bytes(range(256)) * (n // 256))
        assert p.read(a, n)[-2:] == b"\xfe\xff"
        p.touch(a, n, write=True)
        c = p.fork()
        c.fill(a, n, 1)
        c.exit()
    for a, n in regions:
        p.munmap(a, n)
    assert m.procfs(f"/proc/{p.pid}/maps") == before


def test_each_worker_holds_only_its_own_channel(m, p):
    """Who keeps which end: after spawns and forks, every worker (and the reaper) has exactly
    one socket open, its own channel; a forked child keeps none of its parent's."""
    q = m.spawn()
    c = p.fork()
    g = c.fork()
    for pid in (m._state.reaper.pid, p.pid, q.pid, c.pid, g.pid):
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert sum(link.startswith("socket:") for link in links) == 1, (pid, links)
