"""/proc/PID/smaps and smaps_rollup, byte for byte as Linux 6.18 prints them.

Follows fs/proc/task_mmu.c:

* struct mem_size_stats -> :class:`SmapsStats` (same fields, same units: bytes, and the
  proportional fields in bytes << PSS_SHIFT);
* smaps_account() / smaps_page_accumulate() -> :func:`smaps_account` (one present or
  migration/device PTE of an order-0 folio), the swap-PTE branch of smaps_pte_entry() ->
  :func:`smaps_swap_pte`, shmem_swap_usage()/smaps_pte_hole() -> :func:`smaps_shmem_swap`;
* __show_smap(), show_smap(), show_smaps_rollup(), show_smap_vma_flags() -> the renderers.

The division ``(PAGE_SIZE << PSS_SHIFT) / mapcount`` truncates once per page, and the final
``>> PSS_SHIFT`` and ``>> 10`` truncate once per printed line, exactly as in the kernel, so a
page shared three ways contributes 5592405/4096 bytes and three such pages print "Pss: 3 kB".
smaps_rollup sums the raw fields over all VMAs before truncating, so its Pss is not the sum of
the per-VMA Pss lines.

Pure: takes plain values, returns text. Which pages and PTEs feed these functions is the
collector's business; the rules are in docs/notes/procfs.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..constants import PAGE_SIZE
from ..mm import vmflags as V
from .maps import NAME_PAD_WIDTH, ROLLUP, MapsLine, header_prefix, render_maps_line

PSS_SHIFT = 12

# show_smap_vma_flags(): bit -> mnemonic, in the order printed (ascending bit number). Bits
# absent from the table print "??" if set. The protection-key bits are in the kernel table with
# an empty mnemonic, which means "never print" (they come out as ProtectionKey:).
VMFLAG_MNEMONICS: tuple[tuple[int, str], ...] = (
    (V.VM_READ, "rd"),
    (V.VM_WRITE, "wr"),
    (V.VM_EXEC, "ex"),
    (V.VM_SHARED, "sh"),
    (V.VM_MAYREAD, "mr"),
    (V.VM_MAYWRITE, "mw"),
    (V.VM_MAYEXEC, "me"),
    (V.VM_MAYSHARE, "ms"),
    (V.VM_GROWSDOWN, "gd"),
    (V.VM_UFFD_MISSING, "um"),
    (V.VM_PFNMAP, "pf"),
    (V.VM_MAYBE_GUARD, "gu"),
    (V.VM_UFFD_WP, "uw"),
    (V.VM_LOCKED, "lo"),
    (V.VM_IO, "io"),
    (V.VM_SEQ_READ, "sr"),
    (V.VM_RAND_READ, "rr"),
    (V.VM_DONTCOPY, "dc"),
    (V.VM_DONTEXPAND, "de"),
    (V.VM_LOCKONFAULT, "lf"),
    (V.VM_ACCOUNT, "ac"),
    (V.VM_NORESERVE, "nr"),
    (V.VM_HUGETLB, "ht"),
    (V.VM_SYNC, "sf"),
    (V.VM_ARCH_1, "ar"),
    (V.VM_WIPEONFORK, "wf"),
    (V.VM_DONTDUMP, "dd"),
    (V.VM_SOFTDIRTY, "sd"),          # only with CONFIG_MEM_SOFT_DIRTY
    (V.VM_MIXEDMAP, "mm"),
    (V.VM_HUGEPAGE, "hg"),
    (V.VM_NOHUGEPAGE, "nh"),
    (V.VM_MERGEABLE, "mg"),
    (V.VM_PKEY_BIT0, ""),
    (V.VM_PKEY_BIT1, ""),
    (V.VM_PKEY_BIT2, ""),
    (V.VM_PKEY_BIT3, ""),
    (V.VM_SHADOW_STACK, "ss"),       # only with CONFIG_X86_USER_SHADOW_STACK
    (V.VM_DROPPABLE, "dp"),
    (V.VM_UFFD_MINOR, "ui"),
    (V.VM_SEALED, "sl"),
)

# The host kernel's configuration (see mm/vmflags.py): which optional rows exist.
HOST_CONFIG_SOFT_DIRTY = False
HOST_CONFIG_SHADOW_STACK = False
HOST_PKEYS_ENABLED = True        # arch_pkeys_enabled(): the CPU has PKU, so ProtectionKey: shows


def vmflag_table(soft_dirty: bool = HOST_CONFIG_SOFT_DIRTY,
                 shadow_stack: bool = HOST_CONFIG_SHADOW_STACK) -> list[str]:
    """The kernel's ``mnemonics[BITS_PER_LONG]`` array for a configuration: index = bit."""
    table = ["??"] * 64
    for flag, name in VMFLAG_MNEMONICS:
        if flag == V.VM_SOFTDIRTY and not soft_dirty:
            continue
        if flag == V.VM_SHADOW_STACK and not shadow_stack:
            continue
        table[flag.bit_length() - 1] = name
    return table


