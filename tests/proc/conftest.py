"""Make ``import vmlab`` work when the package has not been pip-installed yet (the src/
layout is not on sys.path by itself). Once ``pip install -e .`` has run this does nothing."""

import importlib.util
import pathlib
import sys

if importlib.util.find_spec("vmlab") is None:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "src"))
