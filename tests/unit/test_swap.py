"""Swap, the swap cache and reclaim in the linux design, seen through /proc."""

import pytest

import vmlab
from vmlab import MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MADV_FREE, MADV_PAGEOUT, MADV_WILLNEED
from vmlab.proc.parse import parse_kv, smaps_in_range, sum_fields

RW = vmlab.PROT_READ | vmlab.PROT_WRITE
PAGE = 4096
PRIV = MAP_PRIVATE | MAP_ANONYMOUS


def smaps(m, p, a, n):
    return sum_fields(smaps_in_range(m.procfs(f"/proc/{p.pid}/smaps"), a, a + n * PAGE))


def meminfo(m):
    return parse_kv(m.procfs("/proc/meminfo"))


def vmstat(m):
    return parse_kv(m.procfs("/proc/vmstat"))


def test_pageout_then_read_leaves_the_page_in_the_swap_cache():
    """MADV_PAGEOUT writes the page to swap (the PTE becomes a swap entry); a read brings it
    back from the swap cache as a minor fault, clean, still cached: Private_Clean, SwapCached."""
    m = vmlab.Machine(ram="64M", swap="64M")
    p = m.spawn()
    a = p.mmap(0, 4 * PAGE, RW, PRIV)
    p.fill(a, 4 * PAGE, 0x42)
    p.madvise(a, 4 * PAGE, MADV_PAGEOUT)
    pm = p.pagemap(a, 4)
    assert all(e >> 62 & 1 and not e >> 63 & 1 for e in pm)          # swapped, not present
    assert smaps(m, p, a, 4)["Swap"] == 16
    assert vmstat(m)["pswpout"] == 4
    major = vmstat(m)["pgmajfault"]
    assert p.read(a, 2) == b"\x42\x42"
    assert vmstat(m)["pgmajfault"] == major                           # a swap-cache hit
    s = smaps(m, p, a, 4)
    assert (s["Rss"], s["Private_Clean"], s["Private_Dirty"], s["Swap"]) == (4, 4, 0, 12)
    assert meminfo(m)["SwapCached"] >= 4
    m.check()


def test_pageout_skips_pages_shared_with_a_child():
    """madvise_cold_or_pageout_pte_range() leaves pages mapped by more than one process."""
    m = vmlab.Machine(ram="64M", swap="64M")
    p = m.spawn()
    a = p.mmap(0, 2 * PAGE, RW, PRIV)
    p.fill(a, 2 * PAGE, 1)
    p.fork()
    p.madvise(a, 2 * PAGE, MADV_PAGEOUT)
    assert vmstat(m)["pswpout"] == 0
    assert smaps(m, p, a, 2)["Rss"] == 8


def test_memory_pressure_swaps_and_contents_survive():
    """A working set 1.5x RAM: reclaim swaps pages out, faults bring them back, every byte is
    what was written, and both parent and child of a fork keep their own copies."""
    m = vmlab.Machine(ram="8M", swap="32M")
    p = m.spawn()
    n = 3 << 20 >> 12
    a = p.mmap(0, n * PAGE, RW, PRIV)
    for i in range(n):
        p.write(a + i * PAGE, i.to_bytes(4, "little"))
    c = p.fork()
    for i in range(0, n, 7):
        c.write(a + i * PAGE + 8, b"child")
    b = p.mmap(0, 6 << 20, RW, PRIV)
    p.fill(b, 6 << 20, 0x33)                   # push everything else out
    for i in range(n):
        assert p.read(a + i * PAGE, 4) == i.to_bytes(4, "little")
        assert c.read(a + i * PAGE, 4) == i.to_bytes(4, "little")
        assert c.read(a + i * PAGE + 8, 5) == (b"child" if i % 7 == 0 else b"\0" * 5)
    st = vmstat(m)
    assert st["pswpout"] > 0 and st["pswpin"] > 0 and st["pgmajfault"] > 0
    m.check()


def test_shared_anonymous_pages_swap_through_the_object():
    """Reclaimed shmem pages leave no PTE: smaps counts them as Swap from the object, SwapPss
    stays 0, pagemap shows nothing; the data comes back for every sharer."""
    m = vmlab.Machine(ram="8M", swap="32M")
    p = m.spawn()
    s = p.mmap(0, 2 << 20, RW, MAP_SHARED | MAP_ANONYMOUS)
    p.fill(s, 2 << 20, 0x5A)
    c = p.fork()
    b = p.mmap(0, 7 << 20, RW, PRIV)
    p.fill(b, 7 << 20, 1)
    sm = smaps(m, p, s, 512)
    assert sm["Swap"] > 0 and sm["SwapPss"] == 0
    assert c.read(s + 100 * PAGE, 3) == b"\x5a" * 3
    c.write(s, b"hi")
    assert p.read(s, 2) == b"hi"
    m.check()


