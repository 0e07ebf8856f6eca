"""vmlab compare: one scenario on several designs, and the repeat blocks of the scenario grammar."""

import pytest

import vmlab
from vmlab.cli import main
from vmlab.compare import compare, render
from vmlab.errors import ScenarioError
from vmlab.scenario import parse_text

FORKS = """# three children COW half the pages
spawn P
P: mmap A 8pages rw private,anonymous
P: fill A 8pages 1
repeat 3 as k
  P: fork C{k}
  C{k}: fill A 4pages 2
end
checkpoint done
C2: read A 1 expect x"02"
P: read A 1 expect x"01"
"""


def test_repeat_unrolls_with_substitution_and_nesting():
    """repeat N [as VAR] ... end repeats its lines with {VAR} (and {VAR+1}) substituted."""
    sc = parse_text("spawn G0\nrepeat 2 as g\n  G{g}: fork G{g+1}\n  repeat 2\n"
                    "    G{g+1}: touch {i} 1\n  end\nend\n")
    ops = [(s.proc, s.op) for s in sc.steps if s.kind == "op"]
    assert ops == [("G0", "fork"), ("G1", "touch"), ("G1", "touch"),
                   ("G1", "fork"), ("G2", "touch"), ("G2", "touch")]


@pytest.mark.parametrize("text, msg", [("spawn P\nrepeat 2\nP: exit\n", "no matching 'end'"),
                                       ("spawn P\nend\n", "'end' without 'repeat'"),
                                       ("spawn P\nrepeat x\nend\n", "expected a number")])
def test_repeat_errors_name_the_line(text, msg):
    """Unbalanced or malformed repeat blocks are one-line errors with file and line."""
    with pytest.raises(ScenarioError, match=msg):
        parse_text(text, "t.vms")


def test_compare_runs_every_design_with_identical_reads():
    """Every design runs the scenario; COW counts are semantics and agree; the metadata
    differs by structure (anon_vma for linux, the family anchor for anonmm)."""
    runs = compare(parse_text(FORKS), vmlab.designs())
    assert [r.design for r in runs] == vmlab.designs()
    assert all(not r.problems for r in runs), [r.problems for r in runs]
    assert {r.stats["pages_copied_cow"] for r in runs} == {12}
    by = {r.design: r for r in runs}
    assert by["linux"].metadata_end["anon_vma"] == 4 * 104      # parent + 3 children
    assert "mm_family" in by["anonmm"].metadata_end
    text = render(runs)
    assert "pages_copied_cow" in text and "page tables" in text


def test_compare_reports_an_unmet_expectation(tmp_path, capsys):
    """A scenario expectation that fails is listed and the command exits 1."""
    f = tmp_path / "bad.vms"
    f.write_text(FORKS.replace('expect x"02"', 'expect x"05"'))
    assert main(["compare", str(f), "--designs", "linux"]) == 1
    assert "problems:" in capsys.readouterr().out


def test_compare_plot_writes_a_file(tmp_path):
    """--plot draws the comparison (needs matplotlib, a test dependency)."""
    pytest.importorskip("matplotlib")
    f = tmp_path / "s.vms"
    f.write_text(FORKS)
    out = tmp_path / "cmp.png"
    assert main(["compare", str(f), "--designs", "all", "--plot", str(out)]) == 0
    assert out.stat().st_size > 1000
