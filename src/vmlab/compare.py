"""``vmlab compare``: one scenario on several designs, their costs side by side.

Every design runs the same workload with the same semantics (a run whose reads differ between
designs is reported as a semantic difference, which is a bug); what differs is what each
design builds and does to get there. For each design the comparison records, at every
checkpoint of the scenario and at its end:

  metadata      bytes by structure: page tables (every page-table page, PGD included,
                counted from the frames that back them) and the design's own structures
                (Design.metadata(): anon_vma and anon_vma_chain, mm families, pte chains,
                VM objects and pv entries, ...). The table shows the end value and the peak
                over the checkpoints.
  design stats  the common cost counters of designs/base.py DesignStats (PTEs copied at
                fork, pages copied at COW, rmap steps, PTEs scanned by reclaim, faults by
                kind, ...), with the two ratios the seeds argue about: rmap steps per page
                unmapped by rmap, and page-table entries scanned per reclaimed page.
  vmstat        page faults, major faults, swap I/O and reclaim from /proc/vmstat.
  time          how long the model took (model cost, not a prediction of kernel time).

``--plot FILE`` draws the same numbers as grouped bar charts (matplotlib, PNG or SVG by the
file's extension).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .hw.frames import PG_pgtable
from .proc.parse import parse_kv

VMSTAT_KEYS = ("pgfault", "pgmajfault", "pswpin", "pswpout", "pgscan_kswapd", "pgscan_direct",
               "pgsteal_kswapd", "pgsteal_direct", "pgactivate", "pgdeactivate", "pgrotated", "workingset_refault_anon",
               "oom_kill")
# stats shown first, in this order (any other counter a design keeps follows, sorted)
STAT_ORDER = ("ptes_copied_fork", "tables_shared_fork", "tables_unshared", "pages_copied_cow",
              "zero_cow", "pages_reused", "rmap_steps", "rmap_unmapped", "ptes_scanned",
              "chain_ops", "objects_created", "shadow_collapses", "shadow_bypasses", "copy_ups",
              "faults_anon", "faults_zero", "faults_wp", "faults_file", "faults_object", "faults_shmem",
              "faults_swap", "faults_swap_minor", "faults_swap_major")


@dataclass
class DesignRun:
    """What one design did with the scenario."""
    design: str
    metadata_end: dict[str, int] = field(default_factory=dict)
    metadata_peak: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    vmstat: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    reads: list = field(default_factory=list)        # (line, bytes) of every read step
    problems: list[str] = field(default_factory=list)

    def ratio(self, num: str, den: str) -> float | None:
        d = self.stats.get(den, 0) if den in self.stats else self.vmstat.get(den, 0)
        n = self.stats.get(num, 0) if num in self.stats else self.vmstat.get(num, 0)
        return n / d if d else None


def _metadata(m) -> dict[str, int]:
    f = m.system.frames
    out = {"page tables": int(((f.flags_copy() & PG_pgtable) != 0).sum()) * 4096}
    for k, v in m.design.metadata().items():
        out[k] = int(v)
    return out


def run_one(scenario, spec: str, overrides: dict | None = None) -> DesignRun:
    """Run ``scenario`` (a parsed Scenario) on design ``spec`` and measure it."""
    from .scenario import Runner, make_machine
    run = DesignRun(spec)
    m = make_machine(scenario, **dict(overrides or {}, design=spec))

    def sample(*_a) -> None:
        md = _metadata(m)
        run.metadata_end = md
        for k, v in md.items():
            run.metadata_peak[k] = max(run.metadata_peak.get(k, 0), v)

    def on_step(step, outcome, runner) -> None:
        if step.kind == "op" and step.op == "read" and outcome.result == "ok":
            run.reads.append((step.line, outcome.value))

    t0 = time.perf_counter()
    runner = Runner(scenario, m, on_checkpoint=sample, on_step=on_step).run()
    run.seconds = time.perf_counter() - t0
    sample()
    run.stats = dict(m.design.stats)
    vm = dict(parse_kv(m.procfs("/proc/vmstat")))
    run.vmstat = {k: int(vm.get(k, 0)) for k in VMSTAT_KEYS}
    run.problems = list(runner.mismatches) + [f"step failed: {u}" for u in runner.unexpected]
    try:
        m.check()
    except Exception as e:                       # an InvariantError is a model bug: report it
        run.problems.append(f"Machine.check(): {e}")
    return run


def compare(scenario, specs: list[str], overrides: dict | None = None) -> list[DesignRun]:
    runs = [run_one(scenario, s, overrides) for s in specs]
    base = runs[0]
    for r in runs[1:]:
        if r.reads != base.reads:
            first = next((a, b) for a, b in zip(base.reads + [None] * len(r.reads),
                                                 r.reads + [None] * len(base.reads)) if a != b)
            r.problems.append(f"SEMANTIC DIFFERENCE from {base.design}: read at line "
                              f"{(first[0] or first[1])[0]} gave {first[1]!r}, not {first[0]!r}")
    return runs


# --- presentation ---------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return f"{v:,}"


def _bytes(v: int) -> str:
    if v >= 10 << 20:
        return f"{v / (1 << 20):,.1f} MiB"
    if v >= 10 << 10:
        return f"{v / 1024:,.1f} KiB"
    return f"{v:,} B"


def rows(runs: list[DesignRun]) -> list[tuple[str, list[str]]]:
    """The table: (label, one cell per design), section headers with empty cells."""
    out: list[tuple[str, list[str]]] = []
    n = len(runs)
    out.append(("metadata at end (peak)", [""] * n))
    keys = sorted({k for r in runs for k in r.metadata_peak}, key=lambda k: (k != "page tables", k))
    for k in keys:
        cells = []
        for r in runs:
            if k not in r.metadata_peak:
                cells.append("-")
            else:
                e, p = r.metadata_end.get(k, 0), r.metadata_peak[k]
                cells.append(_bytes(e) + ("" if p == e else f" ({_bytes(p)})"))
        out.append(("  " + k, cells))
    tot_end = [sum(r.metadata_end.values()) for r in runs]
    out.append(("  total", [_bytes(t) for t in tot_end]))
    out.append(("design costs", [""] * n))
    present = {k for r in runs for k in r.stats}
    keys = [k for k in STAT_ORDER if k in present] + sorted(present - set(STAT_ORDER))
    for k in keys:
        out.append(("  " + k, [_fmt(r.stats.get(k)) if k in r.stats else "-" for r in runs]))
    out.append(("  rmap steps / page unmapped", [_fmt(r.ratio("rmap_steps", "rmap_unmapped")) for r in runs]))
    steals = [r.vmstat.get("pgsteal_kswapd", 0) + r.vmstat.get("pgsteal_direct", 0) for r in runs]
    out.append(("  PTEs scanned / page reclaimed",
                [_fmt(r.stats.get("ptes_scanned", 0) / s) if s and "ptes_scanned" in r.stats else "-"
                 for r, s in zip(runs, steals)]))
    out.append(("/proc/vmstat", [""] * n))
    for k in VMSTAT_KEYS:
        if any(r.vmstat.get(k) for r in runs):
            out.append(("  " + k, [_fmt(r.vmstat.get(k, 0)) for r in runs]))
    out.append(("model time (s)", [f"{r.seconds:.2f}" for r in runs]))
    return out


def render(runs: list[DesignRun], title: str = "") -> str:
    table = rows(runs)
    w0 = max(len(label) for label, _ in table)
    widths = [max(len(r.design), *(len(cells[i]) for _, cells in table)) for i, r in enumerate(runs)]
    lines = []
    if title:
        lines.append(title)
    lines.append(" " * w0 + "  " + "  ".join(r.design.rjust(w) for r, w in zip(runs, widths)))
    for label, cells in table:
        if not any(cells):
            lines.append(label)
            continue
        lines.append(label.ljust(w0) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    problems = [f"{r.design}: {p}" for r in runs for p in r.problems]
    if problems:
        lines.append("")
        lines.append("problems:")
        lines += ["  " + p for p in problems]
    return "\n".join(lines) + "\n"


def plot(runs: list[DesignRun], path: str, title: str = "") -> None:
    """Grouped bar charts of the comparison, written to ``path`` (.png or .svg)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'vmlab[plot]'") from None
    names = [r.design for r in runs]
    design_keys = sorted({k for r in runs for k in r.metadata_end} - {"page tables"})
    panels = [
        ("page tables at end (KiB)", {"page tables": [r.metadata_end.get("page tables", 0) / 1024
                                                       for r in runs]}),
        ("design metadata at end (KiB)", {k: [r.metadata_end.get(k, 0) / 1024 for r in runs]
                                          for k in design_keys}),
        ("fork and COW", {k: [r.stats.get(k, 0) for r in runs]
                          for k in ("ptes_copied_fork", "tables_shared_fork", "pages_copied_cow",
                                    "chain_ops") if any(r.stats.get(k) for r in runs)}),
        ("reclaim", {k: [r.stats.get(k, 0) for r in runs]
                     for k in ("rmap_steps", "rmap_unmapped", "ptes_scanned")
                     if any(r.stats.get(k) for r in runs)}),
        ("faults and swap I/O", {k: [r.vmstat.get(k, 0) for r in runs]
                                 for k in ("pgfault", "pgmajfault", "pswpin", "pswpout")
                                 if any(r.vmstat.get(k) for r in runs)}),
    ]
    panels = [(t, d) for t, d in panels if d]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, (ptitle, data) in zip(axes[0], panels):
        keys = list(data)
        width = 0.8 / max(1, len(keys))
        for i, k in enumerate(keys):
            xs = [j + i * width for j in range(len(names))]
            ax.bar(xs, data[k], width, label=k)
        ax.set_xticks([j + width * (len(keys) - 1) / 2 for j in range(len(names))])
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_title(ptitle)
        ax.legend(fontsize=7)
        vals = [v for series in data.values() for v in series if v > 0]
        if vals and max(vals) / min(vals) > 100:
            ax.set_yscale("log")               # counts spanning orders of magnitude
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
