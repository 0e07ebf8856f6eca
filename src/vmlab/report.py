"""Human-readable reports of a scenario run: what happened at each step and at each checkpoint.

At a checkpoint the report shows, for every live process, the smaps numbers of the regions the
scenario mapped (Rss, Pss, Shared/Private Clean/Dirty, Anonymous, Swap, Locked: the numbers
/proc/PID/smaps shows on Linux), and the machine-wide events since the previous checkpoint:
page faults and how the design resolved them (new pages, zero-page maps, COW copies, reuses).
"""

from __future__ import annotations

import io

from .proc.parse import parse_kv, smaps_in_range, sum_fields

SMAPS_COLS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty",
              "Anonymous", "Swap", "Locked")
EVENT_COLS = (("pgfault", "page faults"), ("pgmajfault", "major faults"),
              ("pgreuse", "write faults that reused the page"), ("pswpout", "pages written to swap"),
              ("pswpin", "pages read from swap"), ("swap_ra", "pages read ahead"),
              ("swap_ra_hit", "readahead hits"), ("pgsteal_kswapd", "reclaimed by kswapd"),
              ("pgsteal_direct", "reclaimed by direct reclaim"), ("oom_kill", "OOM kills"))
DESIGN_COLS = (("faults_anon", "new anonymous pages"), ("faults_zero", "zero-page maps"),
               ("pages_copied_cow", "COW copies"), ("zero_cow", "copies of the zero page"),
               ("ptes_copied_fork", "PTEs copied by fork"), ("faults_shmem", "shmem faults"),
               ("faults_swap_minor", "swap-cache hits"), ("faults_swap_major", "swap-ins from disk"))


class RunReport:
    """Collects per-step lines and checkpoint tables while a Runner runs."""

    def __init__(self, machine, verbose: bool = True):
        self.m = machine
        self.out = io.StringIO()
        self.verbose = verbose
        self._last = self._counters()

    def _counters(self) -> dict[str, int]:
        c = dict(parse_kv(self.m.procfs("/proc/vmstat")))
        stats = getattr(getattr(self.m, "design", None), "stats", None) or {}
        for k, _ in DESIGN_COLS:
            c["design." + k] = stats.get(k, 0)
        return c

    def on_step(self, step, outcome, runner) -> None:
        if step.kind == "note":
            self.out.write(f"      {step.text}\n")
            return
        if not self.verbose:
            return
        what = step.text if step.kind == "op" else f"spawn {step.proc}"
        res = outcome.describe()
        if step.kind == "op" and step.op == "mmap" and outcome.result == "ok":
            res = f"{outcome.value:#x}"
        self.out.write(f"  {what:<58} {res}\n")

    def on_checkpoint(self, name: str, runner) -> None:
        w = self.out.write
        w(f"\n== checkpoint {name}\n")
        now = self._counters()
        delta = {k: now.get(k, 0) - self._last.get(k, 0) for k in now}
        self._last = now
        ev = [f"{label}: {delta.get(k, 0)}" for k, label in EVENT_COLS if delta.get(k, 0)]
        ev += [f"{label}: {delta.get('design.' + k, 0)}" for k, label in DESIGN_COLS
               if delta.get("design." + k, 0)]
        w("   since the last checkpoint: " + (", ".join(ev) if ev else "no faults") + "\n")
        regions = runner.regions
        if not regions:
            return
        w(f"   {'process':<10}{'region':<8}" + "".join(f"{c:>15}" for c in SMAPS_COLS) + "   (kB)\n")
        for pname, proc in runner.procs.items():
            if not proc.alive:
                continue
            text = self.m.procfs(f"/proc/{proc.pid}/smaps")
            known = runner.known.get(pname, ())
            for rname, reg in regions.items():
                if rname not in known:
                    continue
                ent = smaps_in_range(text, reg.addr, reg.addr + reg.length)
                if not ent:
                    continue
                tot = sum_fields(ent)
                w(f"   {pname:<10}{rname:<8}" + "".join(f"{tot.get(c, 0):>15}" for c in SMAPS_COLS) + "\n")

    def text(self) -> str:
        return self.out.getvalue()
