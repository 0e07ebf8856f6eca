"""The layering rule of docs/design.md: a module imports only from its own layer or below.

Parses every module of src/vmlab with ast and checks each `from vmlab...` / relative import
against the layer order. host/ is a peer backend: it may use only the bottom layer.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vmlab"
ORDER = ["base", "hw", "mm", "designs", "reclaim", "kernel", "proc", "check", "api", "host", "top"]
BASE = {"constants", "errors", "units", "__init__"}
TOP = {"cli", "bench", "report", "scenario", "verify", "compare", "sweep", "explain", "scenarios"}


def layer_of(parts: list[str]) -> str:
    head = parts[0] if parts else "__init__"
    if head in BASE:
        return "base" if head != "__init__" or len(parts) > 1 else "top"
    if head in TOP:
        return "top"
    return head


def module_parts(path: Path) -> list[str]:
    rel = path.relative_to(SRC).with_suffix("")
    return list(rel.parts)


def imported(path: Path, tree: ast.AST) -> list[list[str]]:
    me = module_parts(path)
    pkg = me[:-1] if path.name != "__init__.py" else me[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                mod = (node.module or "").split(".") if node.module else []
                target = base + [m for m in mod if m]
                if not target:   # "from . import x"
                    target = base + [node.names[0].name]
                out.append(target)
            elif node.module and node.module.startswith("vmlab"):
                out.append(node.module.split(".")[1:])
        elif isinstance(node, ast.Import):
            for n in node.names:
                if n.name.startswith("vmlab."):
                    out.append(n.name.split(".")[1:])
    return out


def test_imports_only_go_downward():
    """Every vmlab module imports from its own layer or lower ones (host/: only the base)."""
    bad = []
    for path in SRC.rglob("*.py"):
        parts = module_parts(path)
        if parts == ["__init__"]:
            continue                       # the package facade re-exports the public API
        mine = layer_of(parts)
        tree = ast.parse(path.read_text())
        for target in imported(path, tree):
            theirs = layer_of(target)
            if theirs not in ORDER or mine not in ORDER:
                continue
            if mine == "host" and theirs not in ("base", "host"):
                bad.append(f"{'/'.join(parts)} (host) imports {'.'.join(target)}")
            elif ORDER.index(theirs) > ORDER.index(mine) and not (mine == "host" and theirs == "host"):
                bad.append(f"{'/'.join(parts)} ({mine}) imports {'.'.join(target)} ({theirs})")
    assert not bad, "upward imports:\n  " + "\n  ".join(bad)
