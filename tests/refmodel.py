"""A plain reference model of what every page *contains* and who may touch it.

tests/test_stateful*.py drive vmlab and this model side by side and compare them. This model
knows nothing about VMAs, page tables, frames, rmap, merging, faults, reclaim or accounting;
it keeps, per simulated process, a dictionary from virtual page number to a `Page`, and, for
the machine, the objects pages can be backed by (`RefObject`): the shmem object of a shared
anonymous mmap (mm/shmem.c:shmem_zero_setup), tmpfs and disk files, and SysV segments.

Contents (POSIX/Linux semantics, no timing):

  * a private anonymous page owns its bytes (``None`` = all zero); fork copies it (the
    copy-on-write the kernel does lazily is, for contents, a copy);
  * a shared page names an object and a page index in it: every process, address and pread
    that reaches the same (object, index) sees the same bytes;
  * a private page of a file (MAP_PRIVATE over a file) reads the file — whatever the file
    holds *now*, pwrite included — until the page is written; the write makes a private copy
    (``data``; `UNCOPIED` until then) (mm/memory.c:do_cow_fault / wp_page_copy). Populating a
    private writable mapping (MAP_POPULATE, mlock, mlockall, MADV_POPULATE_WRITE, mprotect
    making a locked mapping writable, mremap growing a locked one) write-faults it, which
    copies the page at that moment (mm/gup.c:populate_vma_page_range uses FOLL_WRITE when
    the VMA is VM_WRITE and not VM_SHARED);
  * an object page at or past the object's end (i_size rounded up to pages) raises SIGBUS
    (mm/filemap.c:filemap_fault, mm/shmem.c:shmem_fault); truncation drops the object's pages
    past the new end, zeroes the rest of the last page (mm/truncate.c:truncate_inode_partial_folio)
    and throws away private copies of the dropped pages too (truncate_pagecache calls
    unmap_mapping_range with even_cows=1); MADV_REMOVE punches a hole in the object but keeps
    private copies (mm/shmem.c:shmem_fallocate passes even_cows=0);
  * unlink removes the name; the object lives on while open or mapped ("(deleted)" in maps);
    a SysV segment lives until IPC_RMID and its last detach.

Where Linux leaves the outcome open, a content is an `Alt`: a set of candidates. A page that
MADV_FREE made lazy-free may be discarded by reclaim (or MADV_PAGEOUT) until it is written
again, so it reads either its old bytes or zeros (mm/vmscan.c, try_to_unmap_one on a clean
lazyfree folio); a store by a process the OOM killer ended half way through may or may not
have reached a shared page. A read that tells the candidates apart settles them.

Per page it also keeps the VMA flags that change what later calls do to contents: the
protection, VM_MAYWRITE (a MAP_SHARED mapping of a file opened read-only has none, so
mprotect(PROT_WRITE) fails with EACCES, mm/mprotect.c), VM_LOCKED and VM_LOCKONFAULT,
VM_DONTCOPY and VM_WIPEONFORK. Access rules are x86's (arch/x86/mm/fault.c:access_error):
a write needs PROT_WRITE, a read needs any of PROT_READ/WRITE/EXEC, and a PROT_EXEC-only
mapping carries the execute-only protection key, so a read gives SEGV_PKUERR
(arch/x86/mm/pkeys.c) and gup cannot populate it (arch_vma_access_permitted).

The system-call methods apply a call's effect *after the caller knows whether it succeeded*,
except where they return Linux's expected errno for the caller to compare. For the calls that
Linux lets fail after changing part of the range (docs/notes/syscalls.md §4 mprotect, §6
madvise, §7 mlock/munlock) the same method serves both outcomes: it applies what Linux applies
before it stops and returns a `Walk` saying how far it got and why it stopped.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field, replace

PAGE = 4096
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
ZERO_PAGE = bytes(PAGE)

SEGV_MAPERR, SEGV_ACCERR, SEGV_PKUERR = 1, 2, 4

O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR = 3, 0, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0o100, 0o200, 0o1000, 0o2000
IPC_PRIVATE = 0


def prot_str(prot: int) -> str:
    return "".join(c if prot & b else "-" for c, b in (("r", PROT_READ), ("w", PROT_WRITE),
                                                       ("x", PROT_EXEC)))


# --- contents ------------------------------------------------------------------------------------

class _Uncopied:
    """The `data` of a private file page that has not been written: it reads the file."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCOPIED"


UNCOPIED = _Uncopied()


