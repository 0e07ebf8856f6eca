"""Running one scenario on one backend and recording what verify compares: a *trace*.

A trace is a JSON-able dict::

    {"scenario": name, "title": ..., "source_sha256": ..., "backend": "host" | "model",
     "pfns": bool,                       # were pfn-dependent fields readable?
     "host": {...},                      # kernel release and configuration (host traces)
     "error": None | "why the run stopped",
     "check_errors": [...],              # model only: Machine.check() failures at checkpoints
     "outcomes": [{"line", "proc", "op", "result", "detail", "value"}, ...],
     "expectations": [runner mismatches: "=>" or "read ... expect" not met],
     "checkpoints": [snapshot.take_snapshot(...), ...]}

The scenario runs through the ordinary ``scenario.Runner`` (the same code on both backends);
this module only listens: ``on_step`` records each outcome in backend-neutral form (addresses
relative to the scenario's regions, never absolute) and tracks process families and the brk
pseudo-region; ``on_checkpoint`` takes the snapshot. On the host, the per-CPU folio batches are
drained after every step and before every snapshot (``HostMachine.drain()``), because the model
always shows the drained state (docs/deviations.md #1).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import InvariantError
from ..scenario import Runner, Scenario, make_machine
from .snapshot import BRK_REGION, take_snapshot

_AT = re.compile(r"^(.*?)\s*at (0x[0-9a-fA-F]+)$")
READ_INLINE = 64            # read values up to this many bytes are kept as hex


def scenario_sha(sc: Scenario) -> str:
    try:
        text = Path(sc.path).read_bytes()
    except OSError:
        return ""
    return hashlib.sha256(text).hexdigest()


class Recorder:
    """on_step / on_checkpoint listener that builds a trace."""

    def __init__(self, sc: Scenario, machine, pfns: bool, drain=None, check: bool = False):
        self.sc = sc
        self.check = check                         # model: Machine.check() at each checkpoint
        self.check_errors: list[str] = []
        self.m = machine
        self.pfns = pfns
        self.drain = drain
        self.family: dict[str, str] = {}           # process -> the spawn it descends from
        self.region_family: dict[str, str] = {}    # region -> family of the process mapping it
        self.brk: dict[str, list[int]] = {}        # family -> [base, extent]
        self.outcomes: list[dict] = []
        self.checkpoints: list[dict] = []
        self.addrs: dict[str, int] = {}            # region -> its address before this step
        self._cp_lines = [s.line for s in sc.steps if s.kind == "checkpoint"]

    # -- steps --

    def on_step(self, step, out, runner: Runner) -> None:
        if step.kind == "note":
            return
        if self.drain is not None:
            self.drain()
        if step.kind == "spawn":
            self.family[step.proc] = step.proc
            self.outcomes.append({"line": step.line, "proc": step.proc, "op": "spawn",
                                  "result": out.result, "detail": "", "value": None})
            return
        fam = self.family.get(step.proc, step.proc)
        a = step.args
        value = None
        detail = ""
        if out.result in ("SIGSEGV", "SIGBUS"):
            detail = self._fault_detail(step, out.detail, runner)
        elif out.result == "killed":
            detail = "killed"
        if out.result == "ok":
            op = step.op
            if op == "fork":
                self.family[a["child"]] = fam
            elif op == "mmap":
                self.region_family[a["name"]] = fam
            elif op == "mremap":
                name = a["as"] or (a["addr"].region if a["addr"].region and a["addr"].offset == 0
                                   else None)
                if name:
                    self.region_family[name] = fam
                ref = a["addr"]
                old = (self.addrs.get(ref.region, 0) + ref.offset if ref.region is not None
                       else ref.offset)
                value = "in place" if out.value == old else "moved"
            elif op == "read":
                data = out.value or b""
                value = (data.hex() if len(data) <= READ_INLINE else
                         f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:16]}")
            elif op == "brk":
                value = self._brk(fam, a, out.value)
        elif step.op == "brk" and out.value is not None:
            value = self._brk(fam, a, out.value)
        self.outcomes.append({"line": step.line, "proc": step.proc, "op": step.op,
                              "result": out.result, "detail": detail, "value": value})
        self.addrs = {n: r.addr for n, r in runner.regions.items()}

    def _brk(self, fam: str, a: dict, value: int) -> str:
        """brk results relative to the family's first break (absolute breaks differ)."""
        st = self.brk.get(fam)
        if st is None:
            base = value - a["rel"] if "rel" in a and value is not None else value
            st = self.brk[fam] = [base, 0]
        st[1] = max(st[1], value - st[0])
        rel = value - st[0]
        return f"base{rel:+#x}" if rel else "base"

    def _fault_detail(self, step, detail: str, runner: Runner) -> str:
        m = _AT.match(detail or "")
        if not m:
            return detail
        what, addr = m.group(1), int(m.group(2), 16)
        ref = step.args.get("addr")
        if ref is not None and ref.region is not None and ref.region in self.addrs:
            base = self.addrs[ref.region]
            off = addr - base
            where = f"{ref.region}{off:+#x}" if off else ref.region
        else:
            where = "(absolute address)"
        return f"{what} at {where}".strip()

    # -- checkpoints --

    def on_checkpoint(self, name: str, runner: Runner) -> None:
        if self.drain is not None:
            self.drain()
        line = self._cp_lines.pop(0) if self._cp_lines else 0
        procs = [(pn, p, self.family.get(pn, pn)) for pn, p in runner.procs.items() if p.alive]
        regions = []
        for rname, reg in runner.regions.items():
            fam = self.region_family.get(rname, self.family.get(reg.proc, reg.proc))
            regions.append((rname, fam, reg.addr, reg.length, "mmap"))
        for fam, (base, extent) in self.brk.items():
            if extent:
                regions.append((BRK_REGION, fam, base, extent, "brk"))
        self.checkpoints.append(take_snapshot(self.m, procs, regions, self.pfns, name, line))
        if self.check:
            try:
                self.m.check()
            except InvariantError as e:
                self.check_errors.append(f"checkpoint {name} (line {line}): {e}")


