"""Tests of the /proc renderers (vmlab.proc.format) against Linux 6.18.

Three kinds of test:

* round trips of texts captured on the 6.18.44 x86-64 host (tests/proc/data/, made by
  tests/proc/probes/capture.c): parse the numbers out of the host's file, render them, and
  require the host's bytes back;
* arithmetic taken from host observations (Pss of pages mapped three times, SwapPss of swap
  entries shared by a fork, LazyFree after MADV_FREE), rebuilt with smaps_account() and friends;
* encodings: VmFlags order, pagemap words and kpageflags words the host printed.

Tests marked ``host`` repeat the round trips on this machine's live /proc files; they are
skipped where the kernel is not 6.18 on x86-64.
"""

from __future__ import annotations

import os
import pathlib
import platform

import pytest

from vmlab import constants as C
from vmlab.mm import vmflags as V
from vmlab.proc import format as F
from vmlab.proc.pagemap import (FREE_PAGE_STATE, PGTABLE_PAGE_STATE, ZERO_PAGE_STATE,
                                KPageState)

import hostparse as H  # noqa: E402  (tests/proc is on sys.path under pytest)

DATA = pathlib.Path(__file__).parent / "data" / "linux-6.18.44-x86_64"
PAGE = C.PAGE_SIZE


def fixture(name: str) -> str:
    return (DATA / name).read_text()


# --------------------------------------------------------------------------------------------
# Round trips of captured host files


def test_fixture_is_from_the_expected_kernel():
    """The captured texts say which kernel printed them."""
    assert fixture("KERNEL").split()[:3] == ["Linux", "6.18.44-fc-v657", "x86_64"]


def test_maps_round_trip():
    """Every line of the host's maps (file, anonymous, [heap], [vvar], [vsyscall], deleted
    files, SysV-style names) renders back byte for byte from its parsed fields."""
    text = fixture("maps")
    assert F.render_maps(H.parse_maps(text)) == text


@pytest.mark.parametrize("name", ["smaps", "smaps_child"])
def test_smaps_round_trip(name):
    """Each smaps entry re-rendered from its kB numbers, THPeligible, ProtectionKey and VmFlags
    equals the host's entry, and the whole file equals the host's file."""
    text = fixture(name)
    rendered = []
    for lines in H.split_smaps(text):
        e = H.parse_smaps_entry(lines)
        assert e["size_kb"] * 1024 == e["line"].end - e["line"].start
        out = F.render_smaps_entry(e["line"], e["stats"], e["vmflags"], thp_eligible=e["thp"],
                                   kernel_page_size=e["kps_kb"] * 1024,
                                   mmu_page_size=e["mmu_kb"] * 1024,
                                   pkeys_enabled=e["pkey"] is not None)
        assert out == "\n".join(lines) + "\n"
        rendered.append(out)
    assert "".join(rendered) == text


def test_smaps_rollup_round_trip():
    """smaps_rollup: the [rollup] header from the first VMA's start to the last VMA's end,
    flags "---p", and the three Pss_* lines that only the rollup has."""
    text = fixture("smaps_rollup")
    start, end, kb = H.parse_rollup(text)
    assert F.render_smaps_rollup(F.stats_from_kb(kb), start, end) == text


def test_status_round_trip():
    """/proc/PID/status from the parsed skeleton fields and task_mem() numbers."""
    text = fixture("status")
    info, mm = H.parse_status(text)
    assert F.render_status(info, mm, nr_cpu_ids=2) == text


def test_meminfo_round_trip_and_order():
    """/proc/meminfo: same lines, same order, same padding (HugePages_* counts included)."""
    text = fixture("meminfo")
    values = H.parse_meminfo(text)
    assert tuple(values) == F.MEMINFO_FIELDS
    assert F.render_meminfo(values) == text


