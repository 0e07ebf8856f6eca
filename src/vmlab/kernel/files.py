"""File system calls over the page cache (fs/open.c, fs/read_write.c, mm/filemap.c,
mm/truncate.c, fs/sync.c), for tmpfs and disk files (mm/fs.py).

  open(path, flags, mode)   O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND;
                            ENOENT, EEXIST, EINVAL (bad access mode); the lowest free fd >= 3
                            (0-2 are the standard streams). An fd is an open file description,
                            shared by the child after fork.
  pread / pwrite            through the page cache: reading an uncached disk page is block I/O;
                            writing dirties the cached page and extends the file. EBADF when the
                            fd was not opened for it, EINVAL for a negative offset.
  ftruncate                 EINVAL unless open for writing. Shrinking unmaps the pages past the
                            new end from every mapping — COW copies of private mappings too
                            (unmap_mapping_range(even_cows)) — drops them from the cache, and
                            zeroes the rest of the last page (truncate_inode_partial_folio).
  fsync / msync(MS_SYNC)    write back dirty pages of a disk file: page_mkclean first write-
                            protects and cleans every shared PTE mapping the page (so the next
                            store faults and re-dirties it), then the page goes to disk.
  unlink                    the name goes; the inode lives on while open or mapped.
"""

from __future__ import annotations

import errno

import numpy as np

from ..constants import PAGE_SIZE
from ..errors import syscall_error
from ..hw import pte as P
from ..hw.frames import PG_dirty
from ..mm.filemap import DiskFile, filemap_get_page, write_back_page
from ..mm.fs import O_APPEND, O_CREAT, O_EXCL, O_TRUNC, OpenFile
from ..mm.vmflags import VM_SHARED
from .oom import with_oom_retry

FD_FIRST = 3
MAX_FILE_SIZE = 1 << 44          # what the model accepts (Linux: MAX_LFS_FILESIZE)


def fd_table(task) -> dict[int, OpenFile]:
    if not hasattr(task, "files"):
        task.files = {}
    return task.files


def get_file(task, fd: int) -> OpenFile:
    f = fd_table(task).get(fd)
    if f is None:
        raise syscall_error(errno.EBADF, f"fd {fd} is not open")
    return f


def do_open(kernel, task, path: str, flags: int, mode: int = 0o644) -> int:
    fs = kernel.fs
    if not isinstance(path, str) or not path.startswith("/"):
        raise syscall_error(errno.ENOENT, f"open: {path!r}: use an absolute path")
    obj = fs.lookup(path)
    if obj is None:
        if not flags & O_CREAT:
            raise syscall_error(errno.ENOENT, f"open: {path}: no such file")
        obj = fs.create(path)
    elif flags & O_CREAT and flags & O_EXCL:
        raise syscall_error(errno.EEXIST, f"open: {path}: exists")
    obj.get()
    of = OpenFile(obj, flags, path)
    table = fd_table(task)
    fd = FD_FIRST
    while fd in table:
        fd += 1
    table[fd] = of
    if flags & O_TRUNC and obj.size:
        # may_open() asks for write permission (root has it) and handle_truncate() runs
        # whatever the access mode: O_RDONLY|O_TRUNC and mode 3 truncate too, as on the host
        truncate(kernel, obj, 0)
    return fd


def do_close(kernel, task, fd: int) -> None:
    of = fd_table(task).pop(fd, None)
    if of is None:
        raise syscall_error(errno.EBADF, f"close: fd {fd} is not open")
    put_file(kernel, of)


def put_file(kernel, of: OpenFile) -> None:
    of.refs -= 1
    if of.refs == 0:
        of.inode.put(kernel.sys)


def close_all(kernel, task) -> None:
    for fd in list(fd_table(task)):
        do_close(kernel, task, fd)


def dup_table(task, child) -> None:
    """fork: the child shares every open file description."""
    child.files = dict(fd_table(task))
    for of in child.files.values():
        of.refs += 1


def do_unlink(kernel, path: str) -> None:
    if kernel.fs.lookup(path) is None:
        raise syscall_error(errno.ENOENT, f"unlink: {path}: no such file")
    kernel.fs.unlink(path)


