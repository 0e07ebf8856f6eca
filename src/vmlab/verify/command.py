"""``vmlab verify``: run scenarios on the model and compare them with the host kernel.

    vmlab verify [SCENARIO...]            the model against the golden files (any machine)
    vmlab verify --host [SCENARIO...]     the model against the live host kernel (Linux; root
                                          for pfn-dependent fields)
    vmlab verify --record [SCENARIO...]   run on the host, store the goldens, then compare
    --golden-dir DIR                      where goldens live (default tests/data/golden)
    vmlab verify --fuzz N [--seed S]      N random scenarios (fuzz.py) on the host and the
                                          model; failing ones are shrunk into --keep DIR

SCENARIO is a corpus name (``vmlab verify --list`` lists them) or a path to a .vms file; the
default is the whole corpus. Exit status 0 when every scenario that ran matches, 1 otherwise.
A scenario the host cannot run (HostUnsupported: e.g. it needs swap and the host has none) is
listed as skipped, and --record keeps its existing golden. So is one during whose host run the
host's own reclaim ran (memory pressure from other programs: /proc/vmstat pgscan_* grew) three
times in a row: such a run is retried, never recorded or compared.
"""

from __future__ import annotations

import sys
import time

from .compare import Mismatch, compare_traces, format_table
from .corpus import corpus_names, resolve
from .golden import DEFAULT_DIR, golden_path, load_golden, save_golden
from .trace import run_trace


DISTURBED_RETRIES = 2      # reruns of a host run during which the host's reclaim scanned pages


def verify(names: list[str] | None = None, *, host: bool = False, record: bool = False,
           golden_dir=None, limit: int | None = 60, out=None) -> int:
    out = out or sys.stdout
    w = out.write
    names = list(names or corpus_names())
    if not names:
        w("vmlab verify: no scenarios (the corpus is empty)\n")
        return 1
    live = host or record
    gdir = golden_dir or DEFAULT_DIR
    if live:
        from ..host import HostUnsupported, capabilities
        try:
            caps = capabilities()
        except HostUnsupported as e:
            w(f"vmlab verify: the host backend cannot run here: {e}\n")
            return 1
        if not caps.get("linux", True):
            w("vmlab verify: --host/--record need Linux\n")
            return 1
        if not caps.get("pfn"):
            w("note: not root (no CAP_SYS_ADMIN): pfns, /proc/kpagecount and /proc/kpageflags "
              "are unreadable, so mapcount, page flags, frame sharing and zero-page identity "
              "are skipped; states, pagemap bits, smaps and outcomes are still compared.\n")
    t0 = time.perf_counter()
    matched = 0
    skipped: list[str] = []
    tables: list[str] = []
    kernels: set[str] = set()
    skipped_pfn = False
    for arg in names:
        name, sc = resolve(arg)
        model = run_trace(sc, name, "model")
        if live:
            ref = run_trace(sc, name, "host")
            for _ in range(DISTURBED_RETRIES):          # host reclaim ran during the run
                if not (ref.get("host") or {}).get("reclaim_scanned"):
                    break
                ref = run_trace(sc, name, "host")
            if (ref.get("host") or {}).get("reclaim_scanned"):
                skipped.append(name)
                w(f"  skipped   {name:<34} the host was reclaiming memory during "
                  f"{DISTURBED_RETRIES + 1} runs (pgscan +{ref['host']['reclaim_scanned']}): "
                  f"free some memory and retry{' (golden kept)' if record else ''}\n")
                continue
            if (ref.get("error") or "").startswith("HostUnsupported"):
                skipped.append(name)
                w(f"  skipped   {name:<34} {ref['error'].split(': ', 1)[1]}"
                  f"{' (golden kept)' if record else ''}\n")
                continue
            if record:
                p = save_golden(ref, gdir)
                w(f"  recorded  {p}\n")
        else:
            ref = load_golden(name, gdir)
        if ref is None:
            rows = [Mismatch(name, "golden", "", "", "file",
                             f"missing: {golden_path(name, gdir)}",
                             "record it with vmlab verify --record " + name)]
        else:
            rows = compare_traces(ref, model)
            kernels.add((ref.get("host") or {}).get("kernel") or "?")
            skipped_pfn |= not ref.get("pfns")
        ncp = len(model.get("checkpoints", []))
        nsteps = len(model.get("outcomes", []))
        if rows:
            w(f"  MISMATCH  {name:<34} {len(rows)} differences\n")
            tables.append(f"\n{name}: {sc.title}\n" + format_table(rows, limit))
        else:
            matched += 1
            w(f"  match     {name:<34} {nsteps} steps, {ncp} checkpoints\n")
    for t in tables:
        w(t)
    against = "the live host" if live else "goldens recorded on " + ", ".join(sorted(kernels))
    ran = len(names) - len(skipped)
    w(f"\nscore: {matched}/{ran} scenarios match (model vs {against}; "
      f"{time.perf_counter() - t0:.1f} s)\n")
    if skipped:
        w(f"skipped: {len(skipped)} scenario(s) this host cannot run: {', '.join(skipped)}\n")
    if skipped_pfn:
        w("note: some host traces have no pfns: pfn-dependent fields were not compared there\n")
    return 0 if matched == ran else 1