def test_vmstat_round_trip_and_order():
    """/proc/vmstat: the 192 counters of 6.18 in the kernel's order."""
    text = fixture("vmstat")
    values = H.parse_vmstat(text)
    assert tuple(values) == F.VMSTAT_FIELDS
    assert len(F.VMSTAT_FIELDS) == 192
    assert F.render_vmstat(values) == text


# --------------------------------------------------------------------------------------------
# Pss and friends: the kernel's arithmetic, with numbers the host printed


def _anon(mss, n, mapcount, dirty=True, young=True, **kw):
    for _ in range(n):
        F.smaps_account(mss, anon=True, swapbacked=True, mapcount=mapcount, refcount=mapcount,
                        pte_dirty=dirty, pte_young=young, **kw)


def _printed(mss, **kw):
    text = F.render_smap_stats(mss, **kw)
    return {ln.split(":")[0]: int(ln.split()[1]) for ln in text.splitlines()}


def test_pss_three_pages_mapped_three_times_prints_3kB():
    """Host (probe p1): three dirty anonymous pages after two forks print Rss 12, Pss 3,
    Shared_Dirty 12: each page adds (4096 << 12) // 3 = 5592405, and 3 * 5592405 >> 12 = 4095
    bytes, which prints as 3 kB, not 4."""
    mss = F.SmapsStats()
    _anon(mss, 3, mapcount=3)
    assert mss.pss == 3 * 5592405
    got = _printed(mss)
    assert (got["Rss"], got["Pss"], got["Pss_Dirty"], got["Shared_Dirty"],
            got["Private_Dirty"]) == (12, 3, 3, 12, 0)


def test_pss_four_pages_mapped_three_times_prints_5kB():
    """Host (capture fixture, VMA 600000000000): four such pages print Pss 5 kB."""
    mss = F.SmapsStats()
    _anon(mss, 4, mapcount=3)
    assert _printed(mss)["Pss"] == 5


def test_lazyfree_region_from_capture():
    """Host (capture fixture, VMA 630000000000): 40 pages written, MADV_FREE'd (PTEs made
    clean and old, folios no longer swap-backed), one written again, then two forks. The host
    printed Rss 160, Pss 53, Pss_Dirty 1, Shared_Clean 156, Shared_Dirty 4, Referenced 4,
    LazyFree 156."""
    mss = F.SmapsStats()
    for _ in range(39):
        F.smaps_account(mss, anon=True, swapbacked=False, mapcount=3, refcount=3)
    F.smaps_account(mss, anon=True, swapbacked=False, mapcount=3, refcount=3, pte_dirty=True,
                    pte_young=True)
    got = _printed(mss)
    want = H.parse_smaps_entry(next(e for e in H.split_smaps(fixture("smaps"))
                                    if e[0].startswith("630000000000")))["kb"]
    for key in ("Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Referenced",
                "Anonymous", "LazyFree", "Private_Clean", "Private_Dirty"):
        assert got[key] == want[key], key


def test_locked_is_pss_of_a_vm_locked_vma():
    """Host (capture fixture, VMA 620000000000): four mlocked pages shared three ways by fork
    (the children's VMAs lose VM_LOCKED) print Locked 5 kB in the parent: Locked is the Pss
    of a VM_LOCKED VMA, not its Rss."""
    mss = F.SmapsStats()
    _anon(mss, 4, mapcount=3, locked=True)
    got = _printed(mss)
    assert (got["Locked"], got["Pss"], got["Rss"]) == (5, 5, 16)
    unlocked = F.SmapsStats()
    _anon(unlocked, 4, mapcount=3)
    assert _printed(unlocked)["Locked"] == 0


def test_rollup_truncates_after_summing():
    """smaps_rollup adds raw fields across VMAs before shifting: four VMAs holding one page
    mapped three times each print Pss 1 kB apiece (4 in total) but the rollup prints 5 kB."""
    per_vma = []
    for _ in range(4):
        m = F.SmapsStats()
        _anon(m, 1, mapcount=3)
        per_vma.append(m)
    assert sum(_printed(m)["Pss"] for m in per_vma) == 4
    total = F.SmapsStats()
    for m in per_vma:
        total.add(m)
    assert _printed(total, rollup=True)["Pss"] == 5
    assert _printed(total, rollup=True)["Pss_Anon"] == 5


