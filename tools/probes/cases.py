"""Case definitions for run_cases.py: what to ask the host kernel.

Each case is a list of steps in the JSON op language documented in run_cases.py.
Nothing here states an expected result: run_cases.py executes every case on the
host kernel (through vmexec.c) and records what the kernel answered.

Conventions:
  W(off)      address @w+off, inside the 64 MiB window the executor reserved
  B           1 MiB: tests start at W(B) so they never touch the window edges
  P           4096, the page size
"""

from __future__ import annotations

import importlib.util
import pathlib

_CONST_PATH = pathlib.Path(__file__).resolve().parents[2] / "src" / "vmlab" / "constants.py"
_spec = importlib.util.spec_from_file_location("_vmlab_constants", _CONST_PATH)
C = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(C)

P = C.PAGE_SIZE
B = 1 << 20
MiB = 1 << 20
RO = C.PROT_READ
RW = C.PROT_READ | C.PROT_WRITE
RWX = RW | C.PROT_EXEC
NONE = C.PROT_NONE
PA = C.MAP_PRIVATE | C.MAP_ANONYMOUS
PAF = PA | C.MAP_FIXED
SA = C.MAP_SHARED | C.MAP_ANONYMOUS
SAF = SA | C.MAP_FIXED
NR = C.MAP_NORESERVE
MM = C.MREMAP_MAYMOVE
MF = C.MREMAP_FIXED
DU = C.MREMAP_DONTUNMAP
RLIMIT_DATA = 2
RLIMIT_MEMLOCK = 8
F_SEAL_WRITE = 0x0008
F_SEAL_FUTURE_WRITE = 0x0010


def W(off: int) -> dict:
    return {"ref": "w", "plus": off}


def R(name: str, off: int = 0) -> dict:
    return {"ref": name, "plus": off}


def _s(op, **kw):
    d = {"op": op}
    for k, v in kw.items():
        if v is None:
            continue
        d["as" if k == "as_" else k] = v
    return d


def mmap(addr, length, prot, flags, fd=-1, off=0, as_=None, check=None):
    return _s("mmap", addr=addr, len=length, prot=prot, flags=flags, fd=fd, off=off,
              as_=as_, check=check)


def munmap(addr, length):
    return _s("munmap", addr=addr, len=length)


def mprotect(addr, length, prot):
    return _s("mprotect", addr=addr, len=length, prot=prot)


def mremap(addr, old, new, flags=0, new_addr=0, as_=None, check=None):
    return _s("mremap", addr=addr, old_len=old, new_len=new, flags=flags,
              new_addr=new_addr, as_=as_, check=check)


def madvise(addr, length, advice):
    return _s("madvise", addr=addr, len=length, advice=advice)


def mlock(addr, length):
    return _s("mlock", addr=addr, len=length)


def mlock2(addr, length, flags):
    return _s("mlock2", addr=addr, len=length, flags=flags)


def munlock(addr, length):
    return _s("munlock", addr=addr, len=length)


def mlockall(flags):
    return _s("mlockall", flags=flags)


def munlockall():
    return _s("munlockall")


def brk(addr):
    return _s("brk", addr=addr)


def read8(addr):
    return _s("read8", addr=addr)


def write8(addr, value=1):
    return _s("write8", addr=addr, value=value)


def faultr(addr):
    return _s("fault_count", addr=addr, access="read")


def faultw(addr):
    return _s("fault_count", addr=addr, access="write")


def vmlck():
    return _s("vmlck")


def pagemap(addr):
    return _s("pagemap", addr=addr)


def setrlimit(resource, cur, mx):
    return _s("setrlimit", resource=resource, cur=cur, max=mx)


def dropcaps():
    return _s("dropcaps")


def memfd(size, as_):
    return _s("memfd", size=size, as_=as_)


def seal(fd, seals):
    return _s("seal", fd=fd, seals=seals)


def fill(leave):
    return _s("fill_map_count", leave=leave)


def unfill():
    return _s("unfill")


def fork(*child):
    return _s("fork", child=list(child))


def exit_(code=0):
    return _s("exit", code=code)


CASES: list[dict] = []


def case(name, steps, ported_from=None, doc="", requires=(), regions=None):
    CASES.append({
        "name": name,
        "ported_from": ported_from,
        "doc": doc,
        "requires": list(requires),
        "regions": regions or [["w", 0, 64 * MiB]],
        "steps": steps,
    })


LTP = "ltp:testcases/kernel/syscalls/"
SELF = "linux:tools/testing/selftests/mm/"
TASK_SIZE = C.TASK_SIZE
a1 = W(B)

# ----------------------------------------------------------------------- mmap: argument checks
case("mmap_check_len", [mmap(0, 0, RW, PA), mmap(W(B + 1), 0, RW, PAF), mmap(0, -4095, RW, PA),
                        mmap(0, TASK_SIZE + P, RW, PA)],
     doc="len 0 -> EINVAL (checked before the address); PAGE_ALIGN(len) wrapping to 0 or len > TASK_SIZE -> ENOMEM")
case("mmap_check_fd_offset", [mmap(0, P, RW, PA, off=1), mmap(0, P, RW, C.MAP_PRIVATE, fd=-1),
                              mmap(0, 0, RW, C.MAP_PRIVATE, fd=-1)],
     ported_from=LTP + "mmap/mmap08.c",
     doc="x86 sys_mmap rejects an unaligned byte offset even for anonymous maps; without MAP_ANONYMOUS "
         "the fd is looked up first (EBADF beats len 0)")
case("mmap_check_type", [mmap(0, P, RW, C.MAP_ANONYMOUS), mmap(0, P, RW, C.MAP_ANONYMOUS | 0x0f),
                         mmap(0, 1 << 62, RW, C.MAP_ANONYMOUS),
                         mmap(a1, P, RW, C.MAP_SHARED_VALIDATE | C.MAP_ANONYMOUS | C.MAP_FIXED),
                         mmap(a1, P, RW, C.MAP_SHARED_VALIDATE | C.MAP_ANONYMOUS | C.MAP_FIXED | 0x800000)],
     doc="bad MAP_TYPE is found only after the length/address checks; MAP_SHARED_VALIDATE is not a valid "
         "type for anonymous memory")
case("mmap_check_fixed_addr", [mmap(W(B + 1), P, RW, PAF), mmap(TASK_SIZE, P, RW, PAF), mmap(TASK_SIZE + 1, P, RW, PAF),
                               mmap(W(B + 5), P, RW, PA | C.MAP_FIXED_NOREPLACE)],
     ported_from=LTP + "mmap/mmap15.c",
     doc="unaligned fixed address -> EINVAL, but the TASK_SIZE range check comes first (ENOMEM)")
case("mmap_fixed_end_at_task_size", [mmap(TASK_SIZE - P, P, RW, PAF), munmap(TASK_SIZE - P, P)],
     doc="the last user page is mappable")
case("mmap_fixed_zero_page_root", [mmap(0, P, RW, PAF), munmap(0, P)],
     doc="below mmap_min_addr: allowed with CAP_SYS_RAWIO (the runner is root)")
case("nonroot_mmap_fixed_zero_page", [dropcaps(), mmap(0, P, RW, PAF), mmap(P, P, RW, PAF), munmap(P, P)],
     requires=["nonroot"], doc="below mmap_min_addr without CAP_SYS_RAWIO: EPERM (security_mmap_addr)")
case("mmap_ignored_bits", [mmap(a1, P, 0x10 | RW, PAF), mmap(W(B + 2 * P), P, RW | C.PROT_SEM, PAF),
                           mmap(W(B + 4 * P), P, RW, PAF | 0x800000), mmap(W(B + 6 * P), P, RW, PAF | C.MAP_UNINITIALIZED)],
     doc="mmap ignores unknown prot bits and unknown MAP_PRIVATE flag bits")
