"""exit(): exit_mmap() (mm/mmap.c) and mmdrop.

Every VMA's PTEs are zapped (which also munlocks mlocked pages and frees pages nobody else
references), page tables are freed with floor 0 and no ceiling, the VMAs are closed (anon_vma
unlinked, file reference dropped, the commit charge returned) and finally the PGD goes.
The task stays in the table as a dead entry so its pid is not reused.
"""

from __future__ import annotations

from ..mm.vmflags import VM_ACCOUNT
from .unmap import free_pgtables


def exit_mmap(kernel, mm) -> None:
    vmas = mm.vmas.as_list()
    design = kernel.design
    for v in vmas:
        mm.vmas.remove(v)
    mm.update_hiwater_rss()
    for v in vmas:
        design.zap_range(mm, v, v.vm_start, v.vm_end)
    free_pgtables(kernel, mm, vmas, 0, 0)
    for v in vmas:
        if v.vm_flags & VM_ACCOUNT:
            kernel.committed_pages -= v.pages()
    mm.total_vm = mm.data_vm = mm.exec_vm = mm.stack_vm = mm.locked_vm = 0
    kernel.sys.pagetables.free_pgd(mm.pgd)
    mm.pgd = -1
    mm.dead = True
    design.mm_exit(mm)


def do_exit(kernel, task, reason: str = "exited") -> None:
    if not task.alive:
        return
    task.alive = False
    task.exit_reason = reason
    exit_mmap(kernel, task.mm)
    from .files import close_all
    close_all(kernel, task)