def test_private_means_mapcount_below_two():
    """A page mapped once is Private_*, whole Pss, whatever its refcount (a swap-cache page
    has refcount 2 but mapcount 1: host probe p5 showed it as Private_Clean)."""
    m = F.SmapsStats()
    F.smaps_account(m, anon=True, swapbacked=True, mapcount=1, refcount=2, pte_young=True)
    got = _printed(m)
    assert (got["Private_Clean"], got["Pss"], got["Shared_Clean"]) == (4, 4, 0)


def test_swap_pss_divides_by_swap_count():
    """Host (probe p5): 16 swapped pages after a fork show Swap 64 and SwapPss 32 in both
    processes; with 14 still shared and 2 swapped in by the parent, Swap 56 / SwapPss 28."""
    m = F.SmapsStats()
    for _ in range(16):
        F.smaps_swap_pte(m, swapcount=2)
    assert (_printed(m)["Swap"], _printed(m)["SwapPss"]) == (64, 32)
    m = F.SmapsStats()
    for _ in range(14):
        F.smaps_swap_pte(m, swapcount=2)
    assert (_printed(m)["Swap"], _printed(m)["SwapPss"]) == (56, 28)


def test_swap_pss_rounds_per_entry():
    """Three entries with swap count 3: 3 * ((4096 << 12) // 3) >> 12 = 4095 bytes -> 3 kB."""
    m = F.SmapsStats()
    for _ in range(3):
        F.smaps_swap_pte(m, swapcount=3)
    assert _printed(m)["SwapPss"] == 3


def test_shmem_swap_counts_in_swap_not_swappss():
    """Host (probe p5): a shared anonymous VMA with 4 pages paged out shows Swap 16 kB and
    SwapPss 0 (shmem swap is counted from the shmem object, smap_gather_stats())."""
    m = F.SmapsStats()
    F.smaps_shmem_swap(m, 4 * PAGE)
    got = _printed(m)
    assert (got["Swap"], got["SwapPss"]) == (16, 0)


def test_pss_split_by_folio_kind_in_rollup():
    """Pss_Anon / Pss_Shmem / Pss_File follow the folio: anon, else swap-backed, else file."""
    m = F.SmapsStats()
    F.smaps_account(m, anon=True, swapbacked=True, mapcount=1)
    F.smaps_account(m, anon=False, swapbacked=True, mapcount=1)
    F.smaps_account(m, anon=False, swapbacked=False, mapcount=2)
    got = _printed(m, rollup=True)
    assert (got["Pss_Anon"], got["Pss_Shmem"], got["Pss_File"], got["Pss"]) == (4, 4, 2, 10)
    assert "Pss_Anon" not in _printed(m)


def test_referenced_from_pte_or_folio():
    """Referenced counts a page if the PTE is young, or the folio is young (idle tracking) or
    PG_referenced; a forked child's old PTE with no folio bit is not referenced (host p1)."""
    for kw, want in [({}, 0), ({"pte_young": True}, 4), ({"folio_young": True}, 4),
                     ({"folio_referenced": True}, 4)]:
        m = F.SmapsStats()
        F.smaps_account(m, anon=True, swapbacked=True, mapcount=2, **kw)
        assert _printed(m)["Referenced"] == want, kw


# --------------------------------------------------------------------------------------------
# VmFlags


