#!/usr/bin/env python3
"""Run the system-call cases of tools/probes/cases.py on the host kernel.

What it checks: every case's steps (mmap, munmap, mprotect, mremap, madvise,
mlock*, munlock*, brk, fork, memory accesses) are executed by vmexec.c in a
fresh process; the kernel's answers -- return values, errnos, signals, and the
resulting VMAs with their smaps VmFlags -- are recorded as the expectations of
tests/data/host_errno_cases.json.  Nothing in that file is written by hand.

    python tools/probes/run_cases.py --record     # (re)write the JSON
    python tools/probes/run_cases.py              # compare host with the JSON
    python tools/probes/run_cases.py -k mremap    # only cases whose name matches

The JSON op language (also described in the file's header):

  addresses   an integer, or {"ref": NAME, "plus": OFFSET}.  Built-in refs are
              "w" (the start of the 64 MiB window, see "prologue"),
              "start_brk" (mm->start_brk) and "brk0" (brk(0) when the case
              starts); a step with "as": NAME binds its result to NAME.
  steps       {"op": "mmap", "addr", "len", "prot", "flags", "fd", "off"}
              {"op": "munmap", "addr", "len"}     {"op": "mprotect", "addr", "len", "prot"}
              {"op": "mremap", "addr", "old_len", "new_len", "flags", "new_addr"}
              {"op": "madvise", "addr", "len", "advice"}
              {"op": "mlock"|"munlock", "addr", "len"}   {"op": "mlock2", "addr", "len", "flags"}
              {"op": "mlockall", "flags"}   {"op": "munlockall"}   {"op": "brk", "addr"}
              {"op": "fork", "child": [steps]}   {"op": "exit", "code"} (child only)
              {"op": "read8"|"write8", "addr"[, "value"]}   one byte load/store
              {"op": "fault_count", "addr", "access": "read"|"write"}  one access; result =
                    page faults it took (minflt+majflt)
              {"op": "vmlck"}  VmLck of /proc/self/status in kB
              {"op": "pagemap", "addr"}  the pagemap flag bits of that page
              {"op": "setrlimit", "resource", "cur", "max"}  {"op": "dropcaps"} (setresuid 65534)
              {"op": "memfd", "size"}  {"op": "seal", "fd", "seals"}
              {"op": "fill_map_count", "leave": K}  add 1-page VMAs elsewhere until
                    max_map_count - map_count == K;  {"op": "unfill"} removes them
              {"op": "let", "name", "value"}  binds a name (used by the prologue)
  prologue    every case starts with it: reserve WIN + 2*GUARD bytes PROT_NONE|NORESERVE
              ("res"), unmap the middle WIN bytes, w = res + GUARD.
  results     {"ok": value} | {"errno": "EINVAL"} | {"signal": "SIGSEGV", "si_code": ...}.
              mmap/mremap/brk values are addresses rendered as refs ("w" or
              "start_brk"), {"abs": N} when it equals the literal address the
              step asked for, or {"outside": true} when the kernel put the
              mapping outside both regions.  A step with "check" records a boolean instead:
              {"equals": addr} -> {"ok": {"equals": bool}}, {"in_range": [lo, hi]}.
              fork -> {"ok": 0, "child": [results], "child_maps_after": {...},
              "child_exit_status": wait status}.
  maps_after  per region (ref, offset, length) the VMAs intersecting it, as
              [start - ref, end - ref, perms, name, VmFlags]; a region may
              extend past the window, so offsets can be negative or large.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "tests" / "data" / "host_errno_cases.json"
WIN = 64 << 20
GUARD = 1 << 20

sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE))
import cases as case_defs  # noqa: E402

SIGNALS = {signal.SIGSEGV: "SIGSEGV", signal.SIGBUS: "SIGBUS"}
SI_CODES = {"SIGSEGV": {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 4: "SEGV_PKUERR"},
            "SIGBUS": {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR"}}
ADDRESS_OPS = {"mmap", "mremap", "brk"}

# op -> (executor name, argument keys)
OPS = {
    "mmap": ("mmap", ["addr", "len", "prot", "flags", "fd", "off"]),
    "munmap": ("munmap", ["addr", "len"]),
    "mprotect": ("mprotect", ["addr", "len", "prot"]),
    "mremap": ("mremap", ["addr", "old_len", "new_len", "flags", "new_addr"]),
    "madvise": ("madvise", ["addr", "len", "advice"]),
    "mlock": ("mlock", ["addr", "len"]),
    "mlock2": ("mlock2", ["addr", "len", "flags"]),
    "munlock": ("munlock", ["addr", "len"]),
    "mlockall": ("mlockall", ["flags"]),
    "munlockall": ("munlockall", []),
    "brk": ("brk", ["addr"]),
    "read8": ("read8", ["addr"]),
    "write8": ("write8", ["addr", "value"]),
    "vmlck": ("vmlck", []),
    "pagemap": ("pagemap", ["addr"]),
    "setrlimit": ("setrlimit", ["resource", "cur", "max"]),
    "dropcaps": ("dropcaps", []),
    "memfd": ("memfd", ["size"]),
    "seal": ("seal", ["fd", "seals"]),
    "fill_map_count": ("fill", ["leave"]),
    "unfill": ("unfill", []),
    "exit": ("exit", ["code"]),
}

PROLOGUE = [
    {"op": "mmap", "addr": 0, "len": WIN + 2 * GUARD, "prot": 0,
     "flags": case_defs.C.MAP_PRIVATE | case_defs.C.MAP_ANONYMOUS | case_defs.C.MAP_NORESERVE,
     "fd": -1, "off": 0, "as": "res"},
    {"op": "munmap", "addr": {"ref": "res", "plus": GUARD}, "len": WIN},
    {"op": "let", "name": "w", "value": {"ref": "res", "plus": GUARD}},
]


# ---------------------------------------------------------------------- executor

def build(name: str = "vmexec") -> pathlib.Path:
    src = HERE / f"{name}.c"
    out_dir = pathlib.Path(tempfile.gettempdir()) / "vmlab_probes"
    out_dir.mkdir(exist_ok=True)
    exe = out_dir / name
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(src)], check=True)
    return exe


def placement_probe() -> dict:
    """Run placement.c (no-ASLR top-down placement checks) and keep its report."""
    p = subprocess.run([str(build("placement"))], capture_output=True, text=True, timeout=60)
    lines = p.stdout.splitlines()
    return {"exit_status": p.returncode, "report": lines}


def enc(v) -> str:
    if isinstance(v, dict):
        off = v.get("plus", 0)
        return f"@{v['ref']}{'+' if off >= 0 else '-'}{abs(off)}"
    return str(int(v))


def step_line(tag: str, idx: int, step: dict) -> str:
    op = step["op"]
    if op == "fault_count":
        name, args = ("faultw" if step["access"] == "write" else "faultr"), [step["addr"]]
    else:
        name, keys = OPS[op]
        args = [step.get(k, 1 if k == "value" else 0) for k in keys]
    line = f"{tag} {idx} {name} " + " ".join(enc(a) for a in args)
    if "as" in step:
        line += f" ={step['as']}"
    return line.rstrip()


def compile_case(c: dict) -> str:
    lines = [f"WINDOW {WIN} {GUARD}"]
    for ref, off, length in c["regions"]:
        lines.append(f"MAPREG {ref} {off} {length}")
    for i, st in enumerate(c["steps"]):
        if st["op"] == "fork":
            lines.append(f"S {i} fork {len(st['child'])}")
            lines += [step_line("C", j, cs) for j, cs in enumerate(st["child"])]
        else:
            lines.append(step_line("S", i, st))
    return "\n".join(lines) + "\n"


def run_raw(exe: pathlib.Path, program: str) -> list[str]:
    p = subprocess.run([str(exe)], input=program, capture_output=True, text=True, timeout=120)
    out = p.stdout.splitlines()
    if p.returncode != 0 or not out or out[-1] != "END":
        raise RuntimeError(f"executor failed (rc={p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return out


# ---------------------------------------------------------------------- rendering

def render_addr(v: int, refs: dict) -> dict:
    w = refs["w"]
    if w - GUARD <= v < w + WIN + GUARD:
        return {"ref": "w", "plus": v - w}
    sb = refs["start_brk"]
    if sb - (64 << 20) <= v < sb + (64 << 20):
        return {"ref": "start_brk", "plus": v - sb}
    return {"outside": True}


def resolve(v, refs: dict) -> int:
    if isinstance(v, dict):
        return refs[v["ref"]] + v.get("plus", 0)
    return int(v)


def render_pagemap(bits: int) -> dict:
    return {"present": bits >> 8 & 1, "swapped": bits >> 7 & 1, "file_or_shared": bits >> 6 & 1,
            "guard": bits >> 3 & 1, "uffd_wp": bits >> 2 & 1, "exclusive": bits >> 1 & 1,
            "soft_dirty": bits & 1}


def render_result(step: dict, kind: str, vals: list[str], refs: dict) -> dict:
    if kind == "err":
        e = int(vals[0])
        # 95 is both EOPNOTSUPP and ENOTSUP on Linux; the kernel source says EOPNOTSUPP
        return {"errno": "EOPNOTSUPP" if e == errno.EOPNOTSUPP else errno.errorcode[e]}
    if kind == "sig":
        name = SIGNALS.get(int(vals[0]), str(vals[0]))
        return {"signal": name, "si_code": SI_CODES.get(name, {}).get(int(vals[1]), int(vals[1]))}
    v = int(vals[0])
    if "check" in step:
        chk = step["check"]
        if "equals" in chk:
            return {"ok": {"equals": v == resolve(chk["equals"], refs)}}
        lo, hi = chk["in_range"]
        return {"ok": {"in_range": lo <= v < hi}}
    if step["op"] in ADDRESS_OPS:
        lit = step.get("addr")
        if isinstance(lit, int) and lit == v and render_addr(v, refs).get("outside"):
            return {"ok": {"abs": v}}          # a literal address the kernel honoured
        return {"ok": render_addr(v, refs)}
    if step["op"] == "pagemap":
        return {"ok": render_pagemap(v)}
    return {"ok": v}


def parse_vma(line: str) -> tuple[str, list]:
    head, _, flags = line.partition("\t")
    _tag, ref, s, e, perms, name = head.split(" ", 5)
    return ref, [int(s), int(e), perms, "" if name == "-" else name.replace("_", " "), flags.strip()]


def run_case(exe: pathlib.Path, c: dict) -> dict:
    out = run_raw(exe, compile_case(c))
    refs: dict[str, int] = {}
    results: dict[int, dict] = {}
    child_results: dict[int, dict] = {}
    child_maps: dict[str, list] = {}
    maps: dict[str, list] = {}
    child_status = None
    for ln in out:
        t = ln.split(" ")
        if t[0] == "REF":
            refs[t[1]] = int(t[2])
        elif t[0] in ("R", "C"):
            idx = int(t[1])
            if t[0] == "R":
                step = c["steps"][idx]
                if step["op"] == "fork":
                    res = {"ok": 0, "child": [child_results[j] for j in sorted(child_results)],
                           "child_maps_after": child_maps, "child_exit_status": child_status}
                    results[idx] = res
                    child_results, child_maps, child_status = {}, {}, None
                    continue
            else:
                fork_step = next(s for i, s in enumerate(c["steps"]) if s["op"] == "fork" and i not in results)
                step = fork_step["child"][idx]
            res = render_result(step, t[2], t[3:], refs)
            if "as" in step and t[2] == "ok":
                refs[step["as"]] = int(t[3])
            (results if t[0] == "R" else child_results)[idx] = res
        elif t[0] == "CX":
            child_status = int(t[1])
        elif t[0] in ("V", "CV"):
            ref, vma = parse_vma(ln)
            (maps if t[0] == "V" else child_maps).setdefault(ref, []).append(vma)
        elif t[0] == "FATAL":
            raise RuntimeError(ln)
    return {"expect": [results[i] for i in range(len(c["steps"]))],
            "maps_after": {ref: maps.get(ref, []) for ref, _o, _l in c["regions"]}}


# ---------------------------------------------------------------------- host facts

def host_facts() -> dict:
    def rd(path):
        try:
            return pathlib.Path(path).read_text().strip()
        except OSError:
            return None
    return {
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "max_map_count": int(rd("/proc/sys/vm/max_map_count")),
        "mmap_min_addr": int(rd("/proc/sys/vm/mmap_min_addr")),
        "overcommit_memory": int(rd("/proc/sys/vm/overcommit_memory")),
        "randomize_va_space": int(rd("/proc/sys/kernel/randomize_va_space")),
        "thp_enabled": rd("/sys/kernel/mm/transparent_hugepage/enabled"),
        "swap_total_kb": next((int(l.split()[1]) for l in rd("/proc/meminfo").splitlines()
                               if l.startswith("SwapTotal")), None),
        "runner_uid": os.getuid(),
    }


# ---------------------------------------------------------------------- output

def dump(doc: dict) -> str:
    """JSON with one step / result / VMA per line, so diffs stay readable."""
    def j(x):
        return json.dumps(x, separators=(", ", ": "))
    parts = ["{"]
    head = {k: v for k, v in doc.items() if k != "cases"}
    for k, v in head.items():
        parts.append(f" {j(k)}: {json.dumps(v, indent=2).replace(chr(10), chr(10) + '  ')},")
    parts.append(' "cases": [')
    for ci, c in enumerate(doc["cases"]):
        parts.append("  {")
        keys = list(c)
        for ki, k in enumerate(keys):
            v = c[k]
            comma = "," if ki < len(keys) - 1 else ""
            if k in ("steps", "expect") and v:
                inner = ",\n".join("    " + j(x) for x in v)
                parts.append(f"   {j(k)}: [\n{inner}\n   ]{comma}")
            elif k == "maps_after":
                rows = []
                for ref, vmas in v.items():
                    if vmas:
                        body = ",\n".join("      " + j(x) for x in vmas)
                        rows.append(f"    {j(ref)}: [\n{body}\n    ]")
                    else:
                        rows.append(f"    {j(ref)}: []")
                parts.append(f"   {j(k)}: {{\n" + ",\n".join(rows) + f"\n   }}{comma}")
            else:
                parts.append(f"   {j(k)}: {j(v)}{comma}")
        parts.append("  }" + ("," if ci < len(doc["cases"]) - 1 else ""))
    parts.append(" ]")
    parts.append("}")
    return "\n".join(parts) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", action="store_true", help=f"write {OUT.relative_to(ROOT)}")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    ap.add_argument("--runs", type=int, default=2, help="runs per case; all must agree")
    args = ap.parse_args()

    names = [c["name"] for c in case_defs.CASES]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        print("duplicate case names:", sorted(dup))
        return 2
    exe = build()
    selected = [c for c in case_defs.CASES if args.k in c["name"]]
    recorded = {}
    if OUT.exists():
        recorded = {c["name"]: c for c in json.loads(OUT.read_text())["cases"]}

    out_cases, flaky, diffs = [], [], []
    for c in selected:
        got = [run_case(exe, c) for _ in range(max(1, args.runs))]
        if any(g != got[0] for g in got[1:]):
            flaky.append(c["name"])
        entry = {"name": c["name"], "ported_from": c["ported_from"], "doc": c["doc"],
                 "requires": c["requires"], "regions": c["regions"], "steps": c["steps"],
                 **got[0]}
        out_cases.append(entry)
        old = recorded.get(c["name"])
        if old is not None and (old["expect"] != entry["expect"] or old["maps_after"] != entry["maps_after"]):
            diffs.append(c["name"])

    print(f"{len(out_cases)} cases run, {len(flaky)} not reproducible, "
          f"{len(diffs)} differ from {OUT.relative_to(ROOT)}")
    for n in flaky:
        print("  NOT REPRODUCIBLE:", n)
    for n in diffs:
        print("  DIFFERS:", n)
    if args.record:
        if flaky:
            print("refusing to record non-reproducible cases")
            return 1
        if args.k:
            print("refusing to record a subset (-k); run without it")
            return 1
        doc = {
            "description": "Host-kernel answers to vmlab's system-call cases; generated by "
                           "tools/probes/run_cases.py --record (do not edit by hand). "
                           "Spec: docs/notes/syscalls.md.",
            "host": host_facts(),
            "placement_probe": placement_probe(),
            "window": {"size": WIN, "guard": GUARD,
                       "note": "every case starts from this prologue; 'w' = res + guard"},
            "prologue": PROLOGUE,
            "op_language": __doc__.split("The JSON op language (also described in the file's header):")[1].strip(),
            "cases": out_cases,
        }
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(dump(doc))
        print("wrote", OUT.relative_to(ROOT), f"({len(out_cases)} cases)")
        return 0
    return 1 if (flaky or diffs) else 0


if __name__ == "__main__":
    sys.exit(main())
