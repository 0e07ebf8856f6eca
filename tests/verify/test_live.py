"""The model against the live host kernel, scenario by scenario (marker ``host``).

Runs each corpus scenario on this machine's kernel (vmlab.host, with per-CPU batches drained
after every step) and on the model, and compares the two traces as `vmlab verify --host` does.
It needs Linux and root (pfns, /proc/kpageflags): elsewhere it is skipped with the reason, and
the golden tests (test_golden.py) carry the comparison instead. Known model bugs
(known_bugs.py) make a scenario an xfail, as in the golden tests.

A quick selection of scenarios runs by default (about 0.3 s each; one file, one SysV shm and
one swap scenario among them); the rest of the corpus is marked ``slow``:
``pytest -m slow tests/verify/test_live.py`` or ``vmlab verify --host`` runs all of it.

Swap: the host has none configured. A scenario with ``machine swap=...`` gets a temporary swap
file of that size for its run (run_trace -> HostMachine.swapon: fallocate, chmod 600, mkswap,
swapon), swapped off and deleted when the run ends, even if it fails (and at interpreter exit,
and by the next run if this one was killed: vmlab.host.swap). While a swap file is on, the
scenarios that page out *without* swap wait for it (the host-wide swap lock), so the two kinds
can run side by side under xdist.

A host run during which the host's own reclaim ran (memory pressure from other programs) is
repeated, and skipped if that keeps happening: the model is never under such pressure.
"""

from __future__ import annotations

import os
import sys

import pytest

from known_bugs import explain
from vmlab.verify import compare_traces, corpus_names, format_table, resolve, run_trace

pytestmark = pytest.mark.host

if not sys.platform.startswith("linux"):
    pytest.skip("live verification needs the Linux host kernel", allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("live verification compares pfn-dependent fields (mapcount, kpageflags, frame "
                "sharing): it needs root", allow_module_level=True)


QUICK = {"fork-cow-child-writes", "fork-three-generations", "zero-read-then-fork",
         "shared-anon-fork", "mprotect-split-merge", "mremap-maymove", "madv-free",
         "madv-wipeonfork", "mlock-fork", "brk-mlockall-future",
         "file-private-fork", "shm-two-processes", "swap-shm-pageout"}
RETRIES = 2                 # reruns of a host run disturbed by the host's own reclaim


@pytest.mark.parametrize("name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow)
                                  for n in corpus_names()])
def test_model_matches_live_host(name):
    """The host kernel and the model give the same trace for this scenario."""
    _, sc = resolve(name)
    host = run_trace(sc, name, "host")
    for _ in range(RETRIES):
        if not (host.get("host") or {}).get("reclaim_scanned"):
            break
        host = run_trace(sc, name, "host")
    if (host.get("host") or {}).get("reclaim_scanned"):
        pytest.skip(f"the host was reclaiming memory during every run of {name} (memory "
                    "pressure from other programs): the comparison would not be meaningful")
    if host["error"] and "HostUnsupported" in host["error"]:
        pytest.skip(f"the host cannot run {name}: {host['error']}")
    rows = compare_traces(host, run_trace(sc, name, "model"))
    left, bugs = explain(name, rows)
    assert not left, "\n" + format_table(list(left), limit=40)
    if bugs:
        pytest.xfail("known model bug(s) / recorded deviation(s) " + ", ".join(sorted(bugs))
                     + " (tests/verify/known_bugs.py)")