def do_pread(kernel, task, fd: int, count: int, offset: int) -> bytes:
    of = get_file(task, fd)
    if not of.readable:
        raise syscall_error(errno.EBADF, f"pread: fd {fd} is not open for reading")
    if offset < 0 or count < 0:
        raise syscall_error(errno.EINVAL, "pread: negative offset or count")
    obj = of.inode
    end = min(obj.size, offset + count)
    out = bytearray()
    sysm = kernel.sys
    f = sysm.frames
    pos = offset
    while pos < end:
        i = pos >> 12
        pfn = int(obj.pages[i]) if i < len(obj.pages) else -1
        n = min(end, (i + 1) << 12) - pos
        if pfn < 0 and obj.swap_backed and not _shmem_swapped(obj, i):
            # shmem_file_read_iter() asks shmem_get_folio(SGP_READ), which leaves a hole a
            # hole: the read copies from ZERO_PAGE and allocates nothing
            out += bytes(n)
            pos += n
            continue
        if pfn < 0:
            pfn = with_oom_retry(kernel, task, lambda: (f.reserve(1), filemap_get_page(sysm, obj, i))[1][0])
        out += f.contents.read(int(f.content[pfn]), pos & (PAGE_SIZE - 1), n)
        sysm.lru.mark_accessed(pfn)
        pos += n
    return bytes(out)


def _shmem_swapped(obj, i: int) -> bool:
    """Whether page ``i`` of a shmem object is out on swap (an entry in its page cache)."""
    sw = getattr(obj, "swap", None)
    return sw is not None and i < len(sw) and int(sw[i]) != 0


def do_pwrite(kernel, task, fd: int, data: bytes, offset: int | None) -> int:
    of = get_file(task, fd)
    if not of.writable:
        raise syscall_error(errno.EBADF, f"pwrite: fd {fd} is not open for writing")
    obj = of.inode
    if offset is None or of.flags & O_APPEND:
        offset = obj.size
    if offset < 0:
        raise syscall_error(errno.EINVAL, "pwrite: negative offset")
    end = offset + len(data)
    if end > MAX_FILE_SIZE:
        raise syscall_error(errno.EFBIG, "pwrite: file too large")
    check_seals_write(obj, offset, end)
    sysm = kernel.sys
    f = sysm.frames
    obj.ensure((end + PAGE_SIZE - 1) >> 12)
    pos = offset
    while pos < end:
        i = pos >> 12
        pfn = int(obj.pages[i])
        if pfn < 0:
            pfn = with_oom_retry(kernel, task, lambda: (f.reserve(1), filemap_get_page(sysm, obj, i))[1][0])
        n = min(end, (i + 1) << 12) - pos
        f.content[pfn] = f.contents.write(int(f.content[pfn]), pos & (PAGE_SIZE - 1),
                                          data[pos - offset:pos - offset + n])
        if not int(f.flags[pfn]) & PG_dirty:
            f.flags[pfn] |= np.uint32(PG_dirty)
            sysm.events.count("nr_dirtied")
        if obj.swap_backed:
            # shmem_write_begin -> shmem_get_folio(SGP_WRITE) marks the folio accessed; a
            # disk filesystem's write_begin (FGP_WRITEBEGIN) does not
            sysm.lru.mark_accessed(pfn)
        pos += n
    if end > obj.size:
        obj.size = end
    return len(data)


def do_ftruncate(kernel, task, fd: int, length: int) -> None:
    of = get_file(task, fd)
    if length < 0:
        raise syscall_error(errno.EINVAL, "ftruncate: negative length")
    if not of.writable:
        raise syscall_error(errno.EINVAL, f"ftruncate: fd {fd} is not open for writing")
    if length > MAX_FILE_SIZE:
        raise syscall_error(errno.EFBIG, "ftruncate: file too large")
    check_seals_truncate(of.inode, length)
    truncate(kernel, of.inode, length)


