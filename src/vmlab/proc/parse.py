"""Parsing /proc text back into numbers (for reports and for comparing model and host).

Works on the text of either backend, so a report or a comparison never needs to know which
kernel produced it.
"""

from __future__ import annotations

import re

_HDR = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$")


def parse_smaps(text: str) -> list[dict]:
    """Each VMA of a smaps file: {"start", "end", "perms", "name", "fields": {key: kB or int},
    "vmflags": "rd wr ..."}."""
    out: list[dict] = []
    cur = None
    for line in text.splitlines():
        m = _HDR.match(line)
        if m:
            cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
                   "name": m.group(7).strip(), "fields": {}, "vmflags": ""}
            out.append(cur)
            continue
        if cur is None or ":" not in line:
            continue
        key, _, rest = line.partition(":")
        if key == "VmFlags":
            cur["vmflags"] = rest.strip()
            continue
        parts = rest.split()
        if parts:
            try:
                cur["fields"][key] = int(parts[0])
            except ValueError:
                pass
    return out


def smaps_in_range(text: str, start: int, end: int) -> list[dict]:
    """The smaps entries of the VMAs meeting [start, end)."""
    return [e for e in parse_smaps(text) if e["start"] < end and e["end"] > start]


def sum_fields(entries: list[dict]) -> dict[str, int]:
    total: dict[str, int] = {}
    for e in entries:
        for k, v in e["fields"].items():
            total[k] = total.get(k, 0) + v
    return total


def parse_kv(text: str) -> dict[str, int]:
    """/proc/meminfo, /proc/vmstat or the numeric lines of /proc/PID/status."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        line = line.replace(":", " ", 1) if ":" in line else line
        parts = line.split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out
