"""mmap and munmap: do_mmap(), mmap_region() (mm/mmap.c, mm/vma.c) and do_vmi_munmap().

Argument checks follow do_mmap()'s order, so the first failing check decides the errno:

  len == 0                                   EINVAL
  MAP_FIXED_NOREPLACE implies MAP_FIXED; a non-fixed hint below mmap_min_addr is raised to it
  PAGE_ALIGN(len) overflows to 0             ENOMEM
  map_count > max_map_count                  ENOMEM
  get_unmapped_area: no room / MAP_FIXED addr unaligned or past TASK_SIZE   ENOMEM / EINVAL
  MAP_FIXED_NOREPLACE over a mapping         EEXIST
  MAP_LOCKED beyond RLIMIT_MEMLOCK (not root)    EAGAIN
  anonymous: MAP_SHARED + MAP_GROWSDOWN EINVAL; unknown map type EINVAL
  (the syscall entry rejects: unknown MAP_SHARED_VALIDATE flags EOPNOTSUPP, offset not page
  aligned EINVAL, MAP_HUGETLB without hugepages ENOMEM ...; see kernel/args.py)

mmap_region(): unmap what MAP_FIXED covers (after checking that splitting is allowed),
charge the commit for private writable mappings (VM_ACCOUNT), try to merge with the
neighbours, otherwise create the VMA (and for MAP_SHARED|MAP_ANONYMOUS its shmem object,
shmem_zero_setup), account total_vm/data_vm/locked_vm. MAP_POPULATE and MAP_LOCKED then
populate the range (mm_populate), ignoring failures as Linux does.
"""

from __future__ import annotations

import errno

from ..constants import F_SEAL_FUTURE_WRITE, F_SEAL_WRITE
from ..constants import (MAP_ANONYMOUS, MAP_DROPPABLE, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_GROWSDOWN,
                         MAP_HUGETLB, MAP_LOCKED, MAP_NONBLOCK, MAP_NORESERVE, MAP_POPULATE,
                         MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_STACK, MAP_TYPE,
                         PAGE_SIZE, PROT_WRITE, TASK_SIZE)
from ..errors import syscall_error
from ..mm.vma import VMA, calc_vm_prot_bits, pkey_bits
from ..mm.vmflags import (VM_ACCOUNT, VM_DONTDUMP, VM_DROPPABLE, VM_GROWSDOWN, VM_LOCKED,
                          VM_LOCKONFAULT, VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE,
                          VM_NOHUGEPAGE, VM_NORESERVE, VM_SHARED, VM_SOFTDIRTY, VM_WIPEONFORK,
                          VM_WRITE)
from . import layout
from .unmap import check_split_limit, clear_and_complete, do_munmap_range, gather
from .vma_ops import MergeRange, VM_SPECIAL, vma_link_file, vma_merge_new_range


_U64 = (1 << 64) - 1
MAX_FILE_PAGES = (1 << 44) >> 12          # the model's largest file (MAX_LFS_FILESIZE analogue)
LEGACY_MAP_MASK = (MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | 0x800 | 0x1000
                   | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK
                   | MAP_STACK | MAP_HUGETLB | 0x40 | 0x80)   # + DENYWRITE, EXECUTABLE, 32BIT, ABOVE4G


def page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def calc_vm_flag_bits(flags: int) -> int:
    """calc_vm_flag_bits(): MAP_GROWSDOWN -> VM_GROWSDOWN, MAP_LOCKED -> VM_LOCKED,
    MAP_STACK -> VM_NOHUGEPAGE (so a MAP_STACK mapping does not merge with a plain one)."""
    return ((VM_GROWSDOWN if flags & MAP_GROWSDOWN else 0) | (VM_LOCKED if flags & MAP_LOCKED else 0)
            | (VM_NOHUGEPAGE if flags & MAP_STACK else 0))


