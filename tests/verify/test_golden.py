"""The model against the host kernel's recorded answers (goldens) for every corpus scenario.

Each corpus scenario was run on the reference host (`vmlab verify --record`); its golden file
holds the host's outcomes and per-checkpoint snapshots. Here the scenario runs on the model
and must produce the same trace. This runs anywhere: no root, no Linux needed.
A scenario whose only differences are known, reported model bugs or recorded deviations
(known_bugs.py) is an xfail.
"""

from __future__ import annotations

import functools

import pytest

from known_bugs import KNOWN_MODEL_BUGS, RECORDED_DEVIATIONS, explain
from vmlab.verify import compare_traces, corpus_names, format_table, load_golden, resolve, run_trace
from vmlab.verify.golden import DEFAULT_DIR

NAMES = corpus_names()


@functools.lru_cache(maxsize=None)
def model_rows(name: str):
    golden = load_golden(name)
    if golden is None:
        return None
    _, sc = resolve(name)
    return tuple(compare_traces(golden, run_trace(sc, name, "model")))


def test_corpus_is_large_enough_and_titled():
    """The corpus has at least 40 scenarios and each one starts with a '# title' line."""
    assert len(NAMES) >= 40
    for n in NAMES:
        assert resolve(n)[1].title, f"{n}.vms does not start with a '# title' line"


def test_every_scenario_has_a_golden_and_every_golden_a_scenario():
    """Goldens and corpus correspond one to one (re-record with `vmlab verify --record`)."""
    goldens = {p.stem for p in DEFAULT_DIR.glob("*.json")}
    assert set(NAMES) - goldens == set(), "scenarios without a golden"
    assert goldens - set(NAMES) == set(), "goldens without a scenario"


@pytest.mark.parametrize("name", NAMES)
def test_model_matches_host_golden(name):
    """Outcomes, contents read, per-page state/flags/sharing and per-region smaps equal the host's."""
    rows = model_rows(name)
    assert rows is not None, f"no golden for {name}: run `vmlab verify --record {name}`"
    left, bugs = explain(name, rows)
    assert not left, "\n" + format_table(list(left), limit=40)
    if bugs:
        pytest.xfail("known model bug(s) / recorded deviation(s) " + ", ".join(sorted(bugs))
                     + " (tests/verify/known_bugs.py)")


def test_known_bugs_still_reproduce():
    """Every entry of known_bugs.py still explains some mismatch; remove it once it is fixed."""
    seen: set[str] = set()
    for n in NAMES:
        rows = model_rows(n)
        if rows:
            seen |= explain(n, rows)[1]
    fixed = (set(KNOWN_MODEL_BUGS) | set(RECORDED_DEVIATIONS)) - seen
    assert not fixed, f"these entries no longer show in the corpus; remove them: {sorted(fixed)}"
