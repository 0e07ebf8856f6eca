"""Hypothesis stateful test: random system calls and accesses over several processes, checked
against a plain reference model of memory contents (tests/refmodel.py) after every step.

This module holds the engine (`VMStateMachine`) and its anonymous-memory profile: random
mmap/munmap/mprotect/mremap/madvise/mlock*/brk/fork/exit/read/write/fill/touch over up to
four processes of one `vmlab.Machine` (issue 2, item 9). The other profiles subclass it:

  tests/test_stateful_files.py     files (tmpfs and disk), file mappings, msync, SysV shm
  tests/test_stateful_pressure.py  the same under memory pressure: tiny RAM, a little swap,
                                   MADV_PAGEOUT/COLD/WILLNEED, swapoff/swapon, the OOM killer
  tests/test_stateful_designs.py   one random program on every design in lockstep

After every step:

  * every read's bytes and every access's signal (SIGSEGV with SEGV_MAPERR / SEGV_ACCERR /
    SEGV_PKUERR, SIGBUS) equal the reference's;
  * `/proc/PID/maps` of every process, page by page, shows exactly the pages the reference
    has mapped, with the reference's permissions and private/shared bit; a line of an object
    (file, shmem, SysV) shows its name (with " (deleted)" once unlinked), its inode and the
    offset of its first page, and its pages have consecutive offsets; a private anonymous line
    is "[heap]" exactly when it meets [start_brk, brk] (VMA boundaries are the model's
    business: `Machine.check()` checks merging);
  * `Machine.check()` passes;
  * processes other than the one that acted have the same `/proc/PID/maps` text and the same
    smaps_rollup Rss as before the step (one process's call or access never changes another's
    page tables — except the calls that act on an object: truncation and MADV_REMOVE unmap
    it everywhere, unlink renames it; the OOM killer may end a process, which the reference
    then forgets);
  * a system call that fails with OSError leaves the caller's `/proc/PID/maps` text,
    smaps_rollup Rss and every page's contents (read back and compared with the reference) as
    they were — except for the calls Linux lets fail part-way (mprotect, mlock, munlock and
    madvise over a range with holes or a refusing VMA; mremap MREMAP_FIXED having unmapped its
    target), where the reference applies Linux's partial effect and only the contents and
    the per-page layout are compared;
  * the errno of mprotect, mlock*, madvise (and, in the files profile, open, pread, pwrite,
    ftruncate, mmap of a file, msync, unlink, shmget/shmat/shmdt/shmctl) is the one the
    reference predicts from Linux's checks.

Holes are generated on purpose for the partial-effect calls: the reference follows Linux's
partial semantics (docs/notes/syscalls.md §4, §6, §7) rather than avoiding them.

Ranges are chosen relative to what is mapped: a `Span(region, off, pages)` starts `off` pages
into the `region`-th run of mapped pages (or one of two fixed spots of free address space) and
covers `pages` pages, clipped to the mmap window below the vDSO or the heap window above
start_brk, so the calls never reach the stack or the vDSO.

Example counts scale with VMLAB_STATEFUL_EXAMPLES (default 60 for this profile; the other
profiles scale theirs from it). `test_stateful_long_campaign` is the long fuzz campaign,
marked `slow` and skipped unless selected with `-m slow`.

Budget: the default run (`-m 'not slow'`) of all the stateful profiles together must stay
within about 4 minutes of CPU (the whole suite: 15 minutes on 2 cores). Measured on
2026-11-22 with per-test getrusage around `pytest -q -p no:xdist -p no:cacheprovider
tests/test_stateful*.py` on a loaded 2-core machine, two runs: designs lockstep 41 / 62 s,
pressure lockstep 21 / 21 s, pressure 19 / 14 s, files 9 / 11 s, this profile 7 / 7 s;
97 / 114 s in all. A failing example shrinks for much longer; that is expected. The
cross-design profiles grow with the number of designs: fewer steps or examples, not fewer
designs, if they outgrow the budget. Each profile has a long campaign marked `slow`; run them
all (VMLAB_STATEFUL_LONG_EXAMPLES overrides their example counts) with

    .venv/bin/python -m pytest -p no:cacheprovider -p no:xdist -m slow tests/test_stateful*.py

A hunt with more examples of the default profiles: VMLAB_STATEFUL_EXAMPLES=200 (and
VMLAB_STATEFUL_NO_SHRINK=1 to report a failure as found, without shrinking).
"""

from __future__ import annotations

import errno
import os
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, precondition, rule,
                                 run_state_machine_as_test)

import vmlab
from vmlab import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED, MAP_NORESERVE,
                   MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT,
                   MLOCK_ONFAULT, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE)

from refmodel import PAGE, Fault, RefMachine, RefProcess, prot_str

RAM = "32M"
MAX_PROCS = 4
MAX_PAGES_PER_PROC = 320          # mmap is not offered above this (keeps RAM use far from OOM)
MAX_RUNS_PER_PROC = 16
HEAP_WINDOW = (-8, 256)           # pages around start_brk where heap-anchored spans may go
MMAP_WINDOW = 8192                # pages below the vDSO where everything else goes
SPECIAL = {"[stack]", "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]"}


def scaled(default: int, share: float = 1.0) -> int:
    """Example count for a profile: VMLAB_STATEFUL_EXAMPLES (or ``default``) times ``share``."""
    base = int(os.environ.get("VMLAB_STATEFUL_EXAMPLES", str(default)))
    return max(1, int(base * share))