class Alt:
    """A content Linux leaves open: one of ``cands`` (bytes, or None for zeros).

    ``lazy``: a lazy-free page not written since MADV_FREE (cands = old bytes and zeros). It
    can still be discarded, so reading the old bytes does not settle it; reading zeros does."""

    __slots__ = ("cands", "lazy")

    def __init__(self, cands: tuple, lazy: bool = False):
        self.cands = cands
        self.lazy = lazy

    def __repr__(self) -> str:
        return f"Alt({len(self.cands)} candidates{', lazy' if self.lazy else ''})"


def _norm(b):
    return None if b is None or b == ZERO_PAGE else b


def make_content(cands, lazy: bool = False):
    """A content from candidates: plain bytes/None if they agree, else an Alt."""
    uniq: list = []
    for c in cands:
        c = _norm(c)
        if c not in uniq:
            uniq.append(c)
    if len(uniq) == 1:
        return uniq[0]
    return Alt(tuple(uniq), lazy and None in uniq)


def candidates(c) -> tuple:
    return c.cands if isinstance(c, Alt) else (c,)


def full(c) -> bytes:
    """The bytes of one candidate."""
    return ZERO_PAGE if c is None else c


def store(c, off: int, chunk: bytes):
    """Store ``chunk`` at ``off`` into a content; a store ends lazy-freeness."""
    out = []
    for x in candidates(c):
        if off == 0 and len(chunk) == PAGE:
            out.append(bytes(chunk))
        else:
            buf = bytearray(full(x))
            buf[off:off + len(chunk)] = chunk
            out.append(bytes(buf))
    return make_content(out)


def settle(c, off: int, got: bytes):
    """(new content, ok): keep the candidates whose bytes at ``off`` read ``got``."""
    n = len(got)
    match = [x for x in candidates(c) if full(x)[off:off + n] == got]
    if not match:
        return c, False
    if isinstance(c, Alt) and c.lazy:
        if match == [None]:
            return None, True          # discarded: a fresh zero page from now on
        return make_content(match + [None], lazy=True), True
    return make_content(match), True


def definite(c) -> bool:
    return not isinstance(c, Alt)


# --- objects -------------------------------------------------------------------------------------

class RefObject:
    """What pages can be backed by: ``kind`` is 'shmem' (a shared anonymous mapping's object),
    'tmpfs' or 'disk' (a file) or 'sysv' (a SysV segment). ``size`` is in bytes (i_size);
    ``pages`` is sparse (missing = zeros)."""

    def __init__(self, oid: int, kind: str, size: int, name: str = "", ino: int | None = None):
        self.oid = oid
        self.kind = kind
        self.size = size
        self.pages: dict[int, object] = {}
        self.name = name
        self.ino = ino
        self.unlinked = kind in ("shmem", "sysv")
        self.tainted = False           # a killed writer may have changed its size: unchecked

    def __repr__(self) -> str:
        return f"{self.kind}#{self.oid}[{self.size}B]"

    @property
    def npages(self) -> int:
        return (self.size + PAGE - 1) // PAGE

    @property
    def is_file(self) -> bool:
        return self.kind in ("tmpfs", "disk")

    def maps_name(self) -> str:
        if self.kind == "shmem":
            return "/dev/zero (deleted)"
        return self.name + (" (deleted)" if self.unlinked else "")

    def get(self, idx: int):
        return self.pages.get(idx)

    def put(self, idx: int, c) -> None:
        if c is None:
            self.pages.pop(idx, None)
        else:
            self.pages[idx] = c

    def tail_forbidden(self, idx: int) -> int:
        """For a file's last, partial page: the offset from which a store through a shared
        mapping would land past EOF (what Linux then shows after the file grows depends on
        the filesystem and on writeback timing, so the test does not go there). PAGE if none."""
        if self.is_file and self.size % PAGE and idx == self.size // PAGE:
            return self.size % PAGE
        return PAGE

    # file I/O -------------------------------------------------------------------------------
    def check_pread(self, off: int, count: int, got: bytes) -> str | None:
        """Compare a pread's result (fs/read_write.c: stops at i_size) and settle."""
        end = max(off, min(self.size, off + count))
        if self.tainted:
            return None
        if len(got) != end - off:
            return f"pread({off:#x}, {count}) returned {len(got)} bytes, expected {end - off} (size {self.size})"
        pos = off
        while pos < end:
            i, o = divmod(pos, PAGE)
            n = min(end - pos, PAGE - o)
            c, ok = settle(self.get(i), o, got[pos - off:pos - off + n])
            if not ok:
                want = full(candidates(self.get(i))[0])[o:o + n]
                j = next(k for k in range(n) if want[k] != got[pos - off + k])
                return (f"pread: file byte {pos + j:#x} is {got[pos - off + j]:#04x} in the model, "
                        f"{want[j]:#04x} in the reference")
            self.put(i, c)
            pos += n
        return None

    def pwrite(self, off: int, data: bytes, maybe: bool = False) -> None:
        """Write ``data`` at ``off``; with ``maybe`` (the writer was killed half way) each
        page may or may not have been written."""
        pos, end = off, off + len(data)
        while pos < end:
            i, o = divmod(pos, PAGE)
            n = min(end - pos, PAGE - o)
            old = self.get(i)
            new = store(old, o, data[pos - off:pos - off + n])
            self.put(i, make_content(candidates(old) + candidates(new)) if maybe else new)
            pos += n
        if end > self.size:
            if maybe:
                self.tainted = True
            self.size = end