def test_madv_free_pages_are_dropped_under_pressure_unless_written_again():
    m = vmlab.Machine(ram="8M", swap="0")
    p = m.spawn()
    a = p.mmap(0, 4 << 20, RW, PRIV)
    p.fill(a, 4 << 20, 9)
    p.madvise(a, 4 << 20, MADV_FREE)
    assert smaps(m, p, a, 1024)["LazyFree"] == 4096
    p.write(a, b"kept")                          # dirty again: must survive
    b = p.mmap(0, 6 << 20, RW, PRIV)
    p.fill(b, 6 << 20, 1)
    assert vmstat(m)["pglazyfreed"] > 0
    assert p.read(a, 4) == b"kept"
    assert p.read(a + (3 << 20), 1) in (b"\x09", b"\x00")   # freed (zero) or still there
    m.check()


def test_oom_kills_the_biggest_and_survivors_are_intact():
    """RAM and swap both full: the OOM killer ends the process with the largest footprint."""
    m = vmlab.Machine(ram="4M", swap="4M")
    small = m.spawn()
    a = small.mmap(0, 256 << 10, RW, PRIV)
    small.fill(a, 256 << 10, 0x77)
    big = m.spawn()
    b = big.mmap(0, 16 << 20, RW, PRIV | vmlab.MAP_NORESERVE)   # past the commit heuristic
    with pytest.raises(vmlab.ProcessKilled):
        big.fill(b, 16 << 20, 1)
    assert not big.alive and vmstat(m)["oom_kill"] == 1
    assert small.read(a, 4) == b"\x77" * 4
    m.check()


def test_willneed_reads_back_without_mapping():
    m = vmlab.Machine(ram="64M", swap="64M")
    p = m.spawn()
    a = p.mmap(0, 8 * PAGE, RW, PRIV)
    p.fill(a, 8 * PAGE, 3)
    p.madvise(a, 8 * PAGE, MADV_PAGEOUT)
    # pageout left the pages cached (written, not yet reclaimed); push them out entirely
    m.kernel.reclaimer.reclaim_pages([int(x) for x in (m.swap.areas[0].cache[m.swap.areas[0].cache >= 0])])
    assert meminfo(m)["SwapCached"] == 0
    p.madvise(a, 8 * PAGE, MADV_WILLNEED)
    assert meminfo(m)["SwapCached"] == 32 and smaps(m, p, a, 8)["Rss"] == 0
    major = vmstat(m)["pgmajfault"]
    p.touch(a, 8 * PAGE)
    assert vmstat(m)["pgmajfault"] == major
    m.check()


def test_swapoff_brings_everything_back_or_refuses():
    m = vmlab.Machine(ram="8M", swap="16M")
    p = m.spawn()
    a = p.mmap(0, 10 << 20, RW, PRIV)
    p.fill(a, 10 << 20, 0x11)
    with pytest.raises(OSError) as ei:
        m.swapoff("/dev/vdb")                    # 10 MiB cannot fit in 8 MiB of RAM
    assert ei.value.errno == 12
    p.munmap(a + (6 << 20), 4 << 20)
    m.swapoff("/dev/vdb")
    assert m.procfs("/proc/swaps").count("\n") == 1
    assert smaps(m, p, a, 1536)["Swap"] == 0 and p.read(a + (5 << 20), 2) == b"\x11\x11"
    m.check()


def test_proc_swaps_and_priorities():
    m = vmlab.Machine(ram="16M", swap="8M")
    second = m.swapon("4M")
    lines = m.procfs("/proc/swaps").splitlines()
    assert lines[1].split()[-1] == "-2" and lines[2].split()[-1] == "-3"
    assert lines[2].startswith(second)


def test_swapoff_of_an_automatic_priority_moves_the_lower_areas_up():
    """swapoff of an area with an automatic priority moves every lower one up by one, and the
    next automatic priority with them (mm/swapfile.c, SYSCALL_DEFINE1(swapoff): si->prio++
    for the areas after it, least_priority++). Host (Linux 6.18, three 8 MiB swap files):
    -2 -3 -4, swapoff of the first gives -2 -3, a new swapon -4."""
    m = vmlab.Machine(ram="16M")
    names = [m.swapon("1M") for _ in range(3)]

    def prios():
        rows = m.procfs("/proc/swaps").splitlines()[1:]
        return {r.split()[0]: int(r.split()[-1]) for r in rows}

    assert prios() == dict(zip(names, (-2, -3, -4)))
    m.swapoff(names[0])
    assert prios() == {names[1]: -2, names[2]: -3}
    again = m.swapon("1M")
    assert prios()[again] == -4
    m.check()
