"""The model against the real kernel, case by case.

Each case in tests/data/host_errno_cases.json was run on Linux 6.18.44 (the reference host)
by tools/probes/run_cases.py; the expectations are the kernel's answers: results and errnos
of every step, signals, fault counts, pagemap bits, VmLck, and the VMAs left in the regions the
case watches (with perms and VmFlags). This test replays each case on every design
(tests/conftest.py) and requires identical answers plus a clean Machine.check(): all of them on
`linux`, everything a process can observe on the others (hostcases.STRUCTURAL_OPS). Ported cases name their source in
the JSON ("ported_from").
"""

import pytest

from hostcases import Unsupported, load, run_case

DATA = load()
KNOWN_DEVIATIONS: dict[str, str] = {}


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["name"] for c in DATA["cases"]])
def test_host_case(case, design):
    if case["name"] in KNOWN_DEVIATIONS:
        pytest.xfail(KNOWN_DEVIATIONS[case["name"]])
    try:
        diffs = run_case(DATA, case, design)
    except Unsupported as e:
        pytest.skip(str(e))
    assert not diffs, f"{case['name']}: {case.get('doc', '')}\n  " + "\n  ".join(diffs)