def add_parser(sub) -> None:
    """The ``verify`` subcommand for vmlab.cli."""
    p = sub.add_parser("verify", help="compare the model with the host kernel (or its goldens)")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="corpus names or .vms paths (default: the whole corpus)")
    p.add_argument("--host", action="store_true", help="run on the live host kernel too")
    p.add_argument("--record", action="store_true",
                   help="run on the host and store the goldens, then compare")
    p.add_argument("--golden-dir", default=None, metavar="DIR",
                   help="where the golden files are (default tests/data/golden)")
    p.add_argument("--list", action="store_true", help="list the corpus and exit")
    p.add_argument("--all-rows", action="store_true", help="do not truncate mismatch tables")
    p.add_argument("--fuzz", type=int, default=0, metavar="N",
                   help="run N random scenarios (verify/fuzz.py) on the live host and the model")
    p.add_argument("--seed", type=int, default=0, help="first fuzz seed (default 0)")
    p.add_argument("--swap", action="store_true", help="fuzz with swap (the host needs swap)")
    p.add_argument("--keep", default="verify-fuzz", metavar="DIR",
                   help="where failing fuzz scenarios are written, shrunk (default verify-fuzz)")
    p.set_defaults(fn=cmd_verify)


def fuzz(n: int, seed: int = 0, swap: bool = False, keep="verify-fuzz", out=None) -> int:
    """Run n random scenarios on the live host and the model; write each failing one, shrunk to
    the steps that still make it differ, to ``keep``. Exit status 1 if any differed."""
    from pathlib import Path

    from .fuzz import differs, generate, shrink
    out = out or sys.stdout
    bad = []
    for s in range(seed, seed + n):
        text = generate(s, swap=swap)
        rows = differs(text, f"fuzz-{s}.vms")
        if not rows:
            continue
        first = rows[0]
        key = first.item.split(" ", 2)[-1] if first.item.startswith("page") else first.item
        small = shrink(text, lambda t: any(key in r.item for r in differs(t)))
        d = Path(keep)
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"fuzz-{s}.vms"
        f.write_text(small)
        bad.append(s)
        out.write(f"  seed {s}: {len(rows)} differences, first: {first.where}: {first.item}: "
                  f"host {first.host} / model {first.model}\n            shrunk to {f}\n")
    out.write(f"\nfuzz: {n - len(bad)}/{n} random scenarios match (seeds {seed}..{seed + n - 1})\n")
    return 1 if bad else 0


def cmd_verify(args) -> int:
    if args.fuzz:
        return fuzz(args.fuzz, args.seed, args.swap, args.keep)
    if args.list:
        for n in corpus_names():
            print(f"{n:<36}{resolve(n)[1].title}")
        return 0
    return verify(args.scenarios, host=args.host, record=args.record,
                  golden_dir=args.golden_dir, limit=None if args.all_rows else 60)