case("mmap_shared_validate_memfd_unknown_flag",
     [memfd(4 * P, "fd"), mmap(a1, P, RW, C.MAP_SHARED_VALIDATE | C.MAP_FIXED | 0x800000, fd=R("fd")),
      mmap(a1, P, RW, C.MAP_SHARED_VALIDATE | C.MAP_FIXED | C.MAP_SYNC, fd=R("fd")),
      mmap(a1, P, RW, C.MAP_SHARED | C.MAP_FIXED | 0x800000, fd=R("fd")),
      mmap(W(B + 2 * P), P, RW, C.MAP_SHARED_VALIDATE | C.MAP_FIXED | 0x80, fd=R("fd"))],
     ported_from=LTP + "mmap/mmap20.c", requires=["memfd"],
     doc="VALIDATE refuses unknown flags and MAP_SYNC (EOPNOTSUPP); legacy MAP_SHARED drops them; LTP's "
         "INVALID_FLAG (1<<7) is MAP_ABOVE4G on x86-64, which LEGACY_MAP_MASK accepts")
case("mmap_memfd_write_sealed_shared_rw",
     [memfd(4 * P, "fd"), seal(R("fd"), F_SEAL_WRITE), mmap(a1, P, RW, C.MAP_SHARED | C.MAP_FIXED, fd=R("fd")),
      mmap(a1, P, RO, C.MAP_SHARED | C.MAP_FIXED, fd=R("fd"))],
     requires=["memfd"], doc="writable shared map of a write-sealed memfd is refused")
case("mmap_growsdown", [mmap(a1, 4 * P, RW, SAF | C.MAP_GROWSDOWN), mmap(W(B + 4 * P), 4 * P, RW, PAF | C.MAP_GROWSDOWN)],
     ported_from=LTP + "mmap/mmap18.c", doc="shared anon GROWSDOWN -> EINVAL; private gets VM_GROWSDOWN (gd)")
case("mmap_stack_flag_sets_nohugepage",
     [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), 2 * P, RW, PAF | C.MAP_STACK)],
     doc="MAP_STACK becomes VM_NOHUGEPAGE, so it does not merge with a plain neighbour")
case("mmap_32bit", [mmap(0, P, RW, PA | C.MAP_32BIT, as_="m", check={"in_range": [0x40000000, 0x80000000]}),
                    munmap(R("m"), P)], ported_from=LTP + "mmap/mmap24.c")
case("mmap_hugetlb", [mmap(0, 2 * MiB, RW, PA | C.MAP_HUGETLB), mmap(0, 2 * MiB, RW, PA | C.MAP_HUGETLB | (13 << 26))],
     doc="no hugetlb pages are reserved on the host (ENOMEM); MAP_HUGE_8KB does not exist (EINVAL)")
case("mmap_droppable", [mmap(a1, 2 * P, RW, C.MAP_DROPPABLE | C.MAP_ANONYMOUS | C.MAP_FIXED),
                        mmap(W(B + 4 * P), 2 * P, RW, C.MAP_DROPPABLE | C.MAP_ANONYMOUS | C.MAP_FIXED | C.MAP_LOCKED)])

# ----------------------------------------------------------------------- mmap: flags on the VMA
case("mmap_vmflags", [mmap(a1, P, RW, PAF), mmap(W(B + 2 * P), P, RO, PAF),
                      mmap(W(B + 4 * P), P, NONE, PAF), mmap(W(B + 6 * P), P, RWX, PAF),
                      mmap(W(B + 8 * P), P, RW, PAF | NR), mmap(W(B + 10 * P), P, RW, SAF),
                      mmap(W(B + 12 * P), P, RO, SAF)],
     doc="VM_ACCOUNT (ac) only on private writable mappings without MAP_NORESERVE (nr)")
case("mmap_locked", [mmap(a1, 4 * P, RW, PAF | C.MAP_LOCKED), vmlck(), pagemap(W(B + 3 * P))],
     ported_from=LTP + "mmap/mmap14.c", doc="MAP_LOCKED populates and counts in locked_vm")
case("mmap_populate", [mmap(a1, 4 * P, RW, PAF | C.MAP_POPULATE), pagemap(W(B + 3 * P)),
                       mmap(W(B + 8 * P), 2 * P, RO, PAF | C.MAP_POPULATE), pagemap(W(B + 8 * P))],
     ported_from=LTP + "mmap/mmap12.c",
     doc="private RW populate write-faults (exclusive anon); RO populate maps the zero page")
case("mmap_populate_nonblock", [mmap(a1, 4 * P, RW, PAF | C.MAP_POPULATE | C.MAP_NONBLOCK), pagemap(a1)],
     doc="MAP_NONBLOCK cancels MAP_POPULATE")
case("mmap_access_checks", [mmap(a1, P, NONE, PAF), read8(a1), mmap(W(B + 2 * P), P, RO, PAF), read8(W(B + 2 * P)),
                            write8(W(B + 2 * P))], ported_from=LTP + "mmap/mmap05.c")

# ----------------------------------------------------------------------- mmap: placement and hints
case("mmap_hint_free", [mmap(W(B), P, RW, PA), mmap(W(B + 4 * P + 123), P, RW, PA)],
     doc="a free hint is used as is, after rounding down to a page")
case("mmap_hint_occupied", [mmap(a1, 4 * P, RW, PAF), mmap(W(B + P), P, RW, PA, as_="m", check={"equals": W(B + P)}),
                            munmap(R("m"), P), mmap(W(B - 2 * P), 3 * P, RW, PA, as_="m2", check={"equals": W(B - 2 * P)}),
                            munmap(R("m2"), 3 * P)],
     doc="an occupied hint is ignored and the area is searched top-down")
case("mmap_hint_in_stack_guard_gap",
     [mmap(W(8 * MiB), 4 * P, RW, PAF | C.MAP_GROWSDOWN),
      mmap(W(8 * MiB - 64 * P), P, RW, PA, as_="m", check={"equals": W(8 * MiB - 64 * P)}), munmap(R("m"), P),
      mmap(W(7 * MiB - P), P, RW, PA, as_="m2", check={"equals": W(7 * MiB - P)}),
      mmap(W(7 * MiB), P, RW, PA, as_="m3", check={"equals": W(7 * MiB)}), munmap(R("m3"), P)],
     doc="a hint within stack_guard_gap (256 pages) below a VM_GROWSDOWN VMA is refused")
case("mmap_hint_above_growsdown_prev", [mmap(a1, 4 * P, RW, PAF | C.MAP_GROWSDOWN),
                                        mmap(W(B + 4 * P), P, RW, PA, as_="m", check={"equals": W(B + 4 * P)})],
     doc="GROWSDOWN has no guard above it (vm_end_gap == vm_end on x86)")

# ----------------------------------------------------------------------- mmap: MAP_FIXED / NOREPLACE
case("mmap_fixed_noreplace_free", [mmap(a1, 2 * P, RW, PA | C.MAP_FIXED_NOREPLACE)],
     ported_from=SELF + "map_fixed_noreplace.c")
case("mmap_fixed_noreplace_overlaps", [mmap(W(B + 2 * P), 4 * P, RW, PAF),
                                       mmap(a1, 3 * P, RW, PA | C.MAP_FIXED_NOREPLACE),
                                       mmap(W(B + 5 * P), 3 * P, RW, PA | C.MAP_FIXED_NOREPLACE),
                                       mmap(W(B + 3 * P), P, RW, PA | C.MAP_FIXED_NOREPLACE),
                                       mmap(a1, 8 * P, RW, PA | C.MAP_FIXED_NOREPLACE)],
     ported_from=SELF + "map_fixed_noreplace.c", doc="overlap at the start, end, inside, around: EEXIST")
