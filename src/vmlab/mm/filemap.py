"""Address spaces: the page cache of an inode (include/linux/fs.h struct address_space,
mm/filemap.c).

An AddressSpace maps a page index of a file to the frame caching it. Two kinds exist:

  ShmemObject (mm/shmem.py)  tmpfs: shared anonymous memory, SysV shm, files under /tmp and
                             /dev/shm. Pages are swap-backed: reclaim writes them to swap and
                             the object remembers the swap entry (the second seed's
                             "anonymous inode").
  DiskFile (this module)     a file on the simulated block device: a clean page can simply be
                             dropped and read again; a dirty one is written back first.
                             Shared writable mappings use write-notify: PTEs start read-only
                             so the first write faults and marks the page dirty, and writeback
                             write-protects them again (page_mkclean).

Common per-index arrays, allocated for the first pages and grown (``ensure``) as higher
indices are used, so a huge sparse file or segment costs nothing until it is touched:
    pages[i]    pfn of the cached page, -1 when not cached (o)
    swap[i]     shmem only: the swap PTE value of the slot holding the page, 0 none (o)
    shadow[i]   workingset shadow of an evicted page cache page, 0 none (o)

A cached page holds one frame reference (refcount +1), its frame's ``mapping`` is this
object's owner id and ``index`` is i. ``i_mmap`` lists the VMAs mapping the object (the file
side of the reverse map); ``refs`` counts VMAs, open files and (SysV) segments holding it; at
zero, and with no link left in a directory, the object is evicted (iput -> evict).
"""

from __future__ import annotations

import numpy as np

from ..constants import PAGE_SIZE

INITIAL_SLOTS = 1 << 14       # per-index slots allocated up front (64 MiB of file); more on use
MAX_SLOTS = 1 << 24           # the highest page index an object can use: 64 GiB (deviations.md)


