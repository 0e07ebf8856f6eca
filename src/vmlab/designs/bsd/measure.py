"""Shadow-chain measurements for the bsd design, and the command that prints them.

``chain_stats(design, mms)`` describes the object graph of a running bsd machine:

  objects           live VM objects
  entries           map entries bound to an object
  max_depth         the longest shadow chain of any entry (1: the entry's object has no
                    backing object)
  mean_depth        the mean chain length over entries
  pages             pages resident in objects
  swapped           swap blocks held by objects
  hidden            pages and swap blocks held by objects that no entry can see any more:
                    every entry reaching them has a page (or zero marker) above them at that
                    index, or none covers the index — the memory a missing collapse wastes

The command runs a scenario on ``bsd`` and on ``bsd:collapse=0`` and prints these numbers
with the design's counters, at each checkpoint and at the end:

    .venv/bin/python -m vmlab.designs.bsd.measure [SCENARIO]      (default: bsd-shadow-chain)

(The command drives vmlab.scenario, which sits above the designs layer; it imports it only
when run, so the design itself depends on nothing above it.)
"""

from __future__ import annotations

import sys

import numpy as np

from .objects import chain_lookup

KEYS = ("objects", "entries", "max_depth", "mean_depth", "pages", "swapped", "hidden")
COUNTERS = ("objects_created", "shadow_collapses", "shadow_bypasses", "copy_ups",
            "copy_up_renames", "pages_copied_cow", "faults_anon")


def chain_stats(design, mms: list) -> dict:
    visible: dict[int, set] = {}
    depths = []
    for mm in mms:
        for vma in mm.vmas:
            for e in vma.design_state or ():
                if e.obj is None:
                    continue
                chain = e.obj.chain()
                depths.append(len(chain))
                pidx = np.arange(e.lo, e.hi, dtype=np.int64)
                level, objs, _pg, _sw = chain_lookup(e.obj, pidx)
                for k, o in enumerate(objs):
                    hit = pidx[level == k]
                    if len(hit):
                        visible.setdefault(o.id, set()).update(hit.tolist())
    pages = swapped = hidden = 0
    for o in design.objects.values():
        pidx, pg, sw = o.items()
        held = (pg >= 0) | (sw != 0)
        pages += int((pg >= 0).sum())
        swapped += int((sw != 0).sum())
        seen = visible.get(o.id, set())
        hidden += sum(1 for p in pidx[held].tolist() if p not in seen)
    return {"objects": len(design.objects), "entries": len(depths),
            "max_depth": max(depths, default=0),
            "mean_depth": round(sum(depths) / len(depths), 2) if depths else 0.0,
            "pages": pages, "swapped": swapped, "hidden": hidden}


def machine_stats(machine) -> dict:
    mms = [t.mm for t in machine.kernel.live_tasks()]
    out = chain_stats(machine.design, mms)
    out.update({k: machine.design.stats.get(k, 0) for k in COUNTERS})
    out["vm_object_bytes"] = machine.design.metadata()["vm_object"]
    return out


def run(scenario: str, spec: str) -> list[tuple[str, dict]]:
    """Run ``scenario`` on design ``spec``; the stats at each checkpoint and at the end."""
    from ...scenario import Runner, load, make_machine
    sc = load(scenario)
    m = make_machine(sc, design=spec)
    rows: list[tuple[str, dict]] = []
    Runner(sc, m, on_checkpoint=lambda name, _r: rows.append((name, machine_stats(m)))).run()
    m.check()
    rows.append(("end", machine_stats(m)))
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    scenario = argv[0] if argv else "bsd-shadow-chain"
    cols = KEYS + COUNTERS
    for spec in ("bsd", "bsd:collapse=0"):
        print(f"== {scenario} on {spec}")
        print(f"{'checkpoint':<14}" + "".join(f"{c:>17}" for c in cols))
        for name, st in run(scenario, spec):
            print(f"{name:<14}" + "".join(f"{st[c]:>17}" for c in cols))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
