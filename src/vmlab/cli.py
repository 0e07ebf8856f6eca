"""The ``vmlab`` command.

    vmlab demo [--design D]            the built-in fork/COW demo, narrated
    vmlab run SCENARIO [--design D]    run a scenario file (or a built-in name) and report
    vmlab scenarios                    list the built-in scenarios
    vmlab procfs SCENARIO PATH         run a scenario and print a /proc file at its end
    vmlab bench [--size 1G] [--repeat 3]   model vs host kernel costs
    vmlab verify [SCENARIO...] [--host] [--record] [--golden-dir DIR]
                                       the model against the host kernel (docs/validation.md)
    vmlab compare SCENARIO [--designs all | D...] [--plot FILE] [--json FILE]
                                       one workload on several designs, costs side by side
    vmlab designs                      list the designs and their options

Exit status: 0 on success, 1 when a scenario's expectations were not met, 2 for bad usage or a
bad scenario file (reported as one line naming file, line and field).
"""

from __future__ import annotations

import argparse
import sys

from .errors import ScenarioError, VMLabError


def _run_scenario(name: str, design: str | None, quiet: bool = False, check: bool = True):
    from .report import RunReport
    from .scenario import Runner, load, make_machine
    sc = load(name)
    over = {"design": design} if design else {}
    m = make_machine(sc, **over)
    rep = RunReport(m, verbose=not quiet)
    runner = Runner(sc, m, on_checkpoint=rep.on_checkpoint, on_step=rep.on_step).run()
    if check:
        m.check()
    return sc, m, runner, rep


def cmd_run(args) -> int:
    sc, m, runner, rep = _run_scenario(args.scenario, args.design, quiet=args.quiet)
    print(f"vmlab: {sc.title or sc.path} (design {m.design.name}, ram {m.ram >> 20} MiB)")
    print(rep.text(), end="")
    if runner.unexpected:
        print("\nsteps that failed (no '=>' expectation):")
        for u in runner.unexpected:
            print("  " + u)
    if runner.mismatches:
        print("\nexpectations not met:")
        for u in runner.mismatches:
            print("  " + u)
        return 1
    print("\nMachine.check(): consistent")
    return 0


def cmd_demo(args) -> int:
    args.scenario = "fork-cow"
    args.quiet = False
    return cmd_run(args)


def cmd_scenarios(args) -> int:
    from .scenario import builtin_names, load
    for n in builtin_names():
        print(f"{n:<24}{load(n).title}")
    return 0


def cmd_procfs(args) -> int:
    sc, m, runner, rep = _run_scenario(args.scenario, args.design, quiet=True)
    path = args.path
    for pname, proc in runner.procs.items():
        path = path.replace("{" + pname + "}", str(proc.pid))
    print(m.procfs(path), end="")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench
    from .units import parse_size
    run_bench(parse_size(args.size, "--size"), args.repeat, args.design or "linux")
    return 0


def _design_specs(names: list[str]) -> list[str]:
    import vmlab
    out: list[str] = []
    for n in names:
        out += vmlab.designs() if n == "all" else [n]
    return out


def cmd_compare(args) -> int:
    import json
    from .compare import compare, plot, render
    from .scenario import load
    sc = load(args.scenario)
    over = {}
    if args.ram:
        over["ram"] = args.ram
    if args.swap:
        over["swap"] = args.swap
    runs = compare(sc, _design_specs(args.designs), over)
    print(render(runs, f"vmlab compare: {sc.title or sc.path}"), end="")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{"design": r.design, "metadata_end": r.metadata_end,
                        "metadata_peak": r.metadata_peak, "stats": r.stats, "vmstat": r.vmstat,
                        "seconds": r.seconds, "problems": r.problems} for r in runs], fh, indent=1)
    if args.plot:
        plot(runs, args.plot, sc.title or sc.path)
        print(f"plot written to {args.plot}")
    return 1 if any(r.problems for r in runs) else 0


def cmd_designs(args) -> int:
    from .designs import DESIGNS
    for name, cls in DESIGNS.items():
        print(f"{name:<10} {cls.description}")
        for opt, (default, doc) in cls.OPTIONS.items():
            d = int(default) if isinstance(default, bool) else default
            print(f"{'':<10}   :{opt}={d}  {doc}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="vmlab", description="An executable model of virtual memory.")
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("demo", help="fork a process with resident memory and watch COW happen")
    p.add_argument("--design", default=None)
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("run", help="run a scenario file or built-in scenario")
    p.add_argument("scenario")
    p.add_argument("--design", default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="only notes and checkpoints")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("scenarios", help="list built-in scenarios")
    p.set_defaults(fn=cmd_scenarios)
    p = sub.add_parser("procfs", help="print a /proc file after running a scenario")
    p.add_argument("scenario")
    p.add_argument("path", help="e.g. /proc/{parent}/smaps (process names in braces)")
    p.add_argument("--design", default=None)
    p.set_defaults(fn=cmd_procfs)
    p = sub.add_parser("bench", help="model vs host kernel: fault, fork, COW, munmap")
    p.add_argument("--size", default="1G")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--design", default=None)
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("compare", help="run one scenario on several designs and compare costs")
    p.add_argument("scenario")
    p.add_argument("--designs", nargs="+", default=["all"], metavar="D",
                   help="design specs (name or name:option=value,...), or 'all' (default)")
    p.add_argument("--ram", default=None, help="override the scenario's RAM size")
    p.add_argument("--swap", default=None, help="override the scenario's swap size")
    p.add_argument("--plot", default=None, metavar="FILE", help="draw the comparison (.png/.svg)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the numbers as JSON")
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("designs", help="list the designs and their options")
    p.set_defaults(fn=cmd_designs)
    from .verify.command import add_parser as _add_verify_parser
    _add_verify_parser(sub)
    args = ap.parse_args(argv)
    if not getattr(args, "fn", None):
        ap.print_help()
        return 2
    try:
        return args.fn(args)
    except ScenarioError as e:
        print(f"vmlab: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"vmlab: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:                 # e.g. --plot without matplotlib
        print(f"vmlab: {e}", file=sys.stderr)
        return 2
    except VMLabError as e:
        print(f"vmlab: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
