"""fork(): dup_mm() and dup_mmap() (kernel/fork.c, mm/mmap.c in 6.15+).

The child's mm starts as a copy of the parent's counters (total/data/exec/stack_vm),
with locked_vm 0 and def_flags reduced to VM_INIT_DEF_MASK (mlockall(MCL_FUTURE) is not
inherited). For each parent VMA in address order:

  VM_DONTCOPY   not inherited; the child's vm counters drop by its size
  otherwise     vm_area_dup(), the design's fork_vma() (anon_vma_fork, and copy_page_range
                unless VM_WIPEONFORK), VM_LOCKED/VM_LOCKONFAULT cleared in the child, file
                reference and i_mmap link, commit charge for VM_ACCOUNT VMAs.

Afterwards hiwater_rss = the child's RSS and hiwater_vm = its total_vm (dup_mm). If memory
runs out, the OOM killer runs; if it picks the parent, the partial child is torn down and the
parent's fork ends with ProcessKilled.
"""

from __future__ import annotations

from ..errors import ProcessKilled
from ..mm.vmflags import VM_ACCOUNT, VM_DONTCOPY, VM_LOCKED, VM_LOCKONFAULT, VM_NOHUGEPAGE
from .oom import with_oom_retry
from .task import Task
from .vma_ops import vma_link_file

VM_INIT_DEF_MASK = VM_NOHUGEPAGE


def do_fork(kernel, parent: Task) -> Task:
    pmm = parent.mm
    design = kernel.design
    cmm = with_oom_retry(kernel, parent, kernel.new_mm)
    cmm.total_vm, cmm.data_vm = pmm.total_vm, pmm.data_vm
    cmm.exec_vm, cmm.stack_vm = pmm.exec_vm, pmm.stack_vm
    cmm.start_brk, cmm.brk, cmm.mmap_base = pmm.start_brk, pmm.brk, pmm.mmap_base
    cmm.start_stack = pmm.start_stack
    cmm.def_flags = pmm.def_flags & VM_INIT_DEF_MASK
    design.mm_init(cmm, pmm)
    child = Task(kernel.alloc_pid(), parent.pid, cmm, parent.comm)
    kernel.tasks[child.pid] = child
    try:
        for vma in pmm.vmas:
            if vma.vm_flags & VM_DONTCOPY:
                cmm.vm_stat_account(vma.vm_flags, -vma.pages())
                continue
            if vma.vm_flags & VM_ACCOUNT:
                kernel.committed_pages += vma.pages()
            cv = vma.dup(cmm)
            if cv.vm_flags & (VM_LOCKED | VM_LOCKONFAULT):
                cv.vm_flags &= ~(VM_LOCKED | VM_LOCKONFAULT)
                # no merging at fork: a neighbour may now match (mm_struct.unmerged_ok)
                cmm.unmerged_ok.update((cv.vm_start, cv.vm_end))
            # dup_mmap() copies the tree as it is, so a boundary the parent was allowed to
            # keep (its own fork made it) stays in the child too, down any number of forks
            cmm.unmerged_ok.update(x for x in (cv.vm_start, cv.vm_end) if x in pmm.unmerged_ok)
            cmm.vmas.insert(cv)
            vma_link_file(cv)
            with_oom_retry(kernel, parent, lambda: design.fork_vma(pmm, cmm, vma, cv))
    except ProcessKilled:
        from .exit import do_exit
        if child.alive:
            do_exit(kernel, child, reason="fork failed")
        raise
    from .files import dup_table
    dup_table(parent, child)
    cmm.hiwater_rss = cmm.get_mm_rss()
    cmm.hiwater_vm = cmm.total_vm
    return child
