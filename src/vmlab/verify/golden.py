"""Golden files: the host's trace of each corpus scenario, stored as JSON.

``tests/data/golden/NAME.json`` holds one trace (trace.py) recorded on the host with
``vmlab verify --record``: the kernel release and the host configuration that matter (THP,
soft-dirty, swap, pkeys, whether pfns were readable, how per-CPU batches were drained), every
step's outcome and every checkpoint's snapshot. Pages are written one per line so that a
re-recording diffs readably.
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "golden"


def golden_path(name: str, directory: Path | str | None = None) -> Path:
    return Path(directory or DEFAULT_DIR) / f"{name}.json"


def load_golden(name: str, directory: Path | str | None = None) -> dict | None:
    p = golden_path(name, directory)
    if not p.is_file():
        return None
    return json.loads(p.read_text())


def dumps(trace: dict) -> str:
    """Indented JSON: every page string and VMA piece on a line of its own, so a re-recording
    diffs page by page."""
    return json.dumps(trace, indent=1, sort_keys=False) + "\n"


def save_golden(trace: dict, directory: Path | str | None = None) -> Path:
    p = golden_path(trace["scenario"], directory)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(dumps(trace))
    return p
