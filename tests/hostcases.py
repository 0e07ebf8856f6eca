"""Replay the host-recorded system-call cases (tests/data/host_errno_cases.json) on the model.

The cases were produced by running each step list on the real Linux 6.18 kernel
(tools/probes/run_cases.py --record); nothing in the expectations was written by hand. This
module runs the same steps on a vmlab Machine and returns a list of differences.

Mapping of the op language onto the model (see the JSON's "op_language"):
  window      the same prologue: reserve 64 MiB + 2 guard MiB PROT_NONE, unmap the middle
  dropcaps    the simulated process loses CAP_IPC_LOCK and CAP_SYS_RAWIO (config)
  setrlimit   RLIMIT_DATA (2) and RLIMIT_MEMLOCK (8) soft limits (config)
  fill_map_count(leave K)   lower vm.max_map_count to map_count + K: the same headroom as
                            filling the table with K-less VMAs, without 65k VMAs
  fault_count one access, result = pgfault events it took
  memfd       memfd_create("vmexec", MFD_ALLOW_SEALING) then ftruncate to the case's size
  seal        fcntl(fd, F_ADD_SEALS, seals)
"""

from __future__ import annotations

import errno as E
import json
from pathlib import Path

import vmlab
from vmlab.errors import BusError, SegmentationFault

DATA = Path(__file__).parent / "data" / "host_errno_cases.json"
RLIMIT_DATA, RLIMIT_MEMLOCK = 2, 8
UNSUPPORTED_OPS: set[str] = set()
SEGV = {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 4: "SEGV_PKUERR"}


def load():
    return json.loads(DATA.read_text())


class Unsupported(Exception):
    pass


# Results that depend on a design's structures, not on what the process can observe: how many
# faults an access took, and pagemap's bits (exclusive, present-vs-shared-table...). Only the
# `linux` design is held to them; other designs are held to every other result.
STRUCTURAL_OPS = {"fault_count", "pagemap"}


