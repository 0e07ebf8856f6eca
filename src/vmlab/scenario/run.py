"""Running a scenario on a backend: the model (vmlab.Machine) or the host (vmlab.host.HostMachine).

The runner only uses the shared Machine/Process API, so the same file runs on both. It keeps
the names (processes, regions) the scenario binds, executes each step, records its outcome
("ok", an errno name, SIGSEGV/SIGBUS with si_code, or a value), checks ``=>`` expectations and
``read ... expect``, and calls ``on_checkpoint(name, runner)`` at every checkpoint.

A step whose outcome contradicts its ``=>`` expectation is a *mismatch*: recorded in
``runner.mismatches`` and reported, never raised as a traceback. A step that fails without an
expectation is recorded too (``runner.unexpected``); the scenario goes on, like a program
that checks errors and continues.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

from ..errors import BusError, ProcessKilled, SegmentationFault
from .parse import Addr, Scenario, Step


@dataclass
class Outcome:
    step: Step
    result: str                       # "ok", "EINVAL", "SIGSEGV", "killed", ...
    detail: str = ""
    value: object = None

    def describe(self) -> str:
        return self.result + (f" ({self.detail})" if self.detail else "")


@dataclass
class Region:
    proc: str
    addr: int
    length: int


class Runner:
    def __init__(self, scenario: Scenario, machine, on_checkpoint=None, on_step=None):
        self.sc = scenario
        self.m = machine
        self.procs: dict[str, object] = {}
        self.regions: dict[str, Region] = {}
        # the regions each process has in its address space by name: the ones it mapped and
        # the ones it inherited at fork (names are global, addresses are per process)
        self.known: dict[str, set[str]] = {}
        self.fds: dict[str, int] = {}
        self.shmids: dict[str, int] = {}
        self.outcomes: list[Outcome] = []
        self.mismatches: list[str] = []
        self.unexpected: list[str] = []
        self.on_checkpoint = on_checkpoint
        self.on_step = on_step

    def addr(self, a: Addr) -> int:
        if a.region is None:
            return a.offset
        return self.regions[a.region].addr + a.offset

    def run(self) -> "Runner":
        for step in self.sc.steps:
            if step.kind == "spawn":
                self.procs[step.proc] = self.m.spawn()
                self.known[step.proc] = set()
                out = Outcome(step, "ok")
            elif step.kind == "checkpoint":
                if self.on_checkpoint is not None:
                    self.on_checkpoint(step.text, self)
                continue
            elif step.kind == "note":
                out = Outcome(step, "note", step.text)
            elif step.kind == "file":
                self.m.create_file(step.args["path"], step.args["data"])
                continue
            else:
                out = self._op(step)
            self.outcomes.append(out)
            self._check_expect(step, out)
            if self.on_step is not None:
                self.on_step(step, out, self)
        return self

    def _check_expect(self, step: Step, out: Outcome) -> None:
        where = f"{self.sc.path}:{step.line}"
        if step.expect is not None and out.result != step.expect:
            self.mismatches.append(f"{where}: {step.text}: expected {step.expect}, got {out.describe()}")
        elif step.expect is None and out.result not in ("ok", "note"):
            self.unexpected.append(f"{where}: {step.text}: {out.describe()}")

    def _op(self, step: Step) -> Outcome:
        p = self.procs[step.proc]
        a = step.args
        op = step.op
        try:
            value = None
            if op == "mmap":
                at = self.addr(a["at"]) if a["at"] is not None else 0
                fd = self.fds[a["fd"]] if a.get("fd") else -1
                value = p.mmap(at, a["len"], a["prot"], a["flags"], fd, a.get("off", 0))
                self.regions[a["name"]] = Region(step.proc, value, a["len"])
                self.known.setdefault(step.proc, set()).add(a["name"])
            elif op == "open":
                self.fds[a["fd"]] = p.open(a["path"], a["flags"])
            elif op == "close":
                p.close(self.fds[a["fd"]])
            elif op == "fsync":
                p.fsync(self.fds[a["fd"]])
            elif op == "ftruncate":
                p.ftruncate(self.fds[a["fd"]], a["len"])
            elif op == "unlink":
                p.unlink(a["path"])
            elif op == "pwrite":
                p.pwrite(self.fds[a["fd"]], a["data"], a["off"])
            elif op == "pread":
                value = p.pread(self.fds[a["fd"]], a["len"], a["off"])
                if a["expect"] is not None and value != a["expect"]:
                    self.mismatches.append(f"{self.sc.path}:{step.line}: {step.text}: read {value!r}")
            elif op == "msync":
                p.msync(self.addr(a["addr"]), a["len"], a["flags"])
            elif op == "shmget":
                self.shmids[a["name"]] = p.shmget(a["key"], a["size"], a["flags"])
            elif op == "shmat":
                at = self.addr(a["at"]) if a["at"] is not None else 0
                value = p.shmat(self.shmids[a["seg"]], at, a["flags"])
                size = p.shmctl(self.shmids[a["seg"]], 2)["shm_segsz"]
                self.regions[a["name"]] = Region(step.proc, value, size)
                self.known.setdefault(step.proc, set()).add(a["name"])
            elif op == "shmdt":
                p.shmdt(self.addr(a["addr"]))
            elif op == "shmctl":
                p.shmctl(self.shmids[a["seg"]], a["cmd"])
            elif op == "munmap":
                p.munmap(self.addr(a["addr"]), a["len"])
            elif op == "mprotect":
                p.mprotect(self.addr(a["addr"]), a["len"], a["prot"])
            elif op == "mremap":
                to = self.addr(a["to"]) if a["to"] is not None else 0
                value = p.mremap(self.addr(a["addr"]), a["old"], a["new"], a["flags"], to)
                name = a["as"] or (a["addr"].region if a["addr"].region and a["addr"].offset == 0 else None)
                if name:
                    self.regions[name] = Region(step.proc, value, a["new"])
                    self.known.setdefault(step.proc, set()).add(name)
            elif op == "madvise":
                p.madvise(self.addr(a["addr"]), a["len"], a["advice"])
            elif op == "mlock":
                p.mlock(self.addr(a["addr"]), a["len"])
            elif op == "mlock2":
                p.mlock2(self.addr(a["addr"]), a["len"], a["flags"])
            elif op == "munlock":
                p.munlock(self.addr(a["addr"]), a["len"])
            elif op == "mlockall":
                p.mlockall(a["flags"])
            elif op == "munlockall":
                p.munlockall()
            elif op == "brk":
                if "rel" in a:
                    cur = p.brk(0)
                    value = p.brk(cur + a["rel"])
                    if value != cur + a["rel"]:
                        return Outcome(step, "ENOMEM", "brk refused", value)
                else:
                    value = p.brk(self.addr(a["abs"]))
            elif op == "write":
                p.write(self.addr(a["addr"]), a["data"])
            elif op == "read":
                value = p.read(self.addr(a["addr"]), a["len"])
                if a["expect"] is not None and value != a["expect"]:
                    self.mismatches.append(f"{self.sc.path}:{step.line}: {step.text}: read {value!r}")
            elif op == "fill":
                p.fill(self.addr(a["addr"]), a["len"], a["byte"])
            elif op == "touch":
                p.touch(self.addr(a["addr"]), a["len"], a["write"])
            elif op == "fork":
                self.procs[a["child"]] = p.fork()
                self.known[a["child"]] = set(self.known.get(step.proc, ()))
            elif op == "exit":
                p.exit()
            return Outcome(step, "ok", value=value)
        except OSError as e:
            return Outcome(step, E.errorcode.get(e.errno, str(e.errno)), str(e.filename or ""))
        except SegmentationFault as e:
            return Outcome(step, "SIGSEGV", f"{e.code_name} at {e.addr:#x}")
        except BusError as e:
            return Outcome(step, "SIGBUS", f"at {e.addr:#x}")
        except ProcessKilled as e:
            return Outcome(step, "killed", e.reason)


def make_machine(scenario: Scenario, **overrides):
    """The model machine a scenario asks for (``machine`` line), with overrides."""
    from ..api.machine import Machine
    kw = dict(scenario.machine)
    if "soft_dirty" in kw:
        kw["soft_dirty"] = kw["soft_dirty"].lower() in ("1", "yes", "true", "on")
    kw.update(overrides)
    return Machine(**kw)
