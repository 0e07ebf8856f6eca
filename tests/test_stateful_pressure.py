"""Hypothesis stateful tests under memory pressure (issue 4, item 6): no amount of memory
pressure changes what a program reads.

`PressureStateMachine` runs the files profile (tests/test_stateful_files.py: anonymous memory,
files, file mappings, SysV shm, fork, exit) on a machine with a few dozen to a few hundred
frames of RAM and a little swap, plus MADV_PAGEOUT/COLD/WILLNEED and an occasional swapoff
(which may fail with ENOMEM, or make the OOM killer act) and swapon. Every read still matches
the reference model and `check()` passes after every step. When RAM and swap are both full
the OOM killer ends a process: the acting process learns it from `vmlab.ProcessKilled`, a
bystander from `Process.alive` / `exit_reason`; the reference forgets that process and every
survivor's contents are read back in full. A store cut short by the OOM killer leaves each
shared page it covered holding either its old or its new bytes (the reference accepts either
and settles on what a later read shows). MADV_FREE'd pages may read zeros until written
(they may be discarded). Rss is not compared between steps (reclaim changes it).

`PressureLockstepStateMachine` runs one random program on a roomy machine (no reclaim) and on
a tight one (1 MiB of RAM, enough swap that nothing is ever killed) of every design, in
lockstep (tests/test_stateful_designs.py), and requires the same bytes, errnos, signals and
/proc/PID/maps on all: reclaim, swap-out, swap-in and the swap cache are invisible to the
program. Locking (which would pin more than the tight RAM) and MADV_FREE (which reclaim may
legitimately discard) are left out of that profile.

Default run: VMLAB_STATEFUL_EXAMPLES (60) examples of 40 steps for the first, half as many
for the lockstep one. The long campaigns, `test_stateful_pressure_long_campaign` (1500
examples) and `test_stateful_pressure_lockstep_long_campaign` (800), are marked `slow`; the
budget and the command that runs every campaign are in tests/test_stateful.py's docstring.
"""

from __future__ import annotations

import errno

import pytest
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

import vmlab

from refmodel import PAGE
from test_stateful import MAX_PAGES_PER_PROC, RAM, SETTINGS, Span, _ename, long_campaign, scaled
from test_stateful_designs import LockstepMachine, lockstep_designs
from test_stateful_files import FilesStateMachine

TINY_RAM = ["192K", "256K", "384K", "512K", "768K"]
LITTLE_SWAP = ["512K", "1M", "2M"]


