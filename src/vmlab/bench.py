"""vmlab bench: the model's cost against the host kernel's, measured in the same run.

For each operation the benchmark times the simulated operation on a Machine and the real one
on this machine's kernel, and prints sim/host. Times are medians over ``repeat`` runs.

  fault   write-faulting N fresh anonymous pages (sim: touch(write=True); host: one store per
          page into a fresh private anonymous mmap, via a numpy strided store)
  fork    fork() of a process with SIZE resident (host: os.fork() of this Python process,
          which also carries the interpreter's own ~30 MB; the heap the model's rounds freed
          is given back to the kernel first, so it is not copied too). Both sides fork once, untimed,
          before the timed forks, so both run with warm allocator caches; then each times
          FORK_SAMPLES forks (every child but the last exits before the next fork) and
          takes their median.
  cow     after fork, a write to every page (every write a COW copy)
  munmap  unmapping SIZE resident
  bytes/page   model memory (frame table + page tables + page buffers) per resident page,
          on a machine whose RAM is just what the pages need
  reclaim model only: pages reclaimed per second with a working set twice the RAM (the
          host has no comparable swap set-up), and rmap steps per unmapped PTE

Host and model rounds alternate, so a slow spell of this machine falls on both sides.

Targets (issue 2): fault and COW per page <= 0.5x host, fork <= 0.1x host, munmap <= 1x host,
<= 64 bytes per page. These are measurements, never test assertions.
"""

from __future__ import annotations

import gc
import mmap as _mmap
import os
import statistics
import sys
import time

import numpy as np

from .api.hostmalloc import release_free_memory
from .constants import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE


FORK_SAMPLES = 5


def _host_fork(r: int) -> int:
    """os.fork() whose child waits for a byte on pipe ``r`` and then leaves."""
    pid = os.fork()
    if pid == 0:
        try:
            os.read(r, 1)
        finally:
            os._exit(0)
    return pid


def _host_round(size: int) -> dict[str, float]:
    # the process the host forks should hold the interpreter and the mapping, not the heap the
    # previous model round freed (glibc keeps it: api/hostmalloc.py), ~40 MiB more to copy
    gc.collect()
    release_free_memory()
    n = size // PAGE_SIZE
    res = {}
    m = _mmap.mmap(-1, size, flags=_mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS)
    view = np.frombuffer(m, dtype=np.uint8)
    t = time.perf_counter()
    view[::PAGE_SIZE] = 1
    res["fault"] = time.perf_counter() - t
    pid = os.fork()                                    # warm-up fork, as the model gets one
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    r, w = os.pipe()
    forks = []
    for i in range(FORK_SAMPLES):
        t = time.perf_counter()
        pid = _host_fork(r)
        forks.append(time.perf_counter() - t)
        if i < FORK_SAMPLES - 1:                       # the last child stays for the COW pass
            os.write(w, b"x")
            os.waitpid(pid, 0)
    res["fork"] = statistics.median(forks)
    os.close(r)
    t = time.perf_counter()
    view[::PAGE_SIZE] = 2
    res["cow"] = time.perf_counter() - t
    os.write(w, b"x")
    os.close(w)
    os.waitpid(pid, 0)
    del view
    t = time.perf_counter()
    m.close()
    res["munmap"] = time.perf_counter() - t
    res["pages"] = n
    return res


def _sim_round(size: int, design: str) -> dict[str, float]:
    from .api.machine import Machine
    n = size // PAGE_SIZE
    res = {}
    m = Machine(ram=2 * size + (64 << 20), design=design)
    p = m.spawn()
    a = p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t = time.perf_counter()
    p.touch(a, size, write=True)
    res["fault"] = time.perf_counter() - t
    p.fork().exit()                                    # warm-up fork, as the host gets one
    forks = []
    for i in range(FORK_SAMPLES):
        t = time.perf_counter()
        c = p.fork()
        forks.append(time.perf_counter() - t)
        if i < FORK_SAMPLES - 1:                       # the last child stays for the COW pass
            c.exit()
    res["fork"] = statistics.median(forks)
    t = time.perf_counter()
    p.touch(a, size, write=True)
    res["cow"] = time.perf_counter() - t
    c.exit()
    t = time.perf_counter()
    p.munmap(a, size)
    res["munmap"] = time.perf_counter() - t
    res["pages"] = n
    return res