@pytest.mark.parametrize("flags, text", [
    (V.VM_READ | V.VM_WRITE | V.VM_MAYREAD | V.VM_MAYWRITE | V.VM_MAYEXEC | V.VM_NORESERVE
     | V.VM_WIPEONFORK | V.VM_DONTDUMP | V.VM_DROPPABLE | V.VM_SEALED,
     "rd wr mr mw me nr wf dd dp sl"),                           # MAP_DROPPABLE + mseal()
    (V.VM_DATA_DEFAULT_FLAGS | V.VM_ACCOUNT | V.VM_MAYBE_GUARD, "rd wr mr mw me gu ac"),
    (V.VM_DATA_DEFAULT_FLAGS | V.VM_ACCOUNT | V.VM_NOHUGEPAGE, "rd wr mr mw me ac nh"),
    (V.VM_DATA_DEFAULT_FLAGS | V.VM_ACCOUNT | V.VM_LOCKED | V.VM_LOCKONFAULT,
     "rd wr mr mw me lo lf ac"),                                 # mlock2(MLOCK_ONFAULT)
    (V.VM_DATA_DEFAULT_FLAGS | V.VM_ACCOUNT | V.VM_DONTCOPY | V.VM_WIPEONFORK | V.VM_DONTDUMP,
     "rd wr mr mw me dc ac wf dd"),
    (V.VM_STACK_FLAGS, "rd wr mr mw me gd ac"),
    (V.VM_READ | V.VM_WRITE | V.VM_EXEC | V.VM_SHARED | V.VM_MAYREAD | V.VM_MAYWRITE
     | V.VM_MAYEXEC | V.VM_MAYSHARE | V.VM_NOHUGEPAGE, "rd wr ex sh mr mw me ms nh"),
    (V.VM_EXEC, "ex"),                                           # [vsyscall]
    (V.VM_READ | V.VM_MAYREAD | V.VM_PFNMAP | V.VM_IO | V.VM_DONTEXPAND | V.VM_DONTDUMP,
     "rd mr pf io de dd"),                                       # [vvar]
])
def test_vmflags_strings_seen_on_host(flags, text):
    """VmFlags lines the host printed for these flag combinations (probes p4, p7)."""
    assert F.render_vmflags(flags) == f"VmFlags: {text} \n"


def test_vmflags_table_is_in_bit_order_and_complete():
    """Mnemonics are printed in ascending bit order; every named flag has one bit; the table
    covers every flag of mm/vmflags.py except the unnamed VM_HIGH_ARCH_4/6 and
    VM_ALLOW_ANY_UNCACHED (printed "??" if ever set, as in the kernel)."""
    bits = [f.bit_length() - 1 for f, _ in F.VMFLAG_MNEMONICS]
    assert bits == sorted(bits) and len(set(bits)) == len(bits)
    assert all(f and f & (f - 1) == 0 for f, _ in F.VMFLAG_MNEMONICS)
    named = {f for f, _ in F.VMFLAG_MNEMONICS}
    missing = {f for f in V.NAMES if f not in named}
    assert missing == {V.VM_HIGH_ARCH_4, V.VM_HIGH_ARCH_6, V.VM_ALLOW_ANY_UNCACHED}
    words = [n for _, n in F.VMFLAG_MNEMONICS if n]
    assert len(words) == len(set(words)) and all(len(w) == 2 for w in words)


def test_vmflags_config_dependent_rows():
    """"sd" needs CONFIG_MEM_SOFT_DIRTY and "ss" CONFIG_X86_USER_SHADOW_STACK (both off on the
    host, where the flags are 0, so a model VMA carrying the bit prints nothing for it);
    protection-key bits never print; unknown bits print "??"."""
    f = V.VM_READ | V.VM_SOFTDIRTY
    assert F.render_vmflags(f) == "VmFlags: rd \n"
    assert F.render_vmflags(f, soft_dirty=True) == "VmFlags: rd sd \n"
    assert F.render_vmflags(V.VM_READ | V.VM_SHADOW_STACK) == "VmFlags: rd \n"
    assert F.render_vmflags(V.VM_READ | V.VM_SHADOW_STACK, shadow_stack=True) == \
        "VmFlags: rd ss \n"
    assert F.render_vmflags(V.VM_READ | V.VM_PKEY_BIT0 | V.VM_PKEY_BIT3) == "VmFlags: rd \n"
    assert F.render_vmflags(V.VM_READ | V.VM_HIGH_ARCH_6 | (1 << 50)) == "VmFlags: rd ?? ?? \n"
    assert F.render_vmflags(0) == "VmFlags: \n"


