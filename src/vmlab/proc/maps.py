"""/proc/PID/maps lines, byte for byte as Linux 6.x prints them.

Follows fs/proc/task_mmu.c: show_vma_header_prefix() and show_map_vma(), with
fs/seq_file.c: seq_setwidth()/seq_pad() for the name column and seq_path()/mangle_path() for
escaping. Pure: takes plain values, returns text.

The layout of one line::

    START-END PERM OFFSET MAJ:MIN INODE<spaces>NAME\\n

START/END are lowercase hex with at least 8 digits, OFFSET at least 8 hex digits, MAJ/MIN at
least 2 hex digits, INODE decimal. The header always ends with one space. When the VMA has a
name, the line is padded with spaces up to column 72 (``25 + 6 * sizeof(void *) - 1`` on a
64-bit kernel) and then one more space is written, so the name starts at column 73; a header
that is already 72 columns or longer is followed by two spaces (its own and seq_pad()'s).
A VMA without a name ends with the header's trailing space and the newline:
``... 00:00 0 \\n``.
"""

from __future__ import annotations

from dataclasses import dataclass

# seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) in show_vma_header_prefix(), 64-bit.
NAME_PAD_WIDTH = 25 + 8 * 6 - 1

# Names the kernel gives to special mappings (get_vma_name(), arch_vma_name(), vdso code).
HEAP = "[heap]"
STACK = "[stack]"
VDSO = "[vdso]"
VVAR = "[vvar]"
VVAR_VCLOCK = "[vvar_vclock]"     # x86, 6.13+
VSYSCALL = "[vsyscall]"
ROLLUP = "[rollup]"


@dataclass(frozen=True)
class MapsLine:
    """One VMA as /proc/PID/maps shows it.

    ``perms`` is the 4-character field ('rw-p', 'r-xs', '---p'): r/w/x from VM_READ/VM_WRITE/
    VM_EXEC, then 's' if VM_MAYSHARE else 'p' (use :func:`perms_from_vm_flags`).
    ``pgoff_bytes`` is vm_pgoff << PAGE_SHIFT for file VMAs and 0 for anonymous ones.
    ``name`` is the final text of the name column, already escaped (see :func:`path_name`),
    or None/"" for an anonymous VMA without a name.
    """

    start: int
    end: int
    perms: str
    pgoff_bytes: int = 0
    dev_major: int = 0
    dev_minor: int = 0
    inode: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        if len(self.perms) != 4:
            raise ValueError(f"MapsLine.perms must have 4 characters, got {self.perms!r}")
        if self.end < self.start:
            raise ValueError(f"MapsLine: end {self.end:#x} < start {self.start:#x}")


def perms_from_vm_flags(vm_flags: int) -> str:
    """The permission column (show_vma_header_prefix()): note it tests VM_MAYSHARE, not
    VM_SHARED, so a read-only MAP_SHARED mapping still shows 's'."""
    from ..mm.vmflags import VM_EXEC, VM_MAYSHARE, VM_READ, VM_WRITE
    return (("r" if vm_flags & VM_READ else "-")
            + ("w" if vm_flags & VM_WRITE else "-")
            + ("x" if vm_flags & VM_EXEC else "-")
            + ("s" if vm_flags & VM_MAYSHARE else "p"))


def header_prefix(start: int, end: int, perms: str, pgoff_bytes: int,
                  dev_major: int, dev_minor: int, inode: int) -> str:
    """show_vma_header_prefix(): everything up to and including the space after the inode."""
    return (f"{start:08x}-{end:08x} {perms} {pgoff_bytes:08x} "
            f"{dev_major:02x}:{dev_minor:02x} {inode} ")


def pad_name(prefix: str, name: str) -> str:
    """seq_pad(m, ' ') then the name: spaces up to NAME_PAD_WIDTH, then one more space."""
    return prefix + " " * max(0, NAME_PAD_WIDTH - len(prefix)) + " " + name


def render_maps_line(line: MapsLine) -> str:
    """show_map_vma(): one line of /proc/PID/maps, with its newline."""
    prefix = header_prefix(line.start, line.end, line.perms, line.pgoff_bytes,
                           line.dev_major, line.dev_minor, line.inode)
    if line.name:
        return pad_name(prefix, line.name) + "\n"
    return prefix + "\n"


def render_maps(lines) -> str:
    """The whole file: the VMAs in address order (the caller sorts; [vsyscall] last)."""
    return "".join(render_maps_line(x) for x in lines)


def escape_path(path: str) -> str:
    """mangle_path() as seq_path(m, path, "\\n") uses it: a newline in a path is written as
    the octal escape ``\\012``; nothing else is escaped in maps/smaps."""
    return path.replace("\n", "\\012")


def path_name(path: str, deleted: bool = False) -> str:
    """The name column of a file VMA: d_path() appends " (deleted)" to an unlinked file.

    Shared anonymous memory and SysV shm are files on the internal shmem mount (device
    00:01), named "/dev/zero (deleted)" and "/SYSV%08x (deleted)" (key in hex); a memfd is
    "/memfd:NAME (deleted)".
    """
    return escape_path(path) + (" (deleted)" if deleted else "")


def sysv_shm_name(key: int) -> str:
    """Name of a SysV shm attachment (ipc/shm.c: newseg() names the file "SYSV%08x")."""
    return f"/SYSV{key & 0xFFFFFFFF:08x} (deleted)"


SHARED_ANON_NAME = "/dev/zero (deleted)"      # mm/shmem.c: shmem_zero_setup() -> "dev/zero"
SHMEM_DEV = (0, 1)                            # the internal shm_mnt superblock on the host
