"""VM_* flags of a VMA, with the values Linux 6.18 gives them on x86-64.

Follows include/linux/mm.h (the ``VM_*`` defines of a 6.x tree; the 6.19 tree restates the same
numbers as ``VMA_*_BIT`` enum entries) and the accounting predicates of mm/internal.h. The
configuration assumed is the host's (Linux 6.18.44, x86-64, /proc/config.gz):
CONFIG_64BIT=y, CONFIG_MMU=y, CONFIG_ARCH_HAS_PKEYS=y with CONFIG_ARCH_PKEY_BITS=4,
CONFIG_HAVE_ARCH_USERFAULTFD_MINOR=y, CONFIG_MEM_SOFT_DIRTY *not* set,
CONFIG_X86_USER_SHADOW_STACK *not* set.

Bits 0-31 exist on every architecture. Bits 32 and up exist only on 64-bit kernels
(``CONFIG_64BIT`` / ``CONFIG_ARCH_USES_HIGH_VMA_FLAGS``); they are listed in ``HIGH_BITS``.

History worth knowing when comparing with other 6.x kernels:

* bit 11 was VM_DENYWRITE until 5.15, then unused; since the guard-region series of
  November 2025 it is VM_MAYBE_GUARD ("gu" in smaps). The 6.18.44 host sets it after
  ``madvise(MADV_GUARD_INSTALL)``.
* VM_UFFD_MINOR was bit 37, then 38, and is bit 41 since mid-2025 (it collided with arm64's
  shadow-stack bit at 38).
* VM_SEALED was bit 63 when mseal() arrived (6.10) and is bit 42 since 6.17.
* VM_DROPPABLE (bit 40) arrived in 6.11 with MAP_DROPPABLE.
* VM_SOFTDIRTY is bit 27 only with CONFIG_MEM_SOFT_DIRTY; without it (the host) the kernel
  defines it as 0. We keep the bit value (the model's mmap sets it as mmap_region() does);
  the /proc renderers drop it unless told the configuration has soft-dirty, so the model
  prints what the host prints: no "sd", no pagemap bit 55.

This module imports nothing from vmlab.
"""

from __future__ import annotations

VM_NONE = 0x00000000

# --- bits 0-31 ------------------------------------------------------------------------------
VM_READ = 0x00000001            # bit 0   currently active protections
VM_WRITE = 0x00000002           # bit 1
VM_EXEC = 0x00000004            # bit 2
VM_SHARED = 0x00000008          # bit 3
VM_MAYREAD = 0x00000010         # bit 4   limits for mprotect(); VM_MAYREAD >> 4 == VM_READ
VM_MAYWRITE = 0x00000020        # bit 5
VM_MAYEXEC = 0x00000040         # bit 6
VM_MAYSHARE = 0x00000080        # bit 7
VM_GROWSDOWN = 0x00000100       # bit 8   general info on the segment
VM_UFFD_MISSING = 0x00000200    # bit 9   userfaultfd missing-page tracking (MMU only)
VM_PFNMAP = 0x00000400          # bit 10  page ranges without struct page
VM_MAYBE_GUARD = 0x00000800     # bit 11  VMA may contain guard regions (MADV_GUARD_INSTALL)
VM_UFFD_WP = 0x00001000         # bit 12  userfaultfd write-protect tracking
VM_LOCKED = 0x00002000          # bit 13  mlock()ed
VM_IO = 0x00004000              # bit 14  memory-mapped I/O
VM_SEQ_READ = 0x00008000        # bit 15  MADV_SEQUENTIAL
VM_RAND_READ = 0x00010000       # bit 16  MADV_RANDOM
VM_DONTCOPY = 0x00020000        # bit 17  MADV_DONTFORK: not copied at fork
VM_DONTEXPAND = 0x00040000      # bit 18  mremap() may not grow it
VM_LOCKONFAULT = 0x00080000     # bit 19  mlock2(MLOCK_ONFAULT): lock pages as they fault in
VM_ACCOUNT = 0x00100000         # bit 20  charged to the overcommit accounting (Committed_AS)
VM_NORESERVE = 0x00200000       # bit 21  MAP_NORESERVE: not charged
VM_HUGETLB = 0x00400000         # bit 22  hugetlbfs mapping
VM_SYNC = 0x00800000            # bit 23  MAP_SYNC (DAX)
VM_ARCH_1 = 0x01000000          # bit 24  x86: VM_PAT
VM_WIPEONFORK = 0x02000000      # bit 25  MADV_WIPEONFORK: child gets zero-fill
VM_DONTDUMP = 0x04000000        # bit 26  MADV_DONTDUMP
VM_SOFTDIRTY = 0x08000000       # bit 27  only with CONFIG_MEM_SOFT_DIRTY (off on the host)
VM_MIXEDMAP = 0x10000000        # bit 28  struct-page and PFN pages mixed
VM_HUGEPAGE = 0x20000000        # bit 29  MADV_HUGEPAGE
VM_NOHUGEPAGE = 0x40000000      # bit 30  MADV_NOHUGEPAGE (also set by MAP_STACK)
VM_MERGEABLE = 0x80000000       # bit 31  MADV_MERGEABLE (KSM)

