"""Parsers for the /proc texts the host prints, turning them back into the renderers' inputs.

Used by the tests to check that rendering the parsed numbers gives the host's bytes back.
They parse strictly (a line that does not match raises), so a format the renderers do not
know shows up as a failure, not as a silently skipped line.
"""

from __future__ import annotations

import re

from vmlab.proc.maps import MapsLine
from vmlab.proc.smaps import SMAPS_FIELD_ATTR, stats_from_kb, vmflag_table
from vmlab.proc.status import StatusInfo, TaskMem

MAPS_RE = re.compile(r"^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-][w-][x-][sp]) ([0-9a-f]{8,}) "
                     r"([0-9a-f]{2,}):([0-9a-f]{2,}) (\d+) (?: *(.+))?$")
KB_RE = re.compile(r"^(\w+):\s+(\d+) kB$")


def parse_maps_line(line: str) -> MapsLine:
    m = MAPS_RE.match(line)
    if not m:
        raise ValueError(f"not a maps line: {line!r}")
    return MapsLine(start=int(m[1], 16), end=int(m[2], 16), perms=m[3],
                    pgoff_bytes=int(m[4], 16), dev_major=int(m[5], 16),
                    dev_minor=int(m[6], 16), inode=int(m[7]), name=m[8])


def parse_maps(text: str) -> list[MapsLine]:
    return [parse_maps_line(x) for x in text.splitlines()]


def vmflags_from_mnemonics(words: list[str]) -> int:
    table = vmflag_table()
    flags = 0
    for w in words:
        flags |= 1 << table.index(w)
    return flags


