"""The `vmscan22` design: no reverse map, reclaim by page-table scan (Linux 2.2 swap_out), and
shared anonymous memory in a writable swap cache (Colin Plumb, seeds/000).

These tests look at what only this design has — the per-mm swap_out cursor, the second chance
the scan gives young PTEs, pages freed only once the scan has taken their last PTE, the swap
entry naming each shared anonymous page, the swapper space — and at its costs next to `linux`
on the same program. Semantics are the shared suite's job (tests/ported, the stateful tests);
here contents are read back only where a structure is moved under them.
"""

from __future__ import annotations

import pytest

import vmlab
from vmlab.check import InvariantError
from vmlab.constants import (MADV_DONTNEED, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED,
                             PROT_READ, PROT_WRITE)
from vmlab.hw import pte as P
from vmlab.hw.frames import PG_anon, PG_dirty, PG_referenced, PG_swapcache
from vmlab.reclaim.vmscan import ScanControl

MB = 1 << 20
PAGE = 4096
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
SHANON = MAP_SHARED | MAP_ANONYMOUS


def pte_of(p, addr: int) -> int:
    pt = p.machine.system.pagetables
    row = pt.lookup_leaf(p.mm.pgd, addr)
    return -1 if row < 0 else int(pt.rows[row, (addr >> 12) & 511])


def pfn_of(p, addr: int) -> int:
    e = pte_of(p, addr)
    assert e > 0 and P.pte_present(e), f"{addr:#x} not present"
    return P.pte_pfn(e)


def scan(m, nr: int, priority: int = 0) -> int:
    """One call of the design's swap_out, as shrink_node makes it."""
    sc = ScanControl(nr, kswapd=False)
    sc.priority = priority
    return m.design.scan_page_tables(nr, sc)


def swap_out_process(p, want: int) -> int:
    """swap_out_process() on one mm, with its share (swap_cnt) reloaded from its RSS."""
    p.mm.design_state.swap_cnt = p.mm.get_mm_rss()
    return p.machine.design._swap_out_mm(p.mm, want)


def age_all(m, p, addr: int, length: int) -> None:
    """Clear the accessed bits of [addr, +length): every page there is old."""
    pt = m.system.pagetables
    rows, los, his, _ = pt.leaves(p.mm.pgd, addr, addr + length)
    for row, lo, hi in zip(rows.tolist(), los.tolist(), his.tolist()):
        pt.rows[row, lo:hi] &= P.NP_NOT_ACCESSED


def filled(design: str = "vmscan22", size: int = 4 * MB, flags: int = ANON, **machine):
    """A machine (64M RAM, 64M swap unless given) with one process whose region of ``size``
    is mapped with ``flags`` and filled with 0x5a: (machine, process, address)."""
    m = vmlab.Machine(design=design, **{"ram": "64M", "swap": "64M", **machine})
    p = m.spawn()
    a = p.mmap(0, size, RW, flags)
    p.fill(a, size, 0x5A)
    return m, p, a


# --- no reverse map ---------------------------------------------------------------------------------
def test_anon_pages_name_no_anchor_and_rmap_finds_nothing():
    """A private anonymous page records no anchor (page->mapping empty), the VMA only its
    "has anonymous pages" flag; the design's rmap_walk finds no mapping for any page, so the
    LRU scan cannot unmap it. linux's rmap finds the one PTE."""
    m, p, a = filled(size=64 * 1024)
    pfn = pfn_of(p, a)
    f = m.system.frames
    assert int(f.flags[pfn]) & PG_anon
    assert int(f.mapping[pfn]) == -1
    vma = p.mm.vmas.lookup(a)
    assert m.design.vma_has_anon(vma)
    assert list(m.design.rmap_walk(pfn)) == []
    assert m.design.try_to_unmap(pfn) is False and int(f.mapcount[pfn]) == 1
    ml, pl, al = filled("linux", size=64 * 1024)
    assert len(list(ml.design.rmap_walk(pfn_of(pl, al)))) == 1
    m.check()