def test_protection_key_comes_from_the_pkey_bits():
    """ProtectionKey: is vma_pkey() (VM_PKEY_BIT0..3 >> 32); it is omitted when the CPU has
    no protection keys."""
    line = F.MapsLine(0x1000, 0x2000, "rw-p")
    flags = V.VM_DATA_DEFAULT_FLAGS | V.VM_PKEY_BIT0 | V.VM_PKEY_BIT2
    text = F.render_smaps_entry(line, F.SmapsStats(), flags)
    assert "ProtectionKey:         5\n" in text
    assert "ProtectionKey" not in F.render_smaps_entry(line, F.SmapsStats(), flags,
                                                       pkeys_enabled=False)


def test_high_vm_flags_values():
    """The 64-bit-only flags have the 6.18 bit numbers (VM_SEALED moved from 63 to 42 in 6.17,
    VM_UFFD_MINOR to 41)."""
    assert (V.VM_ALLOW_ANY_UNCACHED, V.VM_DROPPABLE, V.VM_UFFD_MINOR, V.VM_SEALED) == \
        (1 << 39, 1 << 40, 1 << 41, 1 << 42)
    assert V.HIGH_BITS >> 32 << 32 == V.HIGH_BITS
    assert V.VM_SOFTDIRTY == 0x08000000 and V.VM_MAYBE_GUARD == 0x800
    assert V.vm_flags_str(V.VM_READ | V.VM_SEALED) == "VM_READ|VM_SEALED"


def test_vm_stat_account_classes():
    """Host (probe p4): private RW counts in VmData (MAP_STACK too), PROT_READ private and
    shared RW in neither, GROWSDOWN in VmStk, R-X anonymous in VmExe+VmLib."""
    d = V.VM_DATA_DEFAULT_FLAGS
    assert V.is_data_mapping(d) and not V.is_stack_mapping(d)
    assert not V.is_data_mapping(V.VM_READ | V.VM_MAYREAD)
    assert not V.is_data_mapping(d | V.VM_SHARED | V.VM_MAYSHARE)
    assert V.is_stack_mapping(d | V.VM_GROWSDOWN) and not V.is_data_mapping(d | V.VM_GROWSDOWN)
    assert V.is_exec_mapping(V.VM_READ | V.VM_EXEC)
    assert not V.is_exec_mapping(V.VM_READ | V.VM_WRITE | V.VM_EXEC)


# --------------------------------------------------------------------------------------------
# maps layout


def test_maps_name_column_and_unnamed_trailing_space():
    """Named lines put the name at column 73; unnamed ones end in "0 \\n"; a header of 72
    columns or more is followed by its own trailing space and seq_pad()'s space: two spaces."""
    anon = F.MapsLine(0x600000000000, 0x600000008000, "rw-p")
    assert F.render_maps_line(anon) == "600000000000-600000008000 rw-p 00000000 00:00 0 \n"
    heap = F.MapsLine(0x3B578000, 0x3B59A000, "rw-p", name="[heap]")
    line = F.render_maps_line(heap)
    assert line.index("[heap]") == 73 and line.startswith("3b578000-3b59a000 rw-p ")
    big = F.MapsLine(0xFFFFFFFFFF600000, 0xFFFFFFFFFF601000, "--xp", 0xFFFFFFFFFFFF,
                     0xFFF, 0xFFFFF, 10**20, name="x")
    assert F.render_maps_line(big).endswith(" 100000000000000000000  x\n")


