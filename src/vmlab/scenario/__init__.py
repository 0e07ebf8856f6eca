"""Scenario files: parse (parse.py) and run on any backend (run.py); built-ins in
vmlab/scenarios/*.vms."""

from __future__ import annotations

from importlib import resources

from .parse import Addr, Scenario, Step, parse_file, parse_text
from .run import Outcome, Runner, make_machine


def builtin_names() -> list[str]:
    base = resources.files("vmlab") / "scenarios"
    return sorted(p.name[:-4] for p in base.iterdir() if p.name.endswith(".vms"))


def load(name_or_path: str) -> Scenario:
    """A built-in scenario by name (``fork-cow``) or a file by path."""
    base = resources.files("vmlab") / "scenarios"
    cand = base / (name_or_path + ".vms")
    if "/" not in name_or_path and not name_or_path.endswith(".vms") and cand.is_file():
        return parse_text(cand.read_text(), f"<builtin {name_or_path}>")
    return parse_file(name_or_path)


__all__ = ["Addr", "Scenario", "Step", "parse_file", "parse_text", "Outcome", "Runner",
           "make_machine", "builtin_names", "load"]