def test_young_ptes_get_a_second_chance_then_are_unmapped():
    """swap_out's try_to_swap_out: a young PTE is only made old and its page marked
    referenced; the next pass over an old PTE takes it out: the anonymous page gets a swap
    slot (add_to_swap), the PTE becomes a swap PTE, Rss moves from anon to swap entries.
    Every slot of the walked table counts in ptes_scanned."""
    m, p, a = filled(size=2 * MB)            # every page young
    f = m.system.frames
    pfn = pfn_of(p, a)
    # the first turn finds every PTE young and only ages it; the second (2.2's counter loop
    # reloads the share) finds the first one old and takes it
    assert scan(m, 1) == 1
    assert m.design.stats["ptes_scanned"] >= 512 + 1
    assert m.design.stats["ptes_unmapped_scan"] == 1
    for k in range(1, 512):
        e = pte_of(p, a + k * PAGE)
        assert P.pte_present(e) and not e & P.ACCESSED
        assert int(f.flags[P.pte_pfn(e)]) & PG_referenced
    assert scan(m, 3) == 3                   # old now: taken at once, where the cursor stopped
    assert m.design.stats["ptes_unmapped_scan"] == 4
    e = pte_of(p, a)
    assert P.is_swap_pte(e) and not P.pte_present(e)
    assert int(f.mapcount[pfn]) == 0 and int(f.flags[pfn]) & PG_swapcache
    assert int(f.flags[pfn]) & PG_dirty      # a new slot holds nothing yet
    status = m.procfs(f"/proc/{p.pid}/status")
    assert "RssAnon:\t    2032 kB" in status and "VmSwap:\t      16 kB" in status
    m.check()
    assert p.read(a, 4) == b"\x5a" * 4       # the swap cache gives it back (minor fault)


def test_cursor_resumes_where_the_last_scan_stopped():
    """2.2 kept p->swap_address: the next swap_out of the same mm resumes after the last PTE
    it took, it does not restart at the bottom of the address space."""
    m, p, a = filled(size=2 * MB)
    age_all(m, p, a, 2 * MB)
    assert scan(m, 3) == 3
    cur = p.mm.design_state
    assert cur.swap_address == a + 3 * PAGE
    assert scan(m, 2) == 2
    assert cur.swap_address == a + 5 * PAGE
    for k in range(5):
        assert P.is_swap_pte(pte_of(p, a + k * PAGE))
    assert P.pte_present(pte_of(p, a + 5 * PAGE))
    m.check()


def test_shared_page_is_freed_only_when_its_last_pte_goes():
    """Without a reverse map a page mapped by parent and child leaves one mm at a time: the
    scan that takes the parent's PTE leaves the page mapped by the child (mapcount 1, not
    reclaimable); only when the child's PTE goes too is it on its own, and the LRU scan frees
    it. Both read it back from the one swap slot."""
    m, p, a = filled(size=64 * 1024)
    c = p.fork()
    c.touch(a, 64 * 1024)
    f = m.system.frames
    pfn = pfn_of(p, a)
    assert int(f.mapcount[pfn]) == 2
    age_all(m, p, a, 64 * 1024)
    age_all(m, c, a, 64 * 1024)
    d = m.design
    freed = swap_out_process(p, 16)
    assert freed == 0                         # sixteen PTEs gone, no page free
    assert d.stats["ptes_unmapped_scan"] == 16
    assert int(f.mapcount[pfn]) == 1 and P.is_swap_pte(pte_of(p, a)) and pfn_of(c, a) == pfn
    m.check()
    assert swap_out_process(c, 16) == 16     # the child's PTEs were the last ones
    assert int(f.mapcount[pfn]) == 0
    m.check()
    assert p.read(a + PAGE, 2) == b"\x5a\x5a" and c.read(a, 2) == b"\x5a\x5a"


def test_locked_vma_is_not_scanned():
    """swap_out_vma() skips VM_LOCKED areas: an mlocked region costs no PTE examined and
    loses no page; the scan moves on to the next VMA."""
    m, p, a = filled(size=2 * MB)
    p.mlock(a, 2 * MB)
    b = p.mmap(0, 64 * 1024, RW, ANON)
    p.fill(b, 64 * 1024, 1)
    age_all(m, p, a, 2 * MB)
    age_all(m, p, b, 64 * 1024)
    assert scan(m, 4) == 4
    assert m.design.stats["ptes_scanned"] < 512
    assert all(P.pte_present(pte_of(p, a + k * PAGE)) for k in range(512))
    m.check()


