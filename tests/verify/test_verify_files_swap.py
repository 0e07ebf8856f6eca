"""vmlab verify for file pages, SysV shm and swap: what the snapshot records and how the command
treats host runs it cannot trust.

Model-only tests run anywhere; the ones that start a HostMachine are marked ``host``.
"""

from __future__ import annotations

import io
import sys

import pytest

import vmlab
from vmlab.constants import (KPF_ANON, KPF_OWNER_2, KPF_UPTODATE, MAP_SHARED, PM_FILE,
                             PM_PRESENT, PROT_READ, PAGE_SIZE as P)
from vmlab.scenario import parse_text
from vmlab.verify import command, compare_traces, run_trace
from vmlab.verify import trace as trace_mod
from vmlab.verify.snapshot import FrameNumbering, page_record


def _record(flags: int) -> str:
    return page_record(PM_PRESENT | PM_FILE | 5, True, True, FrameNumbering(),
                       lambda pfn: 1, lambda pfn: flags)


def test_bit_34_is_anon_exclusive_only_on_anonymous_pages():
    """KPF bit 34 (PG_owner_2) is recorded as anon_excl on an anon page and as mappedtodisk on a
    page-cache page, so ext4's PG_mappedtodisk is never mistaken for exclusivity."""
    both = (1 << KPF_OWNER_2) | (1 << KPF_UPTODATE)
    assert _record(both).endswith("mappedtodisk,uptodate")
    assert _record(both | 1 << KPF_ANON).endswith("anon,anon_excl,uptodate")


def test_mappedtodisk_is_not_compared_but_anon_excl_is():
    """A host page cache page with mappedtodisk against a model page without it is no mismatch;
    a missing anon_excl on an anon page is one."""
    host = {"scenario": "s", "pfns": True, "outcomes": [], "checkpoints": [
        {"checkpoint": "c", "line": 1, "procs": [{"proc": "P", "regions": [
            {"region": "A", "npages": 2, "vmas": ["0-2 rw-s"], "smaps": {},
             "pages": ["present f 1 #1 mappedtodisk,uptodate,lru",
                       "present x 1 #2 anon,anon_excl,uptodate"]}]}]}]}
    model = {"scenario": "s", "pfns": True, "outcomes": [], "checkpoints": [
        {"checkpoint": "c", "line": 1, "procs": [{"proc": "P", "regions": [
            {"region": "A", "npages": 2, "vmas": ["0-2 rw-s"], "smaps": {},
             "pages": ["present f 1 #1 uptodate,lru",
                       "present x 1 #2 anon,uptodate"]}]}]}]}
    rows = compare_traces(host, model)
    assert [r.item for r in rows] == ["page 1 kpageflags"]


def test_model_trace_of_a_file_scenario_has_file_pages():
    """A shared file mapping's pages are recorded present with the pagemap file bit, and a
    SysV attach's pages too; the disk file's bytes are what pread reads."""
    sc = parse_text("""# t
machine ram=16M
file /data/f 2pages 0x41
spawn P
P: open F /data/f rdwr
P: mmap A 2pages rw shared fd F
P: write A "hi"
P: shmget S private 1pages creat,0600
P: shmat B S
P: write B "x"
checkpoint c
P: pread F 0 2 expect "hi"
""", "t.vms")
    t = run_trace(sc, "t", "model")
    assert not t["error"] and not t["expectations"]
    regions = {r["region"]: r for r in t["checkpoints"][0]["procs"][0]["regions"]}
    for name in ("A", "B"):
        state, pm = regions[name]["pages"][0].split(" ")[:2]
        assert state == "present" and "f" in pm
    assert regions["A"]["smaps"]["Shared_Dirty"] + regions["A"]["smaps"]["Private_Dirty"] == 4


