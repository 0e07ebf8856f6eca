"""What happens when a simulated process touches its memory: the MMU plus the fault path.

Models arch/x86/mm/fault.c (do_user_addr_fault, access_error), mm/memory.c
(handle_mm_fault) from the caller's side, the hardware's accessed/dirty bits, and mm/gup.c
(populate_vma_page_range, faultin_page_range) for MAP_POPULATE, mlock and MADV_POPULATE_*.

An access of [addr, addr+len) runs in three phases, all-or-nothing for signals:
  1. check: every byte must lie in a VMA (else SIGSEGV/SEGV_MAPERR at the first hole), the
     VMA must allow the access (write needs VM_WRITE; a read needs any of VM_READ, VM_WRITE,
     VM_EXEC, as on x86; else SEGV_ACCERR), and a shared mapping must not reach past the end
     of its object (SIGBUS). A violation raises before anything changes. (A real CPU would
     have completed the pages before the bad one; recorded in docs/deviations.md.)
  2. fault: per PTE table, the slots that are not present (or not writable, for a write) go
     to the design's fault handler in one batch (a chunk of pages at a time, which shrinks
     towards Linux's one page when reclaim keeps taking back the chunk's earlier pages).
     Out of memory -> OOM killer -> retry.
  3. access: the "hardware" sets the accessed bit (and dirty on a store) in each PTE, then the
     bytes are read or written through the frame's content token.
"""

from __future__ import annotations

import errno

import numpy as np

from ..constants import PAGE_SIZE, SEGV_ACCERR, SEGV_MAPERR, SEGV_PKUERR
from ..mm.vma import VM_PKEY_MASK
from ..errors import BusError, ProcessKilled, SegmentationFault
from ..hw import pte as P
from ..hw.frames import PG_dirty, ZERO_PFN
from ..mm.vmflags import VM_EXEC, VM_GROWSDOWN, VM_LOCKED, VM_LOCKONFAULT, VM_MAYBE_GUARD, VM_READ, VM_SHARED, VM_WRITE
from .oom import out_of_memory, with_oom_retry

_U64 = np.uint64


def vma_is_accessible(vma) -> bool:
    return bool(vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC))


def check_access(kernel, task, addr: int, length: int, write: bool) -> list[tuple]:
    """Phase 1: the VMA segments of the range, or a signal at the first bad address."""
    mm = task.mm
    end = addr + length
    segs = []
    cur = addr
    while cur < end:
        vma = mm.vmas.find(cur)
        if vma is None or vma.vm_start > cur:
            if vma is not None and vma.vm_flags & VM_GROWSDOWN and _can_grow_stack(kernel, mm, vma, cur):
                segs.append(("grow", vma, cur))
                cur = vma.vm_start
                continue
            raise SegmentationFault(cur, SEGV_MAPERR, task.pid)
        if write and not vma.vm_flags & VM_WRITE:
            raise SegmentationFault(cur, SEGV_ACCERR, task.pid)
        if not write and not vma_is_accessible(vma):
            raise SegmentationFault(cur, SEGV_ACCERR, task.pid)
        if not write and vma.vm_flags & VM_PKEY_MASK:
            # an execute-only protection key denies data reads (x86 PKU)
            raise SegmentationFault(cur, SEGV_PKUERR, task.pid)
        seg_end = min(end, vma.vm_end)
        obj = vma.vm_file
        if obj is not None:
            first_off = vma.linear_page_index(cur & ~(PAGE_SIZE - 1))
            last_off = vma.linear_page_index((seg_end - 1) & ~(PAGE_SIZE - 1))
            if last_off >= obj.npages:
                bad = vma.addr_of_index(max(first_off, obj.npages))
                raise BusError(max(bad, cur), pid=task.pid)
        if vma.vm_flags & VM_MAYBE_GUARD:
            g = first_guard(kernel, mm, cur, seg_end)
            if g is not None:
                kernel.sys.events.count("pgfault")
                raise SegmentationFault(max(g, cur), SEGV_MAPERR, task.pid)
        segs.append(("ok", vma, cur, seg_end))
        cur = seg_end
    return segs


def first_guard(kernel, mm, start: int, end: int) -> int | None:
    """The first page of [start, end) holding a guard marker, or None."""
    pt = kernel.sys.pagetables
    rows_, los, his, addrs = pt.leaves(mm.pgd, start & ~(PAGE_SIZE - 1), end)
    for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
        hit = np.flatnonzero(pt.rows[row, lo:hi] == np.uint64(P.GUARD_PTE))
        if len(hit):
            return a + (int(hit[0]) << 12)
    return None


