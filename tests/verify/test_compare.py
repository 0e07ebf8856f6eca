"""Unit tests of vmlab.verify: canonical frame numbering, snapshots and the comparison.

These run on the model only (no host needed). The comparison tests change one answer on
purpose and check that it is reported, so a comparison that silently accepts everything
would fail here.
"""

from __future__ import annotations

import copy
import io

import pytest

import vmlab
from vmlab.constants import (MAP_ANONYMOUS, MAP_PRIVATE, PM_MMAP_EXCLUSIVE, PROT_READ,
                             PROT_WRITE, PAGE_SIZE as P)
from vmlab.scenario import parse_text
from vmlab.verify import (FrameNumbering, compare_traces, format_table, load_golden, resolve,
                          run_trace, take_snapshot)
from vmlab.verify.command import verify
from vmlab.verify.compare import coalesce
from vmlab.verify.snapshot import page_record, project_page

RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


# -- canonical frame numbering --------------------------------------------------------------

def test_frames_are_numbered_in_order_of_first_appearance():
    """The first pfn seen is #1, the next new one #2; a pfn seen again keeps its label."""
    n = FrameNumbering()
    assert [n.frame(p) for p in (907, 12, 907, 5000, 12)] == ["#1", "#2", "#1", "#3", "#2"]


def test_swap_slots_are_numbered_apart_from_frames():
    """Swap slots get their own s1, s2 ... sequence."""
    n = FrameNumbering()
    assert (n.frame(7), n.slot(7), n.slot(9), n.frame(9)) == ("#1", "s1", "s2", "#2")


def test_labels_do_not_depend_on_raw_pfns():
    """Two machines that share the same pages in the same pattern get the same labels, whatever
    their pfns: only the sharing partition is recorded."""
    a, b = FrameNumbering(), FrameNumbering()
    assert [a.frame(p) for p in (40, 41, 40, 42)] == [b.frame(p) for p in (9, 3, 9, 77)]


def _snapshot_after_fork():
    m = vmlab.Machine(ram="16M")
    p = m.spawn()
    a = p.mmap(0, 4 * P, RW, ANON)
    p.fill(a, 2 * P, 0x11)
    p.touch(a + 2 * P, P)                       # the zero page
    c = p.fork()
    c.write(a + P, b"x")                        # COW: the child's page 1 is its own
    return take_snapshot(m, [("P", p, "P"), ("C", c, "P")], [("A", "P", a, 4 * P, "mmap")],
                         True, "cp", 1)


def test_snapshot_records_sharing_across_processes():
    """After fork + one COW: page 0 is one frame in both, page 1 differs, page 2 is the zero
    page, page 3 was never touched."""
    snap = _snapshot_after_fork()
    pp = snap["procs"][0]["regions"][0]["pages"]
    cp = snap["procs"][1]["regions"][0]["pages"]
    assert pp[0].split()[3] == cp[0].split()[3] == "#1"
    assert pp[1].split()[3] == "#2" and cp[1].split()[3] == "#3"
    assert pp[2].split()[:4] == ["zero", "-", "-", "z"]
    assert pp[3] == cp[3] == "none - - - -"
    assert pp[0].split()[2] == "2" and cp[1].split()[:3] == ["present", "x", "1"]


def test_projection_without_pfns_hides_pfn_dependent_fields():
    """Without pfns a zero page reads 'present' and count/frame/flags are unknown."""
    assert project_page("zero - - z -", False) == "present - - - -"
    assert project_page("present x 1 #4 anon", False) == "present x - - -"
    assert project_page("present x 1 #4 anon", True) == "present x 1 #4 anon"


def test_page_record_states():
    """pagemap entries map to the states of the snapshot."""
    no = FrameNumbering()
    assert page_record(0, False, True, no, None, None).startswith("unmapped")
    assert page_record(0, True, True, no, None, None).startswith("none")
    assert page_record((1 << 62) | (1 << 58) | 0x9f, True, True, no, None, None).startswith("guard")
    assert page_record((1 << 62) | 0x20, True, True, no, None, None) == "swap - - s1 -"