def test_sparse_tables_cost_every_slot():
    """The page-table scan pays for the address space, not for the pages: a process with one
    page per 2 MiB table makes swap_out examine all 512 slots of each table for one page,
    where linux's rmap takes a few steps per page it unmaps."""
    m = vmlab.Machine(ram="64M", swap="64M", design="vmscan22")
    p = m.spawn()
    a = p.mmap(0, 32 * MB, RW, ANON)
    for k in range(16):
        p.write(a + k * 2 * MB, b"x")
    age_all(m, p, a, 32 * MB)
    assert scan(m, 16) == 16
    st = m.design.stats
    assert st["ptes_scanned"] >= 15 * 512 + 1
    assert st["ptes_scanned"] / 16 > 400
    m.check()


# --- under memory pressure, against linux --------------------------------------------------------
def pressure(design: str):
    """Parent 16 MiB, three children reading it, then a hog that needs more than is free."""
    m, p, a = filled(design, size=16 * MB, ram="48M", swap="128M")
    kids = [p.fork() for _ in range(3)]
    for c in kids:
        c.touch(a, 16 * MB)
    h = m.spawn()
    b = h.mmap(0, 32 * MB, RW, ANON)
    h.fill(b, 32 * MB, 1)
    h.fill(b, 32 * MB, 2)
    return m, p, kids, a


def test_pressure_costs_page_table_scan_against_rmap():
    """The same pressure on both designs: linux unmaps through anon_vma (rmap_steps, no PTE
    scanned); vmscan22 never walks a reverse map (no rmap_steps) and pays in PTEs scanned —
    more than one PTE per page it frees. Contents are the same afterwards."""
    ml, pl, kl, al = pressure("linux")
    mv, pv, kv, av = pressure("vmscan22")
    sl, sv = ml.design.stats, mv.design.stats
    assert sl.get("rmap_steps", 0) > 0 and sl.get("ptes_scanned", 0) == 0
    assert sv.get("rmap_steps", 0) == 0 and sv.get("rmap_unmapped", 0) == 0
    ev = mv.events
    steal = ev["pgsteal_direct"] + ev["pgsteal_kswapd"]
    assert steal > 0 and sv["ptes_scanned"] > steal
    assert sv["swap_out_calls"] > 0
    for pl_, pv_ in zip([pl] + kl, [pv] + kv):
        assert pl_.read(al + 5 * MB, 8) == pv_.read(av + 5 * MB, 8) == b"\x5a" * 8
    mv.check()
    ml.check()


# --- shared anonymous memory in the swap cache ----------------------------------------------------
def shared_pages(m, p, a, n):
    obj = p.mm.vmas.lookup(a).vm_file
    return obj, [pfn_of(p, a + k * PAGE) for k in range(n)]


def test_shared_anon_page_is_a_writable_swap_cache_page():
    """A MAP_SHARED|MAP_ANONYMOUS page lives in the swap cache from its first touch (the seed:
    writable, dirty swap-cached pages): its object's index holds a real swap entry
    (reserve_swap=1 takes a slot, SwapFree drops), the page is not anonymous and in no page
    cache, the PTE is writable; a fork child maps the same page and sees the parent's writes."""
    m, p, a = filled(size=64 * 1024, flags=SHANON)
    obj, pfns = shared_pages(m, p, a, 16)
    f = m.system.frames
    sw = m.system.swap
    for k, pfn in enumerate(pfns):
        e = int(obj.swap[k])
        assert e and sw.cache_lookup(P.pte_swp_type(e), P.pte_swp_offset(e)) == pfn
        fl = int(f.flags[pfn])
        assert fl & PG_swapcache and not fl & PG_anon and fl & PG_dirty
        assert not m.design._is_swapper(P.pte_swp_type(e))
    assert (obj.pages < 0).all()
    assert pte_of(p, a) & P.RW
    used = sum(int(x.inuse) for x in sw.areas if x is not None and x.active)
    assert used == 16
    assert m.design.metadata()["swap-cache anon index"] == 16 * 8
    c = p.fork()
    p.write(a + 3 * PAGE, b"new")
    assert c.read(a + 3 * PAGE, 3) == b"new"
    assert pfn_of(c, a + 3 * PAGE) == pfns[3]
    m.check()


