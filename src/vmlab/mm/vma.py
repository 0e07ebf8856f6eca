"""The virtual memory area: one contiguous range of an address space with one set of rules.

Models struct vm_area_struct (include/linux/mm_types.h) and the small helpers around it in
include/linux/mm.h (vma_is_anonymous, vma_pages, is_cow_mapping, vm_get_page_prot from
mm/mmap.c with x86-64's protection_map).

Fields (tags: (c) constant while the VMA exists, (o) owned by kernel/, (d) design-owned):

    vm_start, vm_end   page-aligned bounds, vm_start < vm_end (o)
    vm_flags           VM_* bits (mm/vmflags.py) (o)
    vm_pgoff           offset of vm_start in the backing object, in pages. For private
                       anonymous memory it is vm_start >> PAGE_SHIFT at mmap time and survives
                       mremap, which is how an anon page's index stays valid after a move (o)
    vm_file            the backing object for file and shared-anonymous mappings (a shmem
                       inode for MAP_SHARED|MAP_ANONYMOUS), None for private anonymous (c)
    vm_mm              the address space owning the VMA (c)
    anon_vma, anon_vma_chain   the linux design's reverse-map anchors (d); every other design
                       keeps them too, if only as merge tags (VMA merges follow Linux's
                       anon_vma rules everywhere), and any per-VMA state of its own in
                       ``design_state`` (bsd's map entries) (d)
    special_name       the name a special mapping shows in maps ([vvar], [vdso]) (c)

A VMA never spans two backing objects and never straddles an unmapped hole; the VMA tree keeps
them sorted and non-overlapping (checked by Machine.check()).
"""

from __future__ import annotations

from ..constants import PAGE_SHIFT, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE
from ..hw import pte as P
from .vmflags import (VM_EXEC, VM_GROWSDOWN, VM_MAYSHARE, VM_READ, VM_SHARED, VM_WRITE,
                      VM_MAYWRITE, VM_LOCKED, VM_LOCKONFAULT)

VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC


def calc_vm_prot_bits(prot: int) -> int:
    """PROT_* -> VM_READ/WRITE/EXEC (include/linux/mman.h: calc_vm_prot_bits)."""
    return ((VM_READ if prot & PROT_READ else 0) | (VM_WRITE if prot & PROT_WRITE else 0)
            | (VM_EXEC if prot & PROT_EXEC else 0))


EXEC_ONLY_PKEY = 1                    # execute_only_pkey(): the key x86 reserves for PROT_EXEC
VM_PKEY_MASK = 0xF << 32              # VM_PKEY_BIT0..3


def pkey_bits(prot: int, pkeys: bool) -> int:
    """calc_vm_prot_bits()'s pkey part: with protection keys, a PROT_EXEC-only mapping gets
    the execute-only key (arch/x86/mm/pkeys.c: __execute_only_pkey)."""
    return (EXEC_ONLY_PKEY << 32) if pkeys and prot == PROT_EXEC else 0


def vm_get_page_prot(vm_flags: int) -> int:
    """The PTE protection bits for a VMA (arch/x86/mm/pgprot.c protection_map[]).

    x86-64 sets _PAGE_ACCESSED in every user protection and NX unless VM_EXEC. A private
    writable mapping is mapped read-only (PAGE_COPY) so the first write faults and COWs; a
    shared writable one is PAGE_SHARED. PROT_NONE is _PAGE_PROTNONE without _PAGE_PRESENT.
    """
    r, w, x = vm_flags & VM_READ, vm_flags & VM_WRITE, vm_flags & VM_EXEC
    if not (r or w or x):
        return P.PROTNONE | P.ACCESSED                      # PAGE_NONE
    prot = P.PRESENT | P.USER | P.ACCESSED
    if w and (vm_flags & VM_SHARED):
        prot |= P.RW
    if not x:
        prot |= P.NX
    return prot


class VMA:
    """struct vm_area_struct. ``repr`` is valid Python for pasting into tests."""

    def __init__(self, mm, vm_start: int, vm_end: int, vm_flags: int, vm_pgoff: int = 0,
                 vm_file=None):
        assert vm_start < vm_end and not (vm_start | vm_end) & (PAGE_SIZE - 1), \
            f"VMA: bad bounds {vm_start:#x}-{vm_end:#x}"
        self.vm_mm = mm
        self.vm_start = vm_start
        self.vm_end = vm_end
        self.vm_flags = vm_flags
        self.vm_pgoff = vm_pgoff
        self.vm_file = vm_file
        self.anon_vma = None
        self.anon_vma_chain: list = []
        self.design_state = None
        self.special_name = None          # "[vdso]" etc. for special mappings (vm_ops->name)

    def dup(self, mm=None) -> "VMA":
        """vm_area_dup(): a copy with the same bounds, flags, offset, file and special name,
        in ``mm`` (default: the same address space). The design's per-VMA state is not copied:
        the design decides what the copy shares (vma_split, fork_vma)."""
        new = VMA(self.vm_mm if mm is None else mm, self.vm_start, self.vm_end, self.vm_flags,
                  self.vm_pgoff, self.vm_file)
        new.special_name = self.special_name
        return new

    # --- include/linux/mm.h helpers ---------------------------------------------------------
    @property
    def vm_page_prot(self) -> int:
        """vma->vm_page_prot, with write-notify applied (vma_set_page_prot): a shared writable
        mapping of a file with dirty accounting starts read-only so writes fault."""
        prot = vm_get_page_prot(self.vm_flags)
        if self.vm_file is not None and self.vm_flags & VM_SHARED and getattr(self.vm_file, "writenotify", False):
            prot &= ~P.RW
        return prot

    def pages(self) -> int:
        """vma_pages()."""
        return (self.vm_end - self.vm_start) >> PAGE_SHIFT

    def is_anonymous(self) -> bool:
        """vma_is_anonymous(): no backing object at all (private anonymous memory)."""
        return self.vm_file is None

    def is_shared(self) -> bool:
        return bool(self.vm_flags & VM_SHARED)

    def is_cow_mapping(self) -> bool:
        """is_cow_mapping(): private and possibly writable, so writes must copy."""
        return (self.vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE

    def is_shmem(self) -> bool:
        return self.vm_file is not None and getattr(self.vm_file, "is_shmem", False)

    def is_locked(self) -> bool:
        return bool(self.vm_flags & VM_LOCKED)

    def is_lockonfault(self) -> bool:
        return bool(self.vm_flags & VM_LOCKONFAULT)

    def is_stack(self) -> bool:
        return bool(self.vm_flags & VM_GROWSDOWN)

    def linear_page_index(self, addr: int) -> int:
        """linear_page_index(): the page offset of ``addr`` in the backing object / anon_vma."""
        return ((addr - self.vm_start) >> PAGE_SHIFT) + self.vm_pgoff

    def addr_of_index(self, pgoff: int) -> int:
        """vma_address(): the virtual address at which page offset ``pgoff`` is mapped."""
        return self.vm_start + ((pgoff - self.vm_pgoff) << PAGE_SHIFT)

    def contains(self, addr: int) -> bool:
        return self.vm_start <= addr < self.vm_end

    def __repr__(self) -> str:
        return (f"VMA(mm=None, vm_start={self.vm_start:#x}, vm_end={self.vm_end:#x}, "
                f"vm_flags={self.vm_flags:#x}, vm_pgoff={self.vm_pgoff:#x})")


__all__ = ["VMA", "calc_vm_prot_bits", "vm_get_page_prot", "VM_ACCESS_FLAGS", "VM_MAYSHARE"]
