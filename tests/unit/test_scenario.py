"""Scenario files: errors name file, line and field; runs report expectations."""

import pytest

from vmlab.cli import main
from vmlab.errors import ScenarioError
from vmlab.scenario import Runner, builtin_names, load, make_machine, parse_text


@pytest.mark.parametrize("text, where", [
    ("spawn P\nP: mmap A 16Q rw private,anonymous\n", "2: len:"),
    ("spawn P\nP: mmap A 4K rw private,anonymus\n", "2: flags:"),
    ("spawn P\nQ: munmap 0 4K\n", "2: process:"),
    ("spawn P\nP: munmap B 4K\n", "2: addr:"),
    ("spawn P\nP: frobnicate\n", "2: op:"),
    ("spawn P\nP: munmap 0 4K => EWHAT\n", "2: expect:"),
    ("spawn P\nmachine ram=64M\n", "2: machine:"),
])
def test_bad_lines_name_file_line_and_field(text, where):
    with pytest.raises(ScenarioError) as ei:
        parse_text(text, "t.vms")
    assert str(ei.value).startswith("t.vms:" + where)


def test_expectations_are_checked_not_raised():
    sc = parse_text("spawn P\nP: mmap A 4K rw private,anonymous\n"
                    "P: munmap A+1 4K => EINVAL\nP: munmap A+1 4K => ok\n", "t.vms")
    r = Runner(sc, make_machine(sc)).run()
    assert len(r.mismatches) == 1 and "t.vms:4" in r.mismatches[0]


def test_builtin_demo_runs_clean(capsys):
    assert "fork-cow" in builtin_names()
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "COW copies: 1024" in out and "Machine.check(): consistent" in out


def test_cli_reports_a_bad_file_in_one_line(tmp_path, capsys):
    f = tmp_path / "bad.vms"
    f.write_text("spawn P\nP: mmap A 4K rwq private\n")
    assert main(["run", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.vms:2:" in err[0]


def test_checkpoint_table_shows_each_process_only_its_own_regions(tmp_path, capsys):
    """Region names are global but addresses are per process: two unrelated processes map
    regions at the same address, and each checkpoint row is a region the process mapped or
    inherited at fork — never another process's region that happens to cover the range."""
    f = tmp_path / "two.vms"
    f.write_text("machine ram=64M\nspawn P\nP: mmap A 64K rw private,anonymous\n"
                 "P: fill A 64K 0x11\nP: fork C\nspawn Q\nQ: mmap B 32K rw private,anonymous\n"
                 "Q: fill B 32K 0x22\ncheckpoint end\n")
    assert main(["run", str(f)]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()
            if line.startswith("   ") and line.split()[0] in ("P", "C", "Q")]
    assert rows == [["P", "A", "64"], ["C", "A", "64"], ["Q", "B", "32"]]