def test_dirty_shared_page_is_written_only_when_the_last_pte_goes():
    """Plumb: "a dirty swap-cached page would only be written when it was removed from the
    *last* process's PTE". Taking the parent's PTEs writes nothing (the child still maps the
    pages); after the child's go too, reclaim writes each page once (pswpout) and frees it.
    The PTEs of a shared anonymous mapping are cleared, never swap PTEs; the next fault finds
    the page again through the object's index."""
    m, p, a = filled(size=64 * 1024, flags=SHANON)
    c = p.fork()
    c.touch(a, 64 * 1024)
    obj, pfns = shared_pages(m, p, a, 16)
    age_all(m, p, a, 64 * 1024)
    age_all(m, c, a, 64 * 1024)
    ev = m.events
    out0 = ev["pswpout"]
    assert swap_out_process(p, 16) == 0
    assert pte_of(p, a) == 0                  # cleared, as for a mapped file
    reclaim = m.kernel.reclaimer
    assert reclaim.reclaim_pages(pfns) == 0   # the LRU side leaves mapped pages alone
    assert ev["pswpout"] == out0             # still mapped by the child: not written
    m.check()
    assert swap_out_process(c, 16) == 16
    reclaim.reclaim_pages(pfns)
    assert ev["pswpout"] - out0 == 16
    m.kernel.reclaimer.direct_reclaim(64)
    assert (obj.resident(obj.swap[:16]) < 0).all()
    m.check()
    assert p.read(a, 4) == c.read(a + 15 * PAGE, 4) == b"\x5a" * 4
    assert ev["pswpin"] >= 1


def test_clean_shared_page_is_dropped_without_io():
    """A page read back from its slot is clean and keeps the slot: if nobody writes it, the
    last unmap leaves a page reclaim frees without writing it again."""
    m, p, a = filled(size=64 * 1024, flags=SHANON)
    age_all(m, p, a, 64 * 1024)
    swap_out_process(p, 16)
    m.kernel.reclaimer.direct_reclaim(64)
    ev = m.events
    out1 = ev["pswpout"]
    assert p.read(a, 4) == b"\x5a" * 4        # one page (and its read-ahead) back, clean
    pfn = pfn_of(p, a)
    assert not int(m.system.frames.flags[pfn]) & PG_dirty
    age_all(m, p, a, 64 * 1024)
    p.mm.design_state.swap_address = 0
    swap_out_process(p, 16)
    m.kernel.reclaimer.direct_reclaim(64)
    obj = p.mm.vmas.lookup(a).vm_file
    assert obj.resident(obj.swap[:1])[0] < 0  # freed ...
    assert ev["pswpout"] == out1             # ... without being written again
    m.check()


def test_reserve_swap_0_names_pages_on_the_swapper_space():
    """With reserve_swap=0 (or no swap at all) a shared anonymous page is named on the
    swapper space, an area no device backs: it holds no real slot (SwapFree unchanged) and
    must stay resident; reclaim moves it to a real slot before writing it (swap_relocate)."""
    m0, p0, a0 = filled("vmscan22:reserve_swap=0", size=64 * 1024, flags=SHANON)
    obj, _ = shared_pages(m0, p0, a0, 16)
    d = m0.design
    assert all(d._is_swapper(P.pte_swp_type(int(e))) for e in obj.swap[:16])
    sw = m0.system.swap
    assert sum(int(x.inuse) for x in sw.areas if x is not None and x.active) == 0
    age_all(m0, p0, a0, 64 * 1024)
    assert swap_out_process(p0, 16) == 16
    m0.kernel.reclaimer.direct_reclaim(64)
    assert d.stats.get("swapcache_anon_renamed", 0) == 16
    assert not any(d._is_swapper(P.pte_swp_type(int(e))) for e in obj.swap[:16])
    m0.check()
    assert p0.read(a0 + 7 * PAGE, 2) == b"\x5a\x5a"
    assert "swapper space map" in d.metadata()