case("mmap_fixed_noreplace_adjacent", [mmap(W(B + 2 * P), 4 * P, RW, PAF),
                                       mmap(a1, 2 * P, RW, PA | C.MAP_FIXED_NOREPLACE),
                                       mmap(W(B + 6 * P), 2 * P, RW, PA | C.MAP_FIXED_NOREPLACE)],
     ported_from=SELF + "map_fixed_noreplace.c", doc="touching but not overlapping: allowed, and merges")
case("mmap_fixed_replace_middle_other_prot", [mmap(a1, 3 * P, RW, PAF), mmap(W(B + P), P, RO, PAF)],
     doc="MAP_FIXED over the middle page splits into three")
case("mmap_fixed_replace_middle_same_prot_untouched", [mmap(a1, 3 * P, RW, PAF), mmap(W(B + P), P, RW, PAF)],
     doc="the new VMA's vm_pgoff = addr>>12 fits, so all three merge back")
case("mmap_fixed_replace_middle_same_prot_touched",
     [mmap(a1, 3 * P, RW, PAF), write8(a1), write8(W(B + 2 * P)), mmap(W(B + P), P, RW, PAF),
      read8(a1), read8(W(B + P)), read8(W(B + 2 * P))],
     doc="prev and next share one anon_vma, the new VMA has none: three-way merge")
case("mmap_fixed_replace_spanning", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RO, PAF),
                                     mmap(W(B + P), 3 * P, RWX, PAF)],
     doc="MAP_FIXED over parts of two VMAs and the hole between them")

# ----------------------------------------------------------------------- mmap: merging of new VMAs
case("merge_new_with_prev_or_next", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), 2 * P, RW, PAF),
                                     mmap(W(B + 10 * P), 2 * P, RW, PAF), mmap(W(B + 8 * P), 2 * P, RW, PAF)],
     ported_from=SELF + "merge.c", doc="a new VMA extends prev (after it) or next (before it)")
case("merge_new_fills_hole", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RW, PAF),
                              mmap(W(B + 2 * P), P, RW, PAF)])
case("merge_new_fills_hole_touched_neighbours",
     [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RW, PAF), write8(a1), write8(W(B + 3 * P)),
      mmap(W(B + 2 * P), P, RW, PAF)],
     doc="prev and next have different anon_vmas: only prev+new merge")
case("merge_flags_must_match", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), 2 * P, RO, PAF),
                                mmap(W(B + 8 * P), 2 * P, RW, PAF), mmap(W(B + 10 * P), 2 * P, RW, PAF | NR),
                                mmap(W(B + 16 * P), 2 * P, RO, PAF), mmap(W(B + 18 * P), 2 * P, RO, PAF | NR)],
     doc="different prot, or VM_ACCOUNT vs VM_NORESERVE, or NORESERVE even on read-only maps: no merge")
case("merge_no_shared_anon", [mmap(a1, 2 * P, RW, SAF), mmap(W(B + 2 * P), 2 * P, RW, SAF)],
     doc="each MAP_SHARED|MAP_ANONYMOUS map is its own shmem file")
case("merge_touched_prev_untouched_new", [mmap(a1, 2 * P, RW, PAF), write8(a1), mmap(W(B + 2 * P), 2 * P, RW, PAF)])
case("merge_locked_with_locked", [mmap(a1, 2 * P, RW, PAF | C.MAP_LOCKED), mmap(W(B + 2 * P), 2 * P, RW, PAF | C.MAP_LOCKED),
                                  mmap(W(B + 4 * P), 2 * P, RW, PAF), vmlck()])

# ----------------------------------------------------------------------- munmap
case("munmap_check_args", [mmap(a1, 2 * P, RW, PAF), munmap(W(B + 1), P), munmap(a1, 0), munmap(W(B + 1), 0),
                           munmap(TASK_SIZE + P, P), munmap(a1, -P)],
     ported_from=LTP + "munmap/munmap03.c", doc="unaligned, len 0, beyond TASK_SIZE, end past TASK_SIZE: EINVAL")
case("munmap_unmapped_range", [munmap(a1, 8 * P)], doc="nothing mapped: success")
case("munmap_len_unaligned_rounds_up", [mmap(a1, 3 * P, RW, PAF), munmap(a1, 1)])
case("munmap_middle_splits", [mmap(a1, 3 * P, RW, PAF), munmap(W(B + P), P)])
case("munmap_spanning_holes", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RO, PAF),
                               mmap(W(B + 6 * P), 2 * P, RW, PAF), munmap(W(B + P), 6 * P)])
case("munmap_locked_updates_vmlck", [mmap(a1, 4 * P, RW, PAF | C.MAP_LOCKED), vmlck(), munmap(W(B + P), 2 * P), vmlck()])
case("munmap_then_access", [mmap(a1, P, RW, PAF), write8(a1), munmap(a1, P), read8(a1)])

# ----------------------------------------------------------------------- mprotect
case("mprotect_check_args", [mmap(a1, 2 * P, RW, PAF), mprotect(a1, P, RO | C.PROT_GROWSDOWN | C.PROT_GROWSUP),
                             mprotect(W(B + 1), P, RO), mprotect(W(B + 1), 0, RO), mprotect(W(B + 4 * P), 0, RO),
                             mprotect(a1, P, RO | 0x10), mprotect(a1, -P, RO), mprotect(a1, -P, 0x10),
                             mprotect(W(B + 4 * P), P, RO)],
     ported_from=LTP + "mprotect/mprotect01.c",
     doc="order: both GROWS flags, alignment, len 0 (success, no VMA lookup), end overflow (ENOMEM, before "
         "the prot check), unknown prot bits, then the VMA lookup (ENOMEM)")
case("mprotect_prot_sem_ok", [mmap(a1, P, RW, PAF), mprotect(a1, P, RO | C.PROT_SEM)])
case("mprotect_hole_at_start", [mmap(W(B + P), 2 * P, RW, PAF), mprotect(a1, 3 * P, RO)])
case("mprotect_hole_in_middle_partial_effect",
     [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RW, PAF), mprotect(a1, 5 * P, RO)],
     doc="the VMA before the hole is changed before ENOMEM is returned")
case("mprotect_hole_at_end_partial_effect", [mmap(a1, 2 * P, RW, PAF), mprotect(a1, 3 * P, RO)])
case("mprotect_middle_splits_and_remerges",
     [mmap(a1, 3 * P, RW, PAF), mprotect(W(B + P), P, RO), mprotect(W(B + P), P, RW)],
     doc="split into 3 then merged back into 1 (untouched: VM_ACCOUNT dropped on RO, re-added on RW)")
case("mprotect_middle_touched_remerges",
     [mmap(a1, 3 * P, RW, PAF), write8(W(B + P)), mprotect(W(B + P), P, RO), mprotect(W(B + P), P, RW)])
case("mprotect_first_page", [mmap(a1, 3 * P, RW, PAF), mprotect(a1, P, RO)])
case("mprotect_merges_into_prev", [mmap(a1, 2 * P, RO, PAF), mmap(W(B + 2 * P), 2 * P, RW, PAF),
                                   mprotect(W(B + 2 * P), P, RO)],
     doc="prev is RO untouched; the changed range joins prev (prev grows, VMA shrinks)")
case("mprotect_unfaulted_left", [mmap(a1, 10 * P, RW, PAF | NR), mprotect(a1, 5 * P, RO), write8(W(B + 5 * P)),
                                 mprotect(W(B + 5 * P), 5 * P, RO)],
     ported_from=SELF + "merge.c:mprotect_unfaulted_left")
case("mprotect_unfaulted_left_accounted", [mmap(a1, 10 * P, RW, PAF), mprotect(a1, 5 * P, RO), write8(W(B + 5 * P)),
                                           mprotect(W(B + 5 * P), 5 * P, RO)],
     ported_from=SELF + "merge.c:mprotect_unfaulted_left",
     doc="without MAP_NORESERVE: the faulted part keeps VM_ACCOUNT, the unfaulted part lost it -> no merge")