def test_scenario_swap_and_pageout_are_read_from_the_scenario():
    """The swap a scenario gives the model, and whether it pages out, decide what the host run
    needs (a temporary swap file, or the no-swap lock)."""
    with_swap = parse_text("# t\nmachine swap=8M\nspawn P\n", "a.vms")
    pageout = parse_text("# t\nspawn P\nP: mmap A 1pages rw private,anonymous\n"
                         "P: madvise A 1pages pageout\n", "b.vms")
    assert trace_mod.scenario_swap(with_swap) == 8 << 20 and not trace_mod.pages_out(with_swap)
    assert trace_mod.scenario_swap(pageout) == 0 and trace_mod.pages_out(pageout)
    assert trace_mod.swap_mismatch(with_swap, 0)                  # needs swap, host has none
    assert trace_mod.swap_mismatch(pageout, 1 << 20)              # must not have swap
    assert trace_mod.swap_mismatch(pageout, 0) is None


def test_a_host_run_disturbed_by_reclaim_is_retried_then_skipped(monkeypatch, tmp_path):
    """If the host's own reclaim ran during every attempt, verify neither compares nor records
    the run: it is retried, then listed as skipped with the reason."""
    calls = []

    def fake_run_trace(sc, name, backend, machine=None, swapfile=True):
        calls.append(backend)
        t = {"scenario": name, "error": None, "outcomes": [], "checkpoints": [],
             "expectations": [], "pfns": True}
        if backend == "host":
            t["host"] = {"kernel": "x", "reclaim_scanned": 32}
        return t

    monkeypatch.setattr(command, "run_trace", fake_run_trace)
    monkeypatch.setattr("vmlab.host.capabilities", lambda: {"linux": True, "pfn": True},
                        raising=False)
    out = io.StringIO()
    rc = command.verify(["fork-cow-child-writes"], record=True, golden_dir=tmp_path, out=out)
    text = out.getvalue()
    assert calls.count("host") == command.DISTURBED_RETRIES + 1
    assert "reclaiming memory" in text and "golden kept" in text
    assert not list(tmp_path.iterdir())                          # nothing recorded
    assert rc == 0 and "score: 0/0" in text


def test_host_reclaim_counter_reads_vmstat():
    """The disturbance counter is a non-negative number (0 where /proc/vmstat is missing)."""
    assert trace_mod.host_reclaim_scanned() >= 0


@pytest.mark.host
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs the Linux host")
def test_swap_scenario_without_root_is_skipped_with_the_reason(monkeypatch):
    """A scenario with swap, on a host without swap where vmlab may not add a swap file, is a
    HostUnsupported skip that says why, not a failure or a silent no-swap run."""
    from vmlab.host import swap as hswap
    if hswap.owned():
        pytest.skip("this process has a swap file on")
    lock = hswap.swap_lock(shared=False)          # no other vmlab run has a swap file now
    try:
        if hswap.active_areas():
            pytest.skip("this host has swap configured")
        monkeypatch.setattr(hswap, "why_not", lambda: "adding a swap area needs root (test)")
        sc = parse_text("# t\nmachine ram=16M swap=8M\nspawn P\nP: mmap A 1pages rw "
                        "private,anonymous\ncheckpoint c\n", "t.vms")
        t = run_trace(sc, "t", "host")
    finally:
        hswap.release_lock(lock)
    assert t["error"].startswith("HostUnsupported") and "needs root (test)" in t["error"]
    assert not t["checkpoints"]


@pytest.mark.host
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs the Linux host")
def test_host_file_pages_have_the_file_bit():
    """On the host, a shared mapping of a scenario file shows present pages with PM_FILE, in
    the machine's private directory, which close() removes."""
    from vmlab.host import HostMachine
    m = HostMachine()
    try:
        m.create_file("/tmp/x", b"a" * P)
        real = m.host_path("/tmp/x")
        p = m.spawn()
        a = p.mmap(0, P, PROT_READ, MAP_SHARED, p.open("/tmp/x", 0), 0)
        assert p.read(a, 1) == b"a"
        e = p.pagemap(a, 1)[0]
        assert e & PM_PRESENT and e & PM_FILE
    finally:
        m.close()
    import os
    assert not os.path.exists(real)


def test_model_machine_is_untouched_by_host_helpers():
    """run_trace on the model never needs the host helpers (a model-only machine works
    anywhere)."""
    sc = parse_text("# t\nmachine ram=16M swap=8M\nspawn P\n", "t.vms")
    t = run_trace(sc, "t", "model")
    assert t["backend"] == "model" and "host" not in t and isinstance(vmlab.Machine, type)