class PressureStateMachine(FilesStateMachine):
    """The files profile on a machine with tiny RAM and a little swap; OOM kills allowed."""

    CHECK_RSS = False
    LAZY_DISCARD = True
    MAX_FILE_PAGES = 12           # tmpfs and SysV pages belong to no process: the OOM killer
    MAX_SEG_PAGES = 8             # cannot free them, so they must fit in RAM + swap

    def new_machine(self, data):
        ram = data.draw(st.sampled_from(TINY_RAM), label="ram")
        swap = data.draw(st.sampled_from(LITTLE_SWAP), label="swap")
        note(f"Machine(ram={ram}, swap={swap})")
        self.swap_areas = ["/dev/vdb"]
        return vmlab.Machine(ram=ram, swap=swap)

    def init_world(self, data) -> None:
        """The files, and a working set of about three quarters of RAM in the first process."""
        super().init_world(data)
        frames = self.m.ram // PAGE
        p, rp = self._pick(0)
        before = set(rp.pages)
        self._mmap_anon(0, min(MAX_PAGES_PER_PROC, frames * 3 // 4), "rw-", False, "anywhere",
                        Span(0, 0, 1), "")
        new = sorted(set(rp.pages) - before)
        if new and p.alive:
            self._fill(p, rp, new[0] * PAGE, len(new) * PAGE, 0x5A)
            self._after(p.pid, keep_maps=True)

    def _vmstat(self) -> dict[str, int]:
        return {k: int(v) for k, v in (ln.split() for ln in self.m.procfs("/proc/vmstat").splitlines())}

    def teardown(self):
        if getattr(self, "m", None) is not None:
            vs = self._vmstat()
            for name in ("pswpout", "pswpin", "oom_kill", "pgsteal_direct", "pgsteal_kswapd",
                         "workingset_refault_anon", "workingset_refault_file"):
                event(f"vmstat at the end: {name} {'0' if not vs.get(name) else '> 0'}")
        super().teardown()

    @rule(proc=st.integers(0, 3), byte=st.integers(0, 255))
    def fill_everything(self, proc, byte):
        """memset every writable page of one process: a working set to push out."""
        p, rp = self._pick(proc)
        runs: list[list[int]] = []
        for v in sorted(rp.pages):
            if rp.access_fault(v * PAGE, PAGE, True) is None:
                if runs and runs[-1][0] + runs[-1][1] == v:
                    runs[-1][1] += 1
                else:
                    runs.append([v, 1])
        note(f"pid {p.pid}: fill every writable page with {byte:#04x}")
        for v, n in runs:
            if self._fill(p, rp, v * PAGE, n * PAGE, byte) == "killed":
                break
        self._after(p.pid, keep_maps=True)

    @precondition(lambda self: len(getattr(self, "swap_areas", [])) > 0)
    @rule(which=st.integers(0, 1), go=st.sampled_from([False, False, False, True]))
    def swapoff(self, which, go):
        """swapoff (now and then): every page on the area comes back (or ENOMEM, nothing
        changed; or EINTR: the OOM killer took the swapoff caller, the area stays on with
        what did not come back). Contents are intact either way."""
        if not go:
            return
        name = self.swap_areas[which % len(self.swap_areas)]
        note(f"swapoff({name})")
        try:
            self.m.swapoff(name)
        except OSError as e:
            note(f"swapoff({name}) -> {_ename(e)}")
            event(f"swapoff: {_ename(e)}")
            assert e.errno in (errno.ENOMEM, errno.EINTR), f"swapoff({name}) failed with {_ename(e)}"
        else:
            event("swapoff: ok")
            self.swap_areas.remove(name)
        self._after(keep_maps=True)
        for p in list(self.procs):
            self._sweep(p.pid)
        self._after()

    @precondition(lambda self: len(getattr(self, "swap_areas", [])) < 2)
    @rule(size=st.sampled_from(LITTLE_SWAP))
    def swapon(self, size):
        name = self.m.swapon(size)
        note(f"swapon({size}) -> {name}")
        event("swapon")
        self.swap_areas.append(name)
        self._after()


TestPressureStateMachine = PressureStateMachine.TestCase
TestPressureStateMachine.settings = settings(max_examples=scaled(60, 1.0), stateful_step_count=40, **SETTINGS)


class PressureLockstepStateMachine(FilesStateMachine):
    """One program on a roomy machine and on a tight machine of every design, in lockstep."""

    LOCKING = False
    ADVICE_NAMES = [a for a in FilesStateMachine.ADVICE_NAMES if a != "FREE"]

    def new_machine(self, data):
        designs = lockstep_designs()
        return LockstepMachine([(designs[0], dict(ram=RAM, swap="8M", design=designs[0]))]
                               + [(f"{d}/1M", dict(ram="1M", swap="16M", design=d)) for d in designs])


TestPressureLockstepStateMachine = PressureLockstepStateMachine.TestCase
TestPressureLockstepStateMachine.settings = settings(max_examples=scaled(60, 0.5), stateful_step_count=40,
                                                     **SETTINGS)


@pytest.mark.slow
def test_stateful_pressure_long_campaign(request):
    """The long campaign of the memory-pressure profile (select with -m slow)."""
    long_campaign(request, PressureStateMachine, 1500)


@pytest.mark.slow
def test_stateful_pressure_lockstep_long_campaign(request):
    """The long campaign of the roomy-versus-tight lockstep profile (select with -m slow)."""
    long_campaign(request, PressureLockstepStateMachine, 800)