case("mprotect_unfaulted_both", [mmap(W(B + P), 9 * P, RW, PAF | NR), mprotect(W(B + P), 3 * P, RO),
                                 mprotect(W(B + 7 * P), 3 * P, RO), write8(W(B + 4 * P)), mprotect(W(B + 4 * P), 3 * P, RO)],
     ported_from=SELF + "merge.c:mprotect_unfaulted_both")
case("mprotect_account_flag", [mmap(a1, 2 * P, RO, PAF), mprotect(a1, 2 * P, RW), mmap(W(B + 4 * P), 2 * P, RW, PAF),
                               write8(W(B + 4 * P)), mprotect(W(B + 4 * P), 2 * P, RO), mmap(W(B + 8 * P), 2 * P, RW, PAF),
                               mprotect(W(B + 8 * P), 2 * P, RO)],
     doc="RO->RW gains VM_ACCOUNT; RW->RO keeps it once an anon_vma exists, drops it while unfaulted")
case("mprotect_grows_flags_invalid", [mmap(a1, 2 * P, RW, PAF), mprotect(W(B + P), P, RO | C.PROT_GROWSDOWN),
                                      mprotect(a1, P, RO | C.PROT_GROWSUP)],
     doc="PROT_GROWSDOWN on a VMA without VM_GROWSDOWN, and PROT_GROWSUP on x86 (no VM_GROWSUP): EINVAL")
case("mprotect_growsdown_extends_to_vma_start", [mmap(a1, 4 * P, RW, PAF | C.MAP_GROWSDOWN),
                                                 mprotect(W(B + 2 * P), P, RO | C.PROT_GROWSDOWN)])
case("mprotect_write_on_sealed_memfd", [memfd(4 * P, "fd"), seal(R("fd"), F_SEAL_FUTURE_WRITE),
                                        mmap(a1, P, RO, C.MAP_SHARED | C.MAP_FIXED, fd=R("fd")), mprotect(a1, P, RW)],
     requires=["memfd"], ported_from=LTP + "mprotect/mprotect01.c", doc="VM_MAYWRITE missing -> EACCES")
case("mprotect_then_write_faults", [mmap(a1, P, RW, PAF), mprotect(a1, P, RO), write8(a1), read8(a1)])
case("mprotect_pte_upgrade_exclusive_anon",
     [mmap(a1, P, RW, PAF), faultw(a1), mprotect(a1, P, RO), mprotect(a1, P, RW), faultw(a1)],
     doc="exclusive anon page: mprotect RW maps the PTE writable directly (0 faults)")
case("mprotect_pte_upgrade_zero_page",
     [mmap(a1, P, RW, PAF), faultr(a1), mprotect(a1, P, RO), mprotect(a1, P, RW), faultw(a1)],
     doc="zero page stays read-only: the write faults")
case("mprotect_pte_upgrade_after_fork",
     [mmap(a1, P, RW, PAF), faultw(a1), fork(read8(a1)), mprotect(a1, P, RO), mprotect(a1, P, RW), faultw(a1)],
     doc="fork cleared PageAnonExclusive: no direct upgrade even after the child exited")
case("mprotect_pte_upgrade_shared_anon",
     [mmap(a1, P, RW, SAF), faultw(a1), mprotect(a1, P, RO), mprotect(a1, P, RW), faultw(a1)])
case("mprotect_pte_upgrade_unpopulated", [mmap(a1, P, RO, PAF), mprotect(a1, P, RW), faultw(a1), faultw(a1)])

# ----------------------------------------------------------------------- mremap: argument checks
case("mremap_check_args", [mmap(a1, 2 * P, RW, PAF), mremap(a1, P, P, 8), mremap(W(B + 1), P, P, 0),
                           mremap(a1, P, 0, 0), mremap(a1, P, TASK_SIZE + P, MM), mremap(W(B + 8 * P), P, P, 8)],
     ported_from=LTP + "mremap/mremap02.c", doc="bad flags (checked before any VMA lookup), unaligned addr, "
                                                 "new_len 0, new_len > TASK_SIZE: EINVAL")
case("mremap_new_addr_without_fixed", [mmap(a1, P, RW, PAF), mremap(a1, P, P, 0, new_addr=TASK_SIZE),
                                       mremap(a1, P, P, 0, new_addr=W(B + 3))],
     doc="without MREMAP_FIXED/DONTUNMAP new_addr is ignored, even when out of range or unaligned")
case("mremap_check_fixed", [mmap(a1, 2 * P, RW, PAF), mremap(a1, P, P, MF, W(B + 8 * P)),
                            mremap(a1, P, P, MF | MM, W(B + 8 * P + 1)), mremap(a1, 2 * P, P, MF | MM, W(B + P)),
                            mremap(a1, P, P, DU, W(B + 8 * P)), mremap(a1, P, 2 * P, DU | MM, W(B + 8 * P))],
     ported_from=LTP + "mremap/mremap05.c",
     doc="FIXED without MAYMOVE, unaligned new_addr, old/new overlap, DONTUNMAP without MAYMOVE, "
         "DONTUNMAP with a size change: EINVAL")
case("mremap_check_vma", [mremap(a1, P, 2 * P, MM), mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), P, RO, PAF),
                          mremap(a1, 3 * P, 4 * P, MM), mremap(W(B + 4 * P), P, P, MM | MF, W(B + 16 * P))],
     ported_from=LTP + "mremap/mremap03.c",
     doc="no VMA at addr, or [addr, addr+old_len) runs past the VMA end (when growing): EFAULT")

# ----------------------------------------------------------------------- mremap: behaviour
case("mremap_shrink_in_place", [mmap(a1, 4 * P, RW, PAF), mremap(a1, 4 * P, 4 * P, 0), mremap(a1, 4 * P, P, 0)],
     ported_from=SELF + "mremap_test.c", doc="same size is a no-op returning addr; shrinking unmaps the tail")
case("mremap_shrink_across_vmas", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), 2 * P, RO, PAF),
                                   mremap(a1, 4 * P, P, 0)],
     doc="a shrink may span several VMAs: everything past new_len is unmapped")
case("mremap_grow_in_place", [mmap(a1, 2 * P, RW, PAF), write8(a1, 7), mremap(a1, 2 * P, 4 * P, 0), read8(a1)])
case("mremap_grow_blocked_no_maymove", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), P, RO, PAF),
                                        mremap(a1, 2 * P, 4 * P, 0)], ported_from=LTP + "mremap/mremap04.c")
case("mremap_grow_moves", [mmap(a1, 2 * P, RW, PAF), write8(a1, 9), mmap(W(B + 2 * P), P, RO, PAF),
                           mremap(a1, 2 * P, 4 * P, MM, as_="n", check={"equals": a1}), read8(R("n")),
                           munmap(R("n"), 4 * P)],
     doc="grow blocked by a neighbour: moved elsewhere (old range unmapped)")
case("mremap_grow_partial_vma_moves", [mmap(a1, 4 * P, RW, PAF), mremap(a1, 2 * P, 3 * P, MM, as_="n",
                                                                         check={"equals": a1}), munmap(R("n"), 3 * P)],
     doc="old range ends before the VMA end: cannot expand in place, so it moves")
case("mremap_grow_in_place_merges_next", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RW, PAF),
                                          mremap(a1, 2 * P, 3 * P, 0)],
     ported_from=SELF + "mremap_test.c", doc="vma_merge_extend joins the now-adjacent next VMA")
case("mremap_fixed_move", [mmap(a1, 2 * P, RW, PAF), write8(a1, 5), mremap(a1, 2 * P, 2 * P, MF | MM, W(B + 16 * P)),
                           read8(W(B + 16 * P)), read8(a1)], ported_from=LTP + "mremap/mremap05.c")