@dataclass
class RefFD:
    """An open file description (shared by fork): the object and the access mode."""
    obj: RefObject
    flags: int
    path: str

    @property
    def readable(self) -> bool:
        return self.flags & O_ACCMODE in (O_RDONLY, O_RDWR)

    @property
    def writable(self) -> bool:
        return self.flags & O_ACCMODE in (O_WRONLY, O_RDWR)


@dataclass
class RefSeg:
    """A SysV segment (ipc/shm.c): id, key, size in bytes, its object; IPC_RMID, SHM_LOCK."""
    id: int
    key: int
    size: int
    obj: RefObject
    rmid: bool = False
    locked: bool = False


# --- pages ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Page:
    prot: int
    obj: RefObject | None = None      # backing object (None: private anonymous) ...
    idx: int = 0                      # ... and the page's index in it
    data: object = None               # private: contents (None = zero; UNCOPIED: the file's)
    shared: bool = False              # MAP_SHARED (maps 's'); stores reach the object
    maywrite: bool = True             # VM_MAYWRITE
    locked: bool = False              # VM_LOCKED
    onfault: bool = False             # VM_LOCKONFAULT
    dontfork: bool = False            # VM_DONTCOPY
    wipeonfork: bool = False          # VM_WIPEONFORK

    def content(self):
        if self.obj is not None and (self.shared or self.data is UNCOPIED):
            return self.obj.get(self.idx)
        return self.data

    def fresh(self) -> "Page":
        """The page after its PTE was zapped: private data gone (zero, or the file again)."""
        if self.shared:
            return self
        return replace(self, data=UNCOPIED if self.obj is not None else None)

    def beyond_eof(self) -> bool:
        return self.obj is not None and self.idx >= self.obj.npages

    def maps_perms(self) -> str:
        return prot_str(self.prot) + ("s" if self.shared else "p")

    @property
    def populate_fails(self) -> bool:
        """gup cannot fault this page in: PROT_NONE (no FOLL_FORCE), the execute-only pkey
        (arch_vma_access_permitted), or past the object's end (SIGBUS -> EFAULT)."""
        return self.prot == 0 or self.prot == PROT_EXEC or self.beyond_eof()

    @property
    def populate_writes(self) -> bool:
        """populate_vma_page_range(): FOLL_WRITE when VM_WRITE and not VM_SHARED. A MAP_SHARED
        mapping of a read-only file has no VM_SHARED, but no VM_WRITE either."""
        return bool(self.prot & PROT_WRITE) and not self.shared


def new_content(pg: Page):
    return UNCOPIED if pg.obj is not None and not pg.shared else None


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
    """How far a partial-effect call got: pages it applied to, whether it met a hole or a
    VMA that refused, and the errno Linux returns (0: success)."""
    applied: int = 0
    hole: bool = False
    refused: bool = False
    errno: int = 0