def test_maps_names_and_perms():
    """perms test VM_MAYSHARE ('s' for a read-only MAP_SHARED mapping); names of deleted files,
    shared anonymous memory and SysV segments; newlines in paths are escaped as \\012."""
    assert F.perms_from_vm_flags(V.VM_READ | V.VM_MAYREAD | V.VM_MAYSHARE) == "r--s"
    assert F.perms_from_vm_flags(V.VM_EXEC) == "--xp"
    assert F.path_name("/tmp/a\nb", deleted=True) == "/tmp/a\\012b (deleted)"
    assert F.SHARED_ANON_NAME == "/dev/zero (deleted)"
    assert F.sysv_shm_name(0) == "/SYSV00000000 (deleted)"
    assert F.sysv_shm_name(0x1234ABCD) == "/SYSV1234abcd (deleted)"
    with pytest.raises(ValueError):
        F.MapsLine(0, 0x1000, "rw")


def test_empty_rollup_header():
    """An mm without VMAs prints a 00000000-00000000 [rollup] header."""
    text = F.render_smaps_rollup(F.SmapsStats(), 0, 0)
    assert text.splitlines()[0] == "00000000-00000000 ---p 00000000 00:00 0" + " " * 34 \
        + "[rollup]"


# --------------------------------------------------------------------------------------------
# status


def test_task_mem_text_lib_split_and_peaks():
    """task_mem(): VmExe is the page-aligned [start_code, end_code) capped by exec_vm, VmLib the
    rest of exec_vm; VmPeak/VmHWM never print below VmSize/VmRSS."""
    mm = F.TaskMem(total_vm=100, hiwater_vm=90, anon=10, file=5, shmem=1, hiwater_rss=12,
                   exec_vm=200, start_code=0x401234, end_code=0x47A001, pgtables_bytes=5 * PAGE)
    v = F.task_mem_values(mm)
    assert v["VmExe"] == (0x47B000 - 0x401000) >> 10 == 488
    assert v["VmLib"] == 800 - 488
    assert (v["VmPeak"], v["VmHWM"], v["VmRSS"], v["VmPTE"]) == (400, 64, 64, 20)
    small = F.TaskMem(exec_vm=2, start_code=0x400000, end_code=0x500000)
    assert F.task_mem_values(small)["VmExe"] == 8 and F.task_mem_values(small)["VmLib"] == 0
    lib = F.TaskMem(exec_vm=300, start_code=0x400000, end_code=0x401000)
    assert F.task_mem_values(lib)["VmLib"] == 1196


def test_status_without_mm_and_bitmaps():
    """A task without an mm prints no Vm*/Rss*/HugetlbPages/CoreDumping/THP_enabled/untag_mask
    lines; cpu and node masks print like %*pb / %*pbl."""
    info = F.StatusInfo(name="kworker", cpus_allowed=(0, 1, 2, 4), mems_allowed=(0,))
    text = F.render_status(info, None, nr_cpu_ids=8)
    assert "VmRSS" not in text and "CoreDumping" not in text and "untag_mask" not in text
    assert "Cpus_allowed:\t17\n" in text and "Cpus_allowed_list:\t0-2,4\n" in text
    assert "Mems_allowed:\t" + "00000000," * 31 + "00000001\n" in text
    from vmlab.proc.status import bitmap_hex
    assert bitmap_hex((33,), 40) == "02,00000000"
    with pytest.raises(ValueError):
        bitmap_hex((8,), 8)
    lines = [ln.split(":")[0] for ln in F.render_status(info, F.TaskMem(), nr_cpu_ids=8).splitlines()]
    assert tuple(lines) == F.STATUS_LINES


# --------------------------------------------------------------------------------------------
# meminfo / vmstat


def test_meminfo_defaults_and_errors():
    """Missing lines print 0 except the configuration constants; unknown names and negative
    values are errors; count lines are "%5lu" without kB."""
    text = F.render_meminfo({"MemTotal": 65536})
    assert text.startswith("MemTotal:          65536 kB\nMemFree:               0 kB\n")
    assert "VmallocTotal:   34359738367 kB\n" in text
    assert "HugePages_Total:       0\n" in text and "Hugepagesize:       2048 kB\n" in text
    assert F.meminfo_line("HugePages_Free", 123456) == "HugePages_Free:    123456\n"
    with pytest.raises(ValueError):
        F.render_meminfo({"MemToatl": 1})
    with pytest.raises(ValueError):
        F.render_meminfo({"MemFree": -4})
    assert F.pages_to_kb(3) == 12