# Model bugs the stateful tests found; tests/test_stateful_regressions.py has a test of each
# name. While a name is listed the state machines steer around the bug (see `_avoid`) so the
# hunt can go on past it. Remove the name once its regression test passes.
AVOID: set[str] = set()

PROTS = ["rw-", "r--", "---", "-w-", "--x", "r-x", "-wx", "rwx"]
ADVICE = {
    "DONTNEED": vmlab.MADV_DONTNEED, "FREE": vmlab.MADV_FREE, "WILLNEED": vmlab.MADV_WILLNEED,
    "DONTFORK": vmlab.MADV_DONTFORK, "DOFORK": vmlab.MADV_DOFORK,
    "WIPEONFORK": vmlab.MADV_WIPEONFORK, "KEEPONFORK": vmlab.MADV_KEEPONFORK,
    "POPULATE_READ": vmlab.MADV_POPULATE_READ, "POPULATE_WRITE": vmlab.MADV_POPULATE_WRITE,
    "COLD": vmlab.MADV_COLD, "NORMAL": vmlab.MADV_NORMAL, "RANDOM": vmlab.MADV_RANDOM,
    "SEQUENTIAL": vmlab.MADV_SEQUENTIAL, "DONTDUMP": vmlab.MADV_DONTDUMP,
    "DODUMP": vmlab.MADV_DODUMP, "DONTNEED_LOCKED": vmlab.MADV_DONTNEED_LOCKED,
    "PAGEOUT": vmlab.MADV_PAGEOUT, "REMOVE": vmlab.MADV_REMOVE,
}
FLAG_ADVICE = {"DONTFORK", "DOFORK", "WIPEONFORK", "KEEPONFORK", "NORMAL", "RANDOM",
               "SEQUENTIAL", "DONTDUMP", "DODUMP"}
ANON_ADVICE = [a for a in ADVICE if a not in ("PAGEOUT", "REMOVE")]
MLOCKALL = {"CURRENT": MCL_CURRENT, "FUTURE": MCL_FUTURE, "CURRENT|FUTURE": MCL_CURRENT | MCL_FUTURE,
            "CURRENT|ONFAULT": MCL_CURRENT | MCL_ONFAULT, "FUTURE|ONFAULT": MCL_FUTURE | MCL_ONFAULT,
            "CURRENT|FUTURE|ONFAULT": MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT,
            "ONFAULT": MCL_ONFAULT}


def prot_val(s: str) -> int:
    return (s[0] == "r") * 1 | (s[1] == "w") * 2 | (s[2] == "x") * 4


@dataclass(frozen=True)
class Span:
    """`pages` pages starting `off` pages into the `region`-th anchor, running at most `spill`
    pages past the anchor's end (see `VMStateMachine._resolve`)."""
    region: int
    off: int
    pages: int
    spill: int = 0


procs = st.integers(0, MAX_PROCS - 1)
spans = st.builds(Span, region=st.integers(0, 7), off=st.integers(-2, 34), pages=st.integers(1, 32),
                  spill=st.sampled_from([0, 0, 0, 1, 4, 32]))
prots = st.sampled_from(PROTS)
rarely = st.sampled_from([False] * 7 + [True])


def ename(code: int) -> str:
    return errno.errorcode.get(code, str(code)) if code else "success"


def _ename(e: OSError) -> str:
    return ename(e.errno)


def _ranges(vpns) -> str:
    """Compress page numbers into 'start-end' address ranges for messages."""
    out, run = [], None
    for v in sorted(vpns):
        if run and run[1] == v:
            run[1] = v + 1
        else:
            if run:
                out.append(run)
            run = [v, v + 1]
    if run:
        out.append(run)
    return ", ".join(f"{a * PAGE:#x}-{b * PAGE:#x}" for a, b in out[:8]) + (" ..." if len(out) > 8 else "")