def truncate(kernel, obj, length: int) -> None:
    """truncate_setsize() + truncate_pagecache()."""
    old = obj.size
    obj.size = length
    if length >= old:
        return                      # a hole: nothing to index until a page is used
    first = (length + PAGE_SIZE - 1) >> 12          # first whole page past the new end
    unmap_mapping_range(kernel, obj, first, even_cows=True)
    sysm = kernel.sys
    f = sysm.frames
    idx = np.flatnonzero(obj.pages[first:] >= 0) + first
    for i in idx.tolist():
        pfn = int(obj.pages[i])
        obj.delete_page(sysm, pfn)
        if int(f.refcount[pfn]) == 0 and int(f.mapcount[pfn]) == 0:
            sysm.lru.remove(pfn)
            f.free(pfn)
    if obj.swap_backed:
        ents = obj.swap[first:]
        live = ents[ents != 0]
        if len(live):
            sysm.swap_free_entries(live)
            obj.nrswapped -= len(live)
            obj.swap[first:] = 0
    if isinstance(obj, DiskFile):
        f.contents.release_many(obj.disk[first:])
        obj.disk[first:] = 0
    if length & (PAGE_SIZE - 1):
        # truncate_inode_partial_folio(): bytes past EOF in the last page read as zero
        i = length >> 12
        tail = PAGE_SIZE - (length & (PAGE_SIZE - 1))
        if i >= len(obj.pages):
            return
        pfn = int(obj.pages[i])
        if pfn < 0 and obj.swap_backed and _shmem_swapped(obj, i):
            # shmem_undo_range() -> shmem_get_partial_folio(): a partial page out in swap is
            # read back (shmem_get_folio(SGP_READ)) so that its tail can be zeroed; otherwise
            # growing the file again would bring the old bytes back from swap
            pfn = with_oom_retry(kernel, None,
                                 lambda: (f.reserve(1), filemap_get_page(sysm, obj, i))[1][0])
        if pfn >= 0:
            f.content[pfn] = f.contents.fill(int(f.content[pfn]), length & (PAGE_SIZE - 1), tail, 0)
        if isinstance(obj, DiskFile) and obj.disk[i]:
            obj.disk[i] = f.contents.fill(int(obj.disk[i]), length & (PAGE_SIZE - 1), tail, 0)


def unmap_mapping_range(kernel, obj, first_index: int, even_cows: bool) -> None:
    """Zap every PTE of every VMA mapping indices >= first_index of the object; with
    ``even_cows`` False private mappings keep their COW copies."""
    design = kernel.design
    for v in list(obj.i_mmap):
        lo = max(v.vm_start, v.addr_of_index(first_index))
        if lo < v.vm_end:
            v.vm_mm.update_hiwater_rss()
            design.zap_range(v.vm_mm, v, lo, v.vm_end, even_cows=even_cows)


def do_fsync(kernel, task, fd: int) -> None:
    of = get_file(task, fd)
    writeback_range(kernel, of.inode, 0, of.inode.npages)


def writeback_range(kernel, obj, first: int, last: int) -> int:
    """filemap_write_and_wait_range(): write every dirty cached page in [first, last);
    returns the pages written. tmpfs has nothing to write."""
    if not isinstance(obj, DiskFile):
        return 0
    sysm = kernel.sys
    f = sysm.frames
    n = 0
    last = min(last, len(obj.pages))
    for i in np.flatnonzero(obj.pages[first:last] >= 0).tolist():
        pfn = int(obj.pages[first + i])
        dirty = bool(int(f.flags[pfn]) & PG_dirty) | page_mkclean(kernel, obj, pfn)
        if dirty:
            write_back_page(sysm, obj, pfn)
            n += 1
    return n


def page_mkclean(kernel, obj, pfn: int) -> bool:
    """folio_mkclean(): write-protect and clean every shared PTE mapping the page (through
    i_mmap); returns whether one of them was dirty."""
    pt = kernel.sys.pagetables
    f = kernel.sys.frames
    i = int(f.index[pfn])
    dirty = False
    for v in obj.i_mmap:
        if not v.vm_flags & VM_SHARED or not v.vm_pgoff <= i < v.vm_pgoff + v.pages():
            continue
        addr = v.addr_of_index(i)
        row = pt.lookup_leaf(v.vm_mm.pgd, addr)
        if row < 0:
            continue
        slot = (addr >> 12) & 511
        e = int(pt.rows[row, slot])
        if P.pte_present(e) and P.pte_pfn(e) == pfn:
            dirty |= bool(e & P.DIRTY)
            pt.rows[row, slot] = e & ~(P.DIRTY | P.RW)
    return dirty


def do_fstat(task, fd: int) -> dict:
    of = get_file(task, fd)
    o = of.inode
    return {"st_size": o.size, "st_ino": o.ino, "st_dev": (o.dev[0] << 8) | o.dev[1],
            "st_nlink": o.nlink, "st_blocks": int((o.pages >= 0).sum() if o.swap_backed else
                                                 (getattr(o, "disk", o.pages) != 0).sum()) * 8}


