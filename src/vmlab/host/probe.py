"""What this host kernel can show: ``host_info()`` and ``capabilities()``.

The host backend validates the model against the real kernel, and what can be compared depends
on the machine: pagemap shows page frame numbers only to CAP_SYS_ADMIN (fs/proc/task_mmu.c
``pagemap_open()`` sets ``show_pfn`` from ``file_ns_capable(..., CAP_SYS_ADMIN)``);
/proc/kpagecount and /proc/kpageflags are root-only (fs/proc/page.c, mode 0400); swap needs a
configured swap area; soft-dirty bits exist only with CONFIG_MEM_SOFT_DIRTY, which we detect by
looking for the ``sd`` VmFlag that every newly mapped VMA carries when it is configured
(mm/vma.c ``__mmap_region()`` sets VM_SOFTDIRTY; fs/proc/task_mmu.c ``show_smap_vma_flags()``
prints it). Everything here reads /proc and /sys only; nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

from ..constants import PAGE_SIZE, PM_PFRAME_MASK, PM_PRESENT


def _read(path: str, default: str | None = None) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return default


def _bracketed(text: str | None) -> str | None:
    """'always [madvise] never' -> 'madvise'."""
    if not text:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text.strip()


def meminfo() -> dict[str, int]:
    """/proc/meminfo as {field: bytes} (kB fields multiplied out, counts left alone)."""
    out: dict[str, int] = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def host_info() -> dict:
    """Kernel release, page size, THP and overcommit settings, memory and swap of the host."""
    mi = meminfo()
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "page_size": os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None,
        "thp_enabled": _bracketed(_read("/sys/kernel/mm/transparent_hugepage/enabled")),
        "thp_defrag": _bracketed(_read("/sys/kernel/mm/transparent_hugepage/defrag")),
        "overcommit_memory": _int(_read("/proc/sys/vm/overcommit_memory")),
        "overcommit_ratio": _int(_read("/proc/sys/vm/overcommit_ratio")),
        "randomize_va_space": _int(_read("/proc/sys/kernel/randomize_va_space")),
        "mem_total": mi.get("MemTotal"),
        "swap_total": mi.get("SwapTotal"),
        "cpus": os.cpu_count(),
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
    }


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _pagemap_shows_pfn() -> bool:
    """Read our own pagemap entry for a page we just wrote: is its pfn field filled in?"""
    buf = ctypes.create_string_buffer(PAGE_SIZE)
    buf[0] = b"x"
    addr = ctypes.addressof(buf)
    try:
        fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return False
    try:
        data = os.pread(fd, 8, (addr // PAGE_SIZE) * 8)
    except OSError:
        return False
    finally:
        os.close(fd)
    if len(data) != 8:
        return False
    (entry,) = struct.unpack("<Q", data)
    return bool(entry & PM_PRESENT) and (entry & PM_PFRAME_MASK) != 0


def _readable(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.pread(fd, 8, 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _soft_dirty() -> bool:
    for line in (_read("/proc/self/smaps") or "").splitlines():
        if line.startswith("VmFlags:") and "sd" in line.split()[1:]:
            return True
    return False


def _pkeys() -> bool:
    """Protection keys in use: smaps shows ProtectionKey only when arch_pkeys_enabled()."""
    text = _read("/proc/self/smaps") or ""
    return any(line.startswith("ProtectionKey:") for line in text.splitlines())


def capabilities() -> dict:
    """What the host backend can compare on this machine (see the module header)."""
    linux = sys.platform.startswith("linux")
    if not linux:
        return {"linux": False, "root": False, "pfn": False, "kpagecount": False,
                "kpageflags": False, "swap": False, "soft_dirty": False, "pkeys": False,
                "kernel": platform.release(), "thp": None}
    info = host_info()
    return {
        "linux": True,
        "root": os.geteuid() == 0,
        "pfn": _pagemap_shows_pfn(),
        "kpagecount": _readable("/proc/kpagecount"),
        "kpageflags": _readable("/proc/kpageflags"),
        "swap": bool(info["swap_total"]),
        "soft_dirty": _soft_dirty(),
        "pkeys": _pkeys(),
        "kernel": info["kernel"],
        "thp": info["thp_enabled"],
    }