class AddressSpace:
    is_shmem = False
    writenotify = False          # shared writable mappings start read-only (dirty accounting)
    swap_backed = False
    map_pages = True             # vm_ops->map_pages: read faults fault around (SysV shm: no)

    def __init__(self, ino: int, size: int, name: str, dev: tuple[int, int]):
        self.ino = ino
        self.name = name
        self.dev = dev
        self.size = size
        n = min(max(1, (size + PAGE_SIZE - 1) // PAGE_SIZE), INITIAL_SLOTS)
        self.pages = np.full(n, -1, np.int64)
        self.swap = np.zeros(n, np.uint64)
        self.shadow = np.zeros(n, np.int64)
        self.refs = 0
        self.i_mmap: list = []
        self.owner_id = -1
        self.nrpages = 0        # (d) cached pages
        self.nrswapped = 0      # (d) pages out on swap (shmem's info->swapped)
        self.nlink = 0          # directory entries naming it (0: unlinked or never linked)
        self.unlinked = False   # was linked once and is not any more: "(deleted)"
        self.seals = 0          # F_SEAL_* (shmem: F_SEAL_SEAL unless a memfd allows sealing)
        self.acct_pages = 0     # commit charge taken at setup (shmem_acct_size), given back at evict
        self.noreserve = False  # shmem charged per allocated page instead (shmem_acct_blocks)

    @property
    def npages(self) -> int:
        """i_size in pages, rounded up: the first index past EOF."""
        return (self.size + PAGE_SIZE - 1) // PAGE_SIZE

    def ensure(self, npages: int) -> None:
        """Grow the per-page arrays to cover ``npages`` (a model limit: at most MAX_SLOTS,
        beyond which the page is refused with EFBIG)."""
        if npages > MAX_SLOTS:
            import errno
            from ..errors import syscall_error
            raise syscall_error(errno.EFBIG, f"{self.name}: page {npages - 1} is beyond the "
                                f"{MAX_SLOTS} pages a vmlab object can index (docs/deviations.md)")
        if npages > len(self.pages):
            extra = max(npages - len(self.pages), len(self.pages))
            self.pages = np.concatenate([self.pages, np.full(extra, -1, np.int64)])
            self.swap = np.concatenate([self.swap, np.zeros(extra, np.uint64)])
            self.shadow = np.concatenate([self.shadow, np.zeros(extra, np.int64)])

    def vma_link(self, vma) -> None:
        """vma_link_file(): the VMA joins i_mmap and holds a reference."""
        self.i_mmap.append(vma)
        self.refs += 1

    def vma_unlink(self, vma) -> None:
        for i, v in enumerate(self.i_mmap):
            if v is vma:
                del self.i_mmap[i]
                break
        else:
            raise AssertionError("AddressSpace.vma_unlink: VMA not in i_mmap")
        self.refs -= 1

    def get(self) -> None:
        """A reference that is not a VMA (an open file, a SysV segment)."""
        self.refs += 1

    def put(self, system) -> None:
        self.refs -= 1
        assert self.refs >= 0, "AddressSpace.put: reference count underflow"
        if self.refs == 0 and self.nlink == 0:
            self.evict(system)

    def swapped(self, lo: int, hi: int) -> np.ndarray:
        """Which indices of [lo, hi) are out on swap (smaps' Swap of a shmem mapping)."""
        return self.swap[lo:hi] != 0

    @property
    def extra_refs(self) -> int:
        return self.refs - len(self.i_mmap)

    def map_name(self) -> str:
        """The name /proc/PID/maps shows."""
        return self.name + (" (deleted)" if self.unlinked else "")

    # --- the page cache ------------------------------------------------------------------------
    def add_page(self, system, index: int, pfn: int) -> None:
        """filemap_add_folio(): cache ``pfn`` at ``index`` (one frame reference)."""
        f = system.frames
        assert self.pages[index] < 0, "add_page: index already cached"
        self.pages[index] = pfn
        self.nrpages += 1
        f.mapping[pfn] = self.owner_id
        f.index[pfn] = index
        f.refcount[pfn] += 1

    def delete_page(self, system, pfn: int) -> None:
        """__filemap_remove_folio(): uncache the page (it keeps any other references)."""
        f = system.frames
        i = int(f.index[pfn])
        assert int(self.pages[i]) == pfn, "delete_page: page not cached at its index"
        self.pages[i] = -1
        self.nrpages -= 1
        f.refcount[pfn] -= 1

    def evict(self, system) -> None:
        """evict(): the last user is gone: drop every cached page (and swap entry)."""
        assert not self.i_mmap, "AddressSpace.evict: still mapped"
        f = system.frames
        idx = np.flatnonzero(self.pages >= 0)
        if len(idx):
            pfns = self.pages[idx].astype(np.intp)
            f.refcount[pfns] -= 1
            self.pages[idx] = -1
            self.nrpages -= len(idx)
            dead = pfns[(f.refcount[pfns] == 0) & (f.mapcount[pfns] == 0)]
            system.lru.remove(dead)
            f.free_many(dead)
        if self.nrswapped:
            system.swap_free_entries(self.swap[self.swap != 0])
            self.swap[:] = 0
            self.nrswapped = 0
        if self.acct_pages:
            system.unacct_pages(self.acct_pages)         # shmem_unacct_size()
            self.acct_pages = 0
        if self.owner_id >= 0:
            f.owners.remove(self.owner_id)
            self.owner_id = -1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ino={self.ino}, size={self.size:#x}, name={self.name!r})"


class DiskFile(AddressSpace):
    """A regular file on the simulated disk: page contents live in ``disk`` (one token per
    page; 0 is a hole that reads as zeros). Reading an uncached page is block I/O."""

    writenotify = True

    def __init__(self, ino: int, size: int, name: str, dev: tuple[int, int] = (254, 1)):
        super().__init__(ino, size, name, dev)
        self.disk = np.zeros(len(self.pages), np.uint64)

    def ensure(self, npages: int) -> None:
        old = len(self.pages)
        super().ensure(npages)
        if len(self.pages) > old:
            self.disk = np.concatenate([self.disk, np.zeros(len(self.pages) - old, np.uint64)])

    def evict(self, system) -> None:
        super().evict(system)
        if self.nlink == 0:
            system.frames.contents.release_many(self.disk)
            self.disk[:] = 0


# --- getting pages into the cache (mm/filemap.c, mm/shmem.c) --------------------------------------
def alloc_cache_pages(system, obj: AddressSpace, pgoffs: np.ndarray) -> np.ndarray:
    """New cached pages at ``pgoffs`` (none cached or swapped): zeroed for tmpfs
    (shmem_alloc_and_add_folio), read from the disk for a disk file (filemap_read_folio:
    pgpgin, and the caller counts the major fault). On the file or anon LRU, inactive unless
    the workingset says the index was evicted recently. Frames must be reserved by the caller."""
    from ..hw.frames import PG_swapbacked, PG_uptodate
    if len(pgoffs):
        obj.ensure(int(pgoffs.max()) + 1)       # a hole past the arrays (see filemap_get_page)
    f = system.frames
    pfns = f.alloc_many(len(pgoffs))
    f.flags[pfns] = np.uint32(PG_uptodate | (PG_swapbacked if obj.swap_backed else 0))
    f.refcount[pfns] = 0
    if isinstance(obj, DiskFile):
        tokens = obj.disk[pgoffs].copy()
        f.contents.dup_many(tokens)
        f.content[pfns] = tokens
        system.events.count("pgpgin", 4 * len(pfns))
    for k, (i, pfn) in enumerate(zip(pgoffs.tolist(), pfns.tolist())):
        obj.add_page(system, int(i), int(pfn))
        shadow = int(obj.shadow[i])
        active = False
        if shadow:
            obj.shadow[i] = 0
            active = system.lru.workingset_refault(shadow, anon=obj.swap_backed)
        system.lru.add(pfn, active=active, evictable=not getattr(obj, "unevictable", False))
    return pfns


def filemap_get_page(system, obj: AddressSpace, index: int) -> tuple[int, bool]:
    """The page at ``index``: cached, brought back from swap (tmpfs), read from disk, or a new
    zero page (tmpfs). Returns (pfn, major?). Frames must be reserved by the caller.

    ``index`` may lie past the per-page arrays: truncate() growing a file leaves them alone,
    and the hole it made reads as zeros (filemap_read / shmem_file_read_iter find no folio
    there), so the arrays grow here, on first use of the index."""
    obj.ensure(index + 1)
    pfn = int(obj.pages[index])
    if pfn >= 0:
        return pfn, False
    if obj.swap_backed and obj.swap[index]:
        from .shmem import shmem_swapin
        from .swap_state import swapin_readahead
        return shmem_swapin(system, obj, index, lambda t, off: swapin_readahead(system, t, off))
    pfn = int(alloc_cache_pages(system, obj, np.array([index], np.int64))[0])
    return pfn, isinstance(obj, DiskFile)


def write_back_page(system, obj: "DiskFile", pfn: int) -> None:
    """->writepage(): the page's contents go to the disk; the page is clean (nr_written)."""
    from ..hw.frames import PG_dirty
    f = system.frames
    i = int(f.index[pfn])
    old = int(obj.disk[i])
    obj.disk[i] = f.contents.dup(int(f.content[pfn]))
    f.contents.release(old)
    f.flags[pfn] &= np.uint32(~PG_dirty & 0xFFFFFFFF)
    system.events.count("nr_written")
    system.events.count("pgpgout", 4)