def scenario_swap(sc: Scenario) -> int:
    """The swap size (bytes) the scenario's ``machine`` line gives the model (0: none)."""
    from ..units import parse_size
    return parse_size(sc.machine.get("swap", "0"), "swap")


def pages_out(sc: Scenario) -> bool:
    """Does the scenario use MADV_PAGEOUT (whose effect depends on whether there is swap)?"""
    from ..constants import MADV_PAGEOUT
    return any(s.kind == "op" and s.op == "madvise" and s.args.get("advice") == MADV_PAGEOUT
               for s in sc.steps)


def swap_mismatch(sc: Scenario, host_swap: int) -> str | None:
    """Why the host cannot stand for the model in this scenario because of swap, or None.

    The model has the swap the scenario's ``machine`` line asks for; the host has what it has.
    A scenario with swap needs a host with a swap area. A scenario without swap that pages out
    (MADV_PAGEOUT) needs a host without one, since there the pages would really leave."""
    from ..constants import MADV_PAGEOUT
    from ..units import parse_size
    wants = parse_size(sc.machine.get("swap", "0"), "swap")
    if wants and not host_swap:
        return ("the scenario has swap (machine swap=...) and this host has no swap area; "
                "enable one (swapon) to run it here")
    pages_out = any(s.kind == "op" and s.op == "madvise" and s.args.get("advice") == MADV_PAGEOUT
                    for s in sc.steps)
    if not wants and host_swap and pages_out:
        return ("the scenario pages out without swap and this host has a swap area; "
                "swapoff to run it here")
    return None


RECLAIM_COUNTERS = ("pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged")


def host_reclaim_scanned() -> int:
    """Pages the host's LRU reclaim has scanned so far (kswapd, direct, khugepaged; not
    MADV_PAGEOUT, which reclaims through reclaim_pages() and counts none of these:
    mm/vmscan.c shrink_inactive_list() does). 0 where /proc/vmstat is unreadable."""
    try:
        with open("/proc/vmstat") as fh:
            vals = dict(ln.split() for ln in fh if ln.startswith("pgscan_"))
    except OSError:
        return 0
    return sum(int(vals.get(k, 0)) for k in RECLAIM_COUNTERS)


