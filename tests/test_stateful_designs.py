"""Hypothesis stateful test, cross-design profile (issue 6): one random program run on every
design in `vmlab.designs()` at once, step by step.

Each design gets its own `vmlab.Machine`; `LockstepMachine` / `LockstepProcess` stand in for
one machine and one process and apply every call to all of them, requiring the same outcome:
the same return value (addresses, fds, segment ids, bytes read, fstat fields, IPC_STAT), the
same errno, the same signal (kind, si_code, address), the same `/proc/PID/maps` (the text,
or where it differs the same layout once adjacent lines identical in everything but their
range are joined: linux keeps some such VMAs apart only because of anon_vma, which a design
without one merges; VmFlags must agree across every joined boundary, see `maps_layout`), and
`check()` clean on each. The first design is also driven against the reference model by the
files profile's rules (tests/test_stateful_files.py), so all of them are.

Only semantics are compared. Rss, Pss, page-table sizes, LRU state and every other number that
depends on a design's structures are not (a shadow-object design need not copy PTEs at fork,
so even a process's Rss after fork may legitimately differ); fstat's st_blocks counts cached
pages and is left out too. The bystander-Rss checks of the engine apply to the first design
only.

Adding a design to `vmlab.designs()` adds it here with no change to this file;
VMLAB_DESIGNS=a,b restricts the set (as the suite's --design option does). With a single
design the profile still runs, as a check of the lockstep machinery, with fewer examples.

Default run: VMLAB_STATEFUL_EXAMPLES (60) examples of 40 steps, every step on all designs:
the most expensive stateful profile (tests/test_stateful.py's docstring has the measured
budget; if it outgrows it, lower steps or examples, never the set of designs). The long
campaign, `test_stateful_designs_long_campaign` (1000 examples of 80 steps), is marked `slow`.

A difference that is one design's bug gets a strict-xfail reproduction in
tests/designs/test_stateful_findings.py and its name in DESIGN_FINDINGS below, which makes
the comparison leave that difference out until the design is fixed.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import vmlab

from hostcases import _coalesce
from test_stateful import RAM, SETTINGS, long_campaign, scaled
from test_stateful_files import FilesStateMachine


def lockstep_designs() -> list[str]:
    chosen = [d.strip() for d in os.environ.get("VMLAB_DESIGNS", "").split(",") if d.strip()]
    return [d for d in vmlab.designs() if not chosen or chosen == ["all"] or d in chosen]


def _outcome(fn, *a, **kw):
    """('ok', value) or ('raised', exception) for the exceptions that are results."""
    try:
        return "ok", fn(*a, **kw)
    except (OSError, vmlab.errors.Signal, vmlab.ProcessKilled) as e:
        return "raised", e


def _key(outcome):
    """What must agree between designs."""
    kind, v = outcome
    if kind == "raised":
        if isinstance(v, OSError):
            return "errno", v.errno
        if isinstance(v, vmlab.errors.Signal):
            return type(v).__name__, v.code, v.addr
        return "killed",
    if isinstance(v, vmlab.Process):
        return "process", v.pid
    if isinstance(v, dict):
        return "dict", {k: x for k, x in v.items() if k != "st_blocks"}
    return "value", v


# Design bugs the lockstep profiles found: tests/designs/test_stateful_findings.py has a strict
# xfail test of each name. While a name is listed the comparison leaves out the difference it
# shows (see `maps_layout`), so the hunt can go on past it; remove the name once no design is
# marked xfail there.
DESIGN_FINDINGS = {
    "test_mprotect_readonly_unaccounts_range_linux_sees_without_anon_vma",
}
VM_ACCOUNT_FINDING = "test_mprotect_readonly_unaccounts_range_linux_sees_without_anon_vma"


def maps_layout(text: str, machine, path: str) -> list[list]:
    """/proc/PID/maps as the layout a process sees, for comparing designs: adjacent lines
    that are identical in everything but their range are joined (tests/hostcases.py
    `_coalesce`, as the host cases do for non-linux designs).

    Linux keeps two such VMAs apart only because of anon_vma: vma_merge() asks
    is_mergeable_anon_vma() (mm/vma.c) for a compatible anon_vma, and a fork child's faulted
    VMA, whose anon_vma_chain is not singular, refuses a neighbour (mm/vma.c:
    is_mergeable_anon_vma, list_is_singular); a design without anon_vma (anonmm, vmscan22,
    ...) merges them. Every other boundary must still match, so "identical" is strict:
    perms, device, inode, name, the file offset continuing across the boundary (a private
    anonymous line shows offset 0 on both sides, show_map_vma in fs/proc/task_mmu.c), and
    the smaps VmFlags of both VMAs (locking, advice and the rest of vm_flags, which
    is_mergeable_vma() also requires to be equal). Called only when the texts differ, so
    smaps is read only then."""
    flags = []
    for line in machine.procfs(path[:-len("maps")] + "smaps").splitlines():
        if line.startswith("VmFlags:"):
            vf = line[len("VmFlags:"):].split()
            if VM_ACCOUNT_FINDING in DESIGN_FINDINGS:
                vf = [f for f in vf if f != "ac"]          # open finding: see DESIGN_FINDINGS
            flags.append(vf)
    rows = []
    for i, line in enumerate(text.splitlines()):
        parts = line.split(None, 5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        off, ino = int(parts[2], 16), int(parts[4])
        # the offset as "file position of address 0": constant along a contiguous mapping
        base = off - lo if ino else off
        rows.append([lo, hi, parts[1], parts[3], ino, parts[5].strip() if len(parts) > 5 else "",
                     base, flags[i] if i < len(flags) else None])
    return _coalesce({"maps": rows})["maps"]


class Lockstep:
    """Apply each call to every target; require one outcome; return (or raise) the first's."""

    def __init__(self, labels: list[str], targets: list):
        self._labels = labels
        self._targets = targets

    def _all(self, name: str, *a, **kw):
        outcomes = []
        for label, t in zip(self._labels, self._targets):
            try:
                outcomes.append(_outcome(getattr(t, name), *a, **kw))
            except Exception as e:
                if not outcomes:
                    raise                      # the first design: its own traceback
                raise AssertionError(f"[{label}] {name}{a} crashed: {e!r}") from e
        first = _key(outcomes[0])
        for label, o in zip(self._labels[1:], outcomes[1:]):
            k = _key(o)
            assert k == first, (f"designs disagree on {name}{tuple(a)}: "
                                f"[{self._labels[0]}] {first}, [{label}] {k}")
        kind, v = outcomes[0]
        if kind == "raised":
            raise v
        if isinstance(v, vmlab.Process):
            return LockstepProcess(self._labels, [o[1] for o in outcomes])
        return v


