"""Disagreements between a design and `linux` found by the cross-design stateful profiles
(tests/test_stateful_designs.py, and the roomy-versus-tight lockstep profile of
tests/test_stateful_pressure.py), one minimal reproduction each.

A design's semantics must be Linux 6.x's (docs/design.md): what a process reads, the errnos,
the signals, the VMA layout and flags it sees. Each test runs on every design in
`vmlab.designs()` (parameter `name`: the suite's `design` fixture would honour --design, and
these tests are about every design); the designs that still disagree are marked
``xfail(strict=True, reason="design X bug: ...")``, so the mark must be removed when the
design is fixed (the test then passes there and the strict xfail reports it). While a test
here is open, the lockstep profiles may steer around the difference it shows (a DESIGN_FINDINGS
set in tests/test_stateful_designs.py, see its docstring); remove that when no design is marked
any more. A fixed finding stays here, unmarked, as a regression test; none is open now.
"""

from __future__ import annotations

import pytest

import vmlab
from vmlab import PROT_NONE

P = 4096


def _designs(xfail: dict[str, str]) -> list:
    """Every design, the ones named in ``xfail`` marked strict xfail with their reason."""
    return [pytest.param(d, marks=pytest.mark.xfail(strict=True, reason=xfail[d]))
            if d in xfail else d for d in vmlab.designs()]


def _vmflags(m, pid: int, lo: int, hi: int) -> list[tuple[int, int, set[str]]]:
    """(start, end, VmFlags) of the smaps entries meeting [lo, hi)."""
    out, cur = [], None
    for line in m.procfs(f"/proc/{pid}/smaps").splitlines():
        head = line.split()[0] if line.split() else ""
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            a, b = (int(x, 16) for x in head.split("-"))
            cur = (a, b) if a < hi and b > lo else None
        elif line.startswith("VmFlags:") and cur is not None:
            out.append((cur[0], cur[1], set(line.split()[1:])))
    return out


@pytest.mark.parametrize("name", _designs({}))       # fixed everywhere; kept as a regression test
def test_mprotect_readonly_unaccounts_range_linux_sees_without_anon_vma(name):
    """mprotect() to a non-writable protection drops VM_ACCOUNT from an anonymous range Linux
    sees without an anon_vma, whatever VMA a design keeps it in.

    mm/mprotect.c:mprotect_fixup clears VM_ACCOUNT (and unaccounts the pages) when the new
    flags lack VM_WRITE, the VMA is anonymous and `!vma->anon_vma`. In a fork child whose
    heap was faulted by the parent, brk() extends the heap with a new VMA
    (mm/vma.c:do_brk_flags cannot expand the old one: is_mergeable_anon_vma refuses a
    neighbour whose anon_vma_chain is not singular); that VMA has no anon_vma, so
    mprotect(PROT_NONE) over it leaves smaps VmFlags without "ac". Host (Linux 6.18, a C
    probe doing these calls with brk/sbrk): the extension's VmFlags are "mr mw me", the old
    heap's "rd wr mr mw me ac".

    Found by the cross-design profile on anonmm and vmscan22, which then kept only a per-VMA
    "has anonymous pages" flag and merged VMAs on flags and offset alone: the extension joined
    the faulted heap VMA and kept "ac" (smaps VmFlags and the commit charge differed, not only
    a VMA boundary). Fixed by having them keep Linux's anon_vma objects as merge tags, as
    ptechains and bsd do (docs/designs.md).
    """
    m = vmlab.Machine(ram="32M", design=name)
    p = m.spawn()
    sb = p.brk(0)
    p.brk(sb + 4 * P)
    p.write(sb, b"x")                          # the parent's heap gets anonymous pages
    c = p.fork()
    c.brk(sb + 8 * P)                          # the child's extension: no anon_vma on linux
    c.mprotect(sb + 4 * P, 4 * P, PROT_NONE)
    ext = _vmflags(m, c.pid, sb + 4 * P, sb + 8 * P)
    assert ext and all("ac" not in f for _, _, f in ext), ext
    old = _vmflags(m, c.pid, sb, sb + 4 * P)
    assert old and all("ac" in f for _, _, f in old), old
    m.check()