# --- bits 32 and up: 64-bit kernels only ------------------------------------------------------
VM_HIGH_ARCH_BIT_0 = 32
VM_HIGH_ARCH_0 = 1 << 32
VM_HIGH_ARCH_1 = 1 << 33
VM_HIGH_ARCH_2 = 1 << 34
VM_HIGH_ARCH_3 = 1 << 35
VM_HIGH_ARCH_4 = 1 << 36
VM_HIGH_ARCH_5 = 1 << 37
VM_HIGH_ARCH_6 = 1 << 38

# Memory protection keys (x86 PKU): the key lives in VM_HIGH_ARCH_0..3; smaps prints it as
# "ProtectionKey:" and never as VmFlags mnemonics.
VM_PKEY_SHIFT = VM_HIGH_ARCH_BIT_0
VM_PKEY_BIT0 = VM_HIGH_ARCH_0
VM_PKEY_BIT1 = VM_HIGH_ARCH_1
VM_PKEY_BIT2 = VM_HIGH_ARCH_2
VM_PKEY_BIT3 = VM_HIGH_ARCH_3   # CONFIG_ARCH_PKEY_BITS=4 on x86
VM_PKEY_BIT4 = VM_NONE          # only with CONFIG_ARCH_PKEY_BITS > 4 (not x86)
ARCH_VM_PKEY_FLAGS = VM_PKEY_BIT0 | VM_PKEY_BIT1 | VM_PKEY_BIT2 | VM_PKEY_BIT3

VM_SHADOW_STACK = VM_HIGH_ARCH_5    # x86 user shadow stack; needs CONFIG_X86_USER_SHADOW_STACK
VM_ALLOW_ANY_UNCACHED = 1 << 39     # VFIO/KVM
VM_DROPPABLE = 1 << 40              # MAP_DROPPABLE
VM_UFFD_MINOR = 1 << 41             # userfaultfd minor faults
VM_SEALED = 1 << 42                 # mseal()

HIGH_BITS = (VM_HIGH_ARCH_0 | VM_HIGH_ARCH_1 | VM_HIGH_ARCH_2 | VM_HIGH_ARCH_3 | VM_HIGH_ARCH_4
             | VM_HIGH_ARCH_5 | VM_HIGH_ARCH_6 | VM_ALLOW_ANY_UNCACHED | VM_DROPPABLE
             | VM_UFFD_MINOR | VM_SEALED)

# --- aliases and masks (include/linux/mm.h) ------------------------------------------------
VM_PAT = VM_ARCH_1                  # x86
VM_STACK = VM_GROWSDOWN             # x86: !CONFIG_STACK_GROWSUP
VM_STACK_EARLY = VM_NONE
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP     # non-mergeable, non-mlockable
VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT
VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR
VM_DATA_FLAGS_NON_EXEC = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
VM_DATA_DEFAULT_FLAGS = VM_DATA_FLAGS_NON_EXEC      # x86-64 without READ_IMPLIES_EXEC
VM_STACK_DEFAULT_FLAGS = VM_DATA_DEFAULT_FLAGS
VM_STACK_FLAGS = VM_STACK | VM_STACK_DEFAULT_FLAGS | VM_ACCOUNT
VM_STACK_INCOMPLETE_SETUP = VM_RAND_READ | VM_SEQ_READ | VM_STACK_EARLY