# -- the comparison --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def golden_and_model():
    name = "fork-cow-child-writes"
    golden = load_golden(name)
    assert golden is not None
    _, sc = resolve(name)
    return golden, run_trace(sc, name, "model")


def test_identical_traces_have_no_mismatch(golden_and_model):
    """A trace compared with itself, and the model with its golden, give no rows."""
    golden, model = golden_and_model
    assert compare_traces(golden, copy.deepcopy(golden)) == []
    assert compare_traces(golden, model) == []


def _first_present(trace):
    for cp in trace["checkpoints"]:
        for p in cp["procs"]:
            for r in p["regions"]:
                for i, pg in enumerate(r.get("pages", [])):
                    if pg.startswith("present"):
                        return cp, p, r, i
    raise AssertionError("no present page")


def test_a_changed_mapcount_is_reported(golden_and_model):
    """One page's mapcount changed in the model's trace: one 'mapcount' row at that page."""
    golden, model = golden_and_model
    bad = copy.deepcopy(model)
    cp, p, r, i = _first_present(bad)
    f = r["pages"][i].split()
    f[2] = str(int(f[2]) + 1)
    r["pages"][i] = " ".join(f)
    rows = compare_traces(golden, bad)
    assert [(x.proc, x.region, x.item) for x in rows] == [(p["proc"], r["region"], f"page {i} mapcount")]
    assert rows[0].where == f"checkpoint {cp['checkpoint']} (line {cp['line']})"


def test_a_changed_sharing_partition_is_reported(golden_and_model):
    """If the model maps a page to a frame the host did not share, the frame row says so."""
    golden, model = golden_and_model
    bad = copy.deepcopy(model)
    cp = next(c for c in bad["checkpoints"] if c["checkpoint"] == "forked")
    child = cp["procs"][1]["regions"][0]["pages"]
    f = child[0].split()
    f[3] = "#99"                                # the child's page 0 no longer shares with P's
    child[0] = " ".join(f)
    rows = compare_traces(golden, bad)
    assert any(x.item == "page 0 frame" and x.proc == "C" for x in rows)


def test_relabelled_frames_are_not_a_mismatch(golden_and_model):
    """Renaming every frame label consistently keeps the partition: no row."""
    golden, model = golden_and_model
    bad = copy.deepcopy(model)
    for cp in bad["checkpoints"]:
        for p in cp["procs"]:
            for r in p["regions"]:
                r["pages"] = [" ".join(w if not w.startswith("#") else "#" + str(int(w[1:]) + 100)
                                       for w in pg.split()) for pg in r.get("pages", [])]
    assert compare_traces(golden, bad) == []


def test_outcomes_smaps_and_vmas_are_compared(golden_and_model):
    """A different errno, read value, smaps field or VMA list each gives a row."""
    golden, model = golden_and_model
    bad = copy.deepcopy(model)
    rd = next(o for o in bad["outcomes"] if o["op"] == "read")
    rd["value"] = "00"
    bad["outcomes"][2]["result"] = "ENOMEM"
    reg = bad["checkpoints"][0]["procs"][0]["regions"][0]
    reg["smaps"]["Rss"] += 4
    reg["vmas"] = ["0-8 rw-p rd wr mr mw me ac", "8-16 rw-p rd wr mr mw me ac"]
    items = {x.item for x in compare_traces(golden, bad)}
    assert {"read value", f"{bad['outcomes'][2]['op']} result", "smaps Rss", "VMAs"} <= items


def test_a_deliberately_wrong_model_answer_is_caught(monkeypatch):
    """With the model's pagemap made to drop the exclusive bit, the golden comparison fails:
    the model-vs-golden tests can fail."""
    name = "fork-cow-child-writes"
    golden = load_golden(name)
    orig = vmlab.api.process.Process.pagemap

    def wrong(self, addr, npages):
        return [e & ~PM_MMAP_EXCLUSIVE for e in orig(self, addr, npages)]

    monkeypatch.setattr(vmlab.api.process.Process, "pagemap", wrong)
    _, sc = resolve(name)
    rows = compare_traces(golden, run_trace(sc, name, "model"))
    assert rows and all(r.item.endswith("pagemap") for r in rows)
    assert {r.host for r in rows} == {"x"} and {r.model for r in rows} == {"-"}