class VMStateMachine(RuleBasedStateMachine):
    """One machine (or a lockstep group of machines), up to four processes, the reference."""

    CHECK_RSS = True              # Rss of bystanders must not change (no reclaim running)
    LOCKING = True                # mlock*, MAP_LOCKED, SHM_LOCK offered (not where they could OOM)
    LAZY_DISCARD = False          # MADV_FREE'd pages may be discarded (swap/PAGEOUT/pressure)
    ADVICE_NAMES = ANON_ADVICE

    def __init__(self):
        super().__init__()
        self.m = None
        self.procs: list = []
        self.snap: dict[int, tuple[str, int]] = {}
        self.ref = RefMachine(lazy_discard=self.LAZY_DISCARD)

    # --- the machine ---------------------------------------------------------------------------
    def new_machine(self, data):
        """The machine under test (subclasses: tiny RAM, several designs in lockstep)."""
        return vmlab.Machine(ram=RAM)

    def init_world(self, data) -> None:
        """Extra set-up after the first process exists (files, ...)."""

    @initialize(data=st.data(),
                regions=st.lists(st.tuples(st.integers(1, 16), prots, st.booleans()), min_size=1, max_size=4))
    def start(self, data, regions):
        """Boot the machine; the first process starts with a few mappings (top-down, so
        usually adjacent)."""
        self.m = self.new_machine(data)
        first = self._spawn()
        maps = self.m.procfs(f"/proc/{first.pid}/maps")
        vvar = [ln for ln in maps.splitlines() if ln.endswith("[vvar]")]
        self.top = int(vvar[0].split("-")[0], 16) // PAGE if vvar else 0x7ffff7ff7
        # the kernel's own mappings (stack, vvar, vdso, vsyscall), by address: a fork child
        # must show them too, but they are not the reference's business
        self.special = [tuple(int(x, 16) // PAGE for x in ln.split()[0].split("-"))
                        for ln in maps.splitlines() if ln.split(None, 5)[5:] and
                        ln.split(None, 5)[5].strip() in SPECIAL]
        self._after(fresh={first.pid})
        self.init_world(data)
        for pages, prot, shared in regions:
            self._mmap_anon(0, pages, prot, shared, "anywhere", Span(0, 0, 1), "")

    # --- plumbing ------------------------------------------------------------------------------
    def _spawn(self):
        p = self.m.spawn()
        self.procs.append(p)
        self.ref.spawn(p.pid, p.brk(0))
        return p

    def _pick(self, i: int) -> tuple:
        p = self.procs[i % len(self.procs)]
        return p, self.ref.procs[p.pid]

    def _window(self, rp: RefProcess, vpn: int) -> tuple[int, int]:
        heap = rp.start_brk // PAGE
        if heap + HEAP_WINDOW[0] <= vpn < heap + HEAP_WINDOW[1]:
            return heap + HEAP_WINDOW[0], heap + HEAP_WINDOW[1]
        return self.top - MMAP_WINDOW, self.top

    def _resolve(self, rp: RefProcess, span: Span, npages: int | None = None,
                 free_space: bool = False) -> tuple[int, int]:
        """The (first vpn, npages) a Span names for this process, inside one window.

        The anchors are the runs of mapped pages, by address (plus, for placing new mappings,
        two fixed spots of the mmap window). A non-negative `off` wraps within the anchor and
        one page past its end; a negative one starts before it. A range that starts inside
        the anchor stops at most `spill` pages past its end (unless `npages` is imposed)."""
        anchors = rp.runs()
        if free_space or not anchors:
            anchors = anchors + [(self.top - 40, 8), (self.top - 300, 16)]
        a_vpn, a_n = anchors[span.region % len(anchors)]
        lo, hi = self._window(rp, a_vpn)
        vpn = a_vpn + (span.off if span.off < 0 else span.off % (a_n + 1))
        n = span.pages
        if npages is not None:
            n = npages
        elif a_vpn <= vpn < a_vpn + a_n:
            n = min(n, a_vpn + a_n - vpn + span.spill)
        vpn = min(max(vpn, lo), hi - 1)
        vpn = max(lo, min(vpn, hi - n))
        return vpn, max(1, min(n, hi - vpn))

    def _vmas(self, pid: int) -> list[tuple[int, int]]:
        """The model's VMAs (first vpn, end vpn) as /proc/PID/maps showed them after the last step."""
        out = []
        for line in self.snap[pid][0].splitlines():
            lo, hi = (int(x, 16) // PAGE for x in line.split()[0].split("-"))
            out.append((lo, hi))
        return out

    def _avoid(self, bug: str, why: str) -> bool:
        """True (and a note) if `bug` is a known open model bug this step would run into."""
        if bug in AVOID:
            event(f"avoided {bug}")
            note(f"skipped: {why} (open model bug, tests/test_stateful_regressions.py::{bug})")
            return True
        return False

    def _sys(self, p, text: str, fn):
        """Run one system call: ('ok', value) | ('err', OSError) | ('killed', None)."""
        try:
            v = fn()
        except OSError as e:
            note(f"pid {p.pid}: {text} -> {_ename(e)}")
            event(f"{text.split('(')[0]}: {_ename(e)}")
            return "err", e
        except vmlab.ProcessKilled as e:
            note(f"pid {p.pid}: {text} -> killed ({e.reason})")
            event("killed by the OOM killer")
            return "killed", None
        event(f"{text.split('(')[0]}: ok")
        note(f"pid {p.pid}: {text} -> {hex(v) if isinstance(v, int) and not isinstance(v, bool) else v!r}"[:300])
        return "ok", v

    @staticmethod
    def _errno_is(text: str, r: OSError, want: int) -> None:
        assert r.errno == want, f"{text} failed with {_ename(r)}; Linux gives {ename(want)}"

    def _access(self, p, rp, text, fn, addr, length, write):
        """Run one access and compare its signal (or its absence) with the reference."""
        want = rp.access_fault(addr, length, write)
        try:
            v = fn()
            got = None
        except vmlab.SegmentationFault as e:
            got, v = Fault("SIGSEGV", e.code, e.addr), None
        except vmlab.BusError as e:
            got, v = Fault("SIGBUS", e.code, e.addr), None
        except vmlab.ProcessKilled as e:
            note(f"pid {p.pid}: {text} -> killed ({e.reason})")
            event("access: killed by the OOM killer")
            return "killed", None
        note(f"pid {p.pid}: {text} -> {got or 'ok'}")
        event(f"{text.split('(')[0]}: {got.kind + '/' + str(got.code) if got else 'ok'}")
        assert got == want, f"{text}: model gave {got or 'no signal'}, reference expects {want or 'no signal'}"
        return ("signal" if got else "ok"), v

    def _snap(self, pid: int) -> tuple[str, int]:
        maps = self.m.procfs(f"/proc/{pid}/maps")
        rollup = self.m.procfs(f"/proc/{pid}/smaps_rollup")
        rss = next(int(ln.split()[1]) for ln in rollup.splitlines() if ln.startswith("Rss:"))
        return maps, rss

    def _reap(self) -> bool:
        """Processes the OOM killer ended (an allowed outcome) leave the reference too.
        Returns whether any did."""
        gone = False
        for p in list(self.procs):
            if not p.alive:
                note(f"pid {p.pid} is gone: {p.exit_reason}")
                assert "oom" in p.exit_reason.lower(), \
                    f"pid {p.pid} died without being told to: {p.exit_reason!r}"
                event("a process was killed by the OOM killer")
                self.procs.remove(p)
                self.ref.exit(p.pid)
                self.snap.pop(p.pid, None)
                gone = True
        if gone:
            self.ref.reap_segments()
        if not self.procs:
            p = self._spawn()
            self.snap[p.pid] = self._snap(p.pid)
        return gone

    def _layout(self, pid: int, maps: str) -> None:
        """/proc/PID/maps against the reference (special VMAs skipped): page by page the
        permissions, then line by line what an object's line shows."""
        got: dict[int, str] = {}
        lines = []
        for line in maps.splitlines():
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) // PAGE for x in parts[0].split("-"))
            if any(a <= lo and hi <= b for a, b in self.special):
                assert len(parts) > 5 and parts[5].strip() in SPECIAL, \
                    f"pid {pid}: the kernel's mapping lost its name: {line!r}"
                continue
            lines.append((lo, hi, parts))
            for v in range(lo, hi):
                got[v] = parts[1]
        rp = self.ref.procs[pid]
        want = rp.perms()
        if got != want:
            extra = set(got) - set(want)
            missing = set(want) - set(got)
            differ = {v for v in set(got) & set(want) if got[v] != want[v]}
            msg = [f"pid {pid}: /proc/PID/maps disagrees with the reference"]
            if extra:
                msg.append(f"  mapped in the model only: {_ranges(extra)}")
            if missing:
                msg.append(f"  mapped in the reference only: {_ranges(missing)}")
            for v in sorted(differ)[:8]:
                msg.append(f"  {v * PAGE:#x}: model {got[v]}, reference {want[v]}")
            raise AssertionError("\n".join(msg) + "\n" + maps)
        for lo, hi, parts in lines:
            name = parts[5].strip() if len(parts) > 5 else ""
            first = rp.pages[lo]
            where = f"pid {pid}: maps line {' '.join(parts)!r}"
            if first.obj is None:
                # include/linux/mm.h:vma_is_initial_heap, strict since 6.7 (host 6.18: a VMA
                # starting exactly at the break is not "[heap]")
                heap = lo * PAGE < rp.brk and hi * PAGE > rp.start_brk
                assert name == ("[heap]" if heap else ""), \
                    f"{where}: a private anonymous mapping should be named {'[heap]' if heap else 'nothing'}"
                assert all(rp.pages[v].obj is None for v in range(lo, hi)), \
                    f"{where}: anonymous and object pages in one VMA"
                continue
            obj = first.obj
            for v in range(lo, hi):
                pg = rp.pages[v]
                assert pg.obj is obj and pg.idx == first.idx + (v - lo), \
                    f"{where}: page {v * PAGE:#x} is {pg.obj!r} index {pg.idx}, not the next of {obj!r}"
            assert int(parts[2], 16) == first.idx * PAGE, \
                f"{where}: offset should be {first.idx * PAGE:#x} (page {first.idx} of {obj!r})"
            assert name == obj.maps_name(), f"{where}: name should be {obj.maps_name()!r}"
            if obj.ino is not None:
                assert int(parts[4]) == obj.ino, f"{where}: inode should be {obj.ino}"

    def _sweep(self, pid: int) -> None:
        """Read every mapped page back (faulting as a program would) and compare."""
        p = next((q for q in self.procs if q.pid == pid), None)
        if p is None or not p.alive:
            return
        rp = self.ref.procs[pid]
        groups: list[list] = []
        for v in sorted(rp.pages):
            f = rp.access_fault(v * PAGE, 1, False)
            key = None if f is None else (f.kind, f.code)
            if groups and groups[-1][0] == key and groups[-1][1] + groups[-1][2] == v:
                groups[-1][2] += 1
            else:
                groups.append([key, v, 1])
        for key, v, n in groups:
            addr = v * PAGE
            if key is None:
                try:
                    got = p.read(addr, n * PAGE)
                except vmlab.ProcessKilled as e:
                    note(f"pid {pid}: sweep read({addr:#x}) -> killed ({e.reason})")
                    return
                bad = rp.check_read(addr, got)
                assert bad is None, f"pid {pid}: sweep read({addr:#x}, {n} pages): {bad}"
            else:
                st_, _ = self._access(p, rp, f"sweep read({addr:#x}, 1)", lambda: p.read(addr, 1),
                                      addr, 1, False)
                if st_ == "killed":
                    return

    def _after(self, actor: int | None = None, keep_maps: bool = False, keep_rss: bool = False,
               sweep: bool = False, fresh=(), others_maps: bool = True,
               others_rss: bool = True) -> None:
        """The checks every step ends with (see the module docstring)."""
        killed = self._reap()
        for t in sorted(self.ref.tags):
            event(t)
        self.ref.tags.clear()
        self.m.check()
        snap = {p.pid: self._snap(p.pid) for p in self.procs}
        for pid, (maps, rss) in snap.items():
            if pid in fresh or pid not in self.snap:
                continue
            old_maps, old_rss = self.snap[pid]
            who = "the acting process" if pid == actor else f"pid {pid} (not the acting process)"
            if (pid != actor and others_maps) or (pid == actor and keep_maps):
                assert maps == old_maps, f"/proc/{pid}/maps of {who} changed:\n{old_maps}\n---\n{maps}"
            if self.CHECK_RSS and ((pid != actor and others_rss) or (pid == actor and keep_rss)):
                assert rss == old_rss, f"smaps_rollup Rss of {who} changed: {old_rss} kB -> {rss} kB"
        for pid, (maps, _) in snap.items():
            self._layout(pid, maps)
        self.snap = snap
        if killed:
            # the OOM killer struck: every survivor's contents must be intact
            for p in list(self.procs):
                self._sweep(p.pid)
            self._reap()
            self.snap = {p.pid: self._snap(p.pid) for p in self.procs}
        elif sweep and actor in snap:
            self._sweep(actor)
            if self._reap():
                self._after()
                return
            if actor in snap:
                self.snap[actor] = self._snap(actor)

    def _failed(self, pid: int, partial_applied: int = 0, keep_maps_anyway: bool = False) -> None:
        """After an OSError: nothing may have changed, unless a partial effect applied."""
        if partial_applied == 0:
            self._after(pid, keep_maps=True, keep_rss=True, sweep=True)
        else:
            self._after(pid, keep_maps=keep_maps_anyway, sweep=True)

    # --- processes ---------------------------------------------------------------------------------
    @precondition(lambda self: len(self.procs) < MAX_PROCS)
    @rule(proc=procs)
    def fork(self, proc):
        p, rp = self._pick(proc)
        st_, c = self._sys(p, "fork()", p.fork)
        if st_ == "ok":
            self.procs.append(c)
            self.ref.fork(p.pid, c.pid)
            note(f"pid {p.pid}: fork -> child pid {c.pid}")
            self._after(p.pid, keep_maps=True, keep_rss=True, fresh={c.pid})
        else:
            self._after(p.pid, keep_maps=True, keep_rss=True)

    @precondition(lambda self: len(self.procs) >= 2)
    @rule(proc=procs)
    def exit(self, proc):
        p, rp = self._pick(proc)
        note(f"pid {p.pid}: exit()")
        p.exit()
        self.procs.remove(p)
        self.ref.exit(p.pid)
        self.ref.reap_segments()
        self.snap.pop(p.pid, None)
        self._after()

    # --- mmap family -----------------------------------------------------------------------------
    def _room(self, rp) -> bool:
        return len(rp.pages) < MAX_PAGES_PER_PROC and len(rp.runs()) < MAX_RUNS_PER_PROC

    def _place(self, rp, pages: int, place: str, at: Span) -> tuple[int, int, int]:
        """(address hint, pages, MAP_FIXED* flags) for a new mapping."""
        addr = 0
        if place != "anywhere":
            vpn, pages = self._resolve(rp, at, pages, free_space=True)
            addr = vpn * PAGE
        return addr, pages, {"anywhere": 0, "hint": 0, "fixed": MAP_FIXED,
                             "noreplace": MAP_FIXED_NOREPLACE}[place]

    def _placed(self, text: str, rp, r: int, addr: int, pages: int, place: str, overlap: bool) -> None:
        assert r % PAGE == 0
        if place in ("fixed", "noreplace"):
            assert r == addr, f"{text} returned {r:#x}"
        else:
            busy = [r // PAGE + i for i in range(pages) if r // PAGE + i in rp.pages]
            assert not busy, f"{text} placed the mapping over live pages {_ranges(busy)}"
        assert not (place == "noreplace" and overlap), f"{text} replaced existing pages"

    @precondition(lambda self: any(self._room(self.ref.procs[p.pid]) for p in self.procs))
    @rule(proc=procs, pages=st.integers(1, 32), prot=prots, shared=st.booleans(),
          place=st.sampled_from(["anywhere", "hint", "fixed", "noreplace"]), at=spans,
          extra=st.sampled_from(["", "", "POPULATE", "LOCKED", "NORESERVE"]))
    def mmap(self, proc, pages, prot, shared, place, at, extra):
        self._mmap_anon(proc, pages, prot, shared, place, at, extra)

    def _mmap_anon(self, proc, pages, prot, shared, place, at, extra):
        if extra == "LOCKED" and not self.LOCKING:
            extra = ""
        p, rp = self._pick(proc)
        if not self._room(rp):
            return
        flags = MAP_ANONYMOUS | (MAP_SHARED if shared else MAP_PRIVATE)
        flags |= {"": 0, "POPULATE": MAP_POPULATE, "LOCKED": MAP_LOCKED, "NORESERVE": MAP_NORESERVE}[extra]
        addr, pages, fixed = self._place(rp, pages, place, at)
        flags |= fixed
        overlap = any(addr // PAGE + i in rp.pages for i in range(pages)) if addr else False
        text = (f"mmap({addr:#x}, {pages} pages, {prot_str(prot_val(prot))}, "
                f"{'shared' if shared else 'private'} {place} {extra})")
        st_, r = self._sys(p, text, lambda: p.mmap(addr, pages * PAGE, prot_val(prot), flags))
        if st_ == "ok":
            self._placed(text, rp, r, addr, pages, place, overlap)
            rp.mmap(self.ref, r // PAGE, pages, prot_val(prot), shared, extra == "LOCKED",
                    populate=extra == "POPULATE")
            quiet = place != "fixed" and extra in ("", "NORESERVE") and not rp.def_locked
            self._after(p.pid, keep_rss=quiet)
        elif st_ == "err":
            if place == "noreplace" and overlap:
                assert r.errno == errno.EEXIST, f"{text}: {_ename(r)}, expected EEXIST"
            else:
                raise AssertionError(f"{text} failed with {_ename(r)}: a small anonymous mmap "
                                     f"inside the window must succeed")
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, at=spans, unaligned=rarely)
    def munmap(self, proc, at, unaligned):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr = vpn * PAGE + (100 if unaligned else 0)
        text = f"munmap({addr:#x}, {n} pages)"
        st_, r = self._sys(p, text, lambda: p.munmap(addr, n * PAGE))
        if st_ == "ok":
            assert not unaligned, f"{text} succeeded with an unaligned address"
            rp.munmap(vpn, n)
            self.ref.reap_segments()
            self._after(p.pid)
        elif st_ == "err":
            assert unaligned, f"{text} failed with {_ename(r)}"
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, at=spans, prot=prots, unaligned=rarely)
    def mprotect(self, proc, at, prot, unaligned):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr = vpn * PAGE + (100 if unaligned else 0)
        text = f"mprotect({addr:#x}, {n} pages, {prot})"
        st_, r = self._sys(p, text, lambda: p.mprotect(addr, n * PAGE, prot_val(prot)))
        if st_ == "ok":
            assert not unaligned, f"{text} succeeded with an unaligned address"
            w = rp.mprotect(vpn, n, prot_val(prot))
            assert not w.errno, f"{text} succeeded; Linux fails with {ename(w.errno)}"
            self._after(p.pid)
        elif st_ == "err":
            applied = 0
            if unaligned:
                self._errno_is(text, r, errno.EINVAL)
            else:
                w = rp.mprotect(vpn, n, prot_val(prot))
                self._errno_is(text, r, w.errno)
                applied = w.applied
            self._failed(p.pid, applied)
        else:
            self._after(p.pid)

    @rule(proc=procs, old=spans, new_pages=st.one_of(st.none(), st.integers(1, 40)),
          how=st.sampled_from(["in-place", "maymove", "fixed", "dontunmap", "fixed+dontunmap",
                               "alias"]), dest=spans)
    def mremap(self, proc, old, new_pages, how, dest):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, old)
        if not (how in ("fixed", "fixed+dontunmap") and new_pages is None):
            # mremap needs the old range inside one VMA (EFAULT otherwise); keep it there
            n = next((min(n, hi - vpn) for lo, hi in self._vmas(p.pid) if lo <= vpn < hi), n)
        old_n = 0 if how == "alias" else n
        new_n = n if new_pages is None or how in ("dontunmap", "fixed+dontunmap") else new_pages
        flags = {"in-place": 0, "maymove": MREMAP_MAYMOVE, "fixed": MREMAP_MAYMOVE | MREMAP_FIXED,
                 "dontunmap": MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
                 "fixed+dontunmap": MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                 "alias": MREMAP_MAYMOVE}[how]
        fixed = bool(flags & MREMAP_FIXED)
        new_addr = 0
        if fixed:
            tv, new_n = self._resolve(rp, dest, new_n, free_space=True)
            new_addr = tv * PAGE
        addr = vpn * PAGE
        text = f"mremap({addr:#x}, {old_n} pages, {new_n} pages, {how}, {new_addr:#x})"
        st_, r = self._sys(p, text, lambda: p.mremap(addr, old_n * PAGE, new_n * PAGE, flags, new_addr))
        if st_ == "ok":
            assert r % PAGE == 0
            if fixed:
                assert r == new_addr, f"{text} returned {r:#x}"
            if how == "in-place":
                assert r == addr, f"{text} moved the mapping to {r:#x} without MREMAP_MAYMOVE"
            problems = rp.mremap(vpn, old_n, r // PAGE, new_n, fixed=fixed,
                                 dontunmap=bool(flags & MREMAP_DONTUNMAP))
            assert not problems, f"{text}: " + "; ".join(problems)
            self.ref.reap_segments()
            self._after(p.pid)
        elif st_ == "err":
            if fixed:
                # mremap_to() unmaps the target before it can still fail (syscalls.md §5)
                maps = self.m.procfs(f"/proc/{p.pid}/maps")
                if maps != self.snap[p.pid][0]:
                    note("mremap FIXED failed after unmapping its target (Linux's partial effect)")
                    rp.munmap(new_addr // PAGE, new_n)
                    self.ref.reap_segments()
                    self._failed(p.pid, partial_applied=new_n)
                    return
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, at=spans, advice=st.data(), unaligned=rarely)
    def madvise(self, proc, at, advice, unaligned):
        advice = advice.draw(st.sampled_from(self.ADVICE_NAMES), label="advice")
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr = vpn * PAGE + (100 if unaligned else 0)
        text = f"madvise({addr:#x}, {n} pages, MADV_{advice})"
        st_, r = self._sys(p, text, lambda: p.madvise(addr, n * PAGE, ADVICE[advice]))
        populate = advice.startswith("POPULATE")
        bystanders = advice != "REMOVE"
        if st_ == "ok":
            assert not unaligned, f"{text} succeeded with an unaligned address"
            w = (rp.madvise_populate(vpn, n, advice.endswith("WRITE")) if populate
                 else rp.madvise(vpn, n, advice, self.LAZY_DISCARD))
            assert not w.errno, f"{text} succeeded; Linux fails with {ename(w.errno)}"
            self._after(p.pid, keep_maps=advice not in FLAG_ADVICE,
                        keep_rss=advice in FLAG_ADVICE or advice in ("FREE", "COLD", "WILLNEED"),
                        others_rss=bystanders)
        elif st_ == "err":
            if unaligned:
                self._errno_is(text, r, errno.EINVAL)
                self._failed(p.pid)
            elif populate:
                # faultin_page_range() stops at the first bad page after populating the
                # ones before it: contents and layout unchanged, Rss may have grown.
                w = rp.madvise_populate(vpn, n, advice.endswith("WRITE"))
                self._errno_is(text, r, w.errno)
                self._after(p.pid, keep_maps=True, sweep=True)
            else:
                w = rp.madvise(vpn, n, advice, self.LAZY_DISCARD)
                self._errno_is(text, r, w.errno)
                if w.applied == 0:
                    self._failed(p.pid)
                else:
                    self._after(p.pid, keep_maps=advice not in FLAG_ADVICE, sweep=True,
                                others_rss=bystanders)
        else:
            self._after(p.pid, others_rss=bystanders)

    @rule(proc=procs, at=spans, how=st.sampled_from(["mlock", "mlock2", "mlock2(ONFAULT)", "munlock"]))
    def mlock(self, proc, at, how):
        if not self.LOCKING:
            return
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr, length = vpn * PAGE, n * PAGE
        fn = {"mlock": lambda: p.mlock(addr, length),
              "mlock2": lambda: p.mlock2(addr, length, 0),
              "mlock2(ONFAULT)": lambda: p.mlock2(addr, length, MLOCK_ONFAULT),
              "munlock": lambda: p.munlock(addr, length)}[how]
        text = f"{how}({addr:#x}, {n} pages)"
        st_, r = self._sys(p, text, fn)
        lock = how != "munlock"
        if st_ == "ok":
            w = rp.mlock(vpn, n, lock, onfault=how == "mlock2(ONFAULT)")
            assert not w.errno, f"{text} succeeded; Linux fails with {ename(w.errno)}"
            self._after(p.pid)
        elif st_ == "err":
            # a hole stops the walk after the VMAs before it changed; a populate failure
            # (PROT_NONE, execute-only, SIGBUS past an object's end) comes after the whole
            # range was locked (mm/mlock.c:do_mlock, syscalls.md §7)
            w = rp.mlock(vpn, n, lock, onfault=how == "mlock2(ONFAULT)")
            self._errno_is(text, r, w.errno)
            self._failed(p.pid, w.applied)
        else:
            self._after(p.pid)

    @rule(proc=procs, flags=st.sampled_from(list(MLOCKALL)))
    def mlockall(self, proc, flags):
        if not self.LOCKING:
            return
        p, rp = self._pick(proc)
        v = MLOCKALL[flags]
        st_, r = self._sys(p, f"mlockall({flags})", lambda: p.mlockall(v))
        if st_ == "ok":
            assert flags != "ONFAULT", "mlockall(MCL_ONFAULT) alone must fail with EINVAL"
            rp.mlockall(bool(v & MCL_CURRENT), bool(v & MCL_FUTURE), bool(v & MCL_ONFAULT))
            self._after(p.pid)
        elif st_ == "err":
            assert flags == "ONFAULT", f"mlockall({flags}) failed with {_ename(r)}"
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs)
    def munlockall(self, proc):
        p, rp = self._pick(proc)
        st_, r = self._sys(p, "munlockall()", p.munlockall)
        if st_ == "ok":
            rp.munlockall()
            self._after(p.pid)
        elif st_ == "err":
            raise AssertionError(f"munlockall failed with {_ename(r)}")
        else:
            self._after(p.pid)

    @rule(proc=procs, pages=st.integers(-2, 48), ragged=st.booleans())
    def brk(self, proc, pages, ragged):
        p, rp = self._pick(proc)
        req = rp.start_brk + pages * PAGE + (123 if ragged else 0)
        old = rp.brk
        st_, r = self._sys(p, f"brk({req:#x}) [break was {old:#x}]", lambda: p.brk(req))
        if st_ == "ok":
            if r == req:
                old_end, new_end = -(-old // PAGE), -(-req // PAGE)
                if new_end < old_end:
                    assert rp.brk_shrink_possible(req), (
                        f"brk({req:#x}) shrank a break whose pages [{new_end * PAGE:#x}, "
                        f"{old_end * PAGE:#x}) are all unmapped; Linux refuses (returns the old break)")
                busy = [v for v in range(old_end, new_end) if v in rp.pages]
                assert not busy, f"brk({req:#x}) grew the heap over live pages {_ranges(busy)}"
                rp.brk_apply(req)
                self._after(p.pid, keep_rss=new_end >= old_end and not rp.def_locked)
            else:
                assert r == old, f"brk({req:#x}) failed but returned {r:#x}, not the old break {old:#x}"
                self._failed(p.pid)
        else:
            self._after(p.pid)

    # --- memory accesses ------------------------------------------------------------------------------
    def _clip_tail(self, rp, addr: int, length: int) -> int:
        """Shorten a store so it does not reach past EOF in a file's last page through a shared
        mapping (see RefObject.tail_forbidden). Only matters when the store would succeed."""
        if rp.access_fault(addr, length, True) is not None:
            return length
        for vpn, off, n, pos in rp._chunks(addr, length):
            pg = rp.pages[vpn]
            if pg.shared and pg.obj is not None:
                lim = pg.obj.tail_forbidden(pg.idx)
                if off + n > lim:
                    event("store clipped at a file's EOF")
                    return pos + max(0, lim - off)
        return length

    def _killed_store(self, rp, addr: int, data: bytes) -> None:
        """The storer died half way: its shared pages may or may not hold the new bytes."""
        rp.write(addr, data, maybe=True)

    @rule(proc=procs, at=spans, skew=st.integers(0, PAGE - 1), length=st.integers(1, 3 * PAGE))
    def read(self, proc, at, skew, length):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr = vpn * PAGE + skew
        length = max(1, min(length, (vpn + n) * PAGE - addr))
        text = f"read({addr:#x}, {length})"
        st_, v = self._access(p, rp, text, lambda: p.read(addr, length), addr, length, False)
        if st_ == "ok":
            bad = rp.check_read(addr, v)
            assert bad is None, f"{text}: {bad}"
        self._after(p.pid, keep_maps=True, keep_rss=st_ == "signal")

    @rule(proc=procs, at=spans, skew=st.integers(0, PAGE - 1), length=st.integers(1, 2 * PAGE),
          seed=st.integers(0, 255))
    def write(self, proc, at, skew, length, seed):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr = vpn * PAGE + skew
        length = self._clip_tail(rp, addr, max(1, min(length, (vpn + n) * PAGE - addr)))
        if length == 0:
            return
        data = random.Random(seed).randbytes(length)
        text = f"write({addr:#x}, {length} bytes of seed {seed})"
        st_, _ = self._access(p, rp, text, lambda: p.write(addr, data), addr, length, True)
        if st_ == "ok":
            rp.write(addr, data)
        elif st_ == "killed":
            self._killed_store(rp, addr, data)
        self._after(p.pid, keep_maps=True, keep_rss=st_ == "signal")

    @rule(proc=procs, at=spans, byte=st.integers(0, 255), ragged=st.booleans())
    def fill(self, proc, at, byte, ragged):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr = vpn * PAGE + (77 if ragged else 0)
        st_ = self._fill(p, rp, addr, max(1, n * PAGE - (77 + 50 if ragged else 0)), byte)
        if st_ is not None:
            self._after(p.pid, keep_maps=True, keep_rss=st_ == "signal")

    def _fill(self, p, rp, addr: int, length: int, byte: int) -> str | None:
        """memset through the model and the reference; the access outcome (None: skipped)."""
        length = self._clip_tail(rp, addr, length)
        if length == 0:
            return None
        text = f"fill({addr:#x}, {length}, {byte:#04x})"
        st_, _ = self._access(p, rp, text, lambda: p.fill(addr, length, byte), addr, length, True)
        if st_ == "ok":
            rp.fill(addr, length, byte)
        elif st_ == "killed":
            self._killed_store(rp, addr, bytes([byte]) * length)
        return st_

    @rule(proc=procs, at=spans, write=st.booleans())
    def touch(self, proc, at, write):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        addr, length = vpn * PAGE, n * PAGE
        text = f"touch({addr:#x}, {n} pages, write={write})"
        st_, _ = self._access(p, rp, text, lambda: p.touch(addr, length, write), addr, length, write)
        if st_ == "ok" and write:
            rp.touch_write(addr, length)
        self._after(p.pid, keep_maps=True, keep_rss=st_ == "signal")

    @rule(proc=procs)
    def read_everything(self, proc):
        """Read back every mapped page of one process and compare (faults them in)."""
        p, rp = self._pick(proc)
        note(f"pid {p.pid}: read every mapped page")
        self._sweep(p.pid)
        self._after(p.pid, keep_maps=True)

    def teardown(self):
        if getattr(self, "m", None) is None:
            return
        for p in list(self.procs):
            if p.alive:
                self._sweep(p.pid)
        self._reap()
        self.m.check()


# The profiles the default run (and CI) uses are derandomized: every run tries the same
# programs (for the Hypothesis version pinned in pyproject.toml), so a red run is a regression
# that the same command reproduces. Finding new bugs is the job of the long campaigns
# (`-m slow`, random) and of VMLAB_STATEFUL_RANDOM=1, which makes these profiles random too.
# The explain phase is left out: its line tracer makes a shrink several times slower.
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                derandomize=os.environ.get("VMLAB_STATEFUL_RANDOM") != "1")
if os.environ.get("VMLAB_STATEFUL_NO_SHRINK") == "1":       # hunting: report the first failure as found
    SETTINGS["phases"] = [Phase.explicit, Phase.reuse, Phase.generate]

TestVMStateMachine = VMStateMachine.TestCase
TestVMStateMachine.settings = settings(max_examples=scaled(60), stateful_step_count=30, **SETTINGS)


def long_campaign(request, machine, examples: int, steps: int = 80) -> None:
    """Run a state machine's long campaign when `-m slow` (or VMLAB_SLOW=1) selected it."""
    markexpr = request.config.getoption("markexpr") or ""
    if "slow" not in markexpr and os.environ.get("VMLAB_SLOW") != "1":
        pytest.skip("long fuzz campaign: select it with -m slow")
    run_state_machine_as_test(machine, settings=settings(
        max_examples=int(os.environ.get("VMLAB_STATEFUL_LONG_EXAMPLES", str(examples))),
        stateful_step_count=steps, **dict(SETTINGS, derandomize=False)))


@pytest.mark.slow
def test_stateful_long_campaign(request):
    """The long campaign of the anonymous-memory profile: many more and longer random runs
    than the CI profile. Runs only when selected with `-m slow` (or VMLAB_SLOW=1)."""
    long_campaign(request, VMStateMachine, 2000)
