"""A plain reference model of anonymous memory: what every page *contains* and who may touch it.

tests/test_stateful.py drives vmlab and this model side by side and compares them. This model
knows nothing about VMAs, page tables, frames, rmap, merging, faults or accounting; it keeps,
per simulated process, a dictionary from virtual page number to a `Page`:

  * a private page owns its bytes (``None`` = all zero); fork copies it (the copy-on-write the
    kernel does lazily is, for contents, a copy);
  * a shared page names a `SharedObject` (the shmem object behind one MAP_SHARED|MAP_ANONYMOUS
    mmap, mm/shmem.c:shmem_zero_setup) and a page index in it; every process and address that
    maps the same (object, index) sees the same bytes. The object's size is the length of the
    mmap that created it; an index at or past it raises SIGBUS (mm/shmem.c:shmem_fault).

Per page it also keeps the VMA flags that change what later calls do to contents: the
protection, VM_LOCKED (MADV_DONTNEED/FREE/COLD refuse locked VMAs, mm/madvise.c), VM_DONTCOPY
(MADV_DONTFORK: not copied by fork, mm/mmap.c:dup_mmap) and VM_WIPEONFORK (the child gets
fresh zero pages). Access rules are x86's (arch/x86/mm/fault.c:access_error): a write needs
PROT_WRITE, a read needs any of PROT_READ/WRITE/EXEC, and a PROT_EXEC-only mapping carries the
execute-only protection key, so a read gives SEGV_PKUERR (arch/x86/mm/pkeys.c).

The system-call methods apply a call's effect *after the caller knows whether it succeeded*:
this model does not decide errnos. For the calls that Linux lets fail after changing part of
the range (docs/notes/syscalls.md §4 mprotect, §6 madvise, §7 mlock/munlock) the same method
serves both outcomes: it applies what Linux applies before it stops (up to the first hole for
mprotect/mlock/munlock; every VMA up to the first refusing one for madvise, holes skipped) and
returns a `Walk` saying how far it got, which the caller checks against the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

PAGE = 4096
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
ZERO_PAGE = bytes(PAGE)

SEGV_MAPERR, SEGV_ACCERR, SEGV_PKUERR = 1, 2, 4


def prot_str(prot: int) -> str:
    return "".join(c if prot & b else "-" for c, b in (("r", PROT_READ), ("w", PROT_WRITE),
                                                       ("x", PROT_EXEC)))


class SharedObject:
    """The shmem object of one shared anonymous mmap: ``size`` pages, sparse contents."""

    __slots__ = ("oid", "size", "pages")

    def __init__(self, oid: int, size: int):
        self.oid = oid
        self.size = size
        self.pages: dict[int, bytes] = {}

    def __repr__(self) -> str:
        return f"shmem#{self.oid}[{self.size}p]"


@dataclass(frozen=True, slots=True)
class Page:
    prot: int
    obj: SharedObject | None = None   # shared: the object ...
    idx: int = 0                      # ... and the page's index in it
    data: bytes | None = None         # private: contents (None = zero)
    locked: bool = False
    dontfork: bool = False
    wipeonfork: bool = False

    @property
    def shared(self) -> bool:
        return self.obj is not None

    def contents(self) -> bytes:
        if self.obj is not None:
            return self.obj.pages.get(self.idx, ZERO_PAGE)
        return self.data if self.data is not None else ZERO_PAGE

    def beyond_eof(self) -> bool:
        return self.obj is not None and self.idx >= self.obj.size

    def maps_perms(self) -> str:
        return prot_str(self.prot) + ("s" if self.shared else "p")


@dataclass(frozen=True)
class Fault:
    """The signal an access must raise: ``kind`` 'SIGSEGV' or 'SIGBUS', si_code, address."""
    kind: str
    code: int
    addr: int

    def __str__(self) -> str:
        names = {("SIGSEGV", 1): "SEGV_MAPERR", ("SIGSEGV", 2): "SEGV_ACCERR",
                 ("SIGSEGV", 4): "SEGV_PKUERR", ("SIGBUS", 2): "BUS_ADRERR"}
        return f"{self.kind}({names.get((self.kind, self.code), self.code)}) at {self.addr:#x}"


@dataclass
class Walk:
    """How far a partial-effect call got: pages it applied to, and whether it met a hole or a
    VMA that refused the advice."""
    applied: int = 0
    hole: bool = False
    refused: bool = False


@dataclass
class RefProcess:
    pid: int
    start_brk: int
    brk: int
    pages: dict[int, Page] = field(default_factory=dict)
    def_locked: bool = False          # mm->def_flags & VM_LOCKED (mlockall MCL_FUTURE)

    # --- queries --------------------------------------------------------------------------------
    def runs(self) -> list[tuple[int, int]]:
        """Maximal runs of mapped pages as (first vpn, npages), by address."""
        out: list[tuple[int, int]] = []
        for vpn in sorted(self.pages):
            if out and out[-1][0] + out[-1][1] == vpn:
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((vpn, 1))
        return out

    def perms(self) -> dict[int, str]:
        """What /proc/PID/maps must show, page by page ('rw-p', 'r--s', ...)."""
        return {vpn: pg.maps_perms() for vpn, pg in self.pages.items()}

    def access_fault(self, addr: int, length: int, write: bool) -> Fault | None:
        """The signal the first bad byte of [addr, addr+length) raises, or None."""
        for vpn in range(addr // PAGE, (addr + length + PAGE - 1) // PAGE):
            bad = max(addr, vpn * PAGE)
            pg = self.pages.get(vpn)
            if pg is None:
                return Fault("SIGSEGV", SEGV_MAPERR, bad)
            if write:
                if not pg.prot & PROT_WRITE:
                    return Fault("SIGSEGV", SEGV_ACCERR, bad)
            else:
                if not pg.prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
                    return Fault("SIGSEGV", SEGV_ACCERR, bad)
                if pg.prot == PROT_EXEC:
                    return Fault("SIGSEGV", SEGV_PKUERR, bad)
            if pg.beyond_eof():
                return Fault("SIGBUS", 2, bad)
        return None

    def read(self, addr: int, length: int) -> bytes:
        out = bytearray()
        end = addr + length
        cur = addr
        while cur < end:
            vpn = cur // PAGE
            off = cur - vpn * PAGE
            n = min(end - cur, PAGE - off)
            out += self.pages[vpn].contents()[off:off + n]
            cur += n
        return bytes(out)

    # --- memory accesses --------------------------------------------------------------------------
    def _store(self, vpn: int, off: int, chunk: bytes) -> None:
        pg = self.pages[vpn]
        if len(chunk) == PAGE:
            new = bytes(chunk)
        else:
            buf = bytearray(pg.contents())
            buf[off:off + len(chunk)] = chunk
            new = bytes(buf)
        if pg.obj is not None:
            pg.obj.pages[pg.idx] = new
        else:
            self.pages[vpn] = replace(pg, data=new)

    def write(self, addr: int, data: bytes) -> None:
        pos = 0
        cur = addr
        end = addr + len(data)
        while cur < end:
            vpn = cur // PAGE
            off = cur - vpn * PAGE
            n = min(end - cur, PAGE - off)
            self._store(vpn, off, data[pos:pos + n])
            pos += n
            cur += n

    def fill(self, addr: int, length: int, byte: int) -> None:
        full = bytes([byte]) * PAGE
        cur = addr
        end = addr + length
        while cur < end:
            vpn = cur // PAGE
            off = cur - vpn * PAGE
            n = min(end - cur, PAGE - off)
            self._store(vpn, off, full[:n])
            cur += n

    # --- system calls (applied after the model said they succeeded) --------------------------------
    def mmap(self, ref: "RefMachine", vpn: int, npages: int, prot: int, shared: bool,
             locked: bool) -> None:
        """A new mapping replaces whatever was there (MAP_FIXED) and reads zero."""
        obj = ref.new_object(npages) if shared else None
        locked = locked or self.def_locked
        for i in range(npages):
            self.pages[vpn + i] = Page(prot, obj, i, None, locked)

    def munmap(self, vpn: int, npages: int) -> None:
        for i in range(npages):
            self.pages.pop(vpn + i, None)

    def _walk_prefix(self, vpn: int, npages: int) -> tuple[list[int], Walk]:
        """mprotect/mlock/munlock: VMA by VMA from the start; the first hole stops the call
        with ENOMEM after the pages before it changed (mm/mprotect.c:do_mprotect_pkey,
        mm/mlock.c:apply_vma_lock_flags)."""
        w = Walk()
        done = []
        for i in range(npages):
            if vpn + i not in self.pages:
                w.hole = True
                break
            done.append(vpn + i)
        w.applied = len(done)
        return done, w

    def mprotect(self, vpn: int, npages: int, prot: int) -> Walk:
        done, w = self._walk_prefix(vpn, npages)
        for v in done:
            self.pages[v] = replace(self.pages[v], prot=prot)
        return w

    def mlock(self, vpn: int, npages: int, lock: bool) -> Walk:
        done, w = self._walk_prefix(vpn, npages)
        for v in done:
            self.pages[v] = replace(self.pages[v], locked=lock)
        return w

    def mlockall(self, current: bool, future: bool) -> None:
        """mm/mlock.c:apply_mlockall_flags: def_flags follow MCL_FUTURE; VMAs change only
        with MCL_CURRENT (munlockall passes 0, which unlocks every VMA)."""
        self.def_locked = future
        if current:
            for v, pg in self.pages.items():
                self.pages[v] = replace(pg, locked=True)

    def munlockall(self) -> None:
        self.def_locked = False
        for v, pg in self.pages.items():
            self.pages[v] = replace(pg, locked=False)

    # madvise: which VMAs refuse which advice (mm/madvise.c:madvise_vma_behavior and friends)
    @staticmethod
    def madvise_refuses(advice: str, pg: Page) -> bool:
        if advice in ("DONTNEED", "COLD"):
            return pg.locked
        if advice == "FREE":
            return pg.locked or pg.shared
        if advice == "WIPEONFORK":
            return pg.shared
        return False

    def madvise(self, vpn: int, npages: int, advice: str) -> Walk:
        """madvise_walk_vmas(): a hole records ENOMEM and the walk goes on; an advice's own
        error stops the walk at once, after the earlier VMAs were advised."""
        w = Walk()
        for i in range(npages):
            v = vpn + i
            pg = self.pages.get(v)
            if pg is None:
                w.hole = True
                continue
            if self.madvise_refuses(advice, pg):
                w.refused = True
                break
            w.applied += 1
            if advice == "DONTNEED":
                if not pg.shared:                     # private: zapped, reads zero again
                    self.pages[v] = replace(pg, data=None)
            elif advice == "DONTFORK":
                self.pages[v] = replace(pg, dontfork=True)
            elif advice == "DOFORK":
                self.pages[v] = replace(pg, dontfork=False)
            elif advice == "WIPEONFORK":
                self.pages[v] = replace(pg, wipeonfork=True)
            elif advice == "KEEPONFORK":
                self.pages[v] = replace(pg, wipeonfork=False)
            # FREE (no memory pressure: contents stay), WILLNEED, COLD, NORMAL, RANDOM,
            # SEQUENTIAL, DONTDUMP, DODUMP, POPULATE_*: contents and access unchanged.
        return w

    def mremap(self, old: int, old_n: int, new: int, new_n: int, *, fixed: bool,
               dontunmap: bool) -> list[str]:
        """Apply a successful mremap (mm/mremap.c). Pages keep their contents, flags and, for
        shared mappings, their object index; a grown part takes the flags of the page at
        ``old`` and continues its object index (past the object's end: SIGBUS). FIXED unmaps
        the target first; the 6.17 multi-VMA move keeps the holes of the old range. DONTUNMAP
        leaves the source mapped but empty (private: zero; shared: the same object pages) and
        unlocked. Returns complaints about a destination that overlapped live pages."""
        problems = []
        src = [self.pages.get(old + i) for i in range(old_n)]
        attr = self.pages.get(old)
        if attr is None:
            problems.append(f"mremap succeeded but its old address {old * PAGE:#x} was not mapped")
            return problems
        if dontunmap:
            for i, pg in enumerate(src):
                if pg is not None:
                    self.pages[old + i] = replace(pg, data=None, locked=False)
        else:
            for i in range(old_n):
                self.pages.pop(old + i, None)
        if fixed:
            for i in range(new_n):
                self.pages.pop(new + i, None)
        else:
            busy = [new + i for i in range(new_n) if new + i in self.pages]
            if busy:
                problems.append(f"mremap placed its result over live pages at {busy[0] * PAGE:#x}")
        for i in range(new_n):
            if i < old_n:
                if src[i] is not None:
                    self.pages[new + i] = src[i]
            else:
                idx = attr.idx + i if attr.shared else 0
                self.pages[new + i] = replace(attr, idx=idx, data=None)
        return problems

    def brk_apply(self, new_brk: int) -> None:
        """A successful brk: grow maps fresh zero pages [PAGE_ALIGN(old), PAGE_ALIGN(new)),
        shrink unmaps [PAGE_ALIGN(new), PAGE_ALIGN(old)) (mm/mmap.c:SYSCALL_DEFINE1(brk))."""
        old_end = (self.brk + PAGE - 1) // PAGE
        new_end = (new_brk + PAGE - 1) // PAGE
        if new_end > old_end:
            for v in range(old_end, new_end):
                self.pages[v] = Page(PROT_READ | PROT_WRITE, locked=self.def_locked)
        elif new_end < old_end:
            for v in range(new_end, old_end):
                self.pages.pop(v, None)
        self.brk = new_brk

    def brk_shrink_possible(self, new_brk: int) -> bool:
        """Linux shrinks the break only if some VMA meets [PAGE_ALIGN(new), PAGE_ALIGN(old))
        (brkvma = vma_find(&vmi, oldbrk); `goto out` otherwise, returning the old break)."""
        old_end = (self.brk + PAGE - 1) // PAGE
        new_end = (new_brk + PAGE - 1) // PAGE
        return any(v in self.pages for v in range(new_end, old_end))


class RefMachine:
    def __init__(self):
        self.procs: dict[int, RefProcess] = {}
        self._oid = 0

    def new_object(self, npages: int) -> SharedObject:
        self._oid += 1
        return SharedObject(self._oid, npages)

    def spawn(self, pid: int, brk: int) -> RefProcess:
        p = RefProcess(pid, brk, brk)
        self.procs[pid] = p
        return p

    def fork(self, parent: int, child: int) -> RefProcess:
        """dup_mmap(): DONTFORK pages vanish, WIPEONFORK pages read zero, private pages are
        copied (contents), shared pages stay shared; nothing is locked in the child and
        MCL_FUTURE is not inherited."""
        pp = self.procs[parent]
        c = RefProcess(child, pp.start_brk, pp.brk)
        for v, pg in pp.pages.items():
            if pg.dontfork:
                continue
            data = None if (pg.wipeonfork and not pg.shared) else pg.data
            c.pages[v] = replace(pg, data=data, locked=False)
        self.procs[child] = c
        return c

    def exit(self, pid: int) -> None:
        self.procs.pop(pid, None)