def accountable_mapping(vm_flags: int) -> bool:
    """accountable_mapping(): private writable memory counts against the commit limit."""
    return (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE


def vm_enough_memory(kernel, pages: int) -> bool:
    """__vm_enough_memory() for overcommit_memory 0 (heuristic) and 2 (never); 1 always."""
    cfg = kernel.sys.config
    total = kernel.sys.frames.nframes + kernel.swap_pages()
    if cfg.overcommit_memory == 1:
        return True
    if cfg.overcommit_memory == 0:
        return pages <= total
    limit = kernel.sys.frames.nframes * cfg.overcommit_ratio // 100 + kernel.swap_pages()
    return kernel.committed_as() + pages <= limit


def do_mmap(kernel, task, addr: int, length: int, prot: int, flags: int,
            pgoff: int = 0, file=None) -> tuple[int, bool]:
    """mmap, checks in do_mmap()'s order. ``file`` is an OpenFile or None (anonymous).
    Returns (address, populate?)."""
    mm = task.mm
    cfg = kernel.sys.config
    if length == 0:
        raise syscall_error(errno.EINVAL, "mmap: length is 0")
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr &= ~(PAGE_SIZE - 1)
        if addr and addr < cfg.mmap_min_addr:
            addr = (cfg.mmap_min_addr + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)   # round_hint_to_min
    length = page_align(length) & _U64
    if length == 0:
        raise syscall_error(errno.ENOMEM, "mmap: length too large")
    if pgoff + (length >> 12) >= 1 << 64:
        raise syscall_error(errno.EOVERFLOW, "mmap: offset + length overflows")
    if mm.map_count > cfg.max_map_count:
        raise syscall_error(errno.ENOMEM, "mmap: too many mappings (vm.max_map_count)")
    # __get_unmapped_area()
    if length > TASK_SIZE:
        raise syscall_error(errno.ENOMEM, "mmap: length larger than the address space")
    try:
        addr = layout.get_unmapped_area(mm, addr, length, pgoff, flags, anonymous=file is None,
                                        stack_guard_gap=cfg.stack_guard_gap,
                                        mmap_min_addr=cfg.mmap_min_addr)
    except layout.NoSpace:
        raise syscall_error(errno.ENOMEM, "mmap: no free address range") from None
    if addr > TASK_SIZE - length:
        raise syscall_error(errno.ENOMEM, "mmap: range beyond TASK_SIZE")
    if addr & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "mmap: MAP_FIXED address not page aligned")
    if addr < cfg.mmap_min_addr and not cfg.capable_sys_rawio:
        raise syscall_error(errno.EPERM, "mmap: address below vm.mmap_min_addr")
    if flags & MAP_FIXED_NOREPLACE and mm.vmas.find_intersection(addr, addr + length):
        raise syscall_error(errno.EEXIST, "mmap: MAP_FIXED_NOREPLACE range is already mapped")
    vm_flags = (calc_vm_prot_bits(prot) | pkey_bits(prot, cfg.pkeys) | calc_vm_flag_bits(flags) | mm.def_flags
                | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC)
    from .mlock import can_do_mlock, mlock_future_ok
    if flags & MAP_LOCKED and not can_do_mlock(kernel):
        raise syscall_error(errno.EPERM, "mmap: MAP_LOCKED not permitted")
    if vm_flags & VM_LOCKED and not mlock_future_ok(kernel, mm, length):
        raise syscall_error(errno.EAGAIN, "mmap: locking would exceed RLIMIT_MEMLOCK")
    mtype = flags & MAP_TYPE
    obj = None
    if file is not None:
        obj = file.inode
        if pgoff > (MAX_FILE_PAGES - (length >> 12)):
            raise syscall_error(errno.EOVERFLOW, "mmap: offset + length past the largest file")
        if mtype in (MAP_SHARED, MAP_SHARED_VALIDATE):
            if mtype == MAP_SHARED:
                flags &= LEGACY_MAP_MASK
            if flags & ~LEGACY_MAP_MASK:
                raise syscall_error(errno.EOPNOTSUPP, "mmap: MAP_SHARED_VALIDATE with an unknown flag")
            if prot & PROT_WRITE and not file.writable:
                raise syscall_error(errno.EACCES, "mmap: PROT_WRITE|MAP_SHARED of a file not open for writing")
            vm_flags |= VM_SHARED | VM_MAYSHARE
            if not file.writable:
                vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
        elif mtype != MAP_PRIVATE:
            raise syscall_error(errno.EINVAL, "mmap: map type must be MAP_SHARED or MAP_PRIVATE")
        if not file.readable:
            raise syscall_error(errno.EACCES, "mmap: the file is not open for reading")
        if vm_flags & VM_GROWSDOWN:
            raise syscall_error(errno.EINVAL, "mmap: MAP_GROWSDOWN on a file mapping")
        if getattr(obj, "seals", 0) & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) and vm_flags & VM_SHARED:
            # memfd_check_seals_mmap() / seal_check_write(): no new shared writable mapping,
            # and a read-only one may not become writable (VM_MAYWRITE goes)
            if vm_flags & VM_WRITE:
                raise syscall_error(errno.EPERM, "mmap: PROT_WRITE|MAP_SHARED of a write-sealed file")
            vm_flags &= ~VM_MAYWRITE
    elif mtype == MAP_SHARED:
        if vm_flags & VM_GROWSDOWN:
            raise syscall_error(errno.EINVAL, "mmap: MAP_GROWSDOWN on a shared mapping")
        pgoff = 0
        vm_flags |= VM_SHARED | VM_MAYSHARE
    elif mtype == MAP_DROPPABLE:
        if flags & (MAP_LOCKED | MAP_HUGETLB | MAP_GROWSDOWN):
            raise syscall_error(errno.EINVAL, "mmap: MAP_DROPPABLE with MAP_LOCKED/HUGETLB/GROWSDOWN")
        vm_flags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP
        vm_flags &= ~(VM_LOCKED | VM_LOCKONFAULT)    # not even under mlockall(MCL_FUTURE)
        pgoff = addr >> 12
    elif mtype == MAP_PRIVATE:
        pgoff = addr >> 12
    else:
        raise syscall_error(errno.EINVAL, "mmap: map type must be MAP_SHARED, MAP_PRIVATE or "
                                          "MAP_DROPPABLE for anonymous memory")
    if flags & MAP_NORESERVE and cfg.overcommit_memory != 2:
        vm_flags |= VM_NORESERVE
    addr = mmap_region(kernel, task, addr, length, vm_flags, pgoff, obj)
    populate = bool(vm_flags & VM_LOCKED) or (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE
    return addr, populate


def mmap_region(kernel, task, addr: int, length: int, vm_flags: int, pgoff: int, file) -> int:
    """__mmap_region(): install [addr, addr+length) with vm_flags, replacing what is there."""
    mm = task.mm
    design = kernel.design
    end = addr + length
    cfg = kernel.sys.config
    if cfg.soft_dirty:
        vm_flags |= VM_SOFTDIRTY
    # vms_gather_munmap_vmas() for MAP_FIXED: the split check comes before any change
    check_split_limit(kernel, mm, addr, end)
    shmem_acct = 0
    if file is None and vm_flags & VM_SHARED and not vm_flags & VM_NORESERVE:
        # shmem_zero_setup() -> shmem_acct_size(): the whole object is charged up front.
        # (Linux gets there after unmapping a MAP_FIXED target and undoes that on failure;
        # checking first leaves the same state.)
        shmem_acct = length >> 12
        if not vm_enough_memory(kernel, shmem_acct):
            raise syscall_error(errno.ENOMEM, "mmap: not enough memory to commit the shared "
                                              "anonymous object (vm.overcommit_memory)")
    charged = 0
    if accountable_mapping(vm_flags):
        replaced = sum(min(end, v.vm_end) - max(addr, v.vm_start)
                       for v in mm.vmas.intersecting(addr, end) if v.vm_flags & VM_ACCOUNT) >> 12
        charged = length >> 12
        if charged - replaced > 0 and not vm_enough_memory(kernel, charged - replaced):
            raise syscall_error(errno.ENOMEM, "mmap: not enough memory to commit "
                                              "(vm.overcommit_memory heuristic)")
        vm_flags |= VM_ACCOUNT
    detached = gather(kernel, mm, addr, end)
    prev = mm.vmas.prev_of(addr)
    nxt = mm.vmas.next_of(end)
    if detached:
        floor = prev.vm_end if prev is not None else 0
        ceiling = nxt.vm_start if nxt is not None else 0
        clear_and_complete(kernel, mm, detached, floor, ceiling)
    kernel.committed_pages += charged
    vma = None
    if not (file is None and vm_flags & VM_SHARED):
        g = MergeRange(mm, addr, end, vm_flags, pgoff, file, prev, nxt)
        vma = vma_merge_new_range(design, g)
    if vma is None:
        if vm_flags & VM_SHARED and file is None:
            # shmem_zero_setup(): the "anonymous inode" of shared anonymous memory
            obj = design.shared_anon_object(kernel.sys.get_next_ino(), length)
            obj.unlinked = True                       # "/dev/zero (deleted)"
            obj.noreserve = not shmem_acct
            obj.acct_pages = shmem_acct
            kernel.committed_pages += shmem_acct
            obj.owner_id = kernel.sys.frames.owners.add(obj)
            file = obj
        vma = VMA(mm, addr, end, vm_flags, pgoff, file)
        mm.vmas.insert(vma)
        vma_link_file(vma)
    mm.vm_stat_account(vm_flags, length >> 12)
    if vm_flags & VM_LOCKED:
        if vm_flags & VM_SPECIAL:
            vma.vm_flags &= ~(VM_LOCKED | VM_LOCKONFAULT)
        else:
            mm.locked_vm += length >> 12
    mm.update_hiwater_vm()
    return addr


def sys_munmap(kernel, task, addr: int, length: int) -> None:
    """do_vmi_munmap(): EINVAL for an unaligned or out-of-range start, or a zero length."""
    if addr & (PAGE_SIZE - 1) or addr > TASK_SIZE or length > TASK_SIZE - addr:
        raise syscall_error(errno.EINVAL, "munmap: address not page aligned or range past TASK_SIZE")
    end = addr + page_align(length)
    if end == addr:
        raise syscall_error(errno.EINVAL, "munmap: length is 0")
    do_munmap_range(kernel, task.mm, addr, end)
