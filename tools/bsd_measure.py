"""The numbers of docs/designs/bsd.md: shadow-chain depth with and without vm_object_collapse.

    .venv/bin/python tools/bsd_measure.py [SCENARIO] [--designs SPEC ...]

Runs a scenario (default: the built-in bsd-shadow-chain) on ``bsd`` and on
``bsd:collapse=0`` and prints, at every checkpoint and at the end, the recount of the object
graph that vmlab.designs.bsd.measure.chain_stats() makes (objects, entries bound to them,
longest and mean shadow chain, pages and swap blocks in objects, and how many of those no
entry can see any more) next to the design's counters (objects created, collapses, bypasses,
copy-ups, COW copies, zero fills) and the vm_object bytes of metadata(). The run ends with
Machine.check(), which must be clean.

This drives vmlab.scenario, which sits above the designs layer: that is why it is a tool and
not part of src/vmlab/designs/bsd/.
"""

from __future__ import annotations

import argparse
import sys

if __package__ in (None, ""):
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

from vmlab.designs.bsd.measure import KEYS, chain_stats  # noqa: E402
from vmlab.scenario import Runner, load, make_machine  # noqa: E402

COUNTERS = ("objects_created", "shadow_collapses", "shadow_bypasses", "copy_ups",
            "copy_up_renames", "pages_copied_cow", "faults_anon")


def machine_stats(machine) -> dict:
    """chain_stats() of every live process, the design's counters, vm_object bytes."""
    mms = [t.mm for t in machine.kernel.live_tasks()]
    out = chain_stats(machine.design, mms)
    out.update({k: machine.design.stats.get(k, 0) for k in COUNTERS})
    out["vm_object_bytes"] = machine.design.metadata()["vm_object"]
    return out


def run(scenario: str, spec: str) -> list[tuple[str, dict]]:
    """Run ``scenario`` on design ``spec``: the stats at each checkpoint and at the end."""
    sc = load(scenario)
    m = make_machine(sc, design=spec)
    rows: list[tuple[str, dict]] = []
    runner = Runner(sc, m, on_checkpoint=lambda name, _r: rows.append((name, machine_stats(m))))
    runner.run()
    if runner.mismatches or runner.unexpected:
        raise SystemExit(f"{spec}: scenario failed: {runner.mismatches + runner.unexpected}")
    m.check()
    rows.append(("end", machine_stats(m)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default="bsd-shadow-chain")
    ap.add_argument("--designs", nargs="+", default=["bsd", "bsd:collapse=0"], metavar="SPEC")
    args = ap.parse_args(argv)
    cols = KEYS + COUNTERS + ("vm_object_bytes",)
    w = sys.stdout.write
    for spec in args.designs:
        w(f"== {args.scenario} on {spec}\n")
        w(f"{'checkpoint':<16}" + "".join(f"{c:>{max(len(c), 6) + 2}}" for c in cols) + "\n")
        for name, st in run(args.scenario, spec):
            w(f"{name:<16}" + "".join(f"{st[c]:>{max(len(c), 6) + 2}}" for c in cols) + "\n")
        w("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
