"""x86-64 page-table entry bits and Linux's swap-entry encoding.

Models arch/x86/include/asm/pgtable_types.h (the _PAGE_* bits) and
arch/x86/include/asm/pgtable_64.h (the swap PTE format). A leaf entry is a 64-bit integer:

    present entry:   NX(63) | pfn(12..51) | SOFT_DIRTY(11) | SPECIAL(9) | PSE(7) | D(6) | A(5)
                     | PCD(4) | PWT(3) | U(2) | RW(1) | P(0)
    PROT_NONE entry: like present but P clear and PROTNONE(8) set; pte_present() is still true
    swap entry:      TYPE(59..63) | ~OFFSET(9..58) | EXCLUSIVE(3) | UFFD_WP(2) | SOFT_DIRTY(1), P=0
    none:            0

pte_present() is P | PROTNONE, exactly as on x86 (a PROT_NONE page is still mapped: it
counts in Rss and pagemap shows it present). A swap PTE is !none && !present.

Everything here is scalar helpers plus numpy-friendly masks; the page tables themselves are in
pagetable.py.
"""

from __future__ import annotations

import numpy as np

_PAGE_BIT_PRESENT = 0
_PAGE_BIT_RW = 1
_PAGE_BIT_USER = 2
_PAGE_BIT_PWT = 3
_PAGE_BIT_PCD = 4
_PAGE_BIT_ACCESSED = 5
_PAGE_BIT_DIRTY = 6
_PAGE_BIT_PSE = 7
_PAGE_BIT_GLOBAL = 8
_PAGE_BIT_SOFTW1 = 9
_PAGE_BIT_SOFTW3 = 11
_PAGE_BIT_NX = 63

PRESENT = 1 << _PAGE_BIT_PRESENT
RW = 1 << _PAGE_BIT_RW
USER = 1 << _PAGE_BIT_USER
PWT = 1 << _PAGE_BIT_PWT
PCD = 1 << _PAGE_BIT_PCD
ACCESSED = 1 << _PAGE_BIT_ACCESSED
DIRTY = 1 << _PAGE_BIT_DIRTY
PSE = 1 << _PAGE_BIT_PSE
PROTNONE = 1 << _PAGE_BIT_GLOBAL          # _PAGE_PROTNONE aliases _PAGE_GLOBAL on user PTEs
SPECIAL = 1 << _PAGE_BIT_SOFTW1           # pte_special(): the zero page, pfn maps
SOFT_DIRTY = 1 << _PAGE_BIT_SOFTW3        # _PAGE_SOFT_DIRTY (CONFIG_MEM_SOFT_DIRTY)
NX = 1 << _PAGE_BIT_NX

PFN_SHIFT = 12
PFN_BITS = 40                              # bits 12..51: __PHYSICAL_MASK_SHIFT 52
PFN_MASK = ((1 << PFN_BITS) - 1) << PFN_SHIFT

# Entries of the upper levels (pgd/pud/pmd) pointing at a lower table: _PAGE_TABLE.
TABLE = PRESENT | RW | USER | ACCESSED | DIRTY

# --- swap PTEs -------------------------------------------------------------------------------
SWP_TYPE_BITS = 5
SWP_OFFSET_FIRST_BIT = _PAGE_BIT_GLOBAL + 1        # 9
SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS  # 14
SWP_SOFT_DIRTY = RW          # _PAGE_SWP_SOFT_DIRTY
SWP_UFFD_WP = USER           # _PAGE_SWP_UFFD_WP
SWP_EXCLUSIVE = PWT          # _PAGE_SWP_EXCLUSIVE: remembers PG_anon_exclusive across swap-out
MAX_SWAPFILES = 1 << SWP_TYPE_BITS
SWP_OFFSET_MAX = (1 << (64 - SWP_OFFSET_SHIFT)) - 1
_U64 = (1 << 64) - 1


def pte_present(pte: int) -> bool:
    """pte_present(): hardware-present, or PROT_NONE (still a mapping the kernel owns)."""
    return bool(pte & (PRESENT | PROTNONE))


def pte_none(pte: int) -> bool:
    return pte == 0


def is_swap_pte(pte: int) -> bool:
    """!pte_none() && !pte_present()."""
    return pte != 0 and not (pte & (PRESENT | PROTNONE))


def pte_pfn(pte: int) -> int:
    return (pte & PFN_MASK) >> PFN_SHIFT


def mk_pte(pfn: int, prot: int) -> int:
    """mk_pte(): a present entry for ``pfn`` with protection bits ``prot``."""
    return ((pfn << PFN_SHIFT) & PFN_MASK) | prot


def swp_entry_to_pte(swp_type: int, offset: int) -> int:
    """__swp_entry() + __swp_entry_to_pte(): type in the top 5 bits, offset inverted below."""
    if not 0 <= swp_type < MAX_SWAPFILES:
        raise ValueError(f"swp_entry_to_pte: bad swap type {swp_type}")
    if not 0 <= offset <= SWP_OFFSET_MAX:
        raise ValueError(f"swp_entry_to_pte: bad swap offset {offset}")
    val = ((~offset & _U64) << SWP_OFFSET_SHIFT & _U64) >> SWP_TYPE_BITS
    return val | (swp_type << (64 - SWP_TYPE_BITS))


def pte_swp_type(pte: int) -> int:
    """__swp_type(): the top five bits."""
    return pte >> (64 - SWP_TYPE_BITS)