# Every defined flag, by name, for debugging output and for tests that every bit is named.
NAMES: dict[int, str] = {
    VM_READ: "VM_READ", VM_WRITE: "VM_WRITE", VM_EXEC: "VM_EXEC", VM_SHARED: "VM_SHARED",
    VM_MAYREAD: "VM_MAYREAD", VM_MAYWRITE: "VM_MAYWRITE", VM_MAYEXEC: "VM_MAYEXEC",
    VM_MAYSHARE: "VM_MAYSHARE", VM_GROWSDOWN: "VM_GROWSDOWN", VM_UFFD_MISSING: "VM_UFFD_MISSING",
    VM_PFNMAP: "VM_PFNMAP", VM_MAYBE_GUARD: "VM_MAYBE_GUARD", VM_UFFD_WP: "VM_UFFD_WP",
    VM_LOCKED: "VM_LOCKED", VM_IO: "VM_IO", VM_SEQ_READ: "VM_SEQ_READ",
    VM_RAND_READ: "VM_RAND_READ", VM_DONTCOPY: "VM_DONTCOPY", VM_DONTEXPAND: "VM_DONTEXPAND",
    VM_LOCKONFAULT: "VM_LOCKONFAULT", VM_ACCOUNT: "VM_ACCOUNT", VM_NORESERVE: "VM_NORESERVE",
    VM_HUGETLB: "VM_HUGETLB", VM_SYNC: "VM_SYNC", VM_ARCH_1: "VM_ARCH_1",
    VM_WIPEONFORK: "VM_WIPEONFORK", VM_DONTDUMP: "VM_DONTDUMP", VM_SOFTDIRTY: "VM_SOFTDIRTY",
    VM_MIXEDMAP: "VM_MIXEDMAP", VM_HUGEPAGE: "VM_HUGEPAGE", VM_NOHUGEPAGE: "VM_NOHUGEPAGE",
    VM_MERGEABLE: "VM_MERGEABLE", VM_PKEY_BIT0: "VM_PKEY_BIT0", VM_PKEY_BIT1: "VM_PKEY_BIT1",
    VM_PKEY_BIT2: "VM_PKEY_BIT2", VM_PKEY_BIT3: "VM_PKEY_BIT3", VM_HIGH_ARCH_4: "VM_HIGH_ARCH_4",
    VM_SHADOW_STACK: "VM_SHADOW_STACK", VM_HIGH_ARCH_6: "VM_HIGH_ARCH_6",
    VM_ALLOW_ANY_UNCACHED: "VM_ALLOW_ANY_UNCACHED", VM_DROPPABLE: "VM_DROPPABLE",
    VM_UFFD_MINOR: "VM_UFFD_MINOR", VM_SEALED: "VM_SEALED",
}


def vm_flags_str(flags: int) -> str:
    """``VM_READ|VM_WRITE|...`` for messages; unknown bits as hex."""
    parts = []
    rest = flags
    for bit in range(64):
        b = 1 << bit
        if flags & b and b in NAMES:
            parts.append(NAMES[b])
            rest &= ~b
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "VM_NONE"


def vma_pkey(flags: int) -> int:
    """The protection key stored in the VMA (arch/x86/include/asm/pkeys.h: vma_pkey())."""
    return (flags & ARCH_VM_PKEY_FLAGS) >> VM_PKEY_SHIFT


# --- vm_stat_account() classification (mm/internal.h) ---------------------------------------
def is_exec_mapping(flags: int) -> bool:
    """Counts in exec_vm (VmExe + VmLib): executable, not writable, not a stack."""
    return (flags & (VM_EXEC | VM_WRITE | VM_STACK)) == VM_EXEC


def is_stack_mapping(flags: int) -> bool:
    """Counts in stack_vm (VmStk): VM_GROWSDOWN on x86, or a shadow stack."""
    return (flags & VM_STACK) == VM_STACK or bool(flags & VM_SHADOW_STACK)


def is_data_mapping(flags: int) -> bool:
    """Counts in data_vm (VmData): writable, private, not a stack (MAP_STACK is still data)."""
    return (flags & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE


def is_cow_mapping(flags: int) -> bool:
    """Private and possibly writable (include/linux/mm.h: is_cow_mapping())."""
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE
