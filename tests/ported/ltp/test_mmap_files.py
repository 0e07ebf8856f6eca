"""Ports the logic of LTP testcases/kernel/syscalls/mmap/, the cases that map files (the
anonymous ones are in test_mmap.py): mmap01.c .. mmap09.c, mmap12.c, mmap13.c, mmap15.c,
mmap17.c, mmap19.c, mmap20.c, mmap001.c and mmap21.c.

Files are made through the API (open + pwrite, or pwrite of one byte at the end, as LTP's
lseek + write does). Unless a test says otherwise they live on the simulated disk (/data/...);
tests that upstream run on whatever filesystem the temporary directory is on are run on both
the disk and tmpfs (/tmp/... in the model, a tmpfs directory on the host).

Ported, with what differs:
- mmap01.c: bytes past end of file in the last mapped page read as zero, and stores there
  are not written back by msync(MS_SYNC) (the child reads the file as upstream).
- mmap02.c, mmap04.c: PROT_READ and PROT_READ|PROT_EXEC shared mappings of a file opened
  O_RDONLY show the file's contents. The "fchmod 0444/0555" steps are left out: the API has
  no file modes beyond open's, and permission bits do not matter to root anyway.
- mmap03.c: PROT_EXEC of a file opened O_RDONLY succeeds and the file still reads back;
  as upstream the mapping itself is not read (an execute-only mapping is unreadable on this
  host, which has protection keys). The permissions are checked in /proc/PID/maps.
- mmap05.c: a read of a PROT_NONE shared file mapping raises SIGSEGV (SEGV_ACCERR).
- mmap06.c: all eight cases, on a file opened O_WRONLY: six EACCES, two EINVAL.
- mmap07.c: PROT_WRITE + MAP_PRIVATE of an O_WRONLY fd: EACCES.
- mmap08.c: a closed fd: EBADF.
- mmap09.c: ftruncate of a mapped file to a smaller, a larger and zero size all succeed
  (the new sizes are also checked with fstat).
- mmap12.c: MAP_PRIVATE|MAP_POPULATE of a 1 MiB file made by ftruncate: every page is
  present at once and reads zero.
- mmap13.c: a write one byte into the second page of a 2-page shared mapping of a half-page
  file raises SIGBUS (BUS_ADRERR, at that byte).
- mmap15.c: MAP_FIXED of a file at the last page of the address space: ENOMEM or EINVAL.
- mmap17.c: MAP_FIXED_NOREPLACE of a second file over a mapping of the first: EEXIST.
- mmap19.c: two files mapped MAP_PRIVATE|PROT_READ, unmapped and mapped again with each
  other's addresses as hints: each mapping shows its own file.
- mmap20.c: MAP_SHARED_VALIDATE with an unknown flag on a file: EOPNOTSUPP. The flag is
  1 << 9, as in the later LTP fix (ltp mailing list, "mmap20: ... INVALID_FLAG (1 << 9)"):
  upstream's 1 << 7 is MAP_ABOVE4G on x86-64, which 6.18 accepts (measured here: the mapping
  succeeds on the host, and in the model).
- mmap001.c and mmap21.c: a 1000-page file written byte by byte through a PROT_WRITE shared
  mapping (in a child for mmap21), msync(MS_SYNC), and read back with pread.

Not ported: mmap10.c's /dev/zero cases (there are no device files in the model),
mmap16.c (fills a small ext4 image until ENOSPC; the model's disk does not run out), and the
anonymous-only tests listed in test_mmap.py.
"""

import errno

import pytest

import vmlab
from filelib import (O_CREAT, O_RDONLY, O_RDWR, O_WRONLY, file_with, read_file, reopen,
                     sized_file)
from portlib import MB, P, RW, expect_errno, maps, npresent
from vmlab.constants import (BUS_ADRERR, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE,
                             MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MS_SYNC, PROT_EXEC,
                             PROT_NONE, PROT_READ, PROT_WRITE, SEGV_ACCERR)

