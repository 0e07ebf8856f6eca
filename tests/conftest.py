"""Suite-wide options: which VM designs the design-parametrised tests run on.

Tests that take the ``design`` fixture (the ported selftests/LTP cases, the host-recorded
cases, the semantic scenarios) run once per selected design:

    pytest tests                     # every design in vmlab.designs()
    pytest tests --design linux      # one design (repeat the option for several)
    VMLAB_DESIGNS=linux,bsd pytest   # the same through the environment

A test that checks what only the `linux` design promises — exact smaps/pagemap/kpageflags
numbers that depend on Linux's structures, not on what a process can observe — is marked
``@pytest.mark.structural`` and runs on `linux` only. Semantics (contents, errnos, signals,
VMA layout as pages, Rss) are the same on every design, so everything else runs on all.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest

if importlib.util.find_spec("vmlab") is None:           # src/ layout, not pip-installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

import vmlab  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--design", action="append", default=None, metavar="NAME",
                     help="run design-parametrised tests on this design only (repeatable; "
                          f"default: all of {', '.join(vmlab.designs())}; env VMLAB_DESIGNS)")


def selected_designs(config) -> list[str]:
    chosen = config.getoption("--design")
    if not chosen and os.environ.get("VMLAB_DESIGNS"):
        chosen = [d.strip() for d in os.environ["VMLAB_DESIGNS"].split(",") if d.strip()]
    if not chosen or chosen == ["all"]:
        return vmlab.designs()
    bad = [d for d in chosen if d not in vmlab.designs()]
    if bad:
        raise pytest.UsageError(f"--design: unknown design(s) {bad}; choose from {vmlab.designs()}")
    return chosen


def _host_backend(config) -> bool:
    try:
        value = config.getoption("--backend")
    except ValueError:
        value = None
    return (value or os.environ.get("VMLAB_BACKEND")) == "host"


def pytest_generate_tests(metafunc):
    if "design" in metafunc.fixturenames:
        if _host_backend(metafunc.config):
            designs = ["host"]                # the real kernel: one run, no model design
        else:
            designs = selected_designs(metafunc.config)
            if metafunc.definition.get_closest_marker("structural"):
                designs = [d for d in designs if d == "linux"]
        metafunc.parametrize("design", designs, scope="function")