case("mremap_fixed_replaces_target", [mmap(a1, P, RW, PAF), write8(a1, 1), mmap(W(B + 8 * P), 3 * P, RO, PAF),
                                      mremap(a1, P, P, MF | MM, W(B + 9 * P)), read8(W(B + 9 * P))],
     ported_from=LTP + "mremap/mremap05.c")
case("mremap_fixed_resize", [mmap(a1, P, RW, PAF), mremap(a1, P, 3 * P, MF | MM, W(B + 16 * P)),
                             mmap(W(B + 4 * P), 4 * P, RW, PAF), mremap(W(B + 4 * P), 4 * P, 2 * P, MF | MM, W(B + 32 * P))],
     doc="MREMAP_FIXED may grow or shrink while moving")
case("mremap_move_untouched_merges", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 8 * P), 2 * P, RW, PAF),
                                      mremap(W(B + 8 * P), 2 * P, 2 * P, MF | MM, W(B + 2 * P))],
     doc="unfaulted anon: copy_vma resets vm_pgoff to the new address, so it merges")
case("mremap_move_touched_no_merge", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 8 * P), 2 * P, RW, PAF), write8(W(B + 8 * P)),
                                      mremap(W(B + 8 * P), 2 * P, 2 * P, MF | MM, W(B + 2 * P))],
     doc="faulted anon keeps vm_pgoff: it no longer lines up with the new neighbour")
case("mremap_unfaulted_to_faulted", [mmap(a1, 5 * P, RW, PAF), mmap(W(B + 7 * P), 5 * P, RW, PAF),
                                     mremap(W(B + 7 * P), 5 * P, 5 * P, MF | MM, W(B + 1007 * P)), write8(a1),
                                     mremap(W(B + 1007 * P), 5 * P, 5 * P, MF | MM, W(B + 5 * P))],
     ported_from=SELF + "merge.c:mremap_unfaulted_to_faulted")
case("mremap_unfaulted_between_faulted", [
    mmap(a1, 5 * P, RW, PAF), mmap(W(B + 7 * P), 5 * P, RW, PAF), mmap(W(B + 14 * P), 5 * P, RW, PAF),
    mremap(W(B + 14 * P), 5 * P, 5 * P, MF | MM, W(B + 2014 * P)),
    mremap(W(B + 7 * P), 5 * P, 5 * P, MF | MM, W(B + 1007 * P)),
    write8(a1), write8(W(B + 2014 * P)),
    mremap(W(B + 2014 * P), 5 * P, 5 * P, MF | MM, W(B + 10 * P)),
    mremap(W(B + 1007 * P), 5 * P, 5 * P, MF | MM, W(B + 5 * P))],
    ported_from=SELF + "merge.c:mremap_unfaulted_between_faulted",
    doc="prev and next have different anon_vmas: only prev+moved merge")
case("mremap_correct_placed_faulted", [
    mmap(a1, 15 * P, RW, PAF), write8(a1),
    mremap(W(B + 10 * P), 5 * P, 5 * P, MF | MM, W(B + 2010 * P)),
    mremap(W(B + 5 * P), 5 * P, 5 * P, MF | MM, W(B + 1005 * P)),
    mremap(W(B + 1005 * P), 5 * P, 5 * P, MF | MM, W(B + 5 * P))],
    ported_from=SELF + "merge.c:mremap_correct_placed_faulted",
    doc="a faulted piece moved back to its original place lines up again and merges")
case("mremap_dontunmap_private", [mmap(a1, 2 * P, RW, PAF), write8(a1, 3),
                                  mremap(a1, 2 * P, 2 * P, MM | DU, W(B + 16 * P)),
                                  read8(a1), read8(W(B + 16 * P)), pagemap(a1)],
     ported_from=SELF + "mremap_dontunmap.c",
     doc="source stays mapped (empty, VM_ACCOUNT cleared), pages move")
case("mremap_dontunmap_shared_anon", [mmap(a1, 2 * P, RW, SAF), write8(a1, 3),
                                      mremap(a1, 2 * P, 2 * P, MM | DU, W(B + 16 * P)), read8(a1),
                                      read8(W(B + 16 * P))])
case("mremap_dontunmap_no_fixed", [mmap(a1, 2 * P, RW, PAF),
                                   mremap(a1, 2 * P, 2 * P, MM | DU, W(B + 16 * P), as_="n",
                                          check={"equals": W(B + 16 * P)})],
     doc="without MREMAP_FIXED new_addr is only a hint")
case("mremap_dontunmap_locked", [mmap(a1, 2 * P, RW, PAF | C.MAP_LOCKED), vmlck(),
                                 mremap(a1, 2 * P, 2 * P, MM | DU | MF, W(B + 16 * P)), vmlck()])
case("mremap_old_len_zero_invalid", [mmap(a1, 2 * P, RW, PAF), mremap(a1, 0, 2 * P, MM), mmap(W(B + 4 * P), 2 * P, RW, SAF),
                                     mremap(W(B + 4 * P), 0, 2 * P, 0)],
     doc="old_len 0 on a private mapping: EINVAL; on a shared one without MAYMOVE: ENOMEM (cannot expand in place)")
case("mremap_old_len_zero_shared", [mmap(a1, 2 * P, RW, SAF), write8(a1, 4), mremap(a1, 0, 2 * P, MM | MF, W(B + 16 * P)),
                                    read8(W(B + 16 * P)), read8(a1)],
     doc="old_len 0 on a shared mapping creates a second mapping of the same pages")
case("mremap_multi_vma_move", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 2 * P), 2 * P, RO, PAF),
                               mremap(a1, 4 * P, 4 * P, MM | MF, W(B + 16 * P))],
     doc="6.17+: a same-size MREMAP_FIXED move may span several VMAs")
case("mremap_multi_vma_move_gaps", [mmap(a1, 2 * P, RW, PAF), mmap(W(B + 3 * P), 2 * P, RO, PAF),
                                     mremap(a1, 5 * P, 5 * P, MM | MF, W(B + 16 * P)),
                                     mremap(W(B + 15 * P), 3 * P, 3 * P, MM | MF, W(B + 32 * P))],
     doc="gaps between VMAs are preserved; a gap at the start of the range is EFAULT")
case("mremap_locked_grow", [mmap(a1, 2 * P, RW, PAF | C.MAP_LOCKED), mremap(a1, 2 * P, 4 * P, 0), vmlck(),
                            pagemap(W(B + 3 * P))], doc="growing a locked VMA populates and counts the new pages")

# ----------------------------------------------------------------------- madvise
case("madvise_check_args", [mmap(a1, 2 * P, RW, PAF), madvise(a1, P, 5), madvise(a1, P, 12345), madvise(a1, P, -1),
                            madvise(a1, P, 104), madvise(a1, P, 26), madvise(a1, P, C.MADV_HWPOISON),
                            madvise(a1, P, C.MADV_SOFT_OFFLINE), madvise(W(B + 1), P, C.MADV_NORMAL),
                            madvise(W(B + 4 * P), 0, C.MADV_DONTNEED), madvise(W(B + 1), 0, C.MADV_DONTNEED),
                            madvise(W(B + 4 * P), 0, 5), madvise(a1, -1, C.MADV_NORMAL), madvise(a1, -P, C.MADV_NORMAL)],
     ported_from=LTP + "madvise/madvise02.c",
     doc="unknown advice first (HWPOISON/SOFT_OFFLINE count as unknown: CONFIG_MEMORY_FAILURE is off), then "
         "alignment, then length wrap; len 0 succeeds after those checks")
case("madvise_unmapped", [madvise(a1, P, C.MADV_NORMAL), madvise(a1, P, C.MADV_DONTNEED), madvise(a1, P, C.MADV_WILLNEED),
                          madvise(TASK_SIZE + P, P, C.MADV_NORMAL)],
     ported_from=LTP + "madvise/madvise02.c", doc="no TASK_SIZE check: beyond it there is simply no VMA")
