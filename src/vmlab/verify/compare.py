"""Comparing two traces of one scenario: the host's (live or a golden file) and the model's.

What is compared, and how (docs/validation.md has the reasons):

* every step's outcome: the result (ok / errno / SIGSEGV / SIGBUS), the fault's si_code and
  address relative to the step's region, the bytes a ``read`` returned, whether ``mremap``
  moved, the break relative to the first one;
* at every checkpoint, for every process and region: whether the region is mapped at all, its
  VMA pieces (offsets, perms, VmFlags), the smaps sums, and per page the state, the pagemap
  exclusive/file bits, the mapcount (kpagecount), the kpageflags in ``KPF_COMPARED``, and the
  sharing partition: two pages share a frame on the host exactly when they share one in the
  model. Frame labels are matched by a bijection built page by page, so one extra page early
  on does not make every later label differ;
* pfn-dependent fields (mapcount, flags, frames, zero page vs other present page) only when
  both traces have pfns.

A mismatch is one row: where (``line N`` or ``checkpoint NAME (line N)``), process, region,
item (a page index and field, a smaps field, ...), the host's value, the model's value.
"""

from __future__ import annotations

from dataclasses import dataclass

from .snapshot import project_page

# kpageflags compared per page. lru and active are compared because the host is drained after
# every step (HostMachine.drain()) and is under no memory pressure while a scenario runs, so no
# page sits in a per-CPU batch and reclaim does not age pages: measured, every corpus scenario
# agrees on them (docs/validation.md). Not compared: idle (page_idle tracking is not modelled:
# deviations.md #4).
KPF_COMPARED = ("anon", "anon_excl", "swapcache", "dirty", "referenced", "swapbacked",
                "mlocked", "unevictable", "uptodate", "lru", "active")

PAGE_FIELDS = ("state", "pagemap", "mapcount", "frame", "kpageflags")


@dataclass
class Mismatch:
    scenario: str
    where: str
    proc: str
    region: str
    item: str
    host: str
    model: str


def _flags(s: str, compared) -> str:
    if s == "-":
        return "-"
    kept = [f for f in s.split(",") if f in compared]
    return ",".join(kept) or "-"


def compare_traces(host: dict, model: dict, kpf_compared=KPF_COMPARED) -> list[Mismatch]:
    """All differences between the host's trace and the model's."""
    name = host.get("scenario") or model.get("scenario") or "?"
    out: list[Mismatch] = []

    def row(where, proc, region, item, h, m):
        out.append(Mismatch(name, where, proc, region, item, str(h), str(m)))

    hs, ms = host.get("source_sha256"), model.get("source_sha256")
    if hs and ms and hs != ms:
        row("file", "", "", "scenario text", "as recorded", "changed since: re-record the golden "
            "(vmlab verify --record " + name + ")")
        return out
    for side, t in (("host", host), ("model", model)):
        if t.get("error"):
            row("run", "", "", f"{side} run stopped",
                t["error"] if side == "host" else "-", t["error"] if side == "model" else "-")
    for e in model.get("check_errors", []):
        row("check", "", "", "model Machine.check() failed", "-", e)
    for e in host.get("expectations", []):
        row("expectation", "", "", "scenario '=>' not met on the host", e, "-")

    # -- outcomes --
    ho, mo = host.get("outcomes", []), model.get("outcomes", [])
    for h, m in zip(ho, mo):
        where = f"line {h['line']}"
        if h["line"] != m["line"]:
            row(where, h["proc"], "", "step order", f"line {h['line']}", f"line {m['line']}")
            break
        for key in ("result", "detail", "value"):
            if h.get(key) != m.get(key):
                row(where, h["proc"], "", f"{h['op']} {key}", h.get(key), m.get(key))
    if len(ho) != len(mo):
        row("steps", "", "", "steps run", len(ho), len(mo))

    # -- checkpoints --
    pfns = bool(host.get("pfns")) and bool(model.get("pfns"))
    hc, mc = host.get("checkpoints", []), model.get("checkpoints", [])
    for h, m in zip(hc, mc):
        _compare_checkpoint(h, m, pfns, kpf_compared, row)
    if len(hc) != len(mc):
        row("checkpoints", "", "", "checkpoints reached", len(hc), len(mc))
    return out


