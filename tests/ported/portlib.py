"""Small helpers for the ported selftests/LTP tests (importable because tests/ported/conftest.py
puts this directory on sys.path).

Everything works on both backends: addresses are always derived from what mmap returned,
/proc is parsed only for the region under test (the host's processes are Python interpreters
with many mappings of their own), and "free neighbours" come from a reserved window: a
PROT_NONE mapping that the test then maps over with MAP_FIXED.
"""

from __future__ import annotations

import errno as _errno
import random
import re

import pytest

from vmlab.constants import (MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE,
                             PM_MMAP_EXCLUSIVE, PM_PFRAME_MASK, PM_PRESENT, PROT_NONE, PROT_READ,
                             PROT_WRITE)

P = PAGE_SIZE
KB = 1 << 10
MB = 1 << 20
GB = 1 << 30
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS

_MAPS_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


# --- /proc parsing ------------------------------------------------------------------------------
def maps(m, p) -> list[tuple[int, int, str, str]]:
    """(start, end, perms, name) for every line of /proc/PID/maps."""
    out = []
    for line in m.procfs(f"/proc/{p.pid}/maps").splitlines():
        mo = _MAPS_LINE.match(line)
        if mo:
            out.append((int(mo.group(1), 16), int(mo.group(2), 16), mo.group(3), mo.group(4)))
    return out


def vma_at(m, p, addr: int) -> tuple[int, int] | None:
    """[start, end) of the VMA containing addr (what PROCMAP_QUERY answers), or None."""
    for start, end, _perms, _name in maps(m, p):
        if start <= addr < end:
            return start, end
    return None


def range_in_one_vma(m, p, start: int, end: int) -> bool:
    """mremap_test.c is_range_mapped(): one maps line covers all of [start, end)."""
    return any(s <= start and e >= end for s, e, _pr, _n in maps(m, p))


def smaps_entry(m, p, addr: int) -> dict:
    """The smaps entry of the VMA containing addr: kB fields as ints, VmFlags as a tuple,
    plus 'start', 'end', 'perms'. Raises LookupError if no VMA contains addr."""
    entry = None
    for line in m.procfs(f"/proc/{p.pid}/smaps").splitlines():
        mo = _MAPS_LINE.match(line)
        if mo:
            if entry is not None:
                break
            start, end = int(mo.group(1), 16), int(mo.group(2), 16)
            if start <= addr < end:
                entry = {"start": start, "end": end, "perms": mo.group(3)}
            continue
        if entry is None:
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "VmFlags":
            entry["VmFlags"] = tuple(value.split())
        elif value.endswith(" kB"):
            entry[key] = int(value[:-3])
        else:
            entry[key] = value
    if entry is None:
        raise LookupError(f"no VMA contains {addr:#x}")
    return entry


def vmflags(m, p, addr: int) -> set[str]:
    return set(smaps_entry(m, p, addr)["VmFlags"])


def status_kb(m, p, field: str) -> int:
    """A 'Name:   N kB' field of /proc/PID/status, in kB."""
    for line in m.procfs(f"/proc/{p.pid}/status").splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return int(value.split()[0])
    raise LookupError(f"{field} not in /proc/{p.pid}/status")


# --- pagemap ---------------------------------------------------------------------------------------
def present(p, addr: int, npages: int) -> list[bool]:
    return [bool(e & PM_PRESENT) for e in p.pagemap(addr, npages)]


def npresent(p, addr: int, npages: int) -> int:
    return sum(present(p, addr, npages))


def pfn(entry: int) -> int:
    return entry & PM_PFRAME_MASK


def exclusive(entry: int) -> bool:
    return bool(entry & PM_MMAP_EXCLUSIVE)


def has_pfns(m) -> bool:
    """pagemap shows page frame numbers (always in the model; as root on the host)."""
    caps = getattr(m, "capabilities", None)
    return True if caps is None else bool(caps.get("pfn"))


# --- address windows -------------------------------------------------------------------------------
def reserve(p, size: int, align: int = P) -> int:
    """Reserve a PROT_NONE window of at least ``size`` bytes starting at a multiple of
    ``align``; return its (aligned) start. The window stays mapped; tests map over it with
    MAP_FIXED, so the neighbours of what they map are known."""
    raw = p.mmap(0, size + align - P, PROT_NONE, ANON)
    return (raw + align - 1) & ~(align - 1)


def map_fixed(p, addr: int, length: int, prot: int = RW, flags: int = ANON) -> int:
    got = p.mmap(addr, length, prot, flags | MAP_FIXED)
    assert got == addr
    return got


# --- contents and errors ---------------------------------------------------------------------------
def pattern(n: int, seed: int = 0) -> bytes:
    """n reproducible pseudo-random bytes (the selftests use srand()/rand())."""
    return random.Random(seed).randbytes(n)


def expect_errno(err: int, fn, *args, **kwargs):
    """Call fn and require OSError with errno ``err`` (LTP's TST_EXP_FAIL)."""
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    assert info.value.errno == err, (
        f"expected {_errno.errorcode.get(err, err)}, got "
        f"{_errno.errorcode.get(info.value.errno, info.value.errno)}: {info.value}")
    return info.value
