"""SysV shared memory: shmget, shmat, shmdt, shmctl (ipc/shm.c, ipc/util.c).

A segment is a shmem object (mm/shmem.py) named "/SYSV<key>" and marked deleted, on the
internal shm mount (dev 00:01), whose inode number is the segment id — what /proc/PID/maps
shows. shmat maps it MAP_SHARED (read-only with SHM_RDONLY, which also drops VM_SHARED as for
any read-only file). ``shm_nattch`` counts the VMAs mapping the segment in every process — the
object's i_mmap — so a split by mprotect or munmap, or a fork, raises it, as Linux's
shm_open()/shm_close() do. IPC_RMID marks the segment SHM_DEST and turns its key private; it is
destroyed when the last attachment goes (at once if there is none).

ids: (seq << 15) + idx (ipc/util.c ipc_idr_alloc): idx is handed out cyclically below
max(in_use * 3/2, 64), and seq goes up only when the cycle comes back round (idx <= the last
idx handed out), so the first ids are 0, 1, 2, ... as on the host.
Limits (Linux defaults): SHMMIN 1, SHMMAX and SHMALL ULONG_MAX - 2^24, SHMMNI 4096.
Times are a model clock (``Kernel.clock``): seconds from 1_700_000_000, one per system call.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from ..constants import (IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT,
                         MAP_FIXED, MAP_SHARED, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE,
                         SHM_EXEC, SHM_LOCK, SHM_NORESERVE, SHM_RDONLY, SHM_REMAP, SHM_RND,
                         SHM_UNLOCK, SHMLBA)
from ..errors import syscall_error
from ..mm.fs import O_RDONLY, O_RDWR, OpenFile
from ..mm.shmem import ShmemObject

SHMMIN = 1
SHMMAX = (1 << 64) - 1 - (1 << 24)
SHMALL = SHMMAX
SHMMNI = 4096
IPCMNI_SHIFT = 15
IPCMNI = 1 << IPCMNI_SHIFT        # index space of the ids (ipc_mni without ipcmni_extend)
IPC_MIN_CYCLE = 64                # ipc_min_cycle = RADIX_TREE_MAP_SIZE
IPCID_SEQ_MAX = ((1 << 31) - 1) >> IPCMNI_SHIFT
SHM_DEST = 0o1000
SHM_LOCKED = 0o2000
SHM_HUGETLB = 0o4000
SHM_INFO = 14
SHM_STAT = 13
SHM_DEV = (0, 1)


@dataclass
class Segment:
    id: int
    key: int
    size: int
    mode: int
    obj: ShmemObject
    cpid: int
    lpid: int = 0
    atime: int = 0
    dtime: int = 0
    ctime: int = 0
    uid: int = 0
    gid: int = 0
    cuid: int = 0
    cgid: int = 0
    seq: int = 0
    attaching: int = 0   # shmat calls in flight: do_shmat holds shm_nattch across do_mmap

    @property
    def nattch(self) -> int:
        return len(self.obj.i_mmap) + self.attaching


class ShmNamespace:
    def __init__(self):
        self.segs: dict[int, Segment] = {}
        self.by_key: dict[int, int] = {}
        self.seq = 0
        self.last_idx = -1        # ids->last_idx
        self.idr_next = 0         # the idr's cyclic cursor (idr_alloc_cyclic)
        self.shmmax = SHMMAX
        self.shmall = SHMALL
        self.shmmni = SHMMNI
        self.shm_tot = 0          # pages in all segments

    def alloc_id(self) -> int:
        """ipc_idr_alloc(): the lowest free index at or after the cursor below max_idx,
        wrapping to 0 (idr_alloc_cyclic); the caller has checked in_use < shmmni."""
        used = {i & ((1 << IPCMNI_SHIFT) - 1) for i in self.segs}
        max_idx = min(max(len(self.segs) * 3 // 2, IPC_MIN_CYCLE), IPCMNI)
        idx = next((i for i in range(max(self.idr_next, 0), max_idx) if i not in used), None)
        if idx is None:
            idx = next(i for i in range(0, max_idx) if i not in used)
        self.idr_next = idx + 1
        if idx <= self.last_idx:
            self.seq += 1
            if self.seq >= IPCID_SEQ_MAX:
                self.seq = 0
        self.last_idx = idx
        return (self.seq << IPCMNI_SHIFT) + idx


def _ns(kernel) -> ShmNamespace:
    if not hasattr(kernel, "shm"):
        kernel.shm = ShmNamespace()
    return kernel.shm


def do_shmget(kernel, task, key: int, size: int, shmflg: int) -> int:
    ns = _ns(kernel)
    if key != IPC_PRIVATE and key in ns.by_key:
        seg = ns.segs[ns.by_key[key]]
        if shmflg & IPC_CREAT and shmflg & IPC_EXCL:
            raise syscall_error(errno.EEXIST, f"shmget: key {key:#x} exists")
        if size > seg.size:
            raise syscall_error(errno.EINVAL, "shmget: size larger than the existing segment")
        return seg.id
    if key != IPC_PRIVATE and not shmflg & IPC_CREAT:
        raise syscall_error(errno.ENOENT, f"shmget: no segment with key {key:#x}")
    return _newseg(kernel, task, ns, key, size, shmflg)


def _newseg(kernel, task, ns: ShmNamespace, key: int, size: int, shmflg: int) -> int:
    if size < SHMMIN or size > ns.shmmax:
        raise syscall_error(errno.EINVAL, "shmget: size out of range (SHMMIN..SHMMAX)")
    if shmflg & SHM_HUGETLB:
        raise syscall_error(errno.ENOMEM, "shmget: SHM_HUGETLB: no huge pages reserved")
    numpages = (size + PAGE_SIZE - 1) >> 12
    if ns.shm_tot + numpages > ns.shmall:
        raise syscall_error(errno.ENOSPC, "shmget: over SHMALL")
    # shmem_kernel_file_setup() -> shmem_acct_size(): charged up front unless SHM_NORESERVE
    # (which only counts when overcommit is not "never")
    noreserve = bool(shmflg & SHM_NORESERVE) and kernel.sys.config.overcommit_memory != 2
    if not noreserve:
        from .mmap import vm_enough_memory
        if not vm_enough_memory(kernel, numpages):
            raise syscall_error(errno.ENOMEM, "shmget: not enough memory to commit the segment")
    if len(ns.segs) >= ns.shmmni:
        raise syscall_error(errno.ENOSPC, "shmget: over SHMMNI segments")
    sid = ns.alloc_id()
    obj = ShmemObject(sid, size, name=f"/SYSV{key & 0xFFFFFFFF:08x}", dev=SHM_DEV)
    obj.unlinked = True
    obj.map_pages = False         # shm_vm_ops has no .map_pages: no fault-around
    obj.noreserve = noreserve
    obj.acct_pages = 0 if noreserve else numpages
    kernel.committed_pages += obj.acct_pages
    obj.owner_id = kernel.sys.frames.owners.add(obj)
    obj.shm_refs = 1
    obj.get()
    seg = Segment(sid, key, size, shmflg & 0o777, obj, cpid=task.pid, ctime=kernel.now(),
                  seq=sid >> IPCMNI_SHIFT)
    obj.on_map = lambda _o, s=seg: _shm_open(kernel, s)
    obj.on_unmap = lambda _o, s=seg: _shm_close(kernel, s)
    ns.segs[sid] = seg
    if key != IPC_PRIVATE:
        ns.by_key[key] = sid
    ns.shm_tot += numpages
    return sid


def _lookup(kernel, shmid: int) -> Segment:
    seg = _ns(kernel).segs.get(shmid)
    if shmid < 0 or seg is None:
        raise syscall_error(errno.EINVAL, f"shm: no segment with id {shmid}")
    return seg


def do_shmat(kernel, task, shmid: int, addr: int, shmflg: int) -> int:
    from .mmap import do_mmap
    flags = MAP_SHARED
    if shmid < 0:
        raise syscall_error(errno.EINVAL, "shmat: negative id")
    if addr:
        if addr & (SHMLBA - 1):
            if shmflg & SHM_RND:
                addr &= ~(SHMLBA - 1)
                if not addr and shmflg & SHM_REMAP:
                    raise syscall_error(errno.EINVAL, "shmat: SHM_RND|SHM_REMAP rounded to 0")
            elif addr & (PAGE_SIZE - 1):
                raise syscall_error(errno.EINVAL, "shmat: address not aligned to SHMLBA")
        flags |= MAP_FIXED
    elif shmflg & SHM_REMAP:
        raise syscall_error(errno.EINVAL, "shmat: SHM_REMAP needs an address")
    if shmflg & SHM_RDONLY:
        prot, oflags = PROT_READ, O_RDONLY
    else:
        prot, oflags = PROT_READ | PROT_WRITE, O_RDWR
    if shmflg & SHM_EXEC:
        prot |= PROT_EXEC
    seg = _lookup(kernel, shmid)
    size = seg.obj.size
    mm = task.mm
    if addr and not shmflg & SHM_REMAP:
        if addr + size < addr or mm.vmas.find_intersection(addr, addr + ((size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))):
            raise syscall_error(errno.EINVAL, "shmat: range in use (SHM_REMAP not given)")
    of = OpenFile(seg.obj, oflags, seg.obj.name)
    # ipc/shm.c:do_shmat raises shm_nattch before do_mmap and drops it after (out_nattch, then
    # shm_may_destroy): a SHM_REMAP over the last attach of a removed segment unmaps that attach
    # inside do_mmap without destroying the segment the new attach is about to map.
    seg.attaching += 1
    try:
        a, _ = do_mmap(kernel, task, addr, size, prot, flags, 0, of)
    finally:
        seg.attaching -= 1
        _maybe_destroy(kernel, seg)
    return a


def do_shmdt(kernel, task, addr: int) -> None:
    """shmdt(): unmap the segment attached at addr, fragments included."""
    from .unmap import do_munmap_range
    if addr & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "shmdt: address not page aligned")
    mm = task.mm
    found = None
    for v in mm.vmas.as_list():
        if v.vm_end <= addr:
            continue
        if _is_shm(v) and (v.vm_start - addr) // PAGE_SIZE == v.vm_pgoff:
            found = v.vm_file
            size = found.size
            do_munmap_range(kernel, mm, v.vm_start, v.vm_end)
            break
    if found is None:
        raise syscall_error(errno.EINVAL, "shmdt: no segment attached at this address")
    size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    for v in mm.vmas.as_list():
        if v.vm_start < addr or v.vm_end - addr > size:
            continue
        if v.vm_file is found and (v.vm_start - addr) // PAGE_SIZE == v.vm_pgoff:
            do_munmap_range(kernel, mm, v.vm_start, v.vm_end)


def _is_shm(vma) -> bool:
    return getattr(vma.vm_file, "shm_refs", None) is not None


def _seg_of(kernel, obj) -> Segment | None:
    for s in _ns(kernel).segs.values():
        if s.obj is obj:
            return s
    return None


def _shm_open(kernel, seg: Segment) -> None:
    """shm_open(): every new VMA of the segment (shmat, a split, fork) touches atime/lpid."""
    seg.atime = kernel.now()
    if kernel.current is not None:
        seg.lpid = kernel.current.pid


def _shm_close(kernel, seg: Segment) -> None:
    """shm_close(): a VMA went; dtime/lpid; a removed segment dies with its last one."""
    seg.dtime = kernel.now()
    if kernel.current is not None:
        seg.lpid = kernel.current.pid
    _maybe_destroy(kernel, seg)


def _maybe_destroy(kernel, seg: Segment) -> None:
    """shm_may_destroy(): a removed segment goes with its last attachment."""
    if seg.mode & SHM_DEST and seg.nattch == 0:
        _destroy(kernel, seg)


def _destroy(kernel, seg: Segment) -> None:
    ns = _ns(kernel)
    if ns.segs.pop(seg.id, None) is None:
        return
    if ns.by_key.get(seg.key) == seg.id:
        del ns.by_key[seg.key]
    ns.shm_tot -= (seg.size + PAGE_SIZE - 1) >> 12
    obj = seg.obj
    obj.on_unmap = None
    obj.on_map = None
    if getattr(obj, "unevictable", False):
        _unlock(kernel, obj)
    obj.shm_refs = 0
    obj.put(kernel.sys)


def do_shmctl(kernel, task, shmid: int, cmd: int, buf: dict | None = None):
    ns = _ns(kernel)
    if cmd == IPC_INFO:
        return {"shmmax": ns.shmmax, "shmmin": SHMMIN, "shmmni": ns.shmmni, "shmseg": ns.shmmni,
                "shmall": ns.shmall}
    if cmd == SHM_INFO:
        return {"used_ids": len(ns.segs), "shm_tot": ns.shm_tot,
                "shm_rss": sum(int(s.obj.nrpages) for s in ns.segs.values()),
                "shm_swp": sum(int(s.obj.nrswapped) for s in ns.segs.values())}
    if cmd not in (IPC_STAT, IPC_SET, IPC_RMID, SHM_LOCK, SHM_UNLOCK, SHM_STAT):
        raise syscall_error(errno.EINVAL, f"shmctl: unknown command {cmd}")
    if cmd == SHM_STAT:
        ids = sorted(ns.segs, key=lambda i: i & ((1 << IPCMNI_SHIFT) - 1))
        match = [i for i in ids if (i & ((1 << IPCMNI_SHIFT) - 1)) == shmid]
        if not match:
            raise syscall_error(errno.EINVAL, f"shmctl: no segment at index {shmid}")
        seg = ns.segs[match[0]]
        out = _stat(seg)
        out["id"] = seg.id
        return out
    seg = _lookup(kernel, shmid)
    if cmd == IPC_STAT:
        return _stat(seg)
    if cmd == IPC_SET:
        if buf is None:
            raise syscall_error(errno.EFAULT, "shmctl: IPC_SET needs a buffer")
        perm = buf.get("shm_perm", buf)
        seg.uid = perm.get("uid", seg.uid)
        seg.gid = perm.get("gid", seg.gid)
        seg.mode = (seg.mode & ~0o777) | (perm.get("mode", seg.mode) & 0o777)
        seg.ctime = kernel.now()
        return None
    if cmd == IPC_RMID:
        seg.mode |= SHM_DEST
        if ns.by_key.get(seg.key) == seg.id:
            del ns.by_key[seg.key]
        seg.key = IPC_PRIVATE
        seg.ctime = kernel.now()
        _maybe_destroy(kernel, seg)
        return None
    if cmd == SHM_LOCK:
        if not kernel.sys.config.capable_ipc_lock:
            if kernel.sys.config.rlimit_memlock < seg.size:
                raise syscall_error(errno.ENOMEM, "shmctl: SHM_LOCK over RLIMIT_MEMLOCK")
        seg.mode |= SHM_LOCKED
        seg.obj.unevictable = True            # mapping_set_unevictable(): reclaim culls them
        return None
    if cmd == SHM_UNLOCK:
        seg.mode &= ~SHM_LOCKED
        _unlock(kernel, seg.obj)
        return None


def _unlock(kernel, obj) -> None:
    """shmem_unlock_mapping() -> check_move_unevictable_folios(): back to the evictable LRU."""
    from ..hw.frames import PG_mlocked, PG_unevictable
    obj.unevictable = False
    f = kernel.sys.frames
    for pfn in obj.pages[obj.pages >= 0].tolist():
        kernel.sys.events.count("unevictable_pgs_scanned")
        fl = int(f.flags[pfn])
        if fl & PG_unevictable and not fl & PG_mlocked:
            f.flags[pfn] = fl & ~PG_unevictable
            kernel.sys.lru.rotate_to_head(pfn)
            kernel.sys.events.count("unevictable_pgs_rescued")


def _stat(seg: Segment) -> dict:
    return {"shm_perm": {"key": seg.key, "uid": seg.uid, "gid": seg.gid, "cuid": seg.cuid,
                         "cgid": seg.cgid, "mode": seg.mode, "seq": seg.seq},
            "shm_segsz": seg.size, "shm_atime": seg.atime, "shm_dtime": seg.dtime,
            "shm_ctime": seg.ctime, "shm_cpid": seg.cpid, "shm_lpid": seg.lpid,
            "shm_nattch": seg.nattch}