def test_vmstat_defaults_errors_and_model_events():
    """Unmodelled counters print 0; a misspelt counter is an error; every event the model's
    counter module (vmlab.mm.vmstat) can count is a 6.18 counter name."""
    text = F.render_vmstat({"pgfault": 7})
    assert "\npgfault 7\n" in text and "\npgmajfault 0\n" in text
    assert text.endswith("nr_unstable 0\n")
    with pytest.raises(ValueError):
        F.render_vmstat({"pgfaults": 1})
    from vmlab.mm.vmstat import EVENTS
    assert set(EVENTS) <= set(F.VMSTAT_FIELDS)


# --------------------------------------------------------------------------------------------
# pagemap and kpageflags


@pytest.mark.parametrize("word, kw", [
    (0x810000000011F7D9, dict(present=True, swapped=False, file_or_shared=False, exclusive=True,
                              pfn=0x11F7D9)),                      # anon, mapped once
    (0x800000000011F7D9, dict(present=True, swapped=False, file_or_shared=False,
                              exclusive=False, pfn=0x11F7D9)),     # same page after fork
    (0x8000000000003B34, dict(present=True, swapped=False, file_or_shared=False,
                              exclusive=False, pfn=0x3B34)),       # the zero page
    (0xA1000000001077BC, dict(present=True, swapped=False, file_or_shared=True,
                              exclusive=True, pfn=0x1077BC)),      # shared anonymous (shmem)
    (0x4000000000000020, dict(present=False, swapped=True, file_or_shared=False,
                              exclusive=False, swap_type=0, swap_offset=1)),
    (0x40000000000001A0, dict(present=False, swapped=True, file_or_shared=False,
                              exclusive=False, swap_type=0, swap_offset=13)),
    (0x8100000000000000, dict(present=True, swapped=False, file_or_shared=False,
                              exclusive=True, pfn=0x11F7D9, show_pfn=False)),   # non-root
    (0xA100000000000000, dict(present=True, swapped=False, file_or_shared=True,
                              exclusive=True, pfn=0x1077BC, show_pfn=False)),
    (0, dict(present=False, swapped=False, file_or_shared=False, exclusive=False)),
])
def test_pagemap_words_seen_on_host(word, kw):
    """pagemap words the host printed (probes p1, p2, p5, p8), rebuilt from their meaning."""
    assert F.pagemap_entry(**kw) == word


def test_pagemap_guard_and_decode():
    """A guard page reads as a swap-type PTE marker with PM_GUARD_REGION (host:
    0x440000000000009f); decoding gives back the fields."""
    assert F.guard_entry() == 0x440000000000009F
    assert F.guard_entry(show_pfn=False) == 0x4400000000000000
    d = F.decode_pagemap_entry(0x40000000000001A0)
    assert (d.swapped, d.swap_type, d.swap_offset, d.pfn) == (True, 0, 13, None)
    d = F.decode_pagemap_entry(0x810000000011F7D9)
    assert (d.present, d.exclusive, d.pfn, d.swap_type) == (True, True, 0x11F7D9, None)
    with pytest.raises(ValueError):
        F.pagemap_entry(True, True, False, False)
    with pytest.raises(ValueError):
        F.pagemap_entry(False, True, False, True)
    assert F.swap_frame(31, 4) == 0x9F


