"""The numbers of docs/designs/sharedpt.md: fork cost, swap-out cost per page, swap-in sharing.

    .venv/bin/python tools/sharedpt_measure.py [--fork-size 1G] [--repeat 3]

Runs each measurement on `linux` and `sharedpt` and prints a table:

  fork        a process with SIZE resident (private anonymous, written) forks once, untimed
              (warm-up, as vmlab bench does), then once timed: model time of the fork, PTEs
              copied, PTE tables shared, page-table frames in the machine afterwards.
  swap-out    a parent with 8 MiB resident forks N readers (N = 1, 3, 7); then every page of
              the region is handed to reclaim (reclaim_pages: what MADV_PAGEOUT does, ignoring
              references). Per page written to swap: rmap steps, PTEs changed, swap-map
              references taken, model time.
  swap-in     after that, every reader reads the region back: page faults and major faults
              taken by all the readers together, per page of the region, and tables unshared.

The model's times are the simulator's own cost (Python), not predictions of kernel time; the
counters are the design's work.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

if __package__ in (None, ""):
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

import vmlab  # noqa: E402
from vmlab.constants import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE  # noqa: E402
from vmlab.hw import pte as P  # noqa: E402
from vmlab.units import parse_size  # noqa: E402

MB = 1 << 20
DESIGNS = ("linux", "sharedpt")


def fork_round(design: str, size: int) -> dict:
    m = vmlab.Machine(ram=size + 256 * MB, design=design)
    p = m.spawn()
    a = p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.fill(a, size, 0x5A)
    p.fork().exit()                                   # warm-up
    st0 = dict(m.design.stats)
    gc.collect()                                      # a collection inside the timed fork is
    gc.disable()                                      # noise of 10-30 ms, larger than the fork
    try:
        t = time.perf_counter()
        c = p.fork()
        dt = time.perf_counter() - t
    finally:
        gc.enable()
    st = m.design.stats
    out = {"seconds": dt,
           "ptes_copied": st.get("ptes_copied_fork", 0) - st0.get("ptes_copied_fork", 0),
           "tables_shared": st.get("tables_shared_fork", 0) - st0.get("tables_shared_fork", 0),
           "pt_frames": m.system.pagetables.ntables,
           "child_vmpte_kb": c.mm.pgtables_bytes() >> 10}
    m.check()
    return out


def region_pfns(m, p, a: int, size: int) -> list[int]:
    pt = m.system.pagetables
    out: list[int] = []
    rows, los, his, _ = pt.leaves(p.mm.pgd, a, a + size)
    for row, lo, hi in zip(rows.tolist(), los.tolist(), his.tolist()):
        vals = pt.rows[row, lo:hi]
        out += P.np_pfn(vals[P.np_present(vals)]).tolist()
    return out


def swap_round(design: str, readers: int, size: int = 8 * MB) -> dict:
    m = vmlab.Machine(ram=64 * MB, swap=64 * MB, design=design)
    p = m.spawn()
    a = p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.fill(a, size, 0x5A)
    kids = [p.fork() for _ in range(readers)]
    for k in kids:
        k.touch(a, size)
    st = m.design.stats
    s0 = dict(st)
    pfns = region_pfns(m, p, a, size)
    gc.collect()
    gc.disable()
    try:
        t = time.perf_counter()
        m.kernel.reclaim_pages(pfns)
        dt = time.perf_counter() - t
    finally:
        gc.enable()
    out_pages = m.events["pswpout"]
    swap = m.system.swap
    refs = sum(int((a_.swap_map[1:] & 0x3F).sum()) for a_ in swap.areas if a_ is not None)
    res = {"pages": out_pages,
           "rmap_steps": (st.get("rmap_steps", 0) - s0.get("rmap_steps", 0)) / out_pages,
           "ptes_changed": (st.get("rmap_unmapped", 0) - s0.get("rmap_unmapped", 0)) / out_pages,
           "swap_refs": refs / out_pages,
           "us_per_page": dt / out_pages * 1e6}
    f0, mf0 = m.events["pgfault"], m.events["pgmajfault"]
    u0 = st.get("tables_unshared", 0)
    for k in kids:
        k.touch(a, size)
    npages = size >> 12
    res["faults_per_page"] = (m.events["pgfault"] - f0) / npages
    res["major_per_page"] = (m.events["pgmajfault"] - mf0) / npages
    res["tables_unshared"] = st.get("tables_unshared", 0) - u0
    m.check()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fork-size", default="1G")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    size = parse_size(args.fork_size, "--fork-size")
    w = sys.stdout.write
    w(f"fork of {size >> 20} MiB resident (median of {args.repeat}, after one warm-up fork)\n")
    w(f"{'design':<10}{'model ms':>10}{'PTEs copied':>13}{'tables shared':>15}"
      f"{'PT frames':>11}{'child VmPTE':>13}\n")
    for d in DESIGNS:
        rs = [fork_round(d, size) for _ in range(args.repeat)]
        r = rs[-1]
        ms = statistics.median(x["seconds"] for x in rs) * 1e3
        w(f"{d:<10}{ms:>10.2f}{r['ptes_copied']:>13,}{r['tables_shared']:>15,}"
          f"{r['pt_frames']:>11,}{r['child_vmpte_kb']:>10,} kB\n")
    w("\nswap-out of 8 MiB forked to N readers (reclaim_pages on every page), then read back\n")
    w(f"{'design':<10}{'N':>3}{'pages out':>11}{'rmap steps':>12}{'PTEs changed':>14}"
      f"{'swap refs':>11}{'us/page':>9}{'faults':>8}{'major':>7}{'unshared':>10}\n")
    w(f"{'':<10}{'':>3}{'':>11}{'per page':>12}{'per page':>14}{'per page':>11}{'':>9}"
      f"{'per page (all readers)':>25}\n")
    for n in (1, 3, 7):
        for d in DESIGNS:
            r = swap_round(d, n)
            w(f"{d:<10}{n:>3}{r['pages']:>11,}{r['rmap_steps']:>12.2f}{r['ptes_changed']:>14.2f}"
              f"{r['swap_refs']:>11.2f}{r['us_per_page']:>9.1f}{r['faults_per_page']:>8.2f}"
              f"{r['major_per_page']:>7.2f}{r['tables_unshared']:>10}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