# --- memfd_create(2) and file seals (mm/memfd.c) --------------------------------------------------
def do_memfd_create(kernel, task, name: str, flags: int) -> int:
    """memfd_create(): an unlinked tmpfs file "/memfd:NAME (deleted)" open O_RDWR. Sealing is
    allowed only with MFD_ALLOW_SEALING (or MFD_NOEXEC_SEAL, which also seals exec)."""
    from ..constants import (F_SEAL_EXEC, F_SEAL_SEAL, MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_EXEC,
                             MFD_HUGETLB, MFD_NAME_MAX, MFD_NOEXEC_SEAL)
    from ..mm.fs import O_RDWR
    from ..mm.shmem import ShmemObject
    known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC
    if flags & ~known and not flags & MFD_HUGETLB:
        raise syscall_error(errno.EINVAL, "memfd_create: unknown flags")
    if flags & MFD_HUGETLB:
        raise syscall_error(errno.EINVAL, "memfd_create: MFD_HUGETLB: the model has no hugetlbfs")
    if flags & MFD_EXEC and flags & MFD_NOEXEC_SEAL:
        raise syscall_error(errno.EINVAL, "memfd_create: MFD_EXEC and MFD_NOEXEC_SEAL together")
    if not isinstance(name, str) or len(name.encode()) > MFD_NAME_MAX:
        raise syscall_error(errno.EINVAL, f"memfd_create: name longer than {MFD_NAME_MAX} bytes")
    obj = ShmemObject(kernel.sys.get_next_ino(), 0, name="/memfd:" + name, dev=(0, 1))
    obj.unlinked = True
    obj.noreserve = True
    obj.owner_id = kernel.sys.frames.owners.add(obj)
    if flags & MFD_NOEXEC_SEAL:
        obj.seals = F_SEAL_EXEC
    elif flags & MFD_ALLOW_SEALING:
        obj.seals = 0
    else:
        obj.seals = F_SEAL_SEAL
    obj.get()
    of = OpenFile(obj, O_RDWR, obj.name)
    table = fd_table(task)
    fd = FD_FIRST
    while fd in table:
        fd += 1
    table[fd] = of
    return fd


def do_fcntl(kernel, task, fd: int, cmd: int, arg: int = 0) -> int:
    """fcntl(): the seal commands (memfd_fcntl). F_ADD_SEALS needs a writable fd on a shmem
    file whose seals do not include F_SEAL_SEAL; F_SEAL_WRITE is refused with EBUSY while a
    shared writable mapping exists (mapping_deny_writable)."""
    from ..constants import F_ADD_SEALS, F_GET_SEALS, F_SEAL_SEAL, F_SEAL_WRITE
    from ..mm.vmflags import VM_MAYWRITE
    of = get_file(task, fd)
    obj = of.inode
    if cmd not in (F_ADD_SEALS, F_GET_SEALS):
        raise syscall_error(errno.EINVAL, f"fcntl: command {cmd} is not modelled")
    if not getattr(obj, "is_shmem", False):
        raise syscall_error(errno.EINVAL, "fcntl: seals exist on shmem files only")
    if cmd == F_GET_SEALS:
        return obj.seals
    all_seals = 0x3F
    if arg & ~all_seals:
        raise syscall_error(errno.EINVAL, "fcntl: F_ADD_SEALS: unknown seals")
    if not of.writable:
        raise syscall_error(errno.EPERM, "fcntl: F_ADD_SEALS needs a writable fd")
    if obj.seals & F_SEAL_SEAL:
        raise syscall_error(errno.EPERM, "fcntl: the file is sealed against more seals")
    if arg & F_SEAL_WRITE and not obj.seals & F_SEAL_WRITE:
        if any(v.vm_flags & VM_SHARED and v.vm_flags & VM_MAYWRITE for v in obj.i_mmap):
            raise syscall_error(errno.EBUSY, "fcntl: F_SEAL_WRITE while shared writable mappings exist")
    obj.seals |= arg
    return 0


def check_seals_write(obj, offset: int, end: int) -> None:
    """shmem_write_begin()'s seal checks for a write of [offset, end)."""
    from ..constants import F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_WRITE
    seals = getattr(obj, "seals", 0)
    if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE):
        raise syscall_error(errno.EPERM, "write: the file is write-sealed")
    if seals & F_SEAL_GROW and end > obj.size:
        raise syscall_error(errno.EPERM, "write: the file is sealed against growing")


def check_seals_truncate(obj, length: int) -> None:
    """shmem_setattr()'s seal checks for a size change."""
    from ..constants import F_SEAL_GROW, F_SEAL_SHRINK
    seals = getattr(obj, "seals", 0)
    if length < obj.size and seals & F_SEAL_SHRINK:
        raise syscall_error(errno.EPERM, "ftruncate: the file is sealed against shrinking")
    if length > obj.size and seals & F_SEAL_GROW:
        raise syscall_error(errno.EPERM, "ftruncate: the file is sealed against growing")