@pytest.mark.parametrize("word, state", [
    (0x400005808, KPageState(mapped=True, anon=True, uptodate=True, swapbacked=True,
                             anon_exclusive=True)),        # fresh anon page, not yet on LRU
    (0x400005828, KPageState(mapped=True, anon=True, uptodate=True, swapbacked=True,
                             anon_exclusive=True, lru=True)),
    (0x5828, KPageState(mapped=True, anon=True, uptodate=True, swapbacked=True, lru=True)),
    (0x60004582C, KPageState(mapped=True, anon=True, uptodate=True, swapbacked=True, lru=True,
                             referenced=True, unevictable=True, mlocked=True,
                             anon_exclusive=True)),        # mlock()ed
    (0x2000007828, KPageState(mapped=True, anon=True, uptodate=True, swapbacked=True,
                              lru=True, swapcache=True)),  # read back from swap
    (0x400001828, KPageState(mapped=True, anon=True, uptodate=True, lru=True,
                             anon_exclusive=True)),        # MADV_FREE'd: not swap-backed
    (0x4818, KPageState(mapped=True, uptodate=True, dirty=True, swapbacked=True)),  # shmem
    (0x101000000, ZERO_PAGE_STATE),
    (0x400, FREE_PAGE_STATE),
    (0x4000000, PGTABLE_PAGE_STATE),
])
def test_kpageflags_words_seen_on_host(word, state):
    """kpageflags words the host printed (probes p1, p2, p3, p5, and a scan of
    /proc/kpageflags), rebuilt from the page state."""
    assert F.stable_page_flags(state) == word


def test_kpageflags_nopage_and_kpagecount():
    """No struct page: KPF_NOPAGE. kpagecount is the mapcount (a swap-cache page with refcount 2
    and one mapping reads 1), and 0 for typed pages such as page tables."""
    assert F.stable_page_flags(None) == 1 << C.KPF_NOPAGE
    assert F.kpagecount(1) == 1 and F.kpagecount(3) == 3
    assert F.kpagecount(0) == 0 and F.kpagecount(5, typed_page=True) == 0


# --------------------------------------------------------------------------------------------
# Live host round trips


def _live_ok() -> bool:
    return (platform.system() == "Linux" and platform.machine() == "x86_64"
            and platform.release().startswith("6.18"))


live = pytest.mark.skipif(not _live_ok(), reason="needs Linux 6.18 on x86-64")


@pytest.mark.host
@live
def test_live_self_maps_and_smaps():
    """This process's maps and smaps render back byte for byte."""
    maps = pathlib.Path("/proc/self/maps").read_text()
    assert F.render_maps(H.parse_maps(maps)) == maps
    smaps = pathlib.Path("/proc/self/smaps").read_text()
    out = []
    for lines in H.split_smaps(smaps):
        e = H.parse_smaps_entry(lines)
        out.append(F.render_smaps_entry(e["line"], e["stats"], e["vmflags"],
                                        thp_eligible=e["thp"],
                                        kernel_page_size=e["kps_kb"] * 1024,
                                        mmu_page_size=e["mmu_kb"] * 1024,
                                        pkeys_enabled=e["pkey"] is not None))
    assert "".join(out) == smaps
    rollup = pathlib.Path("/proc/self/smaps_rollup").read_text()
    start, end, kb = H.parse_rollup(rollup)
    assert F.render_smaps_rollup(F.stats_from_kb(kb), start, end) == rollup


@pytest.mark.host
@live
def test_live_status_meminfo_vmstat():
    """This process's status and the global meminfo and vmstat render back byte for byte."""
    possible = pathlib.Path("/sys/devices/system/cpu/possible").read_text().strip()
    nr_cpu_ids = int(possible.split("-")[-1]) + 1
    status = pathlib.Path(f"/proc/{os.getpid()}/status").read_text()
    info, mm = H.parse_status(status)
    assert F.render_status(info, mm, nr_cpu_ids=nr_cpu_ids) == status
    meminfo = pathlib.Path("/proc/meminfo").read_text()
    assert F.render_meminfo(H.parse_meminfo(meminfo)) == meminfo
    vmstat = pathlib.Path("/proc/vmstat").read_text()
    assert F.render_vmstat(H.parse_vmstat(vmstat)) == vmstat