def test_without_swap_shared_anon_pages_stay_resident():
    """No swap configured: the pages are named on the swapper space; the scan may take
    their PTEs, but reclaim cannot write them anywhere and keeps them (as Linux keeps shmem
    pages without swap); the contents stay."""
    m, p, a = filled(size=64 * 1024, flags=SHANON, swap="0")
    obj, pfns = shared_pages(m, p, a, 16)
    d = m.design
    assert all(d._is_swapper(P.pte_swp_type(int(e))) for e in obj.swap[:16])
    age_all(m, p, a, 64 * 1024)
    assert swap_out_process(p, 16) == 16
    m.kernel.reclaimer.reclaim_pages(pfns)
    assert m.events["pswpout"] == 0
    assert (obj.resident(obj.swap[:16]) == pfns).all()
    m.check()
    assert p.read(a + 15 * PAGE, 2) == b"\x5a\x5a"


def test_swapoff_renames_shared_anon_pages():
    """swapoff of the area holding a shared anonymous page's slot: the page is read back and
    renamed to another slot (unuse_object), contents intact."""
    m = vmlab.Machine(ram="64M", swap="0", design="vmscan22")
    first = m.swapon("16M")
    p = m.spawn()
    a = p.mmap(0, 64 * 1024, RW, SHANON)
    p.fill(a, 64 * 1024, 0x42)
    m.swapon("16M")
    age_all(m, p, a, 64 * 1024)
    swap_out_process(p, 16)
    m.kernel.reclaimer.direct_reclaim(64)
    m.swapoff(first)
    assert m.design.stats.get("swapcache_anon_renamed", 0) >= 16
    obj = p.mm.vmas.lookup(a).vm_file
    assert m.system.swap.areas[P.pte_swp_type(int(obj.swap[0]))].name != first
    m.check()
    assert p.read(a + 9 * PAGE, 4) == b"\x42" * 4


def test_madv_pageout_unmaps_through_the_callers_page_table():
    """MADV_PAGEOUT knows the mm and the address: the design takes the PTE there (no rmap
    walk) and reclaim writes the page out."""
    m, p, a = filled(size=64 * 1024)
    ev = m.events
    p.madvise(a, 64 * 1024, MADV_PAGEOUT)
    assert m.design.stats["ptes_unmapped_madvise"] == 16
    assert ev["pswpout"] == 16
    assert m.design.stats.get("rmap_steps", 0) == 0
    m.check()
    assert p.read(a, 1) == b"\x5a"


# --- check() -----------------------------------------------------------------------------------------
def test_check_catches_a_lost_shared_anon_name():
    """check() recounts the shared anonymous objects: an index entry dropped under a mapped
    page is reported (the PTE maps a page the index no longer names)."""
    m, p, a = filled(size=64 * 1024, flags=SHANON)
    obj, _ = shared_pages(m, p, a, 16)
    m.check()
    obj.swap[5] = 0
    with pytest.raises(InvariantError, match="vmscan22"):
        m.check()


def test_check_catches_an_anchor_on_an_anon_page():
    """check(): an anonymous page must name no anchor in this design."""
    m, p, a = filled(size=64 * 1024)
    m.system.frames.mapping[pfn_of(p, a)] = 7
    with pytest.raises(InvariantError, match="names an anchor"):
        m.check()


def test_metadata_counts_cursors_and_index():
    """metadata(): 16 bytes of swap_out cursor per mm (2.2's swap_address and swap_cnt) and
    8 bytes per named shared anonymous page."""
    m, p, a = filled(size=64 * 1024, flags=SHANON)
    p.fork()
    md = m.design.metadata()
    assert md["swap_out cursors"] == 2 * 16
    assert md["swap-cache anon index"] == 16 * 8
    p.madvise(a, 64 * 1024, MADV_DONTNEED)
    assert m.design.metadata()["swap-cache anon index"] == 16 * 8     # contents survive
    assert p.read(a, 1) == b"\x5a"
