"""Hypothesis stateful test, files profile: the anonymous-memory state machine of
tests/test_stateful.py plus files, file mappings and SysV shared memory (issue 3, item 5).

Added rules, over a pool of four paths — /tmp/a and /dev/shm/b on tmpfs, /data/c and /data/d
on the simulated disk (some created with contents before the first step):

  * open (O_RDONLY/O_WRONLY/O_RDWR, or access mode 3 — neither, as ioctl callers use it —
    with O_CREAT, O_EXCL, O_TRUNC, O_APPEND), close, pread,
    pwrite, ftruncate, fsync, unlink — errnos predicted (ENOENT, EEXIST, EBADF, EINVAL),
    fd numbers predicted (the lowest free from 3), fstat's size and link count checked after
    every change, pread's bytes compared;
  * mmap of a file, MAP_SHARED or MAP_PRIVATE, at an offset, possibly past EOF, with
    MAP_POPULATE/MAP_LOCKED — EBADF/EEXIST/EACCES predicted; private pages read the file
    until written (then hold their copy), shared stores reach the file, other mappings and
    pread; accesses past EOF raise SIGBUS; truncation throws away the pages past the new end,
    private copies included;
  * msync (MS_ASYNC, MS_SYNC, MS_INVALIDATE, bad combinations, unaligned) — errno predicted,
    contents unchanged; MADV_REMOVE (hole punch) and MADV_PAGEOUT join the advice;
  * shmget (three keys and IPC_PRIVATE, IPC_CREAT/IPC_EXCL), shmat (anywhere, at an address,
    SHM_REMAP, SHM_RDONLY, SHM_EXEC), shmdt (at an attach address or anywhere), shmctl
    (IPC_STAT checked against the reference, IPC_RMID, SHM_LOCK, SHM_UNLOCK); segments are
    inherited by fork and destroyed after IPC_RMID and the last detach.

The machine has 32 MiB of RAM and 8 MiB of swap: no memory pressure, but MADV_PAGEOUT really
swaps anonymous and shmem pages out (and discards MADV_FREE'd ones), so the reference treats a
lazy-free page as "old bytes or zeros" until it is written.

Default run: VMLAB_STATEFUL_EXAMPLES (60) examples of 40 steps. The long campaign,
`test_stateful_files_long_campaign` (1500 examples of 80 steps), is marked `slow`; the budget
and the command that runs every campaign are in tests/test_stateful.py's docstring.
"""

from __future__ import annotations

import errno
import os
import random

import pytest
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

import vmlab
from vmlab import (IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IPC_RMID, IPC_STAT, MAP_LOCKED,
                   MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MS_ASYNC, MS_INVALIDATE, MS_SYNC,
                   SHM_EXEC, SHM_LOCK, SHM_RDONLY, SHM_REMAP, SHM_UNLOCK)

from refmodel import (O_ACCMODE, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY,
                      PAGE, PROT_READ, PROT_WRITE, PROT_EXEC, RefObject)
from test_stateful import (ADVICE, RAM, SETTINGS, Span, VMStateMachine, _ename, ename,
                           long_campaign, procs, prot_val, prots, rarely, scaled, spans)

PATHS = ["/tmp/a", "/dev/shm/b", "/data/c", "/data/d"]
MAX_FILE_PAGES = 24               # pwrite/ftruncate stay below this size
MAX_FDS = 6
MAX_SEGS = 4
SHM_KEYS = [IPC_PRIVATE, 0x1234, 0x5678, 0x9abc]
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000
# access mode 3 (O_ACCMODE) is a legal open for neither reading nor writing (fs/open.c:
# build_open_flags asks for MAY_READ|MAY_WRITE; OPEN_FMODE gives neither FMODE_READ nor
# FMODE_WRITE): pread/pwrite then fail with EBADF, ftruncate with EINVAL, mmap with EACCES
ACCMODES = {"r": O_RDONLY, "w": O_WRONLY, "rw": O_RDWR, "none": O_ACCMODE}

fds = st.integers(0, 7)
PGOFFS = st.sampled_from([0, 0, 0, 1, 2, "half", "last", "eof", "eof+3"])
file_offsets = st.one_of(st.integers(0, MAX_FILE_PAGES * PAGE), st.integers(0, 8).map(lambda i: i * PAGE))
lengths = st.integers(0, 3 * PAGE)


