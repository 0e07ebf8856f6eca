"""vmlab.host: the real Linux kernel behind vmlab's Machine/Process API.

``HostMachine`` answers the model's public API (``spawn``, ``mmap`` ... ``touch``, ``fork``,
``exit``, ``procfs``, ``pagemap``, ``kpagecount``, ``kpageflags``; files: ``open`` ...
``unlink``, ``msync``, ``create_file``, ``file_data``; SysV ``shmget``, ``shmat``, ``shmdt``,
``shmctl``) with real processes making real system calls on this machine, so a scenario or
test can run on the model and on the host and the two answers can be compared (issue 5). It is
a peer of the model, not a layer on it: nothing here imports the model; only vmlab.constants,
vmlab.errors and vmlab.units.

    machine.py  HostMachine, HostProcess, HostUnsupported: the driver side
    worker.py   the process that stands for one simulated process (and the reaper)
    probe.py    host_info() and capabilities(): what this host can show

See docs/host.md for the protocol, what the host cannot do, and the capabilities.
"""

from .machine import HostMachine, HostProcess, HostUnsupported
from .probe import capabilities, host_info

__all__ = ["HostMachine", "HostProcess", "HostUnsupported", "capabilities", "host_info"]