case("madvise_dontneed_drops_pages", [mmap(a1, 2 * P, RW, PAF), write8(a1, 6), pagemap(a1),
                                      madvise(a1, 2 * P, C.MADV_DONTNEED), pagemap(a1), read8(a1)])
case("madvise_dontneed_hole_partial_effect", [mmap(a1, P, RW, PAF), write8(a1, 6), mmap(W(B + 2 * P), P, RW, PAF),
                                              write8(W(B + 2 * P), 6), madvise(a1, 3 * P, C.MADV_DONTNEED),
                                              read8(a1), read8(W(B + 2 * P))],
     doc="holes give ENOMEM but every mapped part is still advised")
case("madvise_locked_vma", [mmap(a1, P, RW, PAF | C.MAP_LOCKED), madvise(a1, P, C.MADV_DONTNEED),
                            madvise(a1, P, C.MADV_FREE), madvise(a1, P, C.MADV_COLD), madvise(a1, P, C.MADV_PAGEOUT),
                            madvise(a1, P, C.MADV_GUARD_INSTALL), madvise(a1, P, C.MADV_REMOVE),
                            madvise(a1, P, C.MADV_DONTNEED_LOCKED), pagemap(a1)],
     ported_from=LTP + "madvise/madvise02.c", doc="advices that would drop or age pages refuse VM_LOCKED; "
                                                  "DONTNEED_LOCKED does not")
case("madvise_dontneed_shared_anon", [mmap(a1, P, RW, SAF), write8(a1, 2), madvise(a1, P, C.MADV_DONTNEED), read8(a1)],
     doc="shared: DONTNEED only drops the PTE, the shmem page keeps the data")
case("madvise_free_private", [mmap(a1, P, RW, PAF), write8(a1, 2), madvise(a1, P, C.MADV_FREE), read8(a1)])
case("madvise_willneed_anon", [mmap(a1, 2 * P, RW, PAF), madvise(a1, 2 * P, C.MADV_WILLNEED), pagemap(a1)])
case("madvise_random_middle_splits_and_remerges", [mmap(a1, 3 * P, RW, PAF), madvise(W(B + P), P, C.MADV_RANDOM),
                                                   madvise(W(B + P), P, C.MADV_NORMAL)])
case("madvise_vma_flag_advices", [mmap(a1, 16 * P, RW, PAF), madvise(a1, P, C.MADV_SEQUENTIAL),
                                  madvise(W(B + 2 * P), P, C.MADV_DONTDUMP), madvise(W(B + 4 * P), P, C.MADV_MERGEABLE),
                                  madvise(W(B + 6 * P), P, C.MADV_HUGEPAGE), madvise(W(B + 8 * P), P, C.MADV_NOHUGEPAGE),
                                  madvise(W(B + 10 * P), P, C.MADV_DONTFORK), madvise(W(B + 12 * P), P, C.MADV_WIPEONFORK)],
     doc="every flag-setting advice splits the VMA around the range (sr dd mg hg nh dc wf)")
case("madvise_vma_flag_advices_undo", [mmap(a1, 16 * P, RW, PAF), madvise(a1, P, C.MADV_SEQUENTIAL),
                                       madvise(W(B + 2 * P), P, C.MADV_DONTDUMP), madvise(W(B + 4 * P), P, C.MADV_MERGEABLE),
                                       madvise(W(B + 6 * P), P, C.MADV_HUGEPAGE), madvise(W(B + 10 * P), P, C.MADV_DONTFORK),
                                       madvise(W(B + 12 * P), P, C.MADV_WIPEONFORK),
                                       madvise(a1, P, C.MADV_NORMAL), madvise(W(B + 2 * P), P, C.MADV_DODUMP),
                                       madvise(W(B + 4 * P), P, C.MADV_UNMERGEABLE),
                                       madvise(W(B + 10 * P), P, C.MADV_DOFORK), madvise(W(B + 12 * P), P, C.MADV_KEEPONFORK),
                                       madvise(W(B + 6 * P), P, C.MADV_NOHUGEPAGE)],
     doc="undoing each flag re-merges the pieces; HUGEPAGE->NOHUGEPAGE leaves an nh piece")
case("madvise_flag_change_with_hole", [mmap(a1, P, RW, PAF), mmap(W(B + 2 * P), P, RW, PAF),
                                       madvise(a1, 3 * P, C.MADV_RANDOM)])
case("madvise_wipeonfork_private", [mmap(a1, 2 * P, RW, PAF), madvise(a1, P, C.MADV_WIPEONFORK)])
case("madvise_wipeonfork_shared", [mmap(a1, 2 * P, RW, SAF), madvise(a1, P, C.MADV_WIPEONFORK)])
case("madvise_remove_invalid", [mmap(a1, P, RW, PAF), madvise(a1, P, C.MADV_REMOVE), mmap(W(B + 2 * P), P, RW, SAF | C.MAP_LOCKED),
                                madvise(W(B + 2 * P), P, C.MADV_REMOVE), mmap(W(B + 4 * P), P, RW, SAF),
                                madvise(W(B + 4 * P), P, C.MADV_FREE)],
     doc="REMOVE needs a shared writable file (shmem) and no VM_LOCKED; FREE is for private anon only")
case("madvise_remove_shared", [mmap(a1, 2 * P, RW, SAF), write8(a1, 8), madvise(a1, P, C.MADV_REMOVE), read8(a1)])
case("madvise_cold_pageout", [mmap(a1, P, RW, PAF), write8(a1, 1), madvise(a1, P, C.MADV_COLD),
                              madvise(a1, P, C.MADV_PAGEOUT), pagemap(a1), read8(a1)],
     doc="no swap on the host: PAGEOUT succeeds but the anon page stays")
case("madvise_collapse_small", [mmap(a1, 2 * P, RW, PAF), write8(a1), madvise(a1, 2 * P, C.MADV_COLLAPSE)])
case("madvise_populate_read", [mmap(a1, 2 * P, RW, PAF), madvise(a1, 2 * P, C.MADV_POPULATE_READ), pagemap(a1)],
     ported_from=SELF + "madv_populate.c")
case("madvise_populate_write", [mmap(a1, 2 * P, RW, PAF), madvise(a1, 2 * P, C.MADV_POPULATE_WRITE), pagemap(a1)],
     ported_from=SELF + "madv_populate.c")
case("madvise_populate_holes", [mmap(a1, P, RW, PAF), mmap(W(B + 2 * P), P, RW, PAF),
                                madvise(a1, 3 * P, C.MADV_POPULATE_READ), pagemap(W(B + 2 * P))],
     ported_from=SELF + "madv_populate.c:test_holes")
case("madvise_populate_prot", [mmap(a1, P, NONE, PAF), madvise(a1, P, C.MADV_POPULATE_READ),
                               madvise(a1, P, C.MADV_POPULATE_WRITE), mmap(W(B + 2 * P), P, RO, PAF),
                               madvise(W(B + 2 * P), P, C.MADV_POPULATE_READ), madvise(W(B + 2 * P), P, C.MADV_POPULATE_WRITE),
                               mmap(W(B + 4 * P), P, C.PROT_WRITE, PAF), madvise(W(B + 4 * P), P, C.MADV_POPULATE_READ),
                               madvise(W(B + 4 * P), P, C.MADV_POPULATE_WRITE)],
     ported_from=SELF + "madv_populate.c", doc="POPULATE needs the matching permission: EINVAL otherwise")