def split_smaps(text: str) -> list[list[str]]:
    """The file as one list of lines per VMA (each starting with its maps line)."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if MAPS_RE.match(line):
            entries.append([line])
        else:
            entries[-1].append(line)
    return entries


def parse_smaps_entry(lines: list[str]) -> dict:
    """-> dict(line=MapsLine, kb={field: kB}, size_kb, kps_kb, mmu_kb, thp, pkey, vmflags)."""
    out = {"line": parse_maps_line(lines[0]), "kb": {}, "pkey": None}
    for ln in lines[1:]:
        if ln.startswith("VmFlags:"):
            out["vmflags"] = vmflags_from_mnemonics(ln[len("VmFlags:"):].split())
            continue
        m = re.match(r"^(THPeligible|ProtectionKey):\s+(\d+)$", ln)
        if m:
            out["thp" if m[1] == "THPeligible" else "pkey"] = int(m[2])
            continue
        m = KB_RE.match(ln)
        if not m:
            raise ValueError(f"unexpected smaps line {ln!r}")
        key, v = m[1], int(m[2])
        if key == "Size":
            out["size_kb"] = v
        elif key == "KernelPageSize":
            out["kps_kb"] = v
        elif key == "MMUPageSize":
            out["mmu_kb"] = v
        elif key in SMAPS_FIELD_ATTR:
            out["kb"][key] = v
        else:
            raise ValueError(f"unknown smaps field {key!r}")
    out["stats"] = stats_from_kb(out["kb"])
    return out


def parse_rollup(text: str) -> tuple[int, int, dict[str, int]]:
    lines = text.splitlines()
    head = parse_maps_line(lines[0])
    assert head.name == "[rollup]", head
    kb = {}
    for ln in lines[1:]:
        m = KB_RE.match(ln)
        if not m or m[1] not in SMAPS_FIELD_ATTR:
            raise ValueError(f"unexpected smaps_rollup line {ln!r}")
        kb[m[1]] = int(m[2])
    return head.start, head.end, kb


def parse_kv(text: str) -> dict[str, str]:
    out = {}
    for ln in text.splitlines():
        k, _, v = ln.partition(":")
        out[k] = v.strip(" \t")
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    out = {}
    for ln in text.splitlines():
        m = re.match(r"^(\S+):\s+(\d+)( kB)?$", ln)
        if not m:
            raise ValueError(f"unexpected meminfo line {ln!r}")
        out[m[1]] = int(m[2])
    return out


def parse_vmstat(text: str) -> dict[str, int]:
    out = {}
    for ln in text.splitlines():
        name, value = ln.split(" ")
        out[name] = int(value)
    return out


def _bits_from_list(s: str) -> tuple[int, ...]:
    bits: list[int] = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            bits += range(int(a), int(b) + 1)
        elif part:
            bits.append(int(part))
    return tuple(bits)


def parse_status(text: str) -> tuple[StatusInfo, TaskMem | None]:
    """Split /proc/PID/status into the skeleton fields and the task_mem() numbers."""
    raw = {}
    for ln in text.splitlines():
        k, sep, v = ln.partition(":\t")
        if not sep:
            raise ValueError(f"unexpected status line {ln!r}")
        raw[k] = v
    ints = lambda s: tuple(int(x) for x in s.split("\t"))   # noqa: E731
    kb = lambda k: int(raw[k].split()[0])                   # noqa: E731
    sigq = raw["SigQ"].split("/")
    info = StatusInfo(
        name=raw["Name"], umask=int(raw["Umask"], 8), state=raw["State"], tgid=int(raw["Tgid"]),
        ngid=int(raw["Ngid"]), pid=int(raw["Pid"]), ppid=int(raw["PPid"]),
        tracer_pid=int(raw["TracerPid"]), uid=ints(raw["Uid"]), gid=ints(raw["Gid"]),
        fdsize=int(raw["FDSize"]), groups=tuple(int(g) for g in raw["Groups"].split()),
        nstgid=ints(raw["NStgid"]), nspid=ints(raw["NSpid"]), nspgid=ints(raw["NSpgid"]),
        nssid=ints(raw["NSsid"]), kthread=int(raw["Kthread"]),
        hugetlb_kb=kb("HugetlbPages") if "HugetlbPages" in raw else 0,
        core_dumping=int(raw.get("CoreDumping", 0)), thp_enabled=int(raw.get("THP_enabled", 1)),
        untag_mask=int(raw.get("untag_mask", "0xffffffffffffffff"), 16),
        threads=int(raw["Threads"]), sigq=(int(sigq[0]), int(sigq[1])),
        sig_pnd=int(raw["SigPnd"], 16), shd_pnd=int(raw["ShdPnd"], 16),
        sig_blk=int(raw["SigBlk"], 16), sig_ign=int(raw["SigIgn"], 16),
        sig_cgt=int(raw["SigCgt"], 16), cap_inh=int(raw["CapInh"], 16),
        cap_prm=int(raw["CapPrm"], 16), cap_eff=int(raw["CapEff"], 16),
        cap_bnd=int(raw["CapBnd"], 16), cap_amb=int(raw["CapAmb"], 16),
        no_new_privs=int(raw["NoNewPrivs"]), seccomp=int(raw["Seccomp"]),
        seccomp_filters=int(raw["Seccomp_filters"]),
        speculation_store_bypass=raw["Speculation_Store_Bypass"],
        speculation_indirect_branch=raw["SpeculationIndirectBranch"],
        cpus_allowed=_bits_from_list(raw["Cpus_allowed_list"]),
        mems_allowed=_bits_from_list(raw["Mems_allowed_list"]),
        voluntary_ctxt_switches=int(raw["voluntary_ctxt_switches"]),
        nonvoluntary_ctxt_switches=int(raw["nonvoluntary_ctxt_switches"]),
    )
    if "VmSize" not in raw:
        return info, None
    pages = lambda k: kb(k) // 4                            # noqa: E731
    mm = TaskMem(total_vm=pages("VmSize"), hiwater_vm=pages("VmPeak"),
                 locked_vm=pages("VmLck"), pinned_vm=pages("VmPin"), anon=pages("RssAnon"),
                 file=pages("RssFile"), shmem=pages("RssShmem"), hiwater_rss=pages("VmHWM"),
                 data_vm=pages("VmData"), stack_vm=pages("VmStk"),
                 exec_vm=(kb("VmExe") + kb("VmLib")) // 4, start_code=0,
                 end_code=kb("VmExe") * 1024, pgtables_bytes=kb("VmPTE") * 1024,
                 swapents=pages("VmSwap"))
    return info, mm