_HOST_TABLE = vmflag_table()


def render_vmflags(vm_flags: int, *, soft_dirty: bool = HOST_CONFIG_SOFT_DIRTY,
                   shadow_stack: bool = HOST_CONFIG_SHADOW_STACK) -> str:
    """show_smap_vma_flags(): "VmFlags: " then each set flag's mnemonic and a space.

    Without CONFIG_MEM_SOFT_DIRTY (or CONFIG_X86_USER_SHADOW_STACK) the kernel defines
    VM_SOFTDIRTY (VM_SHADOW_STACK) as 0, so code that "sets" it sets nothing. The model keeps
    the bit values and may set them (mmap does, as Linux's mmap_region() does), so here the
    bits of a configured-out flag are dropped rather than printed as "??".
    """
    if not soft_dirty:
        vm_flags &= ~V.VM_SOFTDIRTY
    if not shadow_stack:
        vm_flags &= ~V.VM_SHADOW_STACK
    table = _HOST_TABLE if (soft_dirty, shadow_stack) == (HOST_CONFIG_SOFT_DIRTY,
                                                          HOST_CONFIG_SHADOW_STACK) \
        else vmflag_table(soft_dirty, shadow_stack)
    out = ["VmFlags: "]
    for bit in range(64):
        name = table[bit]
        if name and vm_flags & (1 << bit):
            out.append(name + " ")
    out.append("\n")
    return "".join(out)