def model_layout_top(sc: Scenario) -> int:
    """The model's first free address below its vdso: where a fresh process's first mmap
    ends. The host backend aligns its workers' layout with it (HostMachine layout_top)."""
    from ..constants import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_NONE
    m = make_machine(sc)
    a = m.spawn().mmap(0, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
    return a + PAGE_SIZE


def run_trace(sc: Scenario, name: str, backend: str, machine=None,
              swapfile: bool = True) -> dict:
    """Run ``sc`` on the model (backend="model") or the host (backend="host") and return its
    trace. The host machine is created (and closed) here unless one is passed.

    Swap on the host (only for a machine created here): a scenario whose ``machine`` line has
    swap, run on a host without any, gets a temporary swap file of that size for the run
    (``HostMachine.swapon``; root only, removed when the run ends, ``swapfile=False`` turns
    this off); without root the run is skipped with the reason. A scenario that pages out
    without swap holds the host-wide swap lock shared for its run, so that no vmlab process
    adds a swap area under it (host/swap.py ``swap_lock``)."""
    trace: dict = {"scenario": name, "title": sc.title, "source_sha256": scenario_sha(sc),
                   "backend": backend, "error": None}
    own = machine is None
    drain = None
    lock = None
    swap_note = ""
    # from before a temporary swap file exists: under memory pressure other programs' pages
    # can fill it at once, and the scenario's pages then find no room
    scanned = host_reclaim_scanned() if backend == "host" else 0
    if backend == "host":
        from ..host import HostMachine, HostUnsupported
        from ..host import swap as host_swap
        if own:
            machine = HostMachine(model_layout=True, layout_top=model_layout_top(sc))
        caps = machine.capabilities
        pfns = bool(caps.get("pfn") and caps.get("kpageflags") and caps.get("kpagecount"))
        wants = scenario_swap(sc)
        try:
            if own and not wants and pages_out(sc) and not host_swap.owned():
                lock = host_swap.swap_lock(shared=True)
            elif own and wants and swapfile and not machine.host_info().get("swap_total"):
                try:
                    machine.swapon(wants)
                    swap_note = "temporary swap file"
                except HostUnsupported as e:
                    swap_note = f"; vmlab could not add a swap file: {e}"
        except Exception:
            if own:
                machine.close()
            raise
        info = machine.host_info()
        trace["host"] = {"kernel": info.get("kernel"), "machine": info.get("machine"),
                         "thp": info.get("thp_enabled"), "swap_total": info.get("swap_total"),
                         "soft_dirty": caps.get("soft_dirty"), "pkeys": caps.get("pkeys"),
                         "root": caps.get("root"), "pfn": caps.get("pfn"),
                         "overcommit_memory": info.get("overcommit_memory")}
        if swap_note == "temporary swap file":
            trace["host"]["swap"] = swap_note
        drain = machine.drain
        trace["host"]["drain"] = drain()
        why = swap_mismatch(sc, info.get("swap_total") or 0)
        if why:
            if own:
                machine.close()
            host_swap.release_lock(lock)
            why += swap_note if swap_note.startswith(";") else ""
            trace.update(error=f"HostUnsupported: {why}", pfns=pfns, outcomes=[],
                         expectations=[], checkpoints=[])
            return trace
    else:
        if own:
            machine = make_machine(sc)
        pfns = True
    trace["pfns"] = pfns
    rec = Recorder(sc, machine, pfns, drain, check=backend == "model")
    runner = Runner(sc, machine, on_checkpoint=rec.on_checkpoint, on_step=rec.on_step)
    try:
        runner.run()
        if backend == "model":
            machine.check()
    except Exception as e:                          # a crash, HostUnsupported, InvariantError
        trace["error"] = f"{type(e).__name__}: {e}"
    finally:
        if backend == "host":
            # memory pressure on the host during the run: its reclaim may have unmapped or
            # deactivated the scenario's pages, which the model (no pressure) never does
            trace["host"]["reclaim_scanned"] = host_reclaim_scanned() - scanned
        if own and backend == "host":
            try:
                machine.close()                     # also removes a temporary swap file
            finally:
                host_swap.release_lock(lock)
    trace["outcomes"] = rec.outcomes
    trace["expectations"] = list(runner.mismatches)
    if backend == "model":
        trace["check_errors"] = rec.check_errors
    trace["checkpoints"] = rec.checkpoints
    return trace
