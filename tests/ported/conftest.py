"""Backend switch for the ported Linux selftests and LTP tests (tests/ported/).

Every test here takes the ``machine`` fixture and uses only the API that the model
(``vmlab.Machine``) and the real-kernel backend (``vmlab.host.HostMachine``) share, so the
same test checks the model and the kernel it models:

    .venv/bin/python -m pytest tests/ported -q                    # the model (default)
    .venv/bin/python -m pytest tests/ported -q --backend=host     # this machine's kernel

``--backend`` is registered here, in this directory's conftest, so it is known whenever
pytest is pointed at tests/ported or anything below it. If another conftest already defines
an option of that name, that definition is used instead. When the option is unknown (pytest
run from a parent directory that has no such option) the environment variable
``VMLAB_BACKEND=host`` selects the host.

On the model the fixture runs ``Machine.check()`` after each test, so every ported scenario
also checks the model's own invariants (mapcounts, rmap, RSS counters, VMA tree).
"""

import importlib.util
import os
import pathlib
import sys

import pytest

if importlib.util.find_spec("vmlab") is None:           # src/ layout, not pip-installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "src"))

import vmlab  # noqa: E402

BACKENDS = ("model", "host")


def pytest_addoption(parser):
    try:
        parser.addoption("--backend", action="store", default=None, choices=BACKENDS,
                         help="tests/ported: run on the vmlab model (default) or on this "
                              "machine's kernel through vmlab.host.HostMachine")
    except ValueError:          # already registered by another conftest: share it
        pass


def selected_backend(config) -> str:
    try:
        value = config.getoption("--backend")
    except ValueError:          # option not registered (pytest started above tests/ported)
        value = None
    value = value or os.environ.get("VMLAB_BACKEND") or "model"
    if value not in BACKENDS:
        raise pytest.UsageError(f"backend must be one of {BACKENDS}, got {value!r}")
    return value


@pytest.fixture
def backend(request) -> str:
    """'model' or 'host'."""
    return selected_backend(request.config)


def _machine(backend, design="linux", ram="256M", **model_options):
    if backend == "host":
        if not sys.platform.startswith("linux"):
            pytest.skip("the host backend needs Linux")
        from vmlab.host import HostMachine
        m = HostMachine()
        try:
            yield m
        finally:
            m.close()
    else:
        m = vmlab.Machine(ram=ram, design=design, **model_options)
        yield m
        m.check()


@pytest.fixture
def machine(request, backend, design):
    """A fresh machine: vmlab.Machine(ram="256M", design=...) once per selected design
    (tests/conftest.py), or the host kernel with --backend=host. A test module that needs
    more RAM (mremap_test maps 2 GiB of shared memory, which must fit the commit limit)
    sets MODEL_RAM."""
    yield from _machine(backend, design, ram=getattr(request.module, "MODEL_RAM", "256M"))


@pytest.fixture
def swap_machine(backend, design):
    """Like ``machine``, but the model gets a 64 MiB swap area. On the host it is the host's
    own swap (none on the reference host): tests that need swapped-out pages then skip, as
    the selftests do when MADV_PAGEOUT did not swap anything out."""
    yield from _machine(backend, design, swap="64M")