@dataclass
class SmapsStats:
    """struct mem_size_stats. Plain fields are bytes; pss* and swap_pss are bytes << PSS_SHIFT."""

    resident: int = 0
    shared_clean: int = 0
    shared_dirty: int = 0
    private_clean: int = 0
    private_dirty: int = 0
    referenced: int = 0
    anonymous: int = 0
    lazyfree: int = 0
    anonymous_thp: int = 0
    shmem_thp: int = 0
    file_thp: int = 0
    swap: int = 0
    shared_hugetlb: int = 0
    private_hugetlb: int = 0
    ksm: int = 0
    pss: int = 0
    pss_anon: int = 0
    pss_file: int = 0
    pss_shmem: int = 0
    pss_dirty: int = 0
    pss_locked: int = 0
    swap_pss: int = 0

    def add(self, other: "SmapsStats") -> "SmapsStats":
        """Accumulate another VMA's stats into this one (show_smaps_rollup() walks every VMA
        into one mem_size_stats, so sums happen before any truncation)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def __add__(self, other: "SmapsStats") -> "SmapsStats":
        return SmapsStats(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                             for f in fields(self)})


def smaps_page_accumulate(mss: SmapsStats, *, anon: bool, swapbacked: bool, size: int,
                          pss: int, dirty: bool, locked: bool, private: bool) -> None:
    """smaps_page_accumulate(): add ``pss`` (already << PSS_SHIFT) and ``size`` bytes.

    ``dirty`` is ``pte dirty || folio dirty``. Pss_Anon/Pss_Shmem/Pss_File are chosen by the
    folio: anon, else swap-backed (shmem), else file.
    """
    mss.pss += pss
    if anon:
        mss.pss_anon += pss
    elif swapbacked:
        mss.pss_shmem += pss
    else:
        mss.pss_file += pss
    if locked:
        mss.pss_locked += pss
    if dirty:
        mss.pss_dirty += pss
        if private:
            mss.private_dirty += size
        else:
            mss.shared_dirty += size
    else:
        if private:
            mss.private_clean += size
        else:
            mss.shared_clean += size


def smaps_account(mss: SmapsStats, *, anon: bool, swapbacked: bool, mapcount: int,
                  refcount: int | None = None, ksm: bool = False, pte_young: bool = False,
                  folio_young: bool = False, folio_referenced: bool = False,
                  pte_dirty: bool = False, folio_dirty: bool = False, locked: bool = False,
                  present: bool = True) -> None:
    """smaps_account() for one PTE that maps an order-0 folio (vm_normal_page() != NULL).

    * ``mapcount``: the page's mapcount (folio_precise_page_mapcount(); for an order-0 folio
      the number of PTEs mapping it, in any process). ``refcount``: folio_ref_count(), or None
      if unknown; a refcount of 1 takes the kernel's shortcut (private, whole page), which for
      an order-0 folio gives the same result as mapcount 1.
    * ``locked``: the VMA has VM_LOCKED (not whether the page is mlocked).
    * ``present``: False for a migration or device-private entry (treated as possibly shared:
      counted whole, as "shared").

    The zero page, PFN maps and swap PTEs never reach this function.
    """
    size = PAGE_SIZE
    dirty = pte_dirty or folio_dirty
    if anon:
        mss.anonymous += size
        if not swapbacked and not pte_dirty and not folio_dirty:
            mss.lazyfree += size
    if ksm:
        mss.ksm += size
    mss.resident += size
    if pte_young or folio_young or folio_referenced:
        mss.referenced += size
    # refcount == 1 for a present entry means exactly one mapping: private, whole page.
    if refcount == 1 or not present:
        smaps_page_accumulate(mss, anon=anon, swapbacked=swapbacked, size=size,
                              pss=size << PSS_SHIFT, dirty=dirty, locked=locked,
                              private=present)
        return
    pss = PAGE_SIZE << PSS_SHIFT
    if mapcount >= 2:
        pss //= mapcount
    smaps_page_accumulate(mss, anon=anon, swapbacked=swapbacked, size=PAGE_SIZE, pss=pss,
                          dirty=dirty, locked=locked, private=mapcount < 2)


def smaps_swap_pte(mss: SmapsStats, swapcount: int) -> None:
    """smaps_pte_entry(), swap-entry branch: a real swap entry (not migration/marker) adds a
    page to Swap and ``PAGE_SIZE << PSS_SHIFT`` divided by the slot's swap count (swp_swapcount():
    the references from PTEs and shmem, not the swap cache) to SwapPss."""
    mss.swap += PAGE_SIZE
    if swapcount >= 2:
        mss.swap_pss += (PAGE_SIZE << PSS_SHIFT) // swapcount
    else:
        mss.swap_pss += PAGE_SIZE << PSS_SHIFT


def smaps_shmem_swap(mss: SmapsStats, nbytes: int) -> None:
    """smap_gather_stats(): a shmem VMA's swapped-out pages, counted from the shmem object
    (shmem_swap_usage() / shmem_partial_swap_usage()). Adds to Swap only, never SwapPss."""
    mss.swap += nbytes


def _dec(label: str, value_bytes: int, width: int = 8) -> str:
    """SEQ_PUT_DEC(): label, then value >> 10 right-aligned in ``width`` columns."""
    return f"{label}{value_bytes >> 10:>{width}} kB\n"


def render_smap_stats(mss: SmapsStats, rollup: bool = False) -> str:
    """__show_smap(): the lines common to smaps and smaps_rollup (Rss .. Locked).

    Pss_Anon, Pss_File and Pss_Shmem appear only in smaps_rollup.
    """
    s = PSS_SHIFT
    out = [_dec("Rss:            ", mss.resident),
           _dec("Pss:            ", mss.pss >> s),
           _dec("Pss_Dirty:      ", mss.pss_dirty >> s)]
    if rollup:
        out += [_dec("Pss_Anon:       ", mss.pss_anon >> s),
                _dec("Pss_File:       ", mss.pss_file >> s),
                _dec("Pss_Shmem:      ", mss.pss_shmem >> s)]
    out += [_dec("Shared_Clean:   ", mss.shared_clean),
            _dec("Shared_Dirty:   ", mss.shared_dirty),
            _dec("Private_Clean:  ", mss.private_clean),
            _dec("Private_Dirty:  ", mss.private_dirty),
            _dec("Referenced:     ", mss.referenced),
            _dec("Anonymous:      ", mss.anonymous),
            _dec("KSM:            ", mss.ksm),
            _dec("LazyFree:       ", mss.lazyfree),
            _dec("AnonHugePages:  ", mss.anonymous_thp),
            _dec("ShmemPmdMapped: ", mss.shmem_thp),
            _dec("FilePmdMapped:  ", mss.file_thp),
            _dec("Shared_Hugetlb: ", mss.shared_hugetlb),
            _dec("Private_Hugetlb: ", mss.private_hugetlb, 7),
            _dec("Swap:           ", mss.swap),
            _dec("SwapPss:        ", mss.swap_pss >> s),
            _dec("Locked:         ", mss.pss_locked >> s)]
    return "".join(out)


def render_smaps_entry(line: MapsLine, mss: SmapsStats, vm_flags: int, *,
                       thp_eligible: int = 0, kernel_page_size: int = PAGE_SIZE,
                       mmu_page_size: int = PAGE_SIZE, pkeys_enabled: bool = HOST_PKEYS_ENABLED,
                       soft_dirty: bool = HOST_CONFIG_SOFT_DIRTY,
                       shadow_stack: bool = HOST_CONFIG_SHADOW_STACK) -> str:
    """show_smap(): the maps line, Size/KernelPageSize/MMUPageSize, the stats, THPeligible,
    ProtectionKey (when the CPU has protection keys) and VmFlags.

    ``thp_eligible`` is the 0/1 result of thp_vma_allowable_orders() for the VMA (see the note;
    with THP "madvise" it is 1 only for VM_HUGEPAGE anonymous VMAs that can hold an aligned
    2 MiB range).
    """
    out = [render_maps_line(line),
           _dec("Size:           ", line.end - line.start),
           _dec("KernelPageSize: ", kernel_page_size),
           _dec("MMUPageSize:    ", mmu_page_size),
           render_smap_stats(mss, rollup=False),
           f"THPeligible:    {1 if thp_eligible else 0:>8}\n"]
    if pkeys_enabled:
        out.append(f"ProtectionKey:  {V.vma_pkey(vm_flags):>8}\n")
    out.append(render_vmflags(vm_flags, soft_dirty=soft_dirty, shadow_stack=shadow_stack))
    return "".join(out)


def render_smaps_rollup(mss: SmapsStats, start: int, end: int) -> str:
    """show_smaps_rollup(): a header line from the first VMA's start to the last VMA's end
    (the [vsyscall] gate VMA is not included), flags shown as "---p", then the stats with the
    three Pss_* split lines. An mm without VMAs prints 00000000-00000000."""
    prefix = header_prefix(start, end, "---p", 0, 0, 0, 0)
    head = prefix + " " * max(0, NAME_PAD_WIDTH - len(prefix)) + " " + ROLLUP + "\n"
    return head + render_smap_stats(mss, rollup=True)


def stats_from_kb(values: dict[str, int]) -> SmapsStats:
    """Build stats that print the given kB values (for tests and for re-rendering a parsed
    file): each byte field gets kB * 1024, each pss field kB * 1024 << PSS_SHIFT."""
    m = SmapsStats()
    for key, attr in SMAPS_FIELD_ATTR.items():
        if key in values:
            v = values[key] * 1024
            if attr in _PSS_ATTRS:
                v <<= PSS_SHIFT
            setattr(m, attr, v)
    return m


# Printed label -> SmapsStats attribute.
SMAPS_FIELD_ATTR = {
    "Rss": "resident", "Pss": "pss", "Pss_Dirty": "pss_dirty", "Pss_Anon": "pss_anon",
    "Pss_File": "pss_file", "Pss_Shmem": "pss_shmem", "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty", "Private_Clean": "private_clean",
    "Private_Dirty": "private_dirty", "Referenced": "referenced", "Anonymous": "anonymous",
    "KSM": "ksm", "LazyFree": "lazyfree", "AnonHugePages": "anonymous_thp",
    "ShmemPmdMapped": "shmem_thp", "FilePmdMapped": "file_thp",
    "Shared_Hugetlb": "shared_hugetlb", "Private_Hugetlb": "private_hugetlb", "Swap": "swap",
    "SwapPss": "swap_pss", "Locked": "pss_locked",
}
_PSS_ATTRS = frozenset({"pss", "pss_dirty", "pss_anon", "pss_file", "pss_shmem", "swap_pss",
                        "pss_locked"})