class Replay:
    def __init__(self, data, case, design: str = "linux"):
        self.data = data
        self.case = case
        self.m = vmlab.Machine(ram="1G", design=design)
        self.p = self.m.spawn()
        self.refs: dict[str, int] = {}
        self.diffs: list[str] = []
        for step in data["prologue"]:
            self.run_step(self.p, step)
        self.refs["start_brk"] = self.p.mm.start_brk
        self.refs["brk0"] = self.p.brk(0)

    # --- values -----------------------------------------------------------------------------
    def addr(self, v):
        if isinstance(v, dict):
            return self.refs[v["ref"]] + v.get("plus", 0)
        return v

    def render_addr(self, got, step_addr):
        """Turn a model address into the JSON result form for comparison."""
        for name in ("w", "start_brk"):
            if name in self.refs:
                base = self.refs[name]
                if name == "w":
                    lo, hi = base - (2 << 20), base + (128 << 20)
                    if lo <= got < hi:
                        return {"ref": "w", "plus": got - base}
                elif got >= base and got - base < (1 << 30):
                    return {"ref": "start_brk", "plus": got - base}
        if step_addr is not None and got == step_addr:
            return {"abs": got}
        return {"outside": True}

    # --- steps ---------------------------------------------------------------------------------
    def run_step(self, p, s):
        op = s["op"]
        if op in UNSUPPORTED_OPS:
            raise Unsupported(f"op {op} is not modelled")
        try:
            res = self._do(p, s)
        except OSError as e:
            # EOPNOTSUPP and ENOTSUP are one number on Linux; the recording names it EOPNOTSUPP
            return {"errno": "EOPNOTSUPP" if e.errno == E.EOPNOTSUPP else E.errorcode[e.errno]}
        except SegmentationFault as e:
            return {"signal": "SIGSEGV", "si_code": SEGV.get(e.code, e.code)}
        except BusError:
            return {"signal": "SIGBUS", "si_code": "BUS_ADRERR"}
        if "as" in s and isinstance(res, int):
            self.refs[s["as"]] = res
        return res

    def _do(self, p, s):
        op = s["op"]
        A = self.addr
        if op == "let":
            self.refs[s["name"]] = A(s["value"])
            return None
        if op == "mmap":
            a = p.mmap(A(s["addr"]), s["len"], s["prot"], s["flags"], A(s["fd"]), s["off"])
            if "as" in s:
                self.refs[s["as"]] = a
            return self._result_addr(a, s)
        if op == "memfd":
            fd = p.memfd_create("vmexec", vmlab.MFD_ALLOW_SEALING)   # the recorder's name
            p.ftruncate(fd, s["size"])
            if "as" in s:
                self.refs[s["as"]] = fd
            return {"ok": fd}
        if op == "seal":
            return {"ok": p.fcntl(A(s["fd"]), vmlab.F_ADD_SEALS, s["seals"])}
        if op == "munmap":
            p.munmap(A(s["addr"]), s["len"]); return {"ok": 0}
        if op == "mprotect":
            p.mprotect(A(s["addr"]), s["len"], s["prot"]); return {"ok": 0}
        if op == "mremap":
            a = p.mremap(A(s["addr"]), s["old_len"], s["new_len"], s["flags"], A(s["new_addr"]))
            if "as" in s:
                self.refs[s["as"]] = a
            return self._result_addr(a, s)
        if op == "madvise":
            p.madvise(A(s["addr"]), s["len"], s["advice"]); return {"ok": 0}
        if op == "mlock":
            p.mlock(A(s["addr"]), s["len"]); return {"ok": 0}
        if op == "munlock":
            p.munlock(A(s["addr"]), s["len"]); return {"ok": 0}
        if op == "mlock2":
            p.mlock2(A(s["addr"]), s["len"], s["flags"]); return {"ok": 0}
        if op == "mlockall":
            p.mlockall(s["flags"]); return {"ok": 0}
        if op == "munlockall":
            p.munlockall(); return {"ok": 0}
        if op == "brk":
            a = p.brk(A(s["addr"]))
            if "as" in s:
                self.refs[s["as"]] = a
            return self._result_addr(a, s)
        if op == "read8":
            return {"ok": p.read(A(s["addr"]), 1)[0]}
        if op == "write8":
            p.write(A(s["addr"]), bytes([s.get("value", 0) & 0xFF])); return {"ok": 0}
        if op == "fault_count":
            before = self.m.events["pgfault"]
            p.touch(A(s["addr"]), 1, write=s["access"] == "write")
            return {"ok": self.m.events["pgfault"] - before}
        if op == "vmlck":
            return {"ok": p.mm.locked_vm * 4}
        if op == "pagemap":
            e = p.pagemap(A(s["addr"]), 1)[0]
            return {"ok": {"present": e >> 63 & 1, "swapped": e >> 62 & 1, "file_or_shared": e >> 61 & 1,
                           "guard": e >> 58 & 1, "uffd_wp": e >> 57 & 1, "exclusive": e >> 56 & 1,
                           "soft_dirty": e >> 55 & 1}}
        if op == "setrlimit":
            if s["resource"] == RLIMIT_MEMLOCK:
                self.m.config.rlimit_memlock = s["cur"]
            elif s["resource"] == RLIMIT_DATA:
                self.m.config.rlimit_data = s["cur"]
            else:
                raise Unsupported(f"setrlimit resource {s['resource']}")
            return {"ok": 0}
        if op == "dropcaps":
            self.m.config.capable_ipc_lock = False
            self.m.config.capable_sys_rawio = False
            return {"ok": 0}
        if op == "fill_map_count":
            self.m.config.max_map_count = p.mm.map_count + s["leave"]
            return {"ok": s["leave"]}
        if op == "unfill":
            self.m.config.max_map_count = 65530
            return {"ok": 0}
        if op == "fork":
            c = p.fork()
            child_results = []
            status = 0
            maps = None
            for cs in s["child"]:
                if cs["op"] == "exit":
                    status = (cs.get("code", 0) & 0xFF) << 8
                    child_results.append({"ok": 0})
                    maps = {}
                    break
                child_results.append(self.run_step(c, cs))
            if maps is None:
                maps = self.maps_after(c)
            c.exit()
            return {"ok": 0, "child": child_results, "child_maps_after": maps, "child_exit_status": status}
        raise Unsupported(f"op {op}")

    def _result_addr(self, a, s):
        chk = s.get("check")
        if chk:
            if "equals" in chk:
                return {"ok": {"equals": a == self.addr(chk["equals"])}}
            lo, hi = chk["in_range"]
            return {"ok": {"in_range": lo <= a < hi}}
        return {"ok": self.render_addr(a, self.addr(s.get("addr", s.get("new_addr"))))}

    def maps_after(self, p):
        from vmlab.proc.collect import maps_line
        from vmlab.proc.smaps import render_vmflags
        out = {}
        for ref, off, length in self.case["regions"]:
            base = self.refs[ref]
            lo, hi = base + off, base + off + length
            rows = []
            for v in p.mm.vmas.intersecting(lo, hi):
                ml = maps_line(p.mm, v)
                flags = render_vmflags(v.vm_flags, soft_dirty=self.m.config.soft_dirty)
                rows.append([v.vm_start - base, v.vm_end - base, ml.perms, ml.name or "",
                             flags[len("VmFlags: "):].rstrip()])
            out[ref] = rows
        return out