case("madvise_guard_install_remove", [mmap(a1, 3 * P, RW, PAF), write8(W(B + P), 1),
                                      madvise(W(B + P), P, C.MADV_GUARD_INSTALL), read8(W(B + P)), pagemap(W(B + P)),
                                      madvise(a1, 3 * P, C.MADV_POPULATE_READ), madvise(W(B + P), P, C.MADV_DONTNEED),
                                      read8(W(B + P)), madvise(W(B + P), P, C.MADV_GUARD_REMOVE), read8(W(B + P))],
     ported_from=SELF + "guard-regions.c", doc="guard markers do not split the VMA; POPULATE over one fails; DONTNEED leaves it")
case("madvise_guard_flag_merges", [mmap(a1, 2 * P, RW, PAF), madvise(a1, P, C.MADV_GUARD_INSTALL),
                                   mmap(W(B + 2 * P), 2 * P, RW, PAF), mprotect(W(B + P), P, RO), mprotect(W(B + P), P, RW),
                                   mmap(W(B + 8 * P), 2 * P, RW, PAF), mmap(W(B + 10 * P), 2 * P, RW, PAF),
                                   madvise(W(B + 10 * P), P, C.MADV_GUARD_INSTALL), madvise(W(B + 10 * P), P, C.MADV_GUARD_REMOVE)],
     ported_from=SELF + "guard-regions.c",
     doc="6.18 marks the whole VMA VM_MAYBE_GUARD (gu) on GUARD_INSTALL and never clears it; does it block merges?")
case("madvise_guard_shared_anon", [mmap(a1, P, RW, SAF), madvise(a1, P, C.MADV_GUARD_INSTALL), read8(a1)])

# ----------------------------------------------------------------------- mlock family
case("mlock_basic", [mmap(a1, 4 * P, RW, PAF), mlock(W(B + P), 2 * P), vmlck(), pagemap(W(B + P)), pagemap(a1)],
     ported_from=LTP + "mlock/mlock01.c")
case("mlock_unaligned_start_rounds", [mmap(a1, 4 * P, RW, PAF), mlock(W(B + P + 100), P), vmlck()],
     doc="start rounded down, length grown by the offset: 2 pages locked")
case("mlock_check_args", [mlock(a1, 0), mlock(a1, P), munlock(a1, P), mmap(a1, P, RW, PAF), mlock(a1, -P),
                          mlock2(a1, P, 2)],
     ported_from=LTP + "mlock/mlock02.c", doc="len 0 -> 0; no VMA -> ENOMEM; length wrap -> EINVAL; bad mlock2 flags")
case("mlock_hole_partial_effect", [mmap(a1, P, RW, PAF), mmap(W(B + 2 * P), P, RW, PAF), mlock(a1, 3 * P), vmlck()])
case("mlock_prot_none", [mmap(a1, 2 * P, NONE, PAF), mlock(a1, 2 * P), vmlck()])
case("mlock_middle_then_munlock_remerges", [mmap(a1, 3 * P, RW, PAF), mlock(W(B + P), P), munlock(W(B + P), P), vmlck()])
case("mlock_twice_counts_once", [mmap(a1, 2 * P, RW, PAF), mlock(a1, 2 * P), mlock(a1, 2 * P), vmlck()])
case("mlock2_onfault", [mmap(a1, 2 * P, RW, PAF), mlock2(a1, 2 * P, C.MLOCK_ONFAULT), pagemap(a1), vmlck(),
                        write8(a1), pagemap(a1)], ported_from=SELF + "mlock2-tests.c")
case("mlock2_onfault_then_mlock", [mmap(a1, 2 * P, RW, PAF), mlock2(a1, 2 * P, C.MLOCK_ONFAULT), mlock(a1, P),
                                   pagemap(a1)], ported_from=SELF + "mlock2-tests.c")
case("munlock_unaligned", [mmap(a1, 2 * P, RW, PAF), mlock(a1, 2 * P), munlock(W(B + 5), P), vmlck()])
case("mlockall_check_args", [mlockall(0), mlockall(8), mlockall(C.MCL_ONFAULT), munlockall()],
     ported_from=LTP + "mlockall/mlockall03.c", doc="0, unknown bits, MCL_ONFAULT alone: EINVAL; munlockall cannot fail")
case("mlockall_future_applies_to_new_maps", [mlockall(C.MCL_FUTURE), mmap(a1, 2 * P, RW, PAF), pagemap(a1), vmlck(),
                                             munlockall(), mmap(W(B + 4 * P), P, RW, PAF)])
case("mlockall_future_onfault", [mlockall(C.MCL_FUTURE | C.MCL_ONFAULT), mmap(a1, 2 * P, RW, PAF), pagemap(a1)])
case("mlockall_current_then_munlockall", [mmap(a1, 2 * P, RW, PAF), mlockall(C.MCL_CURRENT), pagemap(a1),
                                          munlockall()],
     doc="MCL_CURRENT locks every VMA including the PROT_NONE window guards")

# non-root: RLIMIT_MEMLOCK enforced
case("nonroot_mlock_rlimit_zero", [mmap(a1, P, RW, PAF), setrlimit(RLIMIT_MEMLOCK, 0, 0), dropcaps(), mlock(a1, P),
                                   mlock2(a1, P, 2), munlock(a1, P)],
     requires=["nonroot"], ported_from=LTP + "mlock/mlock02.c", doc="EPERM; bad mlock2 flags win; munlock needs no privilege")
case("nonroot_mlock_over_limit", [mmap(a1, 4 * P, RW, PAF), setrlimit(RLIMIT_MEMLOCK, 2 * P, 2 * P), dropcaps(),
                                  mlock(a1, 2 * P), mlock(a1, 2 * P), mlock(a1, 3 * P), vmlck()],
     requires=["nonroot"], doc="re-locking counted pages is allowed; going over the limit is ENOMEM")
case("nonroot_map_locked_over_limit", [setrlimit(RLIMIT_MEMLOCK, 2 * P, 2 * P), dropcaps(),
                                       mmap(a1, 4 * P, RW, PAF | C.MAP_LOCKED), mmap(a1, 2 * P, RW, PAF | C.MAP_LOCKED)],
     requires=["nonroot"])
case("nonroot_map_locked_rlimit_zero", [setrlimit(RLIMIT_MEMLOCK, 0, 0), dropcaps(), mmap(a1, P, RW, PAF | C.MAP_LOCKED)],
     requires=["nonroot"])
case("nonroot_mlockall_rlimit_zero", [setrlimit(RLIMIT_MEMLOCK, 0, 0), dropcaps(), mlockall(C.MCL_FUTURE),
                                      mlockall(C.MCL_CURRENT)], requires=["nonroot"], ported_from=LTP + "mlockall/mlockall02.c")
case("nonroot_mlockall_current_over_limit", [setrlimit(RLIMIT_MEMLOCK, 4 * P, 4 * P), dropcaps(), mlockall(C.MCL_CURRENT),
                                             mlockall(C.MCL_FUTURE), mmap(a1, 8 * P, RW, PAF), mmap(a1, 2 * P, RW, PAF)],
     requires=["nonroot"], doc="MCL_CURRENT compares total_vm with the limit; MCL_FUTURE then gates each mmap")
case("nonroot_mremap_locked_grow_over_limit", [mmap(a1, 2 * P, RW, PAF | C.MAP_LOCKED), setrlimit(RLIMIT_MEMLOCK, 2 * P, 2 * P),
                                               dropcaps(), mremap(a1, 2 * P, 4 * P, MM)], requires=["nonroot"])

# ----------------------------------------------------------------------- max_map_count
case("map_count_mmap_boundary", [fill(0), mmap(a1, P, RW, PAF), mmap(W(B + 2 * P), P, RW, PAF), unfill()],
     requires=["map_count_fill"], doc="do_mmap refuses only when map_count > max: one VMA past the limit is allowed")
case("map_count_mmap_merge_at_limit", [fill(1), mmap(a1, P, RW, PAF), mmap(W(B + 2 * P), P, RW, PAF),
                                       mmap(W(B + P), P, RW, PAF), unfill()],
     requires=["map_count_fill"], doc="at the limit, a mapping that would merge is still refused up front")