def test_no_pfns_means_no_pfn_fields_compared(golden_and_model):
    """A trace without pfns (non-root host) is compared on states and pagemap bits only."""
    golden, model = golden_and_model
    g = copy.deepcopy(golden)
    g["pfns"] = False
    for cp in g["checkpoints"]:
        for p in cp["procs"]:
            for r in p["regions"]:
                r["pages"] = [project_page(x, False) for x in r.get("pages", [])]
    assert compare_traces(g, model) == []


def test_a_stale_golden_is_reported(golden_and_model):
    """A golden recorded from a different scenario text asks to be re-recorded."""
    golden, model = golden_and_model
    g = dict(golden, source_sha256="0" * 64)
    rows = compare_traces(g, model)
    assert len(rows) == 1 and "re-record" in rows[0].model


def test_table_coalesces_page_runs():
    """Consecutive pages with the same difference become one 'pages a-b' row."""
    from vmlab.verify import Mismatch
    rows = [Mismatch("s", "cp", "P", "A", f"page {i} state", "present", "none") for i in (3, 4, 5)]
    rows.append(Mismatch("s", "cp", "P", "A", "page 7 state", "present", "none"))
    out = coalesce(rows)
    assert [r.item for r in out] == ["pages 3-5 state", "page 7 state"]
    text = format_table(rows)
    assert "pages 3-5 state" in text and text.splitlines()[0].startswith("scenario: where")


# -- the command ------------------------------------------------------------------------------

def test_verify_command_scores_and_exit_status(tmp_path):
    """`vmlab verify` exits 0 when the model matches the goldens, 1 when a golden is missing."""
    out = io.StringIO()
    assert verify(["fork-cow-child-writes", "munmap-middle"], out=out) == 0
    assert "score: 2/2 scenarios match" in out.getvalue()
    out = io.StringIO()
    assert verify(["fork-cow-child-writes"], golden_dir=tmp_path, out=out) == 1
    assert "missing" in out.getvalue() and "score: 0/1" in out.getvalue()


def test_cli_has_verify(capsys):
    """`vmlab verify --list` lists the corpus through the main command line."""
    from vmlab.cli import main
    assert main(["verify", "--list"]) == 0
    assert "fork-cow-child-writes" in capsys.readouterr().out


def test_a_scenario_file_by_path_runs_on_the_model(tmp_path):
    """A .vms path works too; its trace has the steps and checkpoints of the file."""
    f = tmp_path / "t.vms"
    f.write_text("# t\nspawn P\nP: mmap A 2pages rw private,anonymous\nP: touch A 2pages write\n"
                 "checkpoint one\n")
    name, sc = resolve(str(f))
    t = run_trace(sc, name, "model")
    assert name == "t" and [c["checkpoint"] for c in t["checkpoints"]] == ["one"]
    assert t["checkpoints"][0]["procs"][0]["regions"][0]["pages"][0].startswith("present x 1 #1")
    assert parse_text(f.read_text()).title == "t"


# -- the fuzzer's generator and shrinker -----------------------------------------------------

def test_fuzz_scenarios_are_deterministic_and_parse():
    """generate(seed) is the same text every time, and it is a valid scenario."""
    from vmlab.verify.fuzz import generate
    a, b = generate(7), generate(7)
    assert a == b and a != generate(8)
    sc = parse_text(a, "f.vms")
    assert sc.title == "fuzz 7" and any(s.kind == "checkpoint" for s in sc.steps)


def test_fuzz_shrink_keeps_only_the_steps_the_predicate_needs():
    """shrink drops every step whose removal keeps the predicate true, and keeps the header."""
    from vmlab.verify.fuzz import shrink
    text = ("# t\nspawn P\nP: mmap R 32pages none private,anonymous\nP: fork C1\n"
            "checkpoint a\nC1: touch R 1pages read\nP: mprotect R 2pages rw\ncheckpoint end\n")
    out = shrink(text, lambda t: "mprotect" in t)
    assert out.splitlines() == ["# t", "spawn P", "P: mmap R 32pages none private,anonymous",
                                "P: mprotect R 2pages rw", "checkpoint end"]
