"""User-visible constants with the values Linux gives them on x86-64.

Every number here is the one in the kernel's uapi headers
(include/uapi/asm-generic/mman-common.h, arch/x86/include/uapi/asm/mman.h,
include/uapi/linux/mman.h, include/uapi/linux/shm.h, include/uapi/linux/ipc.h,
include/uapi/asm-generic/siginfo.h), so a program written against vmlab can pass the
same integers to the real kernel (the host backend does exactly that).

This module is the bottom of the import graph: it imports nothing from vmlab.
"""

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)

# x86-64 user address space with 4-level paging: 47 bits, minus the top guard page
# (arch/x86/include/asm/page_64_types.h: TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE).
TASK_SIZE = (1 << 47) - PAGE_SIZE

# --- mmap/mprotect protections (mman-common.h) ---------------------------------------
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000

# --- mmap flags -------------------------------------------------------------------------
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_DROPPABLE = 0x08
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_ANON = MAP_ANONYMOUS
MAP_32BIT = 0x40            # x86 only
MAP_ABOVE4G = 0x80          # x86-64: place above 4 GiB
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000

MAP_FAILED = -1

# --- mremap flags (include/uapi/linux/mman.h) ------------------------------------------
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4

# --- madvise advice (mman-common.h) -------------------------------------------------------
MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_MERGEABLE = 12
MADV_UNMERGEABLE = 13
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_DONTDUMP = 16
MADV_DODUMP = 17
MADV_WIPEONFORK = 18
MADV_KEEPONFORK = 19
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_DONTNEED_LOCKED = 24
MADV_COLLAPSE = 25
MADV_HWPOISON = 100
MADV_SOFT_OFFLINE = 101
MADV_GUARD_INSTALL = 102
MADV_GUARD_REMOVE = 103

# --- mlock family ---------------------------------------------------------------------------
MLOCK_ONFAULT = 0x01
MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4

# --- msync ------------------------------------------------------------------------------------
MS_ASYNC = 1
MS_INVALIDATE = 2
MS_SYNC = 4

# --- SysV IPC / shm (include/uapi/linux/ipc.h, shm.h; SHMLBA is PAGE_SIZE on x86) ---------
IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_NOWAIT = 0o4000
IPC_RMID = 0
IPC_SET = 1
IPC_STAT = 2
IPC_INFO = 3
SHM_RDONLY = 0o10000           # shmat flag
SHM_NORESERVE = 0o10000        # shmget flag (same bit): no commit charge for the segment
SHM_RND = 0o20000
SHM_REMAP = 0o40000
SHM_EXEC = 0o100000
SHM_LOCK = 11
SHM_UNLOCK = 12
SHMLBA = PAGE_SIZE

# --- siginfo codes for SIGSEGV / SIGBUS (asm-generic/siginfo.h) --------------------------
SEGV_MAPERR = 1
SEGV_ACCERR = 2
SEGV_PKUERR = 4             # x86 protection keys: an exec-only mapping read
BUS_ADRALN = 1
BUS_ADRERR = 2
BUS_OBJERR = 3

# --- pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst, fs/proc/task_mmu.c) ---
PM_PFRAME_BITS = 55
PM_PFRAME_MASK = (1 << PM_PFRAME_BITS) - 1
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_UFFD_WP = 1 << 57
PM_GUARD_REGION = 1 << 58
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63
PM_SWAP_TYPE_BITS = 5
PM_SWAP_TYPE_MASK = (1 << PM_SWAP_TYPE_BITS) - 1

# --- /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h) ---------------------
KPF_LOCKED = 0
KPF_ERROR = 1
KPF_REFERENCED = 2
KPF_UPTODATE = 3
KPF_DIRTY = 4
KPF_LRU = 5
KPF_ACTIVE = 6
KPF_SLAB = 7
KPF_WRITEBACK = 8
KPF_RECLAIM = 9
KPF_BUDDY = 10
KPF_MMAP = 11
KPF_ANON = 12
KPF_SWAPCACHE = 13
KPF_SWAPBACKED = 14
KPF_COMPOUND_HEAD = 15
KPF_COMPOUND_TAIL = 16
KPF_HUGE = 17
KPF_UNEVICTABLE = 18
KPF_HWPOISON = 19
KPF_NOPAGE = 20
KPF_KSM = 21
KPF_THP = 22
KPF_OFFLINE = 23
KPF_ZERO_PAGE = 24
KPF_IDLE = 25
KPF_PGTABLE = 26
# kernel-internal bits, shown only with CONFIG_DEBUG / page-types -r
KPF_RESERVED = 32
KPF_MLOCKED = 33
KPF_OWNER_2 = 34
KPF_PRIVATE = 35
KPF_PRIVATE_2 = 36
KPF_OWNER_PRIVATE = 37
KPF_ARCH = 38
KPF_UNCACHED = 39
KPF_SOFTDIRTY = 40
KPF_ARCH_2 = 41
KPF_ANON_EXCLUSIVE = 47
KPF_MAPPEDTODISK = 48

# memfd_create(2) and file seals (include/uapi/linux/memfd.h, fcntl.h)
MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_HUGETLB = 0x0004
MFD_NOEXEC_SEAL = 0x0008
MFD_EXEC = 0x0010
MFD_NAME_MAX = 249                  # NAME_MAX - strlen("memfd:")
F_ADD_SEALS = 1033                  # F_LINUX_SPECIFIC_BASE + 9
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
F_SEAL_FUTURE_WRITE = 0x0010
F_SEAL_EXEC = 0x0020


__all__ = [n for n in dir() if n.isupper()]