def _norm(x):
    """Normalise a recorded result: 'abs' values are compared as absolute addresses."""
    return x


def run_case(data, case, design: str = "linux") -> list[str]:
    """Replay one case; return human-readable differences ([] when the model agrees).

    On `linux` everything must match the host. On another design the structural results
    (STRUCTURAL_OPS, also inside fork children) are not compared; VMA layouts are, exactly
    (every design merges VMAs by Linux's anon_vma rules, the designs without an anon_vma
    reverse map keeping anon_vma objects as merge tags)."""
    r = Replay(data, case, design)
    strict = design == "linux"
    diffs = []
    for i, (s, want) in enumerate(zip(case["steps"], case["expect"])):
        got = r.run_step(r.p, s)
        if not strict:
            if s["op"] in STRUCTURAL_OPS:
                continue
            if s["op"] == "fork":
                if isinstance(got, dict):
                    got = dict(got, child=[g for g, cs in zip(got.get("child", []), s["child"])
                                           if cs["op"] not in STRUCTURAL_OPS])
                    want = dict(want, child=[w for w, cs in zip(want.get("child", []), s["child"])
                                             if cs["op"] not in STRUCTURAL_OPS])
        if got != want and not _abs_equal(got, want, r):
            diffs.append(f"step {i} {json.dumps(s)}:\n      host  {json.dumps(want)}\n      model {json.dumps(got)}")
    maps = r.maps_after(r.p)
    want_maps = case["maps_after"]
    if maps != want_maps:
        diffs.append(f"maps_after:\n      host  {json.dumps(case['maps_after'])}\n      model {json.dumps(maps)}")
    try:
        r.m.check()
    except vmlab.InvariantError as e:
        diffs.append(f"check(): {e}")
    return diffs


def _abs_equal(got, want, r) -> bool:
    """A host 'abs' result names a literal address; so does the model's when it is the same."""
    if isinstance(want, dict) and isinstance(want.get("ok"), dict) and "abs" in want["ok"]:
        g = got.get("ok") if isinstance(got, dict) else None
        if isinstance(g, dict) and "abs" in g:
            return g["abs"] == want["ok"]["abs"]
        if isinstance(g, dict) and "ref" in g:
            return r.refs[g["ref"]] + g["plus"] == want["ok"]["abs"]
    return False