@dataclass
class RefProcess:
    pid: int
    start_brk: int
    brk: int
    pages: dict[int, Page] = field(default_factory=dict)
    def_locked: bool = False          # mm->def_flags & VM_LOCKED (mlockall MCL_FUTURE)
    def_onfault: bool = False         # mm->def_flags & VM_LOCKONFAULT (MCL_FUTURE|MCL_ONFAULT)
    fds: dict[int, RefFD] = field(default_factory=dict)
    ref: "RefMachine | None" = None

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

    def _chunks(self, addr: int, length: int):
        cur, end = addr, addr + length
        while cur < end:
            vpn, off = divmod(cur, PAGE)
            n = min(end - cur, PAGE - off)
            yield vpn, off, n, cur - addr
            cur += n

    def expect(self, addr: int, length: int) -> bytes:
        """One candidate of what [addr, addr+length) reads (for messages)."""
        return b"".join(full(candidates(self.pages[v].content())[0])[o:o + n]
                        for v, o, n, _ in self._chunks(addr, length))

    def check_read(self, addr: int, got: bytes) -> str | None:
        """Compare what a read returned with the reference and settle open contents; a
        message naming the first differing byte, or None."""
        for vpn, off, n, pos in self._chunks(addr, len(got)):
            pg = self.pages[vpn]
            if pg.obj is not None and pg.obj.tainted and (pg.shared or pg.data is UNCOPIED):
                continue
            c0 = pg.content()
            if self.ref is not None:
                self.ref.tags.add("read: " + ("lazy-free page" if isinstance(c0, Alt) and c0.lazy else
                                             "open content" if isinstance(c0, Alt) else
                                             "private anonymous page" if pg.obj is None else
                                             f"shared {pg.obj.kind} page" if pg.shared else
                                             f"private {pg.obj.kind} page, " +
                                             ("not copied" if pg.data is UNCOPIED else "copied")))
            c, ok = settle(c0, off, got[pos:pos + n])
            if not ok:
                want = full(candidates(pg.content())[0])[off:off + n]
                j = next(k for k in range(n) if want[k] != got[pos + k])
                alt = len(candidates(pg.content()))
                return (f"byte {addr + pos + j:#x} is {got[pos + j]:#04x} in the model, "
                        f"{want[j]:#04x} in the reference"
                        + (f" (one of {alt} possible contents)" if alt > 1 else "")
                        + (f" [page {pg.idx} of {pg.obj!r}, {'shared' if pg.shared else 'private'}"
                           f"{', not copied' if pg.data is UNCOPIED else ''}]" if pg.obj else ""))
            self._set_content(vpn, c)
        return None

    def _set_content(self, vpn: int, c) -> None:
        pg = self.pages[vpn]
        if pg.obj is not None and (pg.shared or pg.data is UNCOPIED):
            pg.obj.put(pg.idx, c)
        else:
            self.pages[vpn] = replace(pg, data=c)

    # --- memory accesses --------------------------------------------------------------------------
    def _store(self, vpn: int, off: int, chunk: bytes, maybe: bool = False) -> None:
        pg = self.pages[vpn]
        old = pg.content()
        new = store(old, off, chunk)
        if maybe:
            new = make_content(candidates(old) + candidates(new))
        if pg.shared:
            pg.obj.put(pg.idx, new)
        else:
            self.pages[vpn] = replace(pg, data=new)    # a file page: the COW copy

    def write(self, addr: int, data: bytes, maybe: bool = False) -> None:
        """Apply a store. ``maybe``: the storing process was killed part way, so each shared
        page may or may not have been written (its private pages died with it)."""
        for vpn, off, n, pos in self._chunks(addr, len(data)):
            if maybe and not self.pages[vpn].shared:
                continue
            self._store(vpn, off, data[pos:pos + n], maybe)

    def fill(self, addr: int, length: int, byte: int, maybe: bool = False) -> None:
        self.write(addr, bytes([byte]) * length, maybe)

    def touch_write(self, addr: int, length: int) -> None:
        """A store of the byte already there: ends lazy-freeness, copies a private file page."""
        for vpn, off, n, pos in self._chunks(addr, length):
            pg = self.pages[vpn]
            self._write_fault(vpn, pg)

    def _write_fault(self, vpn: int, pg: Page) -> None:
        """A write fault with no store (touch, FOLL_WRITE populate): a private file page gets
        its copy now; a lazy-free page is dirty again."""
        if pg.shared:
            return
        c = pg.content()
        if isinstance(c, Alt) and c.lazy:
            c = Alt(c.cands, False)
        self.pages[vpn] = replace(pg, data=c)

    # --- populate ---------------------------------------------------------------------------------
    def populate(self, vpns, ignore_errors: bool, only_locked: bool = False) -> int:
        """__mm_populate() over these pages, in address order: skip VM_LOCKONFAULT pages; a
        page gup cannot fault in stops its VMA, and (unless errors are ignored, as mlockall
        and MAP_POPULATE do) the whole call: returns the errno mlock maps that to (ENOMEM),
        or 0. Private writable pages are write-faulted (a file page is copied now). Since
        VMA attributes are uniform and a VMA's pages past EOF are all at its end, this
        page-level walk decides what the VMA-level one decides."""
        err = 0
        for v in sorted(vpns):
            pg = self.pages.get(v)
            if pg is None or pg.onfault or (only_locked and not pg.locked):
                continue
            if pg.populate_fails:
                if not ignore_errors:
                    return E.ENOMEM
                continue
            if pg.populate_writes:
                self._write_fault(v, pg)
        return err

    # --- system calls (applied after the model said they succeeded) --------------------------------
    def mmap(self, ref: "RefMachine", vpn: int, npages: int, prot: int, shared: bool,
             locked: bool, *, obj: RefObject | None = None, pgoff: int = 0,
             maywrite: bool = True, populate: bool = False) -> None:
        """A new mapping replaces whatever was there (MAP_FIXED). Anonymous: reads zero;
        shared anonymous gets a new shmem object; a file mapping reads the file. MAP_LOCKED
        (or mlockall's MCL_FUTURE) and MAP_POPULATE populate it, errors ignored."""
        if obj is None and shared:
            obj = ref.new_object("shmem", npages * PAGE)
        locked = locked or self.def_locked
        onfault = locked and self.def_onfault
        for i in range(npages):
            pg = Page(prot, obj, pgoff + i if obj is not None else 0, None, shared, maywrite,
                      locked, onfault)
            self.pages[vpn + i] = replace(pg, data=new_content(pg))
        if (locked and not onfault) or populate:
            self.populate(range(vpn, vpn + npages), ignore_errors=True)

    def munmap(self, vpn: int, npages: int) -> None:
        for i in range(npages):
            self.pages.pop(vpn + i, None)

    def _walk_prefix(self, vpn: int, npages: int, stop=None) -> tuple[list[int], Walk]:
        """mprotect/mlock/munlock: VMA by VMA from the start; the first hole stops the call
        with ENOMEM after the pages before it changed (mm/mprotect.c:do_mprotect_pkey,
        mm/mlock.c:apply_vma_lock_flags); ``stop(page)`` may give another errno."""
        w = Walk()
        done = []
        for i in range(npages):
            pg = self.pages.get(vpn + i)
            if pg is None:
                w.hole, w.errno = True, E.ENOMEM
                break
            if stop is not None and stop(pg):
                w.refused, w.errno = True, stop(pg)
                break
            done.append(vpn + i)
        w.applied = len(done)
        return done, w

    def mprotect(self, vpn: int, npages: int, prot: int) -> Walk:
        """Per VMA: a hole -> ENOMEM; PROT_WRITE where VM_MAYWRITE is missing -> EACCES
        (both after the VMAs before were changed). A locked, private, not yet writable VMA
        that becomes writable is populated, which copies its file pages
        (mm/mprotect.c:mprotect_fixup -> populate_vma_page_range)."""
        done, w = self._walk_prefix(vpn, npages,
                                    lambda pg: E.EACCES if prot & PROT_WRITE and not pg.maywrite else 0)
        grow = [v for v in done if self.pages[v].locked and not self.pages[v].prot & PROT_WRITE
                and not self.pages[v].shared]
        for v in done:
            self.pages[v] = replace(self.pages[v], prot=prot)
        if prot & PROT_WRITE:
            self.populate(grow, ignore_errors=True)
        return w

    def mlock(self, vpn: int, npages: int, lock: bool, onfault: bool = False) -> Walk:
        """mlock/mlock2/munlock: lock flags up to the first hole (ENOMEM), then (mlock,
        mlock2 without ONFAULT) populate the range; a page that cannot be populated makes
        it ENOMEM after everything was locked (mm/mlock.c:do_mlock, __mlock_posix_error_return)."""
        done, w = self._walk_prefix(vpn, npages)
        for v in done:
            self.pages[v] = replace(self.pages[v], locked=lock, onfault=lock and onfault)
        if lock and not onfault and not w.hole:
            w.errno = self.populate(range(vpn, vpn + npages), ignore_errors=False)
        return w

    def mlockall(self, current: bool, future: bool, onfault: bool) -> None:
        """mm/mlock.c:apply_mlockall_flags: def_flags follow MCL_FUTURE (and MCL_ONFAULT);
        VMAs change only with MCL_CURRENT, which then populates everything, errors ignored."""
        self.def_locked = future
        self.def_onfault = future and onfault
        if current:
            for v, pg in self.pages.items():
                self.pages[v] = replace(pg, locked=True, onfault=onfault)
            self.populate(list(self.pages), ignore_errors=True)

    def munlockall(self) -> None:
        self.def_locked = self.def_onfault = False
        for v, pg in self.pages.items():
            self.pages[v] = replace(pg, locked=False, onfault=False)

    # madvise: which VMAs refuse which advice (mm/madvise.c:madvise_vma_behavior and friends)
    @staticmethod
    def madvise_refuses(advice: str, pg: Page) -> int:
        """The errno a VMA like this page's gives the advice, or 0."""
        if advice in ("DONTNEED", "COLD", "PAGEOUT"):
            return E.EINVAL if pg.locked else 0
        if advice == "FREE":                          # anonymous private only
            return E.EINVAL if pg.locked or pg.obj is not None else 0
        if advice == "WIPEONFORK":                    # no file, no VM_SHARED
            return E.EINVAL if pg.obj is not None else 0
        if advice == "REMOVE":                        # madvise_remove()
            if pg.locked or pg.obj is None:
                return E.EINVAL
            return 0 if pg.shared and pg.maywrite else E.EACCES   # vma_is_shared_maywrite
        return 0

    def madvise(self, vpn: int, npages: int, advice: str, lazy_discard: bool = False) -> Walk:
        """madvise_walk_vmas(): a hole records ENOMEM and the walk goes on; an advice's own
        error stops the walk at once, after the earlier VMAs were advised.

        ``lazy_discard``: the machine can reclaim (swap, memory pressure or MADV_PAGEOUT),
        so a MADV_FREE'd page may later read zeros."""
        w = Walk()
        for i in range(npages):
            v = vpn + i
            pg = self.pages.get(v)
            if pg is None:
                w.hole = True
                w.errno = w.errno or E.ENOMEM
                continue
            bad = self.madvise_refuses(advice, pg)
            if bad:
                w.refused, w.errno = True, bad
                break
            w.applied += 1
            if advice in ("DONTNEED", "DONTNEED_LOCKED"):
                self.pages[v] = pg.fresh()           # private: zapped, reads zero / the file
            elif advice == "FREE":
                if lazy_discard and pg.data is not None:
                    self.pages[v] = replace(pg, data=make_content(candidates(pg.data) + (None,), lazy=True))
            elif advice == "REMOVE":
                pg.obj.put(pg.idx, None)            # hole punched; private copies stay
            elif advice == "DONTFORK":
                self.pages[v] = replace(pg, dontfork=True)
            elif advice == "DOFORK":
                self.pages[v] = replace(pg, dontfork=False)
            elif advice == "WIPEONFORK":
                self.pages[v] = replace(pg, wipeonfork=True)
            elif advice == "KEEPONFORK":
                self.pages[v] = replace(pg, wipeonfork=False)
            # WILLNEED, COLD, PAGEOUT, NORMAL, RANDOM, SEQUENTIAL, DONTDUMP, DODUMP: contents
            # and access unchanged (PAGEOUT's discarding of lazy-free pages is in FREE's Alt).
        return w

    def madvise_populate(self, vpn: int, npages: int, write: bool) -> Walk:
        """MADV_POPULATE_READ/WRITE (mm/madvise.c:madvise_populate, faultin_page_range): page
        by page; no VMA -> ENOMEM; missing permission (no FOLL_FORCE here: READ needs
        PROT_READ, WRITE needs PROT_WRITE) -> EINVAL; SIGBUS past the object's end -> EFAULT. The pages
        before the failure were faulted in (a write fault copies a private file page)."""
        w = Walk()
        for i in range(npages):
            v = vpn + i
            pg = self.pages.get(v)
            if pg is None:
                w.hole, w.errno = True, E.ENOMEM
                break
            if not pg.prot & (PROT_WRITE if write else PROT_READ):
                w.refused, w.errno = True, E.EINVAL
                break
            if pg.beyond_eof():
                w.refused, w.errno = True, E.EFAULT
                break
            if write:
                self._write_fault(v, pg)
            w.applied += 1
        return w

    def msync_errno(self, vpn: int, npages: int, flags: int) -> int:
        """mm/msync.c: MS_ASYNC alone stops at the first hole (ENOMEM); MS_INVALIDATE on a
        VM_LOCKED VMA -> EBUSY; any hole otherwise makes the result ENOMEM at the end."""
        MS_ASYNC, MS_INVALIDATE = 1, 2
        hole = False
        for i in range(npages):
            pg = self.pages.get(vpn + i)
            if pg is None:
                if flags == MS_ASYNC:
                    return E.ENOMEM
                hole = True
                continue
            if flags & MS_INVALIDATE and pg.locked:
                return E.EBUSY
        return E.ENOMEM if hole else 0

    def mremap(self, old: int, old_n: int, new: int, new_n: int, *, fixed: bool,
               dontunmap: bool) -> list[str]:
        """Apply a successful mremap (mm/mremap.c). Pages keep their contents, flags and, for
        shared mappings, their object index; a grown part takes the flags of the page at
        ``old`` and continues its object index (past the object's end: SIGBUS). DONTUNMAP
        leaves the source mapped but empty (private: zero; shared: the same object pages) and
        unlocked. FIXED unmaps the target first; a same-size FIXED move (6.17 remap_move)
        moves every VMA of the old range on its own, so the holes of the old range stay holes
        and whatever is mapped at the target under such a hole stays mapped. Returns
        complaints about a destination that overlapped live pages."""
        problems = []
        src = [self.pages.get(old + i) for i in range(old_n)]
        attr = self.pages.get(old)
        if attr is None:
            problems.append(f"mremap succeeded but its old address {old * PAGE:#x} was not mapped")
            return problems
        if dontunmap:
            for i, pg in enumerate(src):
                if pg is not None:
                    self.pages[old + i] = replace(pg.fresh(), locked=False, onfault=False)
        else:
            for i in range(old_n):
                self.pages.pop(old + i, None)
        if fixed:
            per_vma = old_n == new_n
            for i in range(new_n):
                if not per_vma or src[i] is not None:
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
                idx = attr.idx + i if attr.obj is not None else 0
                self.pages[new + i] = replace(attr, idx=idx, data=new_content(attr))
        return problems

    def brk_apply(self, new_brk: int) -> None:
        """A successful brk: grow maps fresh zero pages [PAGE_ALIGN(old), PAGE_ALIGN(new)),
        shrink unmaps [PAGE_ALIGN(new), PAGE_ALIGN(old)) (mm/mmap.c:SYSCALL_DEFINE1(brk))."""
        old_end = (self.brk + PAGE - 1) // PAGE
        new_end = (new_brk + PAGE - 1) // PAGE
        if new_end > old_end:
            for v in range(old_end, new_end):
                self.pages[v] = Page(PROT_READ | PROT_WRITE, locked=self.def_locked,
                                     onfault=self.def_locked and self.def_onfault)
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

    # --- SysV shm ---------------------------------------------------------------------------------
    def shmdt_plan(self, addr_vpn: int, vmas: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
        """ipc/shm.c:ksys_shmdt: from the first VMA ending above addr, find the first SysV
        VMA whose start is addr + its pgoff (page-wise: a page at addr + idx) and unmap it;
        then unmap, while VMAs end within addr + PAGE_ALIGN(segment size), every VMA of the
        same segment that also starts at addr + its pgoff. ``vmas`` are the VMA bounds (the
        model's, checked page by page against this reference) for that second loop's stop.
        Returns the (first vpn, end vpn) ranges to unmap, or None (EINVAL: no segment)."""
        def matches(v, obj=None):
            pg = self.pages.get(v)
            return (pg is not None and pg.obj is not None and pg.obj.kind == "sysv"
                    and v - addr_vpn == pg.idx and (obj is None or pg.obj is obj))
        first = next((v for v in sorted(self.pages) if v >= addr_vpn and matches(v)), None)
        if first is None:
            return None
        obj = self.pages[first].obj
        out = [next((lo, hi) for lo, hi in vmas if lo <= first < hi)]
        limit = addr_vpn + obj.npages
        for lo, hi in sorted(vmas):
            if lo >= out[0][1]:
                if hi > limit:
                    break
                if matches(lo, obj):
                    out.append((lo, hi))
        return out


class RefMachine:
    def __init__(self, lazy_discard: bool = False):
        self.procs: dict[int, RefProcess] = {}
        self._oid = 0
        self.files: dict[str, RefObject] = {}     # the namespace: path -> object
        self.segs: dict[int, RefSeg] = {}
        self.keys: dict[int, int] = {}
        self.lazy_discard = lazy_discard
        self.tags: set[str] = set()               # what the reads compared (for statistics)

    def new_object(self, kind: str, size: int, name: str = "") -> RefObject:
        self._oid += 1
        return RefObject(self._oid, kind, size, name)

    def spawn(self, pid: int, brk: int) -> RefProcess:
        p = RefProcess(pid, brk, brk, ref=self)
        self.procs[pid] = p
        return p

    def fork(self, parent: int, child: int) -> RefProcess:
        """dup_mmap(): DONTFORK pages vanish, WIPEONFORK pages read zero, private pages are
        copied (contents; a private file page not yet written keeps reading the file), shared
        pages stay shared; nothing is locked in the child and MCL_FUTURE is not inherited.
        The child shares the parent's open files."""
        pp = self.procs[parent]
        c = RefProcess(child, pp.start_brk, pp.brk, ref=self, fds=dict(pp.fds))
        for v, pg in pp.pages.items():
            if pg.dontfork:
                continue
            data = None if (pg.wipeonfork and pg.obj is None) else pg.data
            c.pages[v] = replace(pg, data=data, locked=False, onfault=False)
        self.procs[child] = c
        return c

    def exit(self, pid: int) -> None:
        self.procs.pop(pid, None)

    # --- files ------------------------------------------------------------------------------------
    def open(self, pid: int, path: str, flags: int) -> tuple[int, RefObject | None, bool]:
        """fs/namei.c:do_open semantics: (errno, object, created). ENOENT without O_CREAT,
        EEXIST with O_CREAT|O_EXCL. Access mode 3 opens the file for neither reading nor
        writing (OPEN_FMODE), as the host does."""
        obj = self.files.get(path)
        if obj is None:
            if not flags & O_CREAT:
                return E.ENOENT, None, False
            kind = "tmpfs" if path.startswith(("/tmp/", "/dev/shm/")) else "disk"
            obj = self.new_object(kind, 0, path)
            obj.unlinked = False
            return 0, obj, True
        if flags & O_CREAT and flags & O_EXCL:
            return E.EEXIST, None, False
        return 0, obj, False

    def open_apply(self, pid: int, fd: int, path: str, flags: int, obj: RefObject, created: bool) -> None:
        """A successful open: the fd, and O_TRUNC truncating the file (build_open_flags asks
        for MAY_WRITE and do_open truncates whatever the access mode)."""
        if created:
            self.files[path] = obj
        self.procs[pid].fds[fd] = RefFD(obj, flags, path)
        if flags & O_TRUNC and obj.size:
            self.truncate(obj, 0)

    def next_fd(self, pid: int) -> int:
        fd = 3
        while fd in self.procs[pid].fds:
            fd += 1
        return fd

    def unlink(self, path: str) -> int:
        obj = self.files.pop(path, None)
        if obj is None:
            return E.ENOENT
        obj.unlinked = True
        return 0

    def truncate(self, obj: RefObject, length: int) -> None:
        """mm/truncate.c:truncate_setsize + truncate_pagecache: shrinking drops the pages past
        the new end (private copies of them in every process too) and zeroes the rest of the
        new last page; growing adds zeros."""
        old = obj.size
        obj.size = length
        if length >= old:
            return
        first = (length + PAGE - 1) // PAGE
        for i in [i for i in obj.pages if i >= first]:
            del obj.pages[i]
        if length % PAGE:
            i, o = divmod(length, PAGE)
            obj.put(i, store(obj.get(i), o, bytes(PAGE - o)))
        for rp in self.procs.values():
            for v, pg in rp.pages.items():
                if pg.obj is obj and not pg.shared and pg.idx >= first:
                    rp.pages[v] = pg.fresh()

    # --- SysV shm ---------------------------------------------------------------------------------
    def attached(self, obj: RefObject) -> bool:
        return any(pg.obj is obj for rp in self.procs.values() for pg in rp.pages.values())

    def reap_segments(self) -> None:
        """shm_destroy() of removed segments that nothing maps any more."""
        for sid, seg in list(self.segs.items()):
            if seg.rmid and not self.attached(seg.obj):
                del self.segs[sid]

    def shmget(self, key: int, size: int, flags: int) -> tuple[int, RefSeg | None]:
        """ipc/util.c:ipcget: (errno, existing segment or None to create)."""
        IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
        if key != IPC_PRIVATE and key in self.keys:
            seg = self.segs[self.keys[key]]
            if flags & IPC_CREAT and flags & IPC_EXCL:
                return E.EEXIST, None
            if size > seg.size:
                return E.EINVAL, None
            return 0, seg
        if key != IPC_PRIVATE and not flags & IPC_CREAT:
            return E.ENOENT, None
        if size < 1:
            return E.EINVAL, None
        return 0, None

    def shm_create(self, sid: int, key: int, size: int) -> RefSeg:
        obj = self.new_object("sysv", size, f"/SYSV{key & 0xFFFFFFFF:08x}")
        obj.ino = sid
        seg = RefSeg(sid, key, size, obj)
        self.segs[sid] = seg
        if key != IPC_PRIVATE:
            self.keys[key] = sid
        return seg

    def shm_rmid(self, seg: RefSeg) -> None:
        seg.rmid = True
        if self.keys.get(seg.key) == seg.id:
            del self.keys[seg.key]
        seg.key = IPC_PRIVATE
        self.reap_segments()
