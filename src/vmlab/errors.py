"""The exceptions vmlab raises, in one place.

System calls fail the way Linux's do: with ``OSError`` carrying the errno Linux returns
(``OSError(errno.EINVAL, "mmap: ...")``). Bad memory accesses are signals, not errnos: they
raise :class:`SegmentationFault` or :class:`BusError` carrying the faulting address and the
``si_code`` the kernel would put in the siginfo. A model whose own invariants are broken raises
:class:`InvariantError` listing every violation found. A bad scenario file raises
:class:`ScenarioError` naming the file, the line and the field.
"""

from __future__ import annotations

import errno as _errno
import os as _os

from .constants import BUS_ADRERR, SEGV_ACCERR, SEGV_MAPERR, SEGV_PKUERR


def syscall_error(code: int, what: str) -> OSError:
    """Build the OSError a failing system call raises: ``[Errno 22] Invalid argument: 'mmap: ...'``."""
    return OSError(code, _os.strerror(code), what)


class VMLabError(Exception):
    """Base class of vmlab's own (non-errno) exceptions."""


class Signal(VMLabError):
    """A synchronous signal delivered to a simulated process by a bad access."""

    signame = "SIG?"

    def __init__(self, addr: int, code: int, pid: int | None = None):
        self.addr = addr
        self.code = code
        self.pid = pid
        super().__init__(f"{self.signame} ({self.code_name}) at {addr:#x}"
                         + (f" in pid {pid}" if pid is not None else ""))

    @property
    def code_name(self) -> str:
        return str(self.code)

    def __reduce__(self):
        return (type(self), (self.addr, self.code, self.pid))


class SegmentationFault(Signal):
    """SIGSEGV: ``code`` is SEGV_MAPERR (no VMA), SEGV_ACCERR (the VMA forbids the access) or
    SEGV_PKUERR (a read of an execute-only mapping on a CPU with protection keys)."""

    signame = "SIGSEGV"

    @property
    def code_name(self) -> str:
        return {SEGV_MAPERR: "SEGV_MAPERR", SEGV_ACCERR: "SEGV_ACCERR",
                SEGV_PKUERR: "SEGV_PKUERR"}.get(self.code, str(self.code))


class BusError(Signal):
    """SIGBUS: an access to a file mapping beyond the end of the file (BUS_ADRERR)."""

    signame = "SIGBUS"

    def __init__(self, addr: int, code: int = BUS_ADRERR, pid: int | None = None):
        super().__init__(addr, code, pid)

    @property
    def code_name(self) -> str:
        return {BUS_ADRERR: "BUS_ADRERR"}.get(self.code, str(self.code))


class ProcessKilled(VMLabError):
    """The process was killed (by the OOM killer, or it has already exited) while acting."""

    def __init__(self, pid: int, reason: str):
        self.pid = pid
        self.reason = reason
        super().__init__(f"pid {pid} killed: {reason}")

    def __reduce__(self):
        return (type(self), (self.pid, self.reason))


class InvariantError(VMLabError):
    """``Machine.check()`` found the model inconsistent; ``violations`` lists each finding."""

    def __init__(self, violations: list[str]):
        self.violations = list(violations)
        head = f"{len(self.violations)} invariant violation(s):"
        super().__init__("\n  ".join([head, *self.violations[:50]])
                         + ("\n  ..." if len(self.violations) > 50 else ""))

    def __reduce__(self):
        return (type(self), (self.violations,))


class ScenarioError(VMLabError):
    """A scenario file is malformed: the message names file, line and field."""

    def __init__(self, path: str, line: int, field: str, message: str):
        self.path = path
        self.line = line
        self.field = field
        super().__init__(f"{path}:{line}: {field}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.line, self.field, str(self).split(": ", 2)[-1]))


__all__ = [
    "syscall_error", "VMLabError", "Signal", "SegmentationFault", "BusError",
    "ProcessKilled", "InvariantError", "ScenarioError",
]

# Keep errno importable from here for the kernel layer's convenience.
errno = _errno
