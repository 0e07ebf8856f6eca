"""The validation corpus: scenario files in vmlab/scenarios/corpus/*.vms.

The scenario package's built-in loader lists only the top-level vmlab/scenarios/*.vms, so the
corpus is listed and loaded here, by path.
"""

from __future__ import annotations

from pathlib import Path

from ..scenario import Scenario, parse_file

CORPUS_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "corpus"


def corpus_names() -> list[str]:
    """Names (file stems) of the corpus scenarios, sorted."""
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p.stem for p in CORPUS_DIR.glob("*.vms"))


def corpus_path(name: str) -> Path:
    return CORPUS_DIR / f"{name}.vms"


def resolve(arg: str) -> tuple[str, Scenario]:
    """A corpus scenario by name, or any scenario file by path: (name, parsed scenario)."""
    p = corpus_path(arg)
    if "/" not in arg and not arg.endswith(".vms") and p.is_file():
        return arg, parse_file(p)
    path = Path(arg)
    return path.stem, parse_file(path)