def _blob(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


class FilesStateMachine(VMStateMachine):
    """The engine with files and SysV shm (tmpfs and disk files, 32 MiB RAM, 8 MiB swap)."""

    LAZY_DISCARD = True
    ADVICE_NAMES = list(ADVICE)
    MAX_FILE_PAGES = MAX_FILE_PAGES           # pwrite/ftruncate stay below this size
    MAX_SEG_PAGES = 12

    def new_machine(self, data):
        return vmlab.Machine(ram=RAM, swap="8M")

    def init_world(self, data) -> None:
        """Some files exist before the first step, with contents (not in the page cache)."""
        for path in PATHS:
            if not data.draw(st.sampled_from([True, True, True, False]), label=f"create {path}"):
                continue
            size = data.draw(st.integers(0, 12).map(lambda n: n * PAGE) | st.integers(1, 12 * PAGE),
                             label=f"size of {path}")
            blob = _blob(size, size)
            self.m.create_file(path, blob)
            kind = "tmpfs" if path.startswith(("/tmp/", "/dev/shm/")) else "disk"
            obj = self.ref.new_object(kind, size, path)
            obj.unlinked = False
            for i in range(0, size, PAGE):
                obj.put(i // PAGE, blob[i:i + PAGE] + bytes(PAGE - len(blob[i:i + PAGE])))
            self.ref.files[path] = obj
            note(f"create_file({path}, {size} bytes)")
        # the first process starts with a few files open and maybe a segment
        for path in data.draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True),
                              label="open"):
            self.open(0, path, data.draw(st.sampled_from(["rw", "rw", "r", "w"]), label="mode"),
                      True, False, False, False)
        if data.draw(st.sampled_from([True, True, True, False]), label="segment"):
            self.shmget(0, data.draw(st.sampled_from(SHM_KEYS), label="key"),
                        data.draw(st.integers(1, 8), label="pages"), False, True, False)

    # --- helpers -------------------------------------------------------------------------------
    def _fd(self, rp, i: int, want: str = "") -> int:
        """Mostly (i = 0..5) an open fd of the process that is open for ``want`` ('r', 'w' or
        ''), by index modulo; else (i = 6) any open fd; else (i = 7) one never open."""
        open_fds = sorted(rp.fds)
        good = [fd for fd in open_fds if (want != "r" or rp.fds[fd].readable)
                and (want != "w" or rp.fds[fd].writable)]
        if good and i < 6:
            return good[i % len(good)]
        if open_fds and i < 7:
            return open_fds[i % len(open_fds)]
        return 100 + i                        # never open

    def _fstat_check(self, p, rp, fd: int, text: str) -> None:
        """fstat agrees with the reference: size, link count, and the inode maps shows."""
        f = rp.fds[fd]
        st_ = p.fstat(fd)
        obj = f.obj
        if obj.ino is None:
            obj.ino = st_["st_ino"]
        assert st_["st_ino"] == obj.ino, f"{text}: fstat inode {st_['st_ino']}, earlier {obj.ino}"
        assert st_["st_nlink"] == (0 if obj.unlinked else 1), \
            f"{text}: st_nlink {st_['st_nlink']} for a file {'unlinked' if obj.unlinked else 'linked'}"
        if not obj.tainted:
            assert st_["st_size"] == obj.size, f"{text}: st_size {st_['st_size']}, reference {obj.size}"

    def _seg(self, i: int):
        """A live segment by index, or an id no segment has (EINVAL)."""
        self.ref.reap_segments()
        ids = sorted(self.ref.segs)
        if ids and i < MAX_SEGS:
            return ids[i % len(ids)], self.ref.segs[ids[i % len(ids)]]
        return 0x7fff0 + i, None

    # --- files -----------------------------------------------------------------------------------
    @rule(proc=procs, path=st.sampled_from(PATHS), mode=st.sampled_from(["r", "w", "rw", "rw", "rw", "none"]),
          creat=st.booleans(), excl=rarely, trunc=rarely, append=rarely)
    def open(self, proc, path, mode, creat, excl, trunc, append):
        p, rp = self._pick(proc)
        if len(rp.fds) >= MAX_FDS:
            return
        flags = ACCMODES[mode] | (O_CREAT if creat else 0) | (O_EXCL if excl else 0) \
            | (O_TRUNC if trunc else 0) | (O_APPEND if append else 0)
        text = f"open({path}, {oct(flags)})"
        want, obj, created = self.ref.open(p.pid, path, flags)
        st_, r = self._sys(p, text, lambda: p.open(path, flags))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            assert r == self.ref.next_fd(p.pid), f"{text} returned fd {r}, not the lowest free one"
            self.ref.open_apply(p.pid, r, path, flags, obj, created)
            self._fstat_check(p, rp, r, text)
            self._after(p.pid, keep_maps=True, keep_rss=not trunc, others_rss=not trunc)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, fd=fds)
    def close(self, proc, fd):
        p, rp = self._pick(proc)
        fd = self._fd(rp, fd)
        text = f"close({fd})"
        st_, r = self._sys(p, text, lambda: p.close(fd))
        if st_ == "ok":
            assert fd in rp.fds, f"{text} succeeded on a closed fd"
            del rp.fds[fd]
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, 0 if fd in rp.fds else errno.EBADF)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, fd=fds, off=file_offsets, count=lengths)
    def pread(self, proc, fd, off, count):
        p, rp = self._pick(proc)
        fd = self._fd(rp, fd, "r")
        f = rp.fds.get(fd)
        want = errno.EBADF if f is None or not f.readable else 0
        text = f"pread({fd}, {count}, {off:#x})"
        st_, r = self._sys(p, text, lambda: p.pread(fd, count, off))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            bad = f.obj.check_pread(off, count, r)
            assert bad is None, f"{text} of {f.path}: {bad}"
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, fd=fds, off=file_offsets, length=lengths, seed=st.integers(0, 255))
    def pwrite(self, proc, fd, off, length, seed):
        p, rp = self._pick(proc)
        fd = self._fd(rp, fd, "w")
        f = rp.fds.get(fd)
        want = errno.EBADF if f is None or not f.writable else 0
        at = f.obj.size if f is not None and f.flags & O_APPEND else off
        if at + length > self.MAX_FILE_PAGES * PAGE:
            return
        data = _blob(seed, length)
        text = f"pwrite({fd}, {length} bytes of seed {seed}, {off:#x})"
        st_, r = self._sys(p, text, lambda: p.pwrite(fd, data, off))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            assert r == length, f"{text} returned {r}"
            f.obj.pwrite(at, data)
            self._fstat_check(p, rp, fd, text)
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            if f is not None and not want:
                f.obj.pwrite(at, data, maybe=True)
            self._after(p.pid)

    @rule(proc=procs, fd=fds, percent=st.sampled_from([0, 0, 25, 50, 75, 90, 100, 110, 150, 300]),
          jitter=st.sampled_from([0, 0, 1, 100, PAGE - 1, PAGE, 3 * PAGE]))
    def ftruncate(self, proc, fd, percent, jitter):
        p, rp = self._pick(proc)
        fd = self._fd(rp, fd, "w")
        f = rp.fds.get(fd)
        size = f.obj.size if f is not None else 0
        length = min(self.MAX_FILE_PAGES * PAGE, max(0, size * percent // 100 + (jitter if percent >= 100 else -jitter)))
        want = errno.EBADF if f is None else errno.EINVAL if not f.writable else 0
        text = f"ftruncate({fd}, {length:#x})"
        st_, r = self._sys(p, text, lambda: p.ftruncate(fd, length))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            self.ref.truncate(f.obj, length)
            self._fstat_check(p, rp, fd, text)
            self._after(p.pid, keep_maps=True, others_rss=False)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid, others_rss=False)

    @rule(proc=procs, fd=fds)
    def fsync(self, proc, fd):
        p, rp = self._pick(proc)
        fd = self._fd(rp, fd)
        want = 0 if fd in rp.fds else errno.EBADF
        text = f"fsync({fd})"
        st_, r = self._sys(p, text, lambda: p.fsync(fd))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, path=st.sampled_from(PATHS))
    def unlink(self, proc, path):
        p, rp = self._pick(proc)
        text = f"unlink({path})"
        obj = self.ref.files.get(path)
        st_, r = self._sys(p, text, lambda: p.unlink(path))
        if st_ == "ok":
            assert obj is not None, f"{text} succeeded on a missing file"
            self.ref.unlink(path)
            self._after(p.pid, keep_rss=True, others_maps=False)
        elif st_ == "err":
            self._errno_is(text, r, 0 if obj is not None else errno.ENOENT)
            self._failed(p.pid)
        else:
            self._after(p.pid, others_maps=False)

    @precondition(lambda self: any(self._room(self.ref.procs[p.pid]) for p in self.procs))
    @rule(proc=procs, pages=st.integers(1, 32), prot=prots, shared=st.booleans(),
          place=st.sampled_from(["anywhere", "hint", "fixed", "noreplace"]), at=spans,
          extra=st.sampled_from(["", "", "POPULATE", "LOCKED", "NORESERVE"]),
          backing=st.sampled_from(["anonymous", "file", "file"]), fd=fds,
          pgoff=PGOFFS)
    def mmap(self, proc, pages, prot, shared, place, at, extra, backing, fd, pgoff):
        """mmap of anonymous memory or (twice as often) of a file."""
        if backing == "anonymous":
            self._mmap_anon(proc, pages, prot, shared, place, at, extra)
        else:
            self.mmap_file(proc, fd, pgoff, min(pages, 16), prot, shared, place, at,
                           "" if extra == "NORESERVE" else extra)

    @precondition(lambda self: any(self._room(self.ref.procs[p.pid]) for p in self.procs))
    @rule(proc=procs, fd=fds, pgoff=PGOFFS, pages=st.integers(1, 16), prot=prots,
          shared=st.booleans(), place=st.sampled_from(["anywhere", "hint", "fixed", "noreplace"]),
          at=spans, extra=st.sampled_from(["", "", "", "POPULATE", "LOCKED"]))
    def mmap_file(self, proc, fd, pgoff, pages, prot, shared, place, at, extra):
        if extra == "LOCKED" and not self.LOCKING:
            extra = ""
        p, rp = self._pick(proc)
        if not self._room(rp):
            return
        fd = self._fd(rp, fd, "r")
        f = rp.fds.get(fd)
        if isinstance(pgoff, str):
            n = f.obj.npages if f is not None else 0
            pgoff = {"half": n // 2, "last": max(0, n - 1), "eof": n, "eof+3": n + 3}[pgoff]
        flags = (MAP_SHARED if shared else MAP_PRIVATE)
        flags |= {"": 0, "POPULATE": MAP_POPULATE, "LOCKED": MAP_LOCKED}[extra]
        addr, pages, fixed = self._place(rp, pages, place, at)
        flags |= fixed
        overlap = any(addr // PAGE + i in rp.pages for i in range(pages)) if addr else False
        pv = prot_val(prot)
        if f is None:
            want = errno.EBADF
        elif place == "noreplace" and overlap:
            want = errno.EEXIST
        elif (shared and pv & PROT_WRITE and not f.writable) or not f.readable:
            want = errno.EACCES
        else:
            want = 0
        text = (f"mmap-file({addr:#x}, {pages} pages, {prot}, {'shared' if shared else 'private'} "
                f"{place} {extra}, fd {fd}{' ' + f.path if f else ''}, page {pgoff})")
        st_, r = self._sys(p, text, lambda: p.mmap(addr, pages * PAGE, pv, flags, fd, pgoff * PAGE))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            self._placed(text, rp, r, addr, pages, place, overlap)
            rp.mmap(self.ref, r // PAGE, pages, pv, shared, extra == "LOCKED", obj=f.obj,
                    pgoff=pgoff, maywrite=not shared or f.writable, populate=extra == "POPULATE")
            self.ref.reap_segments()
            quiet = place != "fixed" and extra == "" and not rp.def_locked
            self._after(p.pid, keep_rss=quiet)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, at=spans, flags=st.sampled_from(
        ["ASYNC", "SYNC", "SYNC", "INVALIDATE", "ASYNC|INVALIDATE", "SYNC|INVALIDATE", "0"] * 3
        + ["ASYNC|SYNC", "bad"]), unaligned=rarely)
    def msync(self, proc, at, flags, unaligned):
        p, rp = self._pick(proc)
        vpn, n = self._resolve(rp, at)
        fl = {"ASYNC": MS_ASYNC, "SYNC": MS_SYNC, "INVALIDATE": MS_INVALIDATE,
              "ASYNC|INVALIDATE": MS_ASYNC | MS_INVALIDATE, "SYNC|INVALIDATE": MS_SYNC | MS_INVALIDATE,
              "0": 0, "ASYNC|SYNC": MS_ASYNC | MS_SYNC, "bad": 8}[flags]
        addr = vpn * PAGE + (100 if unaligned else 0)
        if unaligned or flags in ("ASYNC|SYNC", "bad"):
            want = errno.EINVAL
        else:
            want = rp.msync_errno(vpn, n, fl)
        text = f"msync({addr:#x}, {n} pages, {flags})"
        st_, r = self._sys(p, text, lambda: p.msync(addr, n * PAGE, fl))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    # --- SysV shared memory -------------------------------------------------------------------------
    @rule(proc=procs, key=st.sampled_from(SHM_KEYS), pages=st.integers(0, 12), ragged=st.booleans(),
          creat=st.booleans(), excl=rarely)
    def shmget(self, proc, key, pages, ragged, creat, excl):
        p, rp = self._pick(proc)
        pages = min(pages, self.MAX_SEG_PAGES)
        size = pages * PAGE + (321 if ragged else 0)
        flags = 0o600 | (IPC_CREAT if creat else 0) | (IPC_EXCL if excl else 0)
        want, seg = self.ref.shmget(key, size, flags)
        if not want and seg is None and len(self.ref.segs) >= MAX_SEGS:
            return
        text = f"shmget({key:#x}, {size}, {oct(flags)})"
        st_, r = self._sys(p, text, lambda: p.shmget(key, size, flags))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            if seg is not None:
                assert r == seg.id, f"{text} returned id {r}, not the segment {seg.id} of that key"
            else:
                assert r not in self.ref.segs, f"{text} created a segment with the live id {r}"
                self.ref.shm_create(r, key, size)
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @precondition(lambda self: any(self._room(self.ref.procs[p.pid]) for p in self.procs))
    @rule(proc=procs, seg=st.integers(0, MAX_SEGS), where=st.sampled_from(["anywhere", "at", "remap"]),
          at=spans, rdonly=rarely, exec_=rarely)
    def shmat(self, proc, seg, where, at, rdonly, exec_):
        p, rp = self._pick(proc)
        if not self._room(rp):
            return
        sid, s = self._seg(seg)
        addr = 0
        npages = s.obj.npages if s is not None else 1
        if where != "anywhere":
            vpn, _ = self._resolve(rp, at, npages, free_space=True)
            addr = vpn * PAGE
        flags = (SHM_RDONLY if rdonly else 0) | (SHM_EXEC if exec_ else 0) | (SHM_REMAP if where == "remap" else 0)
        overlap = addr and any(addr // PAGE + i in rp.pages for i in range(npages))
        if (s is not None and s.rmid and where == "remap"
                and any(rp.pages[v].obj is s.obj for v in range(addr // PAGE, addr // PAGE + npages)
                        if v in rp.pages)
                and self._avoid("test_shmat_remap_over_last_attach_keeps_removed_segment",
                                "SHM_REMAP over an attach of the same removed segment")):
            return
        if s is None:
            want = errno.EINVAL
        elif where == "at" and overlap:
            want = errno.EINVAL
        else:
            want = 0
        text = f"shmat({sid}, {addr:#x}, {oct(flags)})"
        st_, r = self._sys(p, text, lambda: p.shmat(sid, addr, flags))
        if st_ == "ok":
            assert not want, f"{text} succeeded; Linux fails with {ename(want)}"
            if addr:
                assert r == addr, f"{text} returned {r:#x}"
            else:
                busy = [r // PAGE + i for i in range(npages) if r // PAGE + i in rp.pages]
                assert not busy, f"{text} attached over live pages"
            prot = PROT_READ | (0 if rdonly else PROT_WRITE) | (PROT_EXEC if exec_ else 0)
            rp.mmap(self.ref, r // PAGE, npages, prot, True, False, obj=s.obj, pgoff=0,
                    maywrite=not rdonly)
            self.ref.reap_segments()
            self._after(p.pid, keep_rss=not rp.def_locked and not overlap)
        elif st_ == "err":
            self._errno_is(text, r, want)
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, pick=st.integers(0, 7), at=spans, unaligned=rarely)
    def shmdt(self, proc, pick, at, unaligned):
        p, rp = self._pick(proc)
        starts = sorted({v - pg.idx for v, pg in rp.pages.items()
                         if pg.obj is not None and pg.obj.kind == "sysv"})
        if starts and pick < 6:
            vpn = starts[pick % len(starts)]
        else:
            vpn, _ = self._resolve(rp, at)
        addr = vpn * PAGE + (100 if unaligned else 0)
        plan = None if unaligned else rp.shmdt_plan(vpn, self._vmas(p.pid))
        text = f"shmdt({addr:#x})"
        st_, r = self._sys(p, text, lambda: p.shmdt(addr))
        if st_ == "ok":
            assert plan is not None, f"{text} succeeded; Linux fails with EINVAL (no segment attached there)"
            for lo, hi in plan:
                rp.munmap(lo, hi - lo)
            self.ref.reap_segments()
            self._after(p.pid)
        elif st_ == "err":
            self._errno_is(text, r, errno.EINVAL)
            assert plan is None, f"{text} failed; Linux detaches {plan}"
            self._failed(p.pid)
        else:
            self._after(p.pid)

    @rule(proc=procs, seg=st.integers(0, MAX_SEGS), cmd=st.sampled_from(["STAT", "RMID", "LOCK", "UNLOCK"]))
    def shmctl(self, proc, seg, cmd):
        p, rp = self._pick(proc)
        sid, s = self._seg(seg)
        if cmd == "LOCK" and not self.LOCKING:
            cmd = "STAT"
        c = {"STAT": IPC_STAT, "RMID": IPC_RMID, "LOCK": SHM_LOCK, "UNLOCK": SHM_UNLOCK}[cmd]
        text = f"shmctl({sid}, {cmd})"
        st_, r = self._sys(p, text, lambda: p.shmctl(sid, c))
        if st_ == "ok":
            assert s is not None, f"{text} succeeded on an id no segment has; Linux: EINVAL"
            if cmd == "STAT":
                assert r["shm_segsz"] == s.size, f"{text}: shm_segsz {r['shm_segsz']}, reference {s.size}"
                assert r["shm_perm"]["key"] == s.key, f"{text}: key {r['shm_perm']['key']:#x}, reference {s.key:#x}"
                attached = self.ref.attached(s.obj)
                assert (r["shm_nattch"] > 0) == attached, \
                    f"{text}: shm_nattch {r['shm_nattch']} but the segment is {'' if attached else 'not '}attached"
                mode = r["shm_perm"]["mode"]
                assert bool(mode & SHM_DEST) == s.rmid, f"{text}: SHM_DEST {bool(mode & SHM_DEST)}"
                assert bool(mode & SHM_LOCKED) == s.locked, f"{text}: SHM_LOCKED {bool(mode & SHM_LOCKED)}"
            elif cmd == "RMID":
                self.ref.shm_rmid(s)
            else:
                s.locked = cmd == "LOCK"
            self._after(p.pid, keep_maps=True, keep_rss=True)
        elif st_ == "err":
            self._errno_is(text, r, errno.EINVAL if s is None else 0)
            self._failed(p.pid)
        else:
            self._after(p.pid)


TestFilesStateMachine = FilesStateMachine.TestCase
TestFilesStateMachine.settings = settings(max_examples=scaled(60, 1.0), stateful_step_count=40, **SETTINGS)


@pytest.mark.slow
def test_stateful_files_long_campaign(request):
    """The long campaign of the files profile (select with -m slow)."""
    long_campaign(request, FilesStateMachine, 1500)
