"""vmlab: an executable model of an operating system's virtual-memory subsystem.

The whole public API is listed here (like xv6's defs.h):

    m = vmlab.Machine(ram="64M", swap="0", design="linux")
    p = m.spawn()
    a = p.mmap(0, 1 << 20, vmlab.PROT_READ | vmlab.PROT_WRITE, vmlab.MAP_PRIVATE | vmlab.MAP_ANONYMOUS)
    p.write(a, b"data"); p.read(a, 4); p.fill(a, 4096, 0xAB); p.touch(a, 1 << 20, write=True)
    c = p.fork(); c.exit()
    p.munmap / mprotect / mremap / madvise / mlock / mlock2 / munlock / mlockall / munlockall / brk
    m.procfs(f"/proc/{p.pid}/smaps"); p.pagemap(a, n); m.kpagecount(pfn); m.kpageflags(pfn)
    m.check()
    vmlab.designs()

Constants (PAGE_SIZE, PROT_*, MAP_*, MREMAP_*, MADV_*, MLOCK_*, MCL_*, SEGV_*, PM_*, KPF_*)
carry Linux's values. Errors: OSError with Linux's errno; SegmentationFault / BusError for bad
accesses; ProcessKilled when the OOM killer ends a process; InvariantError from check();
ScenarioError for a bad scenario file.
"""

from .api.machine import Machine, designs
from .api.process import Process
from .constants import *  # noqa: F401,F403
from .constants import __all__ as _const_all
from .errors import (BusError, InvariantError, ProcessKilled, ScenarioError, SegmentationFault,
                     Signal, VMLabError)
from .mm.system import KernelConfig
from .units import parse_size

__version__ = "0.1.0"

__all__ = ["Machine", "Process", "designs", "KernelConfig", "parse_size", "BusError",
           "InvariantError", "ProcessKilled", "ScenarioError", "SegmentationFault", "Signal",
           "VMLabError", *_const_all]
