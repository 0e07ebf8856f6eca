"""Processes and the kernel object that owns them.

A Task is a single-threaded process: a pid, a parent, an mm. The Kernel holds the System
(frames, page tables, LRU, counters), the design, and the task table, and is what every
system-call module in this package operates on. The api layer (Machine, Process) wraps it.

A new address space (mm_alloc + the parts of execve that matter here) has a PGD, the
[stack] VMA just below TASK_SIZE, an empty heap at START_BRK and mmap_base below the stack
gap; see layout.py.
"""

from __future__ import annotations

from ..constants import TASK_SIZE
from ..hw.pagetable import PGD_LEVEL
from ..mm.mm_struct import MM
from ..mm.vma import VMA
from ..mm.vmflags import (VM_ACCOUNT, VM_GROWSDOWN, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE,
                          VM_READ, VM_SOFTDIRTY, VM_WRITE)
from ..mm.vmflags import VM_DONTDUMP, VM_DONTEXPAND, VM_EXEC, VM_IO, VM_PFNMAP
from . import layout

VVAR_FLAGS = VM_READ | VM_MAYREAD | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP
VDSO_FLAGS = VM_READ | VM_EXEC | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_DONTEXPAND


class Task:
    """A simulated process (task_struct + signal_struct, reduced)."""

    def __init__(self, pid: int, ppid: int, mm: MM, comm: str = "vmlab"):
        self.pid = pid
        self.ppid = ppid
        self.mm = mm
        self.comm = comm
        self.alive = True
        self.exit_reason = ""
        self.oom_score_adj = 0

    def __repr__(self) -> str:
        return f"<Task pid={self.pid} {'alive' if self.alive else self.exit_reason}>"


class Kernel:
    """The simulated kernel: system state, design and tasks."""

    FIRST_PID = 100

    def __init__(self, system, design):
        self.sys = system
        self.design = design
        self.tasks: dict[int, Task] = {}
        self.next_pid = self.FIRST_PID
        from ..mm.fs import FileSystem
        self.fs = FileSystem(system)
        self.clock = 0                    # model seconds: one per system call
        self.current = None               # the task making the current system call
        from ..reclaim import Reclaimer
        self.reclaimer = Reclaimer(self)
        system.frames.reclaim = self.reclaimer.direct_reclaim
        system.frames.on_alloc = self.reclaimer.on_alloc
        system.frames.low_mark = system.watermarks()["min"]

    EPOCH = 1_700_000_000

    @property
    def committed_pages(self) -> int:
        """vm_committed_as without the per-page charge of noreserve shmem (see committed_as)."""
        return self.sys.committed_pages

    @committed_pages.setter
    def committed_pages(self, v: int) -> None:
        self.sys.committed_pages = v

    def committed_as(self) -> int:
        """Committed_AS in pages: the charges taken at mmap/brk/mprotect/shmem setup, plus one
        page per allocated page (cached or swapped out) of every noreserve shmem object —
        tmpfs files and MAP_NORESERVE shared memory (shmem_acct_blocks)."""
        extra = sum(o.nrpages + o.nrswapped for o in self.shmem_objects() if o.noreserve)
        return self.sys.committed_pages + extra

    def now(self) -> int:
        """A model wall clock for IPC times: seconds, one tick per system call."""
        return self.EPOCH + self.clock

    def reclaim_pages(self, pfns) -> int:
        """MADV_PAGEOUT's reclaim_pages()."""
        return self.reclaimer.reclaim_pages(list(pfns))

    def shmem_objects(self) -> list:
        """Every live shmem object (registered page owners that are shmem)."""
        return [o for o in self.sys.frames.owners.live().values() if getattr(o, "is_shmem", False)]

    def address_spaces(self) -> list:
        """Every live page-cache owner: tmpfs and disk files, shared anonymous objects."""
        return [o for o in self.sys.frames.owners.live().values() if hasattr(o, "i_mmap")]

    def after_syscall(self) -> None:
        """Work the kernel's threads do between the processes' operations: kswapd, and the
        per-process RSS limits (an option; reclaim/rsslimit.py)."""
        self.clock += 1
        self.current = None
        self.reclaimer.run_kswapd()
        for t in self.tasks.values():
            if t.alive and getattr(t.mm, "rss_limit", None) is not None:
                from ..reclaim.rsslimit import enforce_rss_limit
                enforce_rss_limit(self, t)

    def swap_pages(self) -> int:
        """total_swap_pages (0 until a swap area is on)."""
        swap = getattr(self.sys, "swap", None)
        return swap.total_pages() if swap is not None else 0

    # --- tasks -------------------------------------------------------------------------------------
    def alloc_pid(self) -> int:
        pid = self.next_pid
        self.next_pid += 1
        return pid

    def live_tasks(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.alive]

    def new_mm(self) -> MM:
        """mm_alloc() + the address-space set-up execve() does (stack VMA, brk, mmap_base)."""
        cfg = self.sys.config
        pgd = self.sys.pagetables.alloc_table(PGD_LEVEL)
        mm = MM(pgd, layout.mmap_base(cfg.rlimit_stack, cfg.stack_guard_gap),
                layout.START_BRK, TASK_SIZE)
        return mm

    def setup_stack(self, mm: MM) -> None:
        """setup_arg_pages(): the [stack] VMA, growsdown, accounted."""
        flags = (VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN
                 | VM_ACCOUNT | (VM_SOFTDIRTY if self.sys.config.soft_dirty else 0))
        start = TASK_SIZE - layout.STACK_VMA_SIZE
        vma = VMA(mm, start, TASK_SIZE, flags, start >> 12)
        mm.vmas.insert(vma)
        mm.vm_stat_account(flags, vma.pages())
        self.committed_pages += vma.pages()
        mm.update_hiwater_vm()

    def setup_special_mappings(self, mm: MM) -> None:
        """arch_setup_additional_pages(): [vvar], [vvar_vclock] and [vdso] are the first
        mappings an x86-64 process gets, so they sit right below mmap_base (the host shows
        them at 0x7ffff7ff7000-0x7ffff7fff000 without ASLR). Their contents are not modelled:
        reading them maps the zero page."""
        top = mm.mmap_base
        layout_ = (("[vvar]", 4, VVAR_FLAGS), ("[vvar_vclock]", 2, VVAR_FLAGS), ("[vdso]", 2, VDSO_FLAGS))
        start = top - sum(n for _, n, _ in layout_) * 4096
        for name, n, flags in layout_:
            vma = VMA(mm, start, start + n * 4096, flags, 0)
            vma.special_name = name
            mm.vmas.insert(vma)
            mm.vm_stat_account(flags, n)
            start += n * 4096

    def spawn(self, comm: str = "vmlab") -> Task:
        mm = self.new_mm()
        self.design.mm_init(mm, None)
        self.setup_stack(mm)
        self.setup_special_mappings(mm)
        t = Task(self.alloc_pid(), 1, mm, comm)
        self.tasks[t.pid] = t
        return t
