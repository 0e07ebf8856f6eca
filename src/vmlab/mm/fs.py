"""The machine's files: a flat namespace of paths on two filesystems, and open files.

Paths under /tmp and /dev/shm are on tmpfs (ShmemObject: swap-backed, like Linux's tmpfs
mounts); every other path is a regular file on the simulated disk (DiskFile: clean pages are
dropped and re-read, dirty ones written back). Directories are implicit: any absolute path
names a file. The namespace holds one link to each inode; unlink removes it, and the inode
lives on ("(deleted)" in maps) while open files or mappings hold it.

Device numbers and inode numbers are what maps shows: tmpfs 00:1a, the disk fe:01, inode
numbers counted from 12 on the disk (from 2 on tmpfs), as a freshly made filesystem would.
"""

from __future__ import annotations

from dataclasses import dataclass

from .filemap import AddressSpace, DiskFile
from .shmem import ShmemObject

TMPFS_PREFIXES = ("/tmp/", "/dev/shm/")
TMPFS_DEV = (0, 26)
DISK_DEV = (254, 1)

O_ACCMODE = 0o3
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREAT = 0o100
O_EXCL = 0o200
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_DIRECTORY = 0o200000
O_CLOEXEC = 0o2000000


def on_tmpfs(path: str) -> bool:
    return path.startswith(TMPFS_PREFIXES)


@dataclass
class OpenFile:
    """struct file: an inode opened with an access mode (f_mode); shared across fork/dup."""
    inode: AddressSpace
    flags: int
    path: str
    refs: int = 1

    @property
    def readable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    @property
    def writable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR)


class FileSystem:
    def __init__(self, system):
        self.sys = system
        self.names: dict[str, AddressSpace] = {}
        self.next_ino = {"disk": 12, "tmpfs": 2}

    def lookup(self, path: str) -> AddressSpace | None:
        return self.names.get(path)

    def create(self, path: str, size: int = 0) -> AddressSpace:
        """A new, linked, empty file (or one of ``size`` zero bytes)."""
        if on_tmpfs(path):
            ino = self.next_ino["tmpfs"]
            self.next_ino["tmpfs"] += 1
            obj: AddressSpace = ShmemObject(ino, size, name=path, dev=TMPFS_DEV)
            obj.noreserve = True          # tmpfs files are charged per page (shmem_acct_blocks)
        else:
            ino = self.next_ino["disk"]
            self.next_ino["disk"] += 1
            obj = DiskFile(ino, size, name=path, dev=DISK_DEV)
        obj.owner_id = self.sys.frames.owners.add(obj)
        obj.nlink = 1
        self.names[path] = obj
        return obj

    def unlink(self, path: str) -> AddressSpace:
        obj = self.names.pop(path)
        obj.nlink = 0
        obj.unlinked = True
        if obj.refs == 0:
            obj.evict(self.sys)
        return obj

    def files(self) -> list[AddressSpace]:
        return list(self.names.values())