def _can_grow_stack(kernel, mm, vma, addr: int) -> bool:
    """expand_downwards() limits: within RLIMIT_STACK and clear of the previous VMA's guard gap."""
    new_start = addr & ~(PAGE_SIZE - 1)
    if vma.vm_end - new_start > kernel.sys.config.rlimit_stack:
        return False
    prev = mm.vmas.prev(vma)
    if prev is not None and prev.vm_end > new_start - kernel.sys.config.stack_guard_gap \
            and vma_is_accessible(prev):
        return False
    return True


def _grow_stack(kernel, mm, vma, addr: int) -> None:
    """expand_downwards(): the stack VMA's start moves down to cover ``addr``."""
    new_start = addr & ~(PAGE_SIZE - 1)
    grow = (vma.vm_start - new_start) >> 12
    mm.vmas.remove(vma)
    vma.vm_pgoff -= grow
    vma.vm_start = new_start
    mm.vmas.insert(vma)
    mm.vm_stat_account(vma.vm_flags, grow)
    mm.update_hiwater_vm()
    if vma.vm_flags & VM_LOCKED:
        mm.locked_vm += grow


def access_range(kernel, task, addr: int, length: int, write: bool):
    """Phase 1, then the segments (vma, start, end) to access, stack growth applied."""
    segs = check_access(kernel, task, addr, length, write)
    out = []
    for s in segs:
        if s[0] == "grow":
            _grow_stack(kernel, task.mm, s[1], s[2])
            continue
        _, vma, start, end = s
        out.append((vma, start, end))
    return out