class LockstepProcess(Lockstep):
    @property
    def pid(self) -> int:
        pids = [t.pid for t in self._targets]
        assert len(set(pids)) == 1, f"designs gave different pids: {dict(zip(self._labels, pids))}"
        return pids[0]

    @property
    def alive(self) -> bool:
        alive = [t.alive for t in self._targets]
        assert len(set(alive)) == 1, f"pid {self.pid} alive in some designs only: {dict(zip(self._labels, alive))}"
        return alive[0]

    @property
    def exit_reason(self) -> str:
        return self._targets[0].exit_reason

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **kw: self._all(name, *a, **kw)


class LockstepMachine(Lockstep):
    def __init__(self, variants: list[tuple[str, dict]]):
        super().__init__([v[0] for v in variants], [vmlab.Machine(**kw) for _, kw in variants])

    def procfs(self, path: str) -> str:
        """The first design's text; /proc/PID/maps must be the same on all, up to the VMA
        boundaries that only merge rules tied to anon_vma decide (see `maps_layout`)."""
        texts = [m.procfs(path) for m in self._targets]
        if path.endswith("/maps"):
            layouts = {}
            for label, m, t in zip(self._labels[1:], self._targets[1:], texts[1:]):
                if t == texts[0]:
                    continue
                if not layouts:
                    layouts[0] = maps_layout(texts[0], self._targets[0], path)
                assert maps_layout(t, m, path) == layouts[0], (
                    f"{path} differs: [{self._labels[0]}]\n{texts[0]}\n--- [{label}]\n{t}")
        return texts[0]

    def check(self) -> None:
        for label, m in zip(self._labels, self._targets):
            try:
                m.check()
            except vmlab.InvariantError as e:
                raise AssertionError(f"[{label}] Machine.check(): {e}") from e

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **kw: self._all(name, *a, **kw)


class DesignsStateMachine(FilesStateMachine):
    """The files profile, every design in lockstep. MADV_FREE is left out: whether a later
    MADV_PAGEOUT discards a lazy-free page is the design's choice, not a semantic."""

    ADVICE_NAMES = [a for a in FilesStateMachine.ADVICE_NAMES if a != "FREE"]

    def new_machine(self, data):
        return LockstepMachine([(d, dict(ram=RAM, swap="8M", design=d)) for d in lockstep_designs()])


TestDesignsStateMachine = DesignsStateMachine.TestCase
TestDesignsStateMachine.settings = settings(
    max_examples=scaled(60, 1.0 if len(lockstep_designs()) > 1 else 0.25),
    stateful_step_count=40, **SETTINGS)


@pytest.mark.slow
def test_stateful_designs_long_campaign(request):
    """The long campaign of the cross-design profile (select with -m slow)."""
    long_campaign(request, DesignsStateMachine, 1000)