FS = pytest.mark.parametrize("path", ["/data/mmapfile", "/tmp/mmapfile"], ids=["disk", "tmpfs"])


def perms_at(m, p, addr):
    return next(pr for s, e, pr, _n in maps(m, p) if s <= addr < e)


@FS
def test_mmap01_beyond_eof_zeroed_and_not_written(machine, path):
    """mmap01: a one-page shared mapping of a 12-byte file reads zeros past end of file;
    'X', 'Y', 'Z' stored there and msync(MS_SYNC)'d never reach the file, which a child still
    reads as exactly the 12 bytes written."""
    string = b"hello world\n"
    p = machine.spawn()
    fd = file_with(p, path, string)
    file_sz = p.fstat(fd)["st_size"]
    assert file_sz == len(string)
    addr = p.mmap(0, P, RW, MAP_SHARED, fd, 0)
    assert p.read(addr + file_sz, P - file_sz) == bytes(P - file_sz)
    p.write(addr + file_sz, b"XYZ")
    p.msync(addr, P, MS_SYNC)
    child = p.fork()
    data = read_file(child, path)
    assert data == string
    assert not set(data) & set(b"XYZ"), "pattern found in file"
    child.munmap(addr, P)
    child.exit()
    p.munmap(addr, P)


@pytest.mark.parametrize("prot", [PROT_READ, PROT_READ | PROT_EXEC], ids=["mmap02", "mmap04"])
def test_mmap02_04_readable_shared_file_mapping(machine, prot):
    """mmap02 (PROT_READ) and mmap04 (PROT_READ|PROT_EXEC): a shared mapping of a one-page
    file of 'A's, opened O_RDONLY, succeeds and holds exactly what read() returns."""
    p = machine.spawn()
    fd = reopen(p, "/data/mmapfile", b"A" * P, O_RDONLY)
    addr = p.mmap(0, P, prot, MAP_SHARED, fd, 0)
    assert p.read(addr, P) == p.pread(fd, P, 0) == b"A" * P
    assert perms_at(machine, p, addr) == ("r-xs" if prot & PROT_EXEC else "r--s")
    p.munmap(addr, P)


def test_mmap03_exec_only_shared_file_mapping(machine):
    """mmap03: in a child, mmap(PROT_EXEC, MAP_SHARED) of a page of 'a's opened O_RDONLY
    succeeds (an execute-only, shared VMA: --xs) and the file still reads back as 'a's; the
    child exits normally."""
    p = machine.spawn()
    fd = reopen(p, "/data/mmapfile", b"a" * P, O_RDONLY)
    child = p.fork()
    addr = child.mmap(0, P, PROT_EXEC, MAP_SHARED, fd, 0)
    assert perms_at(machine, child, addr) == "--xs"
    assert child.pread(fd, P, 0) == b"a" * P
    child.munmap(addr, P)
    child.exit()


def test_mmap05_prot_none_segfaults(machine):
    """mmap05: a PROT_NONE shared mapping of a file opened O_RDONLY succeeds; reading its
    first byte raises SIGSEGV."""
    p = machine.spawn()
    fd = reopen(p, "/data/mmapfile", b"A" * P, O_RDONLY)
    addr = p.mmap(0, P, PROT_NONE, MAP_SHARED, fd, 0)
    with pytest.raises(vmlab.SegmentationFault) as info:
        p.read(addr, 1)
    assert info.value.code == SEGV_ACCERR and info.value.addr == addr
    p.munmap(addr, P)


MMAP06 = [
    (1024, PROT_WRITE, MAP_PRIVATE, errno.EACCES),
    (1024, PROT_WRITE, MAP_SHARED, errno.EACCES),
    (1024, PROT_READ, MAP_PRIVATE, errno.EACCES),
    (1024, PROT_READ, MAP_SHARED, errno.EACCES),
    (1024, RW, MAP_PRIVATE, errno.EACCES),
    (1024, RW, MAP_SHARED, errno.EACCES),
    (0, RW, MAP_SHARED, errno.EINVAL),
    (1024, RW, 0, errno.EINVAL),
]


