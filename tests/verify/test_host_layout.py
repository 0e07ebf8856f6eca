"""The host backend's two helpers for verify: ``model_layout`` and ``drain()`` (marker ``host``).

``HostMachine(model_layout=True, layout_top=T)`` plugs the holes of each worker's mmap area so
that mappings are stacked top-down exactly as in the model, aligned with the model modulo
2 MiB; ``drain()`` empties the per-CPU folio batches (docs/notes/procfs.md §0).
"""

from __future__ import annotations

import os
import sys

import pytest

from vmlab.constants import (KPF_LRU, MAP_ANONYMOUS, MAP_PRIVATE, PM_PFRAME_MASK, PROT_READ,
                             PROT_WRITE, PAGE_SIZE as P)

pytestmark = pytest.mark.host

if not sys.platform.startswith("linux"):
    pytest.skip("the host backend needs Linux", allow_module_level=True)

from vmlab.host import HostMachine  # noqa: E402

RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
TOP = 0x7ffff7ff7000            # the model's first free address below its vdso


def vma_of(m, p, addr):
    for line in m.procfs(f"/proc/{p.pid}/maps").splitlines():
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if lo <= addr < hi:
            return lo, hi, line
    return None


def test_model_layout_stacks_mappings_like_the_model():
    """First mapping ends at an address congruent to the model's (mod 2 MiB) and is a VMA of its
    own; the next is placed right below it and merges with it, as in the model."""
    with HostMachine(model_layout=True, layout_top=TOP) as m:
        p = m.spawn()
        a = p.mmap(0, 4 * P, RW, ANON)
        assert (a + 4 * P - TOP) % (2 << 20) == 0
        assert vma_of(m, p, a)[:2] == (a, a + 4 * P)
        b = p.mmap(0, 4 * P, RW, ANON)
        assert b == a - 4 * P
        assert vma_of(m, p, a)[:2] == (b, a + 4 * P)
        above = vma_of(m, p, a + 4 * P)
        assert above is not None and "---s" in above[2]       # the floor plug


def test_model_layout_adds_no_mappings_while_running():
    """After start-up (plugs included) the worker's own mappings do not change."""
    with HostMachine(model_layout=True) as m:
        p = m.spawn()
        before = m.procfs(f"/proc/{p.pid}/maps")
        a = p.mmap(0, 8 * P, RW, ANON)
        p.fill(a, 8 * P, 1)
        c = p.fork()
        c.write(a, b"x")
        m.drain()
        p.munmap(a, 8 * P)
        assert m.procfs(f"/proc/{p.pid}/maps") == before


@pytest.mark.skipif(os.geteuid() != 0, reason="kpageflags needs root")
@pytest.mark.parametrize("fallback", [False, True])
def test_drain_puts_new_pages_on_the_lru(fallback):
    """After drain() every freshly faulted page has KPF_LRU, by migrate_pages or by the
    mlock/munlock fallback, and the address space is unchanged."""
    with HostMachine(model_layout=True) as m:
        p = m.spawn()
        a = p.mmap(0, 3 * P, RW, ANON)
        p.fill(a, 3 * P, 7)
        before = m.procfs(f"/proc/{p.pid}/maps")
        if fallback:
            m._drain_fallback = "forced by the test"
        how = m.drain()
        assert ("mlock/munlock" in how) == fallback
        for e in p.pagemap(a, 3):
            assert m.kpageflags(e & PM_PFRAME_MASK) >> KPF_LRU & 1
        assert m.procfs(f"/proc/{p.pid}/maps") == before
