"""Scenario files (``.vms``): a workload written as lines, runnable on the model or the host.

Grammar, one statement per line (``#`` starts a comment, blank lines are ignored):

    machine ram=64M swap=0 design=linux       optional, before any process exists
    spawn P                                   a new process named P
    P: mmap A LEN PROT FLAGS [at ADDR]        map; the region is named A
    P: munmap ADDR LEN                        ADDR is A, A+4K, A+3pages, A-8K or a number
    P: mprotect ADDR LEN PROT
    P: mremap A OLDLEN NEWLEN [FLAGS] [to ADDR] [as B]
    P: madvise ADDR LEN ADVICE                ADVICE: dontneed, free, willneed, ... or a number
    P: mlock ADDR LEN | mlock2 ADDR LEN [onfault] | munlock ADDR LEN
    P: mlockall FLAGS | munlockall
    P: brk +LEN | brk -LEN | brk 0
    P: write ADDR "text" | write ADDR x"deadbeef"
    P: read ADDR LEN [expect "text" | expect x"..."]
    P: fill ADDR LEN BYTE                     memset
    P: touch ADDR LEN [read|write]
    P: fork C                                 the child is named C
    P: exit
    file PATH SIZE [BYTE] | file PATH "text"  a file that exists before the run (disk unless
                                              under /tmp or /dev/shm)
    P: open F PATH FLAGS                      FLAGS: rdonly, wronly, rdwr, creat, excl, trunc,
                                              append joined by ","; the fd is named F
    P: mmap A LEN PROT FLAGS fd F [off OFFSET] [at ADDR]
    P: close F | fsync F | ftruncate F LEN | unlink PATH
    P: pwrite F OFFSET "text" | pread F OFFSET LEN [expect "text"]
    P: msync ADDR LEN FLAGS                   FLAGS: sync, async, invalidate
    P: shmget S KEY SIZE FLAGS                KEY: a number or private; FLAGS: creat, excl, and
                                              octal permissions (0600); the id is named S
    P: shmat A S [FLAGS] [at ADDR]            FLAGS: rdonly, rnd, remap; the region is named A
    P: shmdt A | shmctl S rmid|lock|unlock
    checkpoint NAME                           a point where state is recorded / compared
    note TEXT                                 printed in the run's report
    repeat N [as VAR] ... end                 the lines between, N times, with {VAR} (default
                                              {i}) replaced by 0 .. N-1 ({VAR+1}, {VAR-2}
                                              also work); blocks may nest

Any step may end with ``=> ERRNO`` (EINVAL, ENOMEM, ...), ``=> SIGSEGV``, ``=> SIGBUS`` or
``=> ok`` to state the outcome it must have. PROT is ``r``, ``rw``, ``rwx``, ``none``, ``r-x``
or ``PROT_READ|PROT_WRITE``; FLAGS are names joined by ``,`` or ``|`` with or without the
``MAP_``/``MREMAP_``/``MCL_`` prefix (``private,anonymous``, ``MAP_SHARED|MAP_ANONYMOUS``).
Sizes take K/M/G suffixes or ``pages`` (``4K``, ``16M``, ``3pages``).

A malformed line raises ScenarioError naming the file, line and field.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .. import constants as C
from ..errors import ScenarioError
from ..units import parse_size

OPS = {
    "mmap", "munmap", "mprotect", "mremap", "madvise", "mlock", "mlock2", "munlock", "mlockall",
    "munlockall", "brk", "write", "read", "fill", "touch", "fork", "exit",
    "open", "close", "fsync", "ftruncate", "unlink", "pwrite", "pread", "msync",
    "shmget", "shmat", "shmdt", "shmctl",
}
OPEN_FLAGS = {"rdonly": 0, "wronly": 1, "rdwr": 2, "creat": 0o100, "excl": 0o200,
              "trunc": 0o1000, "append": 0o2000}
SHM_FLAGS = {"creat": C.IPC_CREAT, "excl": C.IPC_EXCL, "rdonly": C.SHM_RDONLY, "rnd": C.SHM_RND,
             "remap": C.SHM_REMAP, "exec": C.SHM_EXEC}
SHMCTL = {"rmid": C.IPC_RMID, "lock": C.SHM_LOCK, "unlock": C.SHM_UNLOCK}
MS_FLAGS = {"sync": C.MS_SYNC, "async": C.MS_ASYNC, "invalidate": C.MS_INVALIDATE}
SIGNALS = {"SIGSEGV", "SIGBUS"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADDR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:([+-])(.+))?$")


@dataclass
class Step:
    line: int
    kind: str                       # "machine", "spawn", "op", "checkpoint", "note"
    proc: str | None = None
    op: str | None = None
    args: dict = field(default_factory=dict)
    expect: str | None = None       # "ok", an errno name, SIGSEGV or SIGBUS
    text: str = ""

    def __repr__(self) -> str:
        return f"Step(line={self.line}, kind={self.kind!r}, proc={self.proc!r}, op={self.op!r}, args={self.args!r}, expect={self.expect!r})"


@dataclass
class Addr:
    """An address: a region name plus an offset, or an absolute number."""
    region: str | None
    offset: int

    def __str__(self) -> str:
        if self.region is None:
            return hex(self.offset)
        if not self.offset:
            return self.region
        return f"{self.region}{'+' if self.offset > 0 else '-'}{abs(self.offset):#x}"


@dataclass
class Scenario:
    path: str
    steps: list[Step]
    machine: dict
    title: str = ""


class _Ctx:
    def __init__(self, path: str, line: int):
        self.path, self.line = path, line

    def err(self, fld: str, msg: str) -> ScenarioError:
        return ScenarioError(self.path, self.line, fld, msg)


def _size(ctx, tok: str, fld: str) -> int:
    try:
        return parse_size(tok, fld)
    except ValueError:
        raise ctx.err(fld, f"expected a size like 4096, 4K, 16M or 3pages, got {tok!r}") from None


def _addr(ctx, tok: str, fld: str) -> Addr:
    try:
        return Addr(None, int(tok, 0))
    except ValueError:
        pass
    m = _ADDR.match(tok)
    if not m:
        raise ctx.err(fld, f"expected a region name (A, A+4K) or a number, got {tok!r}")
    off = 0
    if m.group(2):
        off = _size(ctx, m.group(3), fld)
        if m.group(2) == "-":
            off = -off
    return Addr(m.group(1), off)


def _prot(ctx, tok: str) -> int:
    t = tok.lower()
    if t in ("none", "---", "0"):
        return C.PROT_NONE
    if re.fullmatch(r"[r-][w-][x-]|[rwx]+", t):
        return ((C.PROT_READ if "r" in t else 0) | (C.PROT_WRITE if "w" in t else 0)
                | (C.PROT_EXEC if "x" in t else 0))
    return _flags(ctx, tok, "prot", "PROT_")


def _flags(ctx, tok: str, fld: str, prefix: str) -> int:
    val = 0
    for part in re.split(r"[,|]", tok):
        part = part.strip()
        if not part:
            continue
        try:
            val |= int(part, 0)
            continue
        except ValueError:
            pass
        name = part.upper()
        if not name.startswith(prefix):
            name = prefix + name
        if name == "MAP_ANON":
            name = "MAP_ANONYMOUS"
        v = getattr(C, name, None)
        if not isinstance(v, int):
            raise ctx.err(fld, f"unknown flag {part!r} (expected names like {prefix}...)")
        val |= v
    return val


def _names(ctx, tok: str, table: dict, fld: str) -> int:
    val = 0
    for part in re.split(r"[,|]", tok.lower()):
        if not part:
            continue
        if part not in table:
            raise ctx.err(fld, f"unknown flag {part!r}; one of {', '.join(table)}")
        val |= table[part]
    return val


def _int(ctx, tok: str, fld: str) -> int:
    try:
        return int(tok, 0)
    except ValueError:
        raise ctx.err(fld, f"expected a number, got {tok!r}") from None


def _shmflags(ctx, tok: str) -> int:
    val = 0
    for part in re.split(r"[,|]", tok.lower()):
        if not part:
            continue
        if part in SHM_FLAGS:
            val |= SHM_FLAGS[part]
        elif re.fullmatch(r"0?[0-7]{3}", part):
            val |= int(part, 8)
        else:
            raise ctx.err("flags", f"unknown shm flag {part!r}; one of {', '.join(SHM_FLAGS)} or 0600")
    return val


def _fd(ctx, tok: str, fds: set) -> str:
    if tok not in fds:
        raise ctx.err("fd", f"unknown fd {tok!r} (open it first)")
    return tok


def _data(ctx, tok: str) -> bytes:
    if tok.startswith('x"') and tok.endswith('"'):
        try:
            return bytes.fromhex(tok[2:-1])
        except ValueError:
            raise ctx.err("data", f"bad hex string {tok!r}") from None
    if len(tok) >= 2 and tok[0] == tok[-1] == '"':
        return tok[1:-1].encode("utf-8").decode("unicode_escape").encode("latin-1")
    raise ctx.err("data", f'expected "text" or x"hex", got {tok!r}')


def _need(ctx, toks: list[str], n: int, usage: str) -> None:
    if len(toks) < n:
        raise ctx.err("arguments", f"too few arguments; usage: {usage}")


_REPEAT = re.compile(r"^repeat\s+(\S+)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?$")
MAX_REPEATED_LINES = 1_000_000


def _expand_repeats(text: str, path: str) -> list[tuple[int, str]]:
    """Unroll ``repeat N [as VAR] ... end`` blocks into (line number, text) pairs; the
    repeated lines keep the number of the line they came from."""
    lines = list(enumerate(text.splitlines(), 1))

    def block(i: int, depth: int) -> tuple[list[tuple[int, str]], int]:
        out: list[tuple[int, str]] = []
        while i < len(lines):
            n, raw = lines[i]
            line = raw.strip()
            m = _REPEAT.match(line)
            if m:
                ctx = _Ctx(path, n)
                count = _int(ctx, m.group(1), "repeat")
                if count < 0:
                    raise ctx.err("repeat", f"expected a count >= 0, got {count}")
                var = m.group(2) or "i"
                body, i = block(i + 1, depth + 1)
                if i >= len(lines):
                    raise ctx.err("repeat", "no matching 'end'")
                if count * len(body) + len(out) > MAX_REPEATED_LINES:
                    raise ctx.err("repeat", f"expands to more than {MAX_REPEATED_LINES} lines")
                pat = re.compile(r"\{" + var + r"(?:([+-])(\d+))?\}")
                for k in range(count):
                    def sub(mo, k=k):
                        d = int(mo.group(2) or 0)
                        return str(k - d if mo.group(1) == "-" else k + d)
                    out += [(bn, pat.sub(sub, braw)) for bn, braw in body]
                i += 1                              # past 'end'
                continue
            if line == "end":
                if depth == 0:
                    raise _Ctx(path, n).err("end", "'end' without 'repeat'")
                return out, i
            out.append((n, raw))
            i += 1
        return out, i

    out, _ = block(0, 0)
    return out


def parse_text(text: str, path: str = "<scenario>") -> Scenario:
    steps: list[Step] = []
    machine: dict = {}
    procs: set[str] = set()
    regions: set[str] = set()
    fds: set[str] = set()
    shmids: set[str] = set()
    title = ""
    for n, raw in _expand_repeats(text, path):
        line = raw.strip()
        if n == 1 and line.startswith("#"):
            title = line.lstrip("#").strip()
        if not line or line.startswith("#"):
            continue
        ctx = _Ctx(path, n)
        expect = None
        if "=>" in line:
            line, _, exp = line.rpartition("=>")
            exp = exp.strip()
            line = line.strip()
            if exp.lower() == "ok":
                exp = "ok"
            elif exp.upper() in SIGNALS:
                exp = exp.upper()
            elif exp.upper().startswith("E") and hasattr(__import__("errno"), exp.upper()):
                exp = exp.upper()
            else:
                raise ctx.err("expect", f"expected ok, an errno name or SIGSEGV/SIGBUS after '=>', got {exp!r}")
            expect = exp
        try:
            toks = shlex.split(line, posix=False)
        except ValueError as e:
            raise ctx.err("syntax", str(e)) from None
        head = toks[0]
        if head == "machine":
            if procs:
                raise ctx.err("machine", "must come before the first spawn")
            for kv in toks[1:]:
                k, sep, v = kv.partition("=")
                if not sep or k not in ("ram", "swap", "design", "soft_dirty"):
                    raise ctx.err("machine", f"expected ram=SIZE, swap=SIZE or design=NAME, got {kv!r}")
                if k in ("ram", "swap"):
                    _size(ctx, v, k)
                machine[k] = v
            continue
        if head == "spawn":
            _need(ctx, toks, 2, "spawn NAME")
            if not _NAME.match(toks[1]) or toks[1] in procs:
                raise ctx.err("name", f"bad or duplicate process name {toks[1]!r}")
            procs.add(toks[1])
            steps.append(Step(n, "spawn", proc=toks[1], expect=expect))
            continue
        if head == "file":
            _need(ctx, toks, 3, 'file PATH SIZE [BYTE] | file PATH "text"')
            if not toks[1].startswith("/"):
                raise ctx.err("path", f"expected an absolute path, got {toks[1]!r}")
            if toks[2].startswith(('"', 'x"')):
                spec = {"path": toks[1], "data": _data(ctx, " ".join(toks[2:]))}
            else:
                size = _size(ctx, toks[2], "size")
                byte = int(toks[3], 0) if len(toks) > 3 else 0
                spec = {"path": toks[1], "data": bytes([byte & 0xFF]) * size}
            steps.append(Step(n, "file", args=spec, text=line))
            continue
        if head == "checkpoint":
            _need(ctx, toks, 2, "checkpoint NAME")
            steps.append(Step(n, "checkpoint", text=toks[1]))
            continue
        if head == "note":
            steps.append(Step(n, "note", text=line[4:].strip()))
            continue
        if not head.endswith(":"):
            raise ctx.err("statement", f"expected 'PROC: op ...', machine, spawn, checkpoint or note, got {head!r}")
        proc = head[:-1]
        if proc not in procs:
            raise ctx.err("process", f"unknown process {proc!r} (spawn or fork it first)")
        _need(ctx, toks, 2, "PROC: op ARGS")
        op = toks[1].lower()
        if op not in OPS:
            raise ctx.err("op", f"unknown operation {toks[1]!r}; one of {', '.join(sorted(OPS))}")
        a = toks[2:]
        args: dict = {}
        if op == "mmap":
            _need(ctx, a, 4, "mmap NAME LEN PROT FLAGS [at ADDR]")
            if not _NAME.match(a[0]):
                raise ctx.err("name", f"bad region name {a[0]!r}")
            args = {"name": a[0], "len": _size(ctx, a[1], "len"), "prot": _prot(ctx, a[2]),
                    "flags": _flags(ctx, a[3], "flags", "MAP_"), "at": None, "fd": None, "off": 0}
            rest = a[4:]
            while rest:
                if rest[0] == "at" and len(rest) > 1:
                    args["at"] = _addr(ctx, rest[1], "at")
                elif rest[0] == "fd" and len(rest) > 1:
                    args["fd"] = _fd(ctx, rest[1], fds)
                elif rest[0] == "off" and len(rest) > 1:
                    args["off"] = _size(ctx, rest[1], "off")
                else:
                    raise ctx.err("arguments", f"expected 'at ADDR', 'fd F' or 'off OFFSET', got {rest[0]!r}")
                rest = rest[2:]
            if args["fd"] is None and not args["flags"] & C.MAP_ANONYMOUS:
                raise ctx.err("flags", "a mapping without 'anonymous' needs 'fd F'")
            regions.add(a[0])
        elif op in ("munmap", "mlock", "munlock"):
            _need(ctx, a, 2, f"{op} ADDR LEN")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len")}
        elif op == "mlock2":
            _need(ctx, a, 2, "mlock2 ADDR LEN [onfault]")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"),
                    "flags": C.MLOCK_ONFAULT if len(a) > 2 and a[2].lower() == "onfault" else 0}
        elif op == "mprotect":
            _need(ctx, a, 3, "mprotect ADDR LEN PROT")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"), "prot": _prot(ctx, a[2])}
        elif op == "mremap":
            _need(ctx, a, 3, "mremap ADDR OLDLEN NEWLEN [FLAGS] [to ADDR] [as NAME]")
            args = {"addr": _addr(ctx, a[0], "addr"), "old": _size(ctx, a[1], "old_len"),
                    "new": _size(ctx, a[2], "new_len"), "flags": 0, "to": None, "as": None}
            rest = a[3:]
            while rest:
                if rest[0] == "to" and len(rest) > 1:
                    args["to"] = _addr(ctx, rest[1], "to")
                    rest = rest[2:]
                elif rest[0] == "as" and len(rest) > 1:
                    args["as"] = rest[1]
                    regions.add(rest[1])
                    rest = rest[2:]
                else:
                    args["flags"] = _flags(ctx, rest[0], "flags", "MREMAP_")
                    rest = rest[1:]
        elif op == "madvise":
            _need(ctx, a, 3, "madvise ADDR LEN ADVICE")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"),
                    "advice": _flags(ctx, a[2], "advice", "MADV_")}
        elif op == "mlockall":
            _need(ctx, a, 1, "mlockall current,future,onfault")
            args = {"flags": _flags(ctx, a[0], "flags", "MCL_")}
        elif op == "brk":
            _need(ctx, a, 1, "brk +LEN | -LEN | 0 | ADDR")
            t = a[0]
            if t[0] in "+-":
                args = {"rel": _size(ctx, t[1:], "len") * (1 if t[0] == "+" else -1)}
            else:
                args = {"abs": _addr(ctx, t, "addr")}
        elif op == "write":
            _need(ctx, a, 2, 'write ADDR "text"')
            args = {"addr": _addr(ctx, a[0], "addr"), "data": _data(ctx, " ".join(a[1:]))}
        elif op == "read":
            _need(ctx, a, 2, 'read ADDR LEN [expect "text"]')
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"), "expect": None}
            if len(a) >= 4 and a[2] == "expect":
                args["expect"] = _data(ctx, " ".join(a[3:]))
        elif op == "fill":
            _need(ctx, a, 3, "fill ADDR LEN BYTE")
            try:
                byte = int(a[2], 0)
            except ValueError:
                raise ctx.err("byte", f"expected a byte value like 0xab, got {a[2]!r}") from None
            if not 0 <= byte <= 255:
                raise ctx.err("byte", f"a byte is 0..255, got {byte}")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"), "byte": byte}
        elif op == "touch":
            _need(ctx, a, 2, "touch ADDR LEN [read|write]")
            mode = a[2].lower() if len(a) > 2 else "read"
            if mode not in ("read", "write"):
                raise ctx.err("mode", f"expected read or write, got {a[2]!r}")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"), "write": mode == "write"}
        elif op == "open":
            _need(ctx, a, 3, "open FD PATH FLAGS")
            if not _NAME.match(a[0]):
                raise ctx.err("name", f"bad fd name {a[0]!r}")
            args = {"fd": a[0], "path": a[1], "flags": _names(ctx, a[2], OPEN_FLAGS, "flags")}
            fds.add(a[0])
        elif op in ("close", "fsync"):
            _need(ctx, a, 1, f"{op} FD")
            args = {"fd": _fd(ctx, a[0], fds)}
        elif op == "ftruncate":
            _need(ctx, a, 2, "ftruncate FD LEN")
            args = {"fd": _fd(ctx, a[0], fds), "len": _size(ctx, a[1], "len")}
        elif op == "unlink":
            _need(ctx, a, 1, "unlink PATH")
            args = {"path": a[0]}
        elif op == "pwrite":
            _need(ctx, a, 3, 'pwrite FD OFFSET "text"')
            args = {"fd": _fd(ctx, a[0], fds), "off": _size(ctx, a[1], "offset"),
                    "data": _data(ctx, " ".join(a[2:]))}
        elif op == "pread":
            _need(ctx, a, 3, 'pread FD OFFSET LEN [expect "text"]')
            args = {"fd": _fd(ctx, a[0], fds), "off": _size(ctx, a[1], "offset"),
                    "len": _size(ctx, a[2], "len"), "expect": None}
            if len(a) >= 5 and a[3] == "expect":
                args["expect"] = _data(ctx, " ".join(a[4:]))
        elif op == "msync":
            _need(ctx, a, 3, "msync ADDR LEN FLAGS")
            args = {"addr": _addr(ctx, a[0], "addr"), "len": _size(ctx, a[1], "len"),
                    "flags": _names(ctx, a[2], MS_FLAGS, "flags")}
        elif op == "shmget":
            _need(ctx, a, 4, "shmget NAME KEY SIZE FLAGS")
            if not _NAME.match(a[0]):
                raise ctx.err("name", f"bad segment name {a[0]!r}")
            key = C.IPC_PRIVATE if a[1].lower() == "private" else _int(ctx, a[1], "key")
            args = {"name": a[0], "key": key, "size": _size(ctx, a[2], "size"),
                    "flags": _shmflags(ctx, a[3])}
            shmids.add(a[0])
        elif op == "shmat":
            _need(ctx, a, 2, "shmat REGION SEG [FLAGS] [at ADDR]")
            if not _NAME.match(a[0]):
                raise ctx.err("name", f"bad region name {a[0]!r}")
            if a[1] not in shmids:
                raise ctx.err("segment", f"unknown segment {a[1]!r} (shmget it first)")
            args = {"name": a[0], "seg": a[1], "flags": 0, "at": None}
            rest = a[2:]
            while rest:
                if rest[0] == "at" and len(rest) > 1:
                    args["at"] = _addr(ctx, rest[1], "at")
                    rest = rest[2:]
                else:
                    args["flags"] = _shmflags(ctx, rest[0])
                    rest = rest[1:]
            regions.add(a[0])
        elif op == "shmdt":
            _need(ctx, a, 1, "shmdt ADDR")
            args = {"addr": _addr(ctx, a[0], "addr")}
        elif op == "shmctl":
            _need(ctx, a, 2, "shmctl SEG rmid|lock|unlock")
            if a[0] not in shmids:
                raise ctx.err("segment", f"unknown segment {a[0]!r}")
            if a[1].lower() not in SHMCTL:
                raise ctx.err("cmd", f"expected rmid, lock or unlock, got {a[1]!r}")
            args = {"seg": a[0], "cmd": SHMCTL[a[1].lower()]}
        elif op == "fork":
            _need(ctx, a, 1, "fork CHILD")
            if not _NAME.match(a[0]) or a[0] in procs:
                raise ctx.err("name", f"bad or duplicate process name {a[0]!r}")
            procs.add(a[0])
            args = {"child": a[0]}
        for v in args.values():
            if isinstance(v, Addr) and v.region is not None and v.region not in regions:
                raise ctx.err("addr", f"unknown region {v.region!r} (map it first)")
        steps.append(Step(n, "op", proc=proc, op=op, args=args, expect=expect, text=line))
    return Scenario(path, steps, machine, title)


def parse_file(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError(str(p), 0, "file", e.strerror or str(e)) from None
    return parse_text(text, str(p))