def bytes_per_page(size: int, design: str) -> tuple[float, dict[str, int]]:
    """Model memory per resident page on a machine just big enough for the pages."""
    from .api.machine import Machine
    n = size // PAGE_SIZE
    m = Machine(ram=size + (8 << 20), design=design)
    p = m.spawn()
    a = p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.fill(a, size, 0x5A)
    sysm = m.system
    parts = {"frame table": sysm.frames.nbytes(), "page tables": sysm.pagetables.nbytes(),
             "page buffers": sysm.frames.contents.nbytes()}
    design_meta = m.design.metadata()
    parts["design metadata"] = sum(design_meta.values())
    return sum(parts.values()) / n, parts


def reclaim_round(design: str, ram: int = 64 << 20) -> dict:
    """A working set twice the RAM, written then read back twice: how fast the model reclaims,
    and how many rmap steps each unmapped page cost (the design's reverse-map work)."""
    from .api.machine import Machine
    m = Machine(ram=ram, swap=4 * ram, design=design)
    p = m.spawn()
    ws = 2 * ram
    a = p.mmap(0, ws, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    c = None
    t = time.perf_counter()
    p.fill(a, ws, 0x3C)
    c = p.fork()                                      # shared pages: rmap walks see two mappings
    for _ in range(2):
        p.touch(a, ws)
    elapsed = time.perf_counter() - t
    reclaimed = m.kernel.reclaimer.stats["reclaimed"]
    st = m.design.stats
    unmapped = st.get("rmap_unmapped", 0)
    return {"reclaimed": reclaimed, "seconds": elapsed,
            "pages_per_s": reclaimed / elapsed if elapsed else 0.0,
            "rmap_steps_per_unmap": st.get("rmap_steps", 0) / unmapped if unmapped else 0.0,
            "unmapped": unmapped}


def run_bench(size: int = 1 << 30, repeat: int = 3, design: str = "linux", out=sys.stdout) -> dict:
    w = out.write
    w(f"vmlab bench: {size >> 20} MiB ({size // PAGE_SIZE} pages), design {design}, "
      f"median of {repeat} runs (after one warm-up)\n")
    _sim_round(min(size, 64 << 20), design)            # warm-up: imports, allocator
    _host_round(min(size, 64 << 20))
    host, sim = [], []
    for _ in range(repeat):                            # alternate: noise falls on both sides
        host.append(_host_round(size))
        sim.append(_sim_round(size, design))
    n = size // PAGE_SIZE
    rows = []
    targets = {"fault": 0.5, "fork": 0.1, "cow": 0.5, "munmap": 1.0}
    w(f"{'operation':<10}{'host':>14}{'sim':>14}{'sim/host':>10}{'target':>9}\n")
    result = {}
    for op in ("fault", "fork", "cow", "munmap"):
        h = statistics.median(r[op] for r in host)
        s = statistics.median(r[op] for r in sim)
        ratio = s / h if h else float("inf")
        per_page = op in ("fault", "cow")
        fmt = (lambda x: f"{x / n * 1e9:9.0f} ns/pg") if per_page else (lambda x: f"{x * 1e3:10.2f} ms")
        w(f"{op:<10}{fmt(h):>14}{fmt(s):>14}{ratio:>9.2f}x{targets[op]:>8}x\n")
        result[op] = {"host_s": h, "sim_s": s, "ratio": ratio, "target": targets[op]}
        rows.append(op)
    bpp, parts = bytes_per_page(min(size, 256 << 20), design)
    w(f"model bytes per resident page: {bpp:.1f} (target <= 64): "
      + ", ".join(f"{k} {v / (min(size, 256 << 20) // PAGE_SIZE):.1f}" for k, v in parts.items()) + "\n")
    result["bytes_per_page"] = bpp
    r = reclaim_round(design)
    w(f"reclaim (64 MiB RAM, 128 MiB working set, forked): {r['reclaimed']} pages reclaimed in "
      f"{r['seconds']:.2f} s = {r['pages_per_s']:.0f} pages/s; "
      f"{r['rmap_steps_per_unmap']:.2f} rmap steps per unmapped PTE\n")
    result["reclaim"] = r
    return result