def pte_swp_offset(pte: int) -> int:
    """__swp_offset(): shift the type out, invert, shift back down."""
    return ((~pte & _U64) << SWP_TYPE_BITS & _U64) >> SWP_OFFSET_SHIFT


# PTE markers (include/linux/swapops.h): a non-present PTE that is not a swap slot. The
# marker type is the last swap type; pagemap reports it as "swapped" with type 31.
SWP_PTE_MARKER = MAX_SWAPFILES - 1
PTE_MARKER_UFFD_WP = 1 << 0
PTE_MARKER_POISONED = 1 << 1
PTE_MARKER_GUARD = 1 << 2


def make_pte_marker(bits: int) -> int:
    return swp_entry_to_pte(SWP_PTE_MARKER, bits)


def is_pte_marker(pte: int) -> bool:
    return is_swap_pte(pte) and pte_swp_type(pte) == SWP_PTE_MARKER


def is_guard_pte(pte: int) -> bool:
    return is_pte_marker(pte) and bool(pte_swp_offset(pte) & PTE_MARKER_GUARD)


def swp_pte_flags_mask() -> int:
    return SWP_SOFT_DIRTY | SWP_UFFD_WP | SWP_EXCLUSIVE


# numpy versions of the masks, to avoid re-boxing constants in hot loops
NP_PRESENT = np.uint64(PRESENT)
NP_RW = np.uint64(RW)
NP_ACCESSED = np.uint64(ACCESSED)
NP_DIRTY = np.uint64(DIRTY)
NP_PROTNONE = np.uint64(PROTNONE)
NP_PRESENT_ANY = np.uint64(PRESENT | PROTNONE)
NP_SPECIAL = np.uint64(SPECIAL)
NP_SOFT_DIRTY = np.uint64(SOFT_DIRTY)
NP_PFN_MASK = np.uint64(PFN_MASK)
NP_PFN_SHIFT = np.uint64(PFN_SHIFT)
NP_NOT_RW = np.uint64(~RW & _U64)
NP_NOT_ACCESSED = np.uint64(~ACCESSED & _U64)
NP_NOT_DIRTY = np.uint64(~DIRTY & _U64)
NP_NOT_RW_OR_A = np.uint64(~(RW | ACCESSED) & _U64)
# bits that describe protection (what vm_page_prot controls) in a present entry
PROT_BITS = PRESENT | RW | USER | PROTNONE | NX | ACCESSED
NP_PROT_BITS = np.uint64(PROT_BITS)
NP_NOT_PROT_BITS = np.uint64(~PROT_BITS & _U64)


def np_present(ptes: np.ndarray) -> np.ndarray:
    """Vector pte_present()."""
    return (ptes & NP_PRESENT_ANY) != 0


def np_swap(ptes: np.ndarray) -> np.ndarray:
    """Vector is_swap_pte()."""
    return (ptes != 0) & ((ptes & NP_PRESENT_ANY) == 0)


def np_pfn(ptes: np.ndarray) -> np.ndarray:
    """Vector pte_pfn() as intp, ready for fancy indexing into the frame table."""
    return ((ptes & NP_PFN_MASK) >> NP_PFN_SHIFT).astype(np.intp)


def np_swp_type(ptes: np.ndarray) -> np.ndarray:
    return (ptes >> np.uint64(64 - SWP_TYPE_BITS)).astype(np.intp)


def np_swp_offset(ptes: np.ndarray) -> np.ndarray:
    return ((~ptes << np.uint64(SWP_TYPE_BITS)) >> np.uint64(SWP_OFFSET_SHIFT)).astype(np.intp)


def np_marker(ptes: np.ndarray) -> np.ndarray:
    """Vector is_pte_marker()."""
    return np_swap(ptes) & ((ptes >> np.uint64(64 - SWP_TYPE_BITS)) == np.uint64(SWP_PTE_MARKER))


def np_swp_entry(swp_type: np.ndarray | int, offsets: np.ndarray) -> np.ndarray:
    """Vector swp_entry_to_pte()."""
    off = np.asarray(offsets, dtype=np.uint64)
    val = (~off << np.uint64(SWP_OFFSET_SHIFT)) >> np.uint64(SWP_TYPE_BITS)
    return val | (np.asarray(swp_type, dtype=np.uint64) << np.uint64(64 - SWP_TYPE_BITS))


def describe(pte: int) -> str:
    """A human-readable decoding of one leaf entry, for debugging and the explainer."""
    if pte == 0:
        return "none"
    if is_swap_pte(pte):
        bits = [n for n, b in (("sd", SWP_SOFT_DIRTY), ("uffd", SWP_UFFD_WP), ("excl", SWP_EXCLUSIVE)) if pte & b]
        return f"swap type={pte_swp_type(pte)} offset={pte_swp_offset(pte)}" + (f" [{' '.join(bits)}]" if bits else "")
    names = [n for n, b in (("P", PRESENT), ("RW", RW), ("U", USER), ("A", ACCESSED), ("D", DIRTY),
                            ("PROTNONE", PROTNONE), ("SPECIAL", SPECIAL), ("SD", SOFT_DIRTY), ("NX", NX)) if pte & b]
    return f"pfn={pte_pfn(pte)} {' '.join(names)}"


GUARD_PTE = make_pte_marker(PTE_MARKER_GUARD)