case("map_count_mprotect_split", [mmap(a1, 3 * P, RW, PAF), fill(0), mprotect(W(B + P), P, RO), mprotect(a1, P, RO),
                                  unfill()], requires=["map_count_fill"])
case("map_count_munmap_middle", [mmap(a1, 3 * P, RW, PAF), fill(0), munmap(W(B + P), P), munmap(a1, P), unfill()],
     requires=["map_count_fill"], doc="a middle unmap needs a split; an edge unmap does not")
case("map_count_madvise_split_eagain", [mmap(a1, 3 * P, RW, PAF), fill(0), madvise(W(B + P), P, C.MADV_RANDOM), unfill()],
     requires=["map_count_fill"], doc="madvise turns the split's ENOMEM into EAGAIN")
case("map_count_mlock_split", [mmap(a1, 3 * P, RW, PAF), fill(0), mlock(W(B + P), P), unfill()],
     requires=["map_count_fill"])
case("map_count_mremap_fixed", [mmap(a1, P, RW, PAF), fill(4), mremap(a1, P, P, MM | MF, W(B + 8 * P)), unfill()],
     requires=["map_count_fill"], doc="check_mremap_params wants map_count + 2 < max - 3")
case("map_count_mmap_fixed_split", [mmap(a1, 3 * P, RW, PAF), fill(0), mmap(W(B + P), P, RO, PAF), unfill()],
     requires=["map_count_fill"])

# ----------------------------------------------------------------------- brk
HEAP = [["start_brk", 0, 16 * MiB]]
case("brk_grow_shrink", [brk(0), brk(R("start_brk", 3 * P)), brk(R("start_brk", P)), brk(0), brk(R("start_brk", -P)),
                         brk(0)], requires=["brk"], regions=HEAP, ported_from=LTP + "brk/brk01.c",
     doc="brk(0) queries; growing/shrinking returns the new break; below start_brk returns the old break")
case("brk_unaligned", [brk(R("start_brk", P + 10)), brk(0), write8(R("start_brk", 2 * P - 1)), read8(R("start_brk", 2 * P))],
     requires=["brk"], regions=HEAP, doc="brk keeps the unaligned value, the VMA ends at the next page")
case("brk_blocked_by_mapping", [mmap(R("start_brk", 16 * P), P, RW, PAF), brk(R("start_brk", 15 * P + 1)),
                                brk(R("start_brk", 15 * P)), brk(R("start_brk", 16 * P))],
     requires=["brk"], regions=HEAP, doc="brk keeps one free page below the next mapping")
case("brk_mapping_merges_with_heap", [brk(R("start_brk", 2 * P)), mmap(R("start_brk", 2 * P), 2 * P, RW, PAF),
                                      brk(R("start_brk", 3 * P))],
     requires=["brk"], regions=HEAP, doc="an anon RW map placed right after the heap merges into [heap]")
case("brk_shrink_then_regrow_merge", [brk(R("start_brk", 4 * P)), write8(R("start_brk")), brk(R("start_brk", 2 * P)),
                                      brk(R("start_brk", 6 * P))], requires=["brk"], regions=HEAP)
case("brk_mlockall_future", [mlockall(C.MCL_FUTURE), brk(R("start_brk", 2 * P)), vmlck(), munlockall()],
     requires=["brk"], regions=HEAP)
case("brk_rlimit_data", [setrlimit(RLIMIT_DATA, 2 * P, 2 * P), brk(R("start_brk", 8 * MiB)), brk(0)],
     requires=["brk"], regions=HEAP)

# ----------------------------------------------------------------------- fork / exit
case("fork_private_cow", [mmap(a1, P, RW, PAF), write8(a1, 1), fork(read8(a1), write8(a1, 2), read8(a1)), read8(a1)],
     ported_from=LTP + "mmap/mmap11.c")
case("fork_shared_anon", [mmap(a1, P, RW, SAF), write8(a1, 1), fork(write8(a1, 2)), read8(a1)])
case("fork_dontfork", [mmap(a1, 3 * P, RW, PAF), write8(a1, 1), madvise(W(B + P), P, C.MADV_DONTFORK),
                       fork(read8(a1), read8(W(B + P)), mmap(W(B + P), P, RW, PAF))],
     doc="the child lacks the VMA; re-mapping the hole merges all three in the child")
case("fork_wipeonfork", [mmap(a1, 2 * P, RW, PAF), write8(a1, 1), write8(W(B + P), 1), madvise(a1, P, C.MADV_WIPEONFORK),
                         fork(read8(a1), read8(W(B + P))), read8(a1)])
case("fork_locked_not_inherited", [mmap(a1, 2 * P, RW, PAF | C.MAP_LOCKED), vmlck(), fork(vmlck(), pagemap(a1))])
case("fork_mlockall_future_not_inherited", [mlockall(C.MCL_FUTURE), fork(mmap(a1, P, RW, PAF), vmlck()), munlockall()])
case("fork_child_touched_no_merge", [mmap(a1, 5 * P, RW, PAF), write8(a1),
                                     fork(write8(a1), mmap(W(B + 5 * P), 5 * P, RW, PAF))],
     ported_from=SELF + "merge.c:forked_target_vma")
case("fork_child_untouched_merges", [mmap(a1, 5 * P, RW, PAF), fork(mmap(W(B + 5 * P), 5 * P, RW, PAF))])
case("fork_parent_still_merges", [mmap(a1, 5 * P, RW, PAF), write8(a1), fork(read8(a1)), mmap(W(B + 5 * P), 5 * P, RW, PAF)],
     doc="the parent's anon_vma_chain stays singular, so the parent still merges")
case("fork_source_vma_no_merge", [mmap(a1, 5 * P, RW, PAF | NR), write8(a1),
                                  fork(write8(a1), mmap(W(B + 5 * P), 5 * P, RWX, PAF | NR),
                                       mprotect(a1, 5 * P, RWX))],
     ported_from=SELF + "merge.c:forked_source_vma")
case("fork_child_split_remerges", [mmap(a1, 3 * P, RW, PAF), write8(a1),
                                   fork(mprotect(W(B + P), P, RO), mprotect(W(B + P), P, RW))],
     doc="split pieces share the same anon_vma, so they merge back even in the child")
case("fork_child_exit_code", [fork(exit_(3))])
case("fork_child_sees_parent_layout", [mmap(a1, 2 * P, RW, PAF), mprotect(W(B + P), P, RO), madvise(a1, P, C.MADV_RANDOM),
                                       fork(read8(a1))])

# ----------------------------------------------------------------------- accounting odds and ends
case("mmap_fixed_over_locked", [mmap(a1, 4 * P, RW, PAF | C.MAP_LOCKED), vmlck(), mmap(W(B + P), 2 * P, RW, PAF), vmlck()],
     doc="MAP_FIXED unmaps what it covers first: locked_vm drops by the replaced pages")
case("mremap_shrink_locked", [mmap(a1, 4 * P, RW, PAF | C.MAP_LOCKED), mremap(a1, 4 * P, P, 0), vmlck()])
case("fork_guard_markers_copied", [mmap(a1, 2 * P, RW, PAF), madvise(a1, P, C.MADV_GUARD_INSTALL),
                                   fork(read8(a1), read8(W(B + P)))],
     ported_from=SELF + "guard-regions.c", doc="guard markers survive fork (page tables copied)")
case("mremap_param_checks_precede_vma_lookup",
     [mremap(a1, P, P, MF | MM, W(B)), mremap(a1, P, P, MF | MM, TASK_SIZE),
      mremap(a1, P, P, MF | MM, W(B + 8 * P)), mremap(a1, 2 * P, P, MM)],
     doc="with nothing mapped: overlap / out-of-range new_addr give EINVAL before the EFAULT of the VMA lookup")
