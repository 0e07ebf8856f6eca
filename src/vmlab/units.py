"""Sizes as people write them: ``4096``, ``"64M"``, ``"1G"``, ``"512k"``, ``"16 pages"``.

Suffixes are binary (K = 1024), case-insensitive, with an optional trailing ``B`` or ``iB``,
as in the kernel's ``memparse()`` (lib/cmdline.c), which is what ``mem=`` on a kernel command
line uses.
"""

from __future__ import annotations

import re

from .constants import PAGE_SIZE

_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_RE = re.compile(r"^\s*(0x[0-9a-f]+|\d+)\s*(?:([kmgtp])(?:i?b)?|b|(pages?))?\s*$", re.I)


def parse_size(value: int | str, what: str = "size") -> int:
    """Return ``value`` in bytes; raise ValueError naming ``what`` if it is not a size."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a size like 4096 or '64M', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{what}: a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        m = _RE.match(value)
        if m:
            n = int(m.group(1), 0)
            if m.group(3):
                return n * PAGE_SIZE
            return n * _SUFFIX[(m.group(2) or "").lower()]
    raise ValueError(f"{what}: expected a size like 4096, '64M' or '16 pages', got {value!r}")


def kb(nbytes: int) -> int:
    """Bytes to kB the way /proc prints them (truncating, like ``>> 10``)."""
    return nbytes >> 10


def format_size(nbytes: int) -> str:
    """A short human size: 4096 -> '4K', 1<<30 -> '1G', 1536 -> '1536'."""
    for suf, mult in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if nbytes and nbytes % mult == 0:
            return f"{nbytes // mult}{suf}"
    return str(nbytes)