@pytest.mark.parametrize("length,prot,flags,err", MMAP06,
                         ids=[f"case{i}" for i in range(len(MMAP06))])
def test_mmap06_errors(machine, length, prot, flags, err):
    """mmap06: with a file open O_WRONLY, every file mapping fails with EACCES (a mapping
    needs read access); length 0 and flags without a mapping type fail with EINVAL."""
    p = machine.spawn()
    fd = file_with(p, "/data/mmapfile", b"A" * P, O_WRONLY | O_CREAT)
    expect_errno(err, p.mmap, 0, length, prot, flags, fd, 0)


def test_mmap07_write_private_wronly_eacces(machine):
    """mmap07: PROT_WRITE + MAP_PRIVATE of a file open O_WRONLY: EACCES."""
    p = machine.spawn()
    fd = file_with(p, "/data/mmapfile", b"A" * P, O_WRONLY | O_CREAT)
    expect_errno(errno.EACCES, p.mmap, 0, P, PROT_WRITE, MAP_PRIVATE, fd, 0)


def test_mmap08_closed_fd_ebadf(machine):
    """mmap08: a file mapping of an fd that was opened and closed: EBADF."""
    p = machine.spawn()
    fd = p.open("/data/mmapfile", O_RDWR | O_CREAT, 0o666)
    p.close(fd)
    expect_errno(errno.EBADF, p.mmap, 0, P, PROT_WRITE, MAP_SHARED, fd, 0)


@FS
def test_mmap09_truncate_mapped_file(machine, path):
    """mmap09: a 16 KiB file mapped shared and filled with 'A' through the mapping can be
    ftruncate()d to 8 KiB, to 16 KiB + 1024 and to 0 while mapped."""
    mapsize = 1 << 14
    p = machine.spawn()
    fd = p.open(path, O_RDWR | O_CREAT, 0o666)
    p.ftruncate(fd, mapsize)
    addr = p.mmap(0, mapsize, RW, MAP_SHARED, fd, 0)
    p.fill(addr, mapsize, ord("A"))
    for newsize in (mapsize - 8192, mapsize + 1024, 0):
        p.ftruncate(fd, newsize)
        assert p.fstat(fd)["st_size"] == newsize
    p.munmap(addr, mapsize)