def chunk_pages(kernel) -> int:
    """How many pages the CPU is modelled to fault and touch before moving on: one page table
    at most, and at most an eighth of RAM, so that under memory pressure the pages of a chunk
    are still resident when they are touched (reclaim can only run while a chunk faults)."""
    return max(1, min(512, kernel.sys.frames.nframes // 8))


def accessed_chunks(kernel, task, addr: int, length: int, write: bool):
    """Phases 1-3: yields (vma, start, end) chunks that are faulted in and ready to access;
    the caller accesses each chunk before asking for the next.

    A CPU copy faults one page at a time (arch/x86/mm/fault.c:do_user_addr_fault ->
    mm/memory.c:handle_mm_fault) and uses each page right after its fault, so a page may be
    reclaimed again behind the copy and the copy still finishes. The model faults a chunk
    in before using it; when the memory a chunk needs cannot be resident all at once (its
    later faults keep reclaiming its earlier pages), the chunk shrinks, down to the single
    page Linux works with, for which a completed fault always leaves the page present."""
    pages = chunk_pages(kernel)
    for vma, start, end in access_range(kernel, task, addr, length, write):
        cur = start
        while cur < end:
            page = cur & ~(PAGE_SIZE - 1)
            nxt = min(end, page + (pages << 12), (page | ((1 << 21) - 1)) + 1)   # one table at most
            if not ensure_faulted(kernel, task, vma, cur, nxt, write):
                if pages == 1:
                    _fault_oom(kernel, task)
                pages = max(1, pages // 2)
                continue
            yield vma, cur, nxt
            cur = nxt


FAULT_ROUNDS = 4


def _fault_oom(kernel, task) -> None:
    """A single page that reclaim keeps taking back before its fault completes: memory is
    so short that the fault's own allocation can only be had by unmapping the page it is
    for (everything else is locked or in use). Linux's allocation fails its watermark after
    reclaim made no progress and the fault ends in the OOM killer (__alloc_pages_slowpath ->
    __alloc_pages_may_oom, or VM_FAULT_OOM -> pagefault_out_of_memory); so here: kill the
    worst task, and if that is the faulting one its access ends with ProcessKilled."""
    victim = out_of_memory(kernel)
    if victim is task:
        raise ProcessKilled(task.pid, task.exit_reason)


def ensure_faulted(kernel, task, vma, start: int, end: int, write: bool) -> bool:
    """fault_in() until every page of the chunk is present (and writable for a write): a
    fault may enter reclaim and evict a page of the same chunk that faulted a moment ago.
    False if the chunk is still not all there after FAULT_ROUNDS rounds."""
    for _ in range(FAULT_ROUNDS):
        if fault_in(kernel, task, vma, start, end, write) == 0:
            return True
    return False


def fault_in(kernel, task, vma, start: int, end: int, write: bool) -> int:
    """Phase 2 for one VMA segment. Returns the number of PTE slots that had to fault."""
    mm = task.mm
    pt = kernel.sys.pagetables
    design = kernel.design
    start &= ~(PAGE_SIZE - 1)
    end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    total = 0
    addr = start
    while addr < end:
        nxt = min(end, (addr | ((1 << 21) - 1)) + 1)
        base = addr & ~((1 << 21) - 1)
        lo = (addr >> 12) & 511
        hi = lo + ((nxt - addr) >> 12)

        def one_table():
            row = pt.leaf_for(mm.pgd, addr, acct=mm)
            vals = pt.rows[row, lo:hi]
            if write:
                need = ~P.np_present(vals) | ((vals & P.NP_RW) == 0)
            else:
                need = ~P.np_present(vals)
            idx = np.flatnonzero(need) + lo
            if len(idx):
                design.fault(mm, vma, row, idx.astype(np.intp), base, write)
            return len(idx)

        total += with_oom_retry(kernel, task, one_table)
        addr = nxt
    return total


def _leaf_slices(kernel, mm, start: int, end: int):
    """(row, lo, hi, addr_of_lo) for each PTE table of an already faulted-in range."""
    pt = kernel.sys.pagetables
    addr = start
    while addr < end:
        nxt = min(end, (addr | ((1 << 21) - 1)) + 1)
        row = pt.lookup_leaf(mm.pgd, addr)
        assert row >= 0, "uaccess: range not faulted in"
        lo = (addr >> 12) & 511
        yield row, lo, lo + ((nxt - addr) >> 12), addr
        addr = nxt


def _hw_touch(kernel, mm, start: int, end: int, write: bool):
    """The MMU sets _PAGE_ACCESSED (and _PAGE_DIRTY on a store) as it translates."""
    pt = kernel.sys.pagetables
    bits = _U64(P.ACCESSED | (P.DIRTY if write else 0))
    for row, lo, hi, a in _leaf_slices(kernel, mm, start & ~(PAGE_SIZE - 1),
                                       (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)):
        vals = pt.rows[row, lo:hi]
        assert P.np_present(vals).all(), "uaccess: access through a non-present PTE"
        if write:
            assert ((vals & P.NP_RW) != 0).all(), "uaccess: store through a read-only PTE"
        pt.rows[row, lo:hi] = vals | bits
        yield row, lo, hi, a


# --- the accesses themselves -------------------------------------------------------------------
def user_read(kernel, task, addr: int, length: int) -> bytes:
    f = kernel.sys.frames
    out = bytearray()
    for vma, start, end in accessed_chunks(kernel, task, addr, length, False):
        for row, lo, hi, a in _hw_touch(kernel, task.mm, start, end, False):
            pfns = P.np_pfn(kernel.sys.pagetables.rows[row, lo:hi]).tolist()
            for k, pfn in enumerate(pfns):
                page = a + (k << 12)
                s = max(start, page)
                e = min(end, page + PAGE_SIZE)
                out += f.contents.read(int(f.content[pfn]), s - page, e - s)
    return bytes(out)


def user_write(kernel, task, addr: int, data: bytes) -> None:
    f = kernel.sys.frames
    pos = 0
    for vma, start, end in accessed_chunks(kernel, task, addr, len(data), True):
        for row, lo, hi, a in _hw_touch(kernel, task.mm, start, end, True):
            pfns = P.np_pfn(kernel.sys.pagetables.rows[row, lo:hi]).tolist()
            for k, pfn in enumerate(pfns):
                page = a + (k << 12)
                s = max(start, page)
                e = min(end, page + PAGE_SIZE)
                chunk = data[pos:pos + (e - s)]
                f.content[pfn] = f.contents.write(int(f.content[pfn]), s - page, chunk)
                pos += e - s


def user_fill(kernel, task, addr: int, length: int, byte: int) -> None:
    """memset(): whole pages become a uniform token in one vector operation."""
    f = kernel.sys.frames
    byte &= 0xFF
    for vma, start, end in accessed_chunks(kernel, task, addr, length, True):
        for row, lo, hi, a in _hw_touch(kernel, task.mm, start, end, True):
            pfns = P.np_pfn(kernel.sys.pagetables.rows[row, lo:hi])
            first_full = 0 if start <= a else 1
            npages = hi - lo
            last = a + ((npages - 1) << 12)
            last_full = npages if end >= last + PAGE_SIZE else npages - 1
            if last_full > first_full:
                full = pfns[first_full:last_full]
                f.contents.release_many(f.content[full])
                f.content[full] = byte
            for k in sorted(set(range(npages)) - set(range(first_full, last_full))):
                pfn = int(pfns[k])
                page = a + (k << 12)
                s, e = max(start, page), min(end, page + PAGE_SIZE)
                f.content[pfn] = f.contents.fill(int(f.content[pfn]), s - page, e - s, byte)


def user_touch(kernel, task, addr: int, length: int, write: bool) -> None:
    """One load (or one store of the byte already there) per page: faults and A/D bits only."""
    for vma, start, end in accessed_chunks(kernel, task, addr, length, write):
        for _ in _hw_touch(kernel, task.mm, start, end, write):
            pass


# --- get_user_pages for populate ----------------------------------------------------------------
def eof_clip(vma, start: int, end: int) -> int:
    """The end of the part of [start, end) that lies inside the VMA's backing object: a page
    at or past the object's end faults VM_FAULT_SIGBUS (filemap_fault, shmem_fault)."""
    obj = vma.vm_file
    if obj is None:
        return end
    limit = vma.addr_of_index(obj.npages)
    return max(start, min(end, limit))


def populate_range(kernel, task, vma, start: int, end: int, write: bool, touch: bool = True) -> int:
    """__get_user_pages() with FOLL_TOUCH over one VMA segment: fault in what is missing,
    then mark every page accessed (folio_mark_accessed) and, for a write, dirty the folio
    when the PTE is clean (follow_page_pte: folio_mark_dirty — which also makes a MADV_FREE'd
    page dirty again, so reclaim keeps it).

    A page past the end of the backing object stops the walk: what comes before it is
    populated, and the result is EFAULT (the SIGBUS that gup turns into -EFAULT); else 0."""
    stop = eof_clip(vma, start, end)
    err = 0 if stop >= end else errno.EFAULT
    end = stop & ~(PAGE_SIZE - 1) if err else stop
    if end <= start:
        return err
    fault_in(kernel, task, vma, start, end, write)
    if vma.vm_flags & VM_LOCKED:
        # every page of a locked VMA faults (and is mlocked as it is mapped, so reclaim
        # leaves it); one that a batch fetched but reclaim took before it was mapped
        # (designs/linux/fault_file.py) faults again
        for _ in range(FAULT_ROUNDS):
            if fault_in(kernel, task, vma, start, end, write) == 0:
                break
    if not touch:
        return err
    f = kernel.sys.frames
    pt = kernel.sys.pagetables
    for row, lo, hi, a in _leaf_slices(kernel, task.mm, start, end):
        vals = pt.rows[row, lo:hi]
        # __get_user_pages() touches each page right after faulting it (follow_page_pte);
        # a page that the reclaim of a later fault in the range has already evicted again
        # was touched before it went: only the PTEs still present are touched now
        vals = vals[P.np_present(vals)]
        pfns = P.np_pfn(vals)
        if write:
            nd = ((vals & P.NP_DIRTY) == 0) & (pfns != ZERO_PFN)
            if nd.any():
                f.flags[pfns[nd]] |= np.uint32(PG_dirty)
        kernel.sys.lru.mark_accessed(pfns)
    return err


def populate_vma_page_range(kernel, task, vma, start: int, end: int) -> int:
    """populate_vma_page_range(): fault in for mlock / mprotect of a locked VMA. A
    VM_LOCKONFAULT VMA is left alone (its pages are locked as they fault); a private writable
    mapping is populated for writing (COW broken now), anything else for reading."""
    if vma.vm_flags & VM_LOCKONFAULT:
        return 0
    if vma.vm_flags & VM_PKEY_MASK:
        # gup is a data access: mm/gup.c:check_vma_flags -> arch_vma_access_permitted() (x86)
        # asks PKRU, which denies every data access to the execute-only key, so the first
        # page already fails with -EFAULT and nothing of the VMA is populated.
        return errno.EFAULT
    write = (vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE
    return populate_range(kernel, task, vma, start, end, write)
