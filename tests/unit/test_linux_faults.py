"""The linux design's fault paths, seen through /proc as Linux shows them."""

import vmlab
from vmlab import MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE
from vmlab.proc.parse import parse_kv, smaps_in_range, sum_fields

RW = PROT_READ | PROT_WRITE
PAGE = 4096


def smaps(m, p, a, n):
    return sum_fields(smaps_in_range(m.procfs(f"/proc/{p.pid}/smaps"), a, a + n * PAGE))


def test_read_fault_maps_the_zero_page_not_counted_in_rss():
    """A read of untouched private memory maps the shared zero page: present in pagemap, not
    exclusive, no Rss (vm_normal_page() is NULL for it)."""
    m = vmlab.Machine()
    p = m.spawn()
    a = p.mmap(0, 4 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.touch(a, 4 * PAGE)
    pm = p.pagemap(a, 4)
    assert all(e >> 63 for e in pm) and not any(e >> 56 & 1 for e in pm)
    assert len({e & ((1 << 55) - 1) for e in pm}) == 1          # one shared frame
    assert smaps(m, p, a, 4)["Rss"] == 0
    m.check()


def test_write_after_read_copies_the_zero_page_and_counts_one_fault_each():
    m = vmlab.Machine()
    p = m.spawn()
    a = p.mmap(0, 4 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.touch(a, 4 * PAGE)
    before = m.events["pgfault"]
    p.touch(a, 4 * PAGE, write=True)
    assert m.events["pgfault"] - before == 4
    assert m.design.stats["zero_cow"] == 4
    assert smaps(m, p, a, 4)["Private_Dirty"] == 16
    m.check()


def test_reuse_after_fork_partner_exits():
    """wp_can_reuse_anon_folio: once the child is gone the parent's write reuses the page."""
    m = vmlab.Machine()
    p = m.spawn()
    a = p.mmap(0, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.fill(a, 2 * PAGE, 1)
    c = p.fork()
    c.exit()
    before = (m.events["pgreuse"], m.design.stats.get("pages_copied_cow", 0))
    p.write(a, b"x")
    assert m.events["pgreuse"] - before[0] == 1
    assert m.design.stats.get("pages_copied_cow", 0) == before[1]
    m.check()


def test_pss_rounds_per_page_like_the_kernel():
    """3 dirty pages mapped 3 times: Pss = 3 * (4096 << 12) // 3 >> 12 >> 10 = 3 kB... per page
    the division truncates, so three of them sum to 4095 bytes -> 3 kB (host: 3 kB)."""
    m = vmlab.Machine()
    p = m.spawn()
    a = p.mmap(0, 3 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.fill(a, 3 * PAGE, 9)
    p.fork()
    p.fork()
    s = smaps(m, p, a, 3)
    assert (s["Rss"], s["Pss"], s["Shared_Dirty"]) == (12, 3, 12)


def test_shared_anon_fault_around_in_the_child():
    """A child's read of shared anonymous memory maps up to 16 cached neighbours at once
    (do_fault_around), one fault for all of them."""
    m = vmlab.Machine()
    p = m.spawn()
    a = p.mmap(0, 32 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS)
    p.fill(a, 32 * PAGE, 5)
    c = p.fork()
    before = m.events["pgfault"]
    c.touch(a + 3 * PAGE, 1)
    assert m.events["pgfault"] - before == 1
    assert smaps(m, c, a, 32)["Rss"] == 16 * 4
    assert c.read(a + 20 * PAGE, 1) == b"\x05"
    m.check()


def test_vmpte_follows_free_pgd_range():
    """The first page in an empty 512 GiB region costs a PUD, a PMD and a PTE table (12 kB);
    unmapping it gives all three back."""
    m = vmlab.Machine()
    p = m.spawn()
    def vmpte():
        return parse_kv(m.procfs(f"/proc/{p.pid}/status"))["VmPTE"]
    base = vmpte()
    a = p.mmap(0x100000000000, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | vmlab.MAP_FIXED)
    p.touch(a, PAGE, write=True)
    assert vmpte() - base == 12
    p.munmap(a, PAGE)
    assert vmpte() == base
    m.check()