@FS
def test_mmap12_private_populate(machine, path):
    """mmap12: mmap(MAP_PRIVATE|MAP_POPULATE, PROT_READ|PROT_WRITE) of a 1 MiB file made by
    ftruncate: all 256 pages are present in pagemap at once and every byte is zero."""
    size = MB
    p = machine.spawn()
    fd = p.open(path, O_RDWR | O_CREAT, 0o766)
    p.ftruncate(fd, size)
    addr = p.mmap(0, size, RW, MAP_PRIVATE | MAP_POPULATE, fd, 0)
    assert npresent(p, addr, size // P) == size // P
    assert p.read(addr, size) == bytes(size)
    p.munmap(addr, size)


@FS
def test_mmap13_sigbus_beyond_eof(machine, path):
    """mmap13: a 2-page shared mapping of a file of half a page; a store at page + 1 (a
    page wholly past end of file) raises SIGBUS with BUS_ADRERR at that address. (Added: a
    store past end of file but inside the file's last page raises nothing.)"""
    p = machine.spawn()
    fd = p.open(path, O_RDWR | O_CREAT, 0o766)
    p.ftruncate(fd, P // 2)
    addr = p.mmap(0, 2 * P, RW, MAP_SHARED, fd, 0)
    with pytest.raises(vmlab.BusError) as info:
        p.write(addr + P + 1, b"\0")
    assert info.value.code == BUS_ADRERR and info.value.addr == addr + P + 1
    p.write(addr + P // 2, b"\0")          # past EOF but inside the last page: no signal
    p.munmap(addr, 2 * P)


def test_mmap15_file_high_address(machine):
    """mmap15: MAP_SHARED|MAP_FIXED of a file at -page_size (above the user address space)
    fails with ENOMEM or EINVAL."""
    p = machine.spawn()
    fd = p.open("/data/mmapfile", O_RDWR | O_CREAT, 0o666)
    with pytest.raises(OSError) as info:
        p.mmap((1 << 64) - P, P, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0)
    assert info.value.errno in (errno.ENOMEM, errno.EINVAL)


def test_mmap17_fixed_noreplace_file(machine):
    """mmap17: with file1 mapped PROT_WRITE, MAP_PRIVATE, mapping file2 at the same address
    with MAP_FIXED_NOREPLACE fails with EEXIST."""
    msg = b"Writing to mapped file"
    p = machine.spawn()
    fd1 = file_with(p, "/data/file1_to_mmap", msg, mode=0o600)
    fd2 = file_with(p, "/data/file2_to_mmap", msg, mode=0o600)
    addr = p.mmap(0, len(msg), PROT_WRITE, MAP_PRIVATE, fd1, 0)
    expect_errno(errno.EEXIST, p.mmap, addr, len(msg), PROT_WRITE,
                 MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd2, 0)
    p.munmap(addr, len(msg))


def test_mmap19_swapped_addresses(machine):
    """mmap19: two files mapped MAP_PRIVATE, PROT_READ (64 bytes) show 'testing 123' and
    'my test mem'; after unmapping both and mapping each at the other's old address (as a
    hint), each mapping still shows its own file's data (no stale TLB entry)."""
    str1, str2, n = b"testing 123", b"my test mem", 64
    p = machine.spawn()
    f1 = file_with(p, "/data/testfile1", str1, mode=0o600)
    f2 = file_with(p, "/data/testfile2", str2, mode=0o600)
    mm1 = p.mmap(0, n, PROT_READ, MAP_PRIVATE, f1, 0)
    mm2 = p.mmap(0, n, PROT_READ, MAP_PRIVATE, f2, 0)
    assert p.read(mm1, len(str1)) == str1 and p.read(mm2, len(str2)) == str2
    p.munmap(mm1, n)
    p.munmap(mm2, n)
    new1 = p.mmap(mm2, n, PROT_READ, MAP_PRIVATE, f1, 0)
    new2 = p.mmap(mm1, n, PROT_READ, MAP_PRIVATE, f2, 0)
    assert p.read(new1, len(str1)) == str1
    assert p.read(new2, len(str2)) == str2


def test_mmap20_shared_validate_unknown_flag(machine):
    """mmap20: MAP_SHARED_VALIDATE with an unknown flag bit (1 << 9) on a 1024-byte file
    fails with EOPNOTSUPP."""
    p = machine.spawn()
    fd = file_with(p, "/data/file_to_mmap", b"a" * 1024, mode=0o600)
    expect_errno(errno.EOPNOTSUPP, p.mmap, 0, 1024, RW, (1 << 9) | MAP_SHARED_VALIDATE, fd, 0)


@pytest.mark.parametrize("in_child", [False, True], ids=["mmap001", "mmap21"])
def test_mmap001_21_write_big_file_through_mapping(machine, in_child):
    """mmap001 / mmap21: a file of 1000 pages (+ 1 byte) mapped PROT_WRITE, MAP_SHARED is
    written byte by byte with (char)index (by a child for mmap21); msync(MS_SYNC) succeeds and
    read() returns exactly those bytes."""
    memsize = 1000 * P
    p = machine.spawn()
    fd = sized_file(p, "/data/testfile", memsize)
    array = p.mmap(0, memsize, PROT_WRITE, MAP_SHARED, fd, 0)
    data = bytes(range(256)) * (memsize // 256)
    writer = p.fork() if in_child else p
    writer.write(array, data)
    if in_child:
        writer.exit()
    p.msync(array, memsize, MS_SYNC)
    assert p.pread(fd, memsize, 0) == data
    p.munmap(array, memsize)
    p.close(fd)
    p.unlink("/data/testfile")