def _compare_checkpoint(h: dict, m: dict, pfns: bool, kpf_compared, row) -> None:
    where = f"checkpoint {h['checkpoint']} (line {h['line']})"
    if h["checkpoint"] != m["checkpoint"]:
        row(where, "", "", "checkpoint name", h["checkpoint"], m["checkpoint"])
        return
    hp = {p["proc"]: p for p in h["procs"]}
    mp = {p["proc"]: p for p in m["procs"]}
    h2m: dict[str, str] = {}
    m2h: dict[str, str] = {}
    first_h: dict[str, str] = {}
    first_m: dict[str, str] = {}
    for pname in list(hp) + [p for p in mp if p not in hp]:
        if pname not in mp or pname not in hp:
            row(where, pname, "", "process", "alive" if pname in hp else "gone",
                "alive" if pname in mp else "gone")
            continue
        hr = {r["region"]: r for r in hp[pname]["regions"]}
        mr = {r["region"]: r for r in mp[pname]["regions"]}
        for rname in list(hr) + [r for r in mr if r not in hr]:
            a, b = hr.get(rname), mr.get(rname)
            if a is None or b is None:
                row(where, pname, rname, "region", "named" if a else "not named",
                    "named" if b else "not named")
                continue
            if a.get("absent") or b.get("absent"):
                if bool(a.get("absent")) != bool(b.get("absent")):
                    row(where, pname, rname, "mapped",
                        "no VMA" if a.get("absent") else "; ".join(a["vmas"]),
                        "no VMA" if b.get("absent") else "; ".join(b["vmas"]))
                continue
            if a["vmas"] != b["vmas"]:
                row(where, pname, rname, "VMAs", "; ".join(a["vmas"]), "; ".join(b["vmas"]))
            for f, hv in (a.get("smaps") or {}).items():
                mv = (b.get("smaps") or {}).get(f)
                if hv != mv:
                    row(where, pname, rname, f"smaps {f}", f"{hv} kB", f"{mv} kB")
            for i, (pa, pb) in enumerate(zip(a["pages"], b["pages"])):
                pa, pb = project_page(pa, pfns), project_page(pb, pfns)
                if pa == pb and not pfns:
                    continue
                fa, fb = pa.split(" "), pb.split(" ")
                at = f"page {i}"
                if fa[0] != fb[0]:
                    row(where, pname, rname, f"{at} state", fa[0], fb[0])
                    continue
                if fa[1] != fb[1]:
                    row(where, pname, rname, f"{at} pagemap", fa[1], fb[1])
                if fa[2] != fb[2]:
                    row(where, pname, rname, f"{at} mapcount", fa[2], fb[2])
                ka, kb = _flags(fa[4], kpf_compared), _flags(fb[4], kpf_compared)
                if ka != kb:
                    what = "kpageflags of the zero page" if fa[0] == "zero" else "kpageflags"
                    row(where, pname, rname, f"{at} {what}", ka, kb)
                la, lb = fa[3], fb[3]
                if la.startswith(("#", "s")) and lb.startswith(("#", "s")):
                    here = f"{pname}/{rname}[{i}]"
                    first_h.setdefault(la, here)
                    first_m.setdefault(lb, here)
                    ok_h = h2m.setdefault(la, lb) == lb
                    ok_m = m2h.setdefault(lb, la) == la
                    if not (ok_h and ok_m):
                        row(where, pname, rname, f"{at} frame",
                            f"{'same frame as ' + first_h[la] if first_h[la] != here else 'a frame of its own'}",
                            f"{'same frame as ' + first_m[lb] if first_m[lb] != here else 'a frame of its own'}")
            if len(a["pages"]) != len(b["pages"]):
                row(where, pname, rname, "pages", len(a["pages"]), len(b["pages"]))


# -- reporting ------------------------------------------------------------------------------

def coalesce(rows: list[Mismatch]) -> list[Mismatch]:
    """Merge runs of consecutive pages with the same field and the same two values."""
    out: list[Mismatch] = []
    for r in rows:
        r = Mismatch(**r.__dict__)
        prev = out[-1] if out else None
        if (prev is not None and r.item.startswith("page") and prev.item.startswith("page")
                and (prev.scenario, prev.where, prev.proc, prev.region, prev.host, prev.model)
                == (r.scenario, r.where, r.proc, r.region, r.host, r.model)):
            (plo, phi), pf = _page_item(prev.item)
            (rlo, rhi), rf = _page_item(r.item)
            if pf == rf and rlo == phi + 1:
                prev.item = f"pages {plo}-{rhi} {pf}"
                continue
        out.append(r)
    return out


def _page_item(item: str) -> tuple[tuple[int, int], str]:
    words = item.split(" ", 2)
    rng, field = words[1], words[2]
    lo, _, hi = rng.partition("-")
    return (int(lo), int(hi or lo)), field


def format_table(rows: list[Mismatch], limit: int | None = 60) -> str:
    """The mismatch table (scenario:where, process, region, item, host, model)."""
    rows = coalesce(rows)
    if not rows:
        return ""
    shown = rows if limit is None else rows[:limit]
    head = ("scenario: where", "process", "region", "page / field", "host", "model")
    cells = [(f"{r.scenario}: {r.where}", r.proc, r.region, r.item, r.host, r.model)
             for r in shown]
    widths = [min(max(len(c[i]) for c in cells + [head]), cap)
              for i, cap in enumerate((48, 8, 8, 26, 40, 40))]

    def fmt(c):
        return "  ".join(_clip(v, w).ljust(w) for v, w in zip(c, widths)).rstrip()

    lines = [fmt(head), fmt(tuple("-" * w for w in widths))] + [fmt(c) for c in cells]
    if len(rows) > len(shown):
        lines.append(f"... and {len(rows) - len(shown)} more rows")
    return "\n".join(lines) + "\n"


def _clip(s: str, w: int) -> str:
    return s if len(s) <= w else s[: w - 1] + "…"
