"""Machine: a simulated computer running one VM design.

    m = vmlab.Machine(ram="64M", swap="0", design="linux")
    p = m.spawn()
    m.procfs(f"/proc/{p.pid}/smaps"); m.check()

A Machine owns the kernel state (kernel/task.py's Kernel: frames, page tables, LRU, counters,
the design, the task table) and hands out Process objects. Configuration that changes what
/proc shows (soft-dirty tracking, fault-around size, max_map_count, RLIMIT_MEMLOCK ...) is a
KernelConfig; keyword arguments override its fields.
"""

from __future__ import annotations


from ..constants import PAGE_SIZE
from ..designs import DESIGNS
from ..designs.base import parse_design_spec
from ..hw.frames import FrameTable
from ..hw.pagetable import PageTables
from ..kernel.task import Kernel
from ..mm.system import KernelConfig, System
from ..units import parse_size
from .hostmalloc import tune_malloc
from .process import Process


def designs() -> list[str]:
    """The names accepted by Machine(design=...)."""
    return list(DESIGNS)


class Machine:
    def __init__(self, ram: int | str = "64M", swap: int | str = "0", design: str = "linux",
                 config: KernelConfig | None = None, **overrides):
        tune_malloc()
        ram_bytes = parse_size(ram, "ram")
        swap_bytes = parse_size(swap, "swap")
        if ram_bytes < 16 * PAGE_SIZE:
            raise ValueError(f"ram: at least 64K of RAM is needed, got {ram!r}")
        design_name, design_opts = parse_design_spec(design)
        if design_name not in DESIGNS:
            raise ValueError(f"design: unknown design {design_name!r}; choose one of {', '.join(DESIGNS)}")
        cfg = config or KernelConfig()
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise TypeError(f"Machine: unknown option {k!r}")
            setattr(cfg, k, v)
        frames = FrameTable(ram_bytes // PAGE_SIZE)
        system = System(frames, PageTables(frames), cfg)
        self.system = system
        self.config = cfg
        cls = DESIGNS[design_name]
        for k, v in design_opts.items():                 # switches given as 0/1 become bools
            if k in cls.OPTIONS and isinstance(cls.OPTIONS[k][0], bool):
                design_opts[k] = bool(v)
        self.design = cls(system, **design_opts)
        self.kernel = Kernel(system, self.design)
        self.ram = ram_bytes
        self.swap_size = swap_bytes
        if swap_bytes:
            self.swapon(swap_bytes, name="/dev/vdb")
        self._procs: dict[int, Process] = {}

    def __repr__(self) -> str:
        return (f"Machine(ram={self.ram}, swap={self.swap_size}, design={self.design.spec!r})")

    # --- processes ---------------------------------------------------------------------------------
    def spawn(self, comm: str = "vmlab") -> Process:
        """A new process with an empty address space (a stack VMA and nothing else)."""
        return self._adopt(self.kernel.spawn(comm))

    def _adopt(self, task) -> Process:
        p = Process(self, task)
        self._procs[task.pid] = p
        return p

    def process(self, pid: int) -> Process:
        return self._procs[pid]

    @property
    def processes(self) -> list[Process]:
        """Live processes, oldest first."""
        return [p for p in self._procs.values() if p.alive]

    # --- files ---------------------------------------------------------------------------------------
    def create_file(self, path: str, data: bytes | int = 0) -> None:
        """Put a file on the machine before any process runs (scenario set-up): ``data`` is its
        contents, or a size in bytes of zeros. On the disk unless under /tmp or /dev/shm.
        The pages are on disk (or, for tmpfs, in memory), not in the page cache."""
        from ..mm.filemap import DiskFile
        fs = self.kernel.fs
        if fs.lookup(path) is not None:
            raise FileExistsError(f"create_file: {path} exists")
        if isinstance(data, int):
            obj = fs.create(path, 0)
            from ..kernel.files import truncate
            truncate(self.kernel, obj, data)
            return
        obj = fs.create(path, 0)
        if isinstance(obj, DiskFile):
            obj.ensure((len(data) + 4095) >> 12)
            f = self.system.frames
            for i in range(0, len(data), 4096):
                chunk = data[i:i + 4096]
                obj.disk[i >> 12] = f.contents.write(0, 0, chunk) if chunk.count(0) != len(chunk) else 0
            obj.size = len(data)
        else:
            t = self.spawn("create_file")
            fd = t.open(path, 0o2)
            t.pwrite(fd, data, 0)
            t.exit()

    def unlink(self, path: str) -> None:
        """unlink(2)."""
        from ..kernel.files import do_unlink
        do_unlink(self.kernel, path)

    def file_data(self, path: str) -> bytes:
        """The file's contents as a reader would see them now (page cache, else disk)."""
        t = self.spawn("cat")
        try:
            fd = t.open(path, 0)
            return t.pread(fd, t.fstat(fd)["st_size"], 0)
        finally:
            t.exit()

    # --- swap -------------------------------------------------------------------------------------------
    @property
    def swap(self):
        """The machine's swap areas and swap cache (mm/swapfile.py)."""
        return self.system.swap

    def swapon(self, size: int | str, priority: int | None = None, name: str | None = None) -> str:
        """swapon(2): add a swap area of ``size``; returns its name (for swapoff and /proc/swaps).
        Without a priority it gets the next lower negative one (-2 for the first), as Linux."""
        from ..kernel.swapon import do_swapon
        area = do_swapon(self.kernel, parse_size(size, "swap size"), priority, name)
        return area.name

    def swapoff(self, name: str | int) -> None:
        """swapoff(2): bring every page of the area back into memory, then remove it.
        ENOMEM (and no change) if they would not fit; EINTR (the area stays, with what did
        not come back) if bringing them back needed the OOM killer, which kills the swapoff
        caller first (kernel/swapon.py)."""
        from ..kernel.swapon import do_swapoff
        do_swapoff(self.kernel, name)
        self.kernel.after_syscall()

    # --- introspection --------------------------------------------------------------------------------
    def procfs(self, path: str) -> str:
        """The text of a /proc file: /proc/PID/{maps,smaps,smaps_rollup,status},
        /proc/meminfo, /proc/vmstat."""
        from ..proc.collect import render_path
        return render_path(self, path)

    def kpagecount(self, pfn: int) -> int:
        from ..proc.collect import kpagecount
        return kpagecount(self, pfn)

    def kpageflags(self, pfn: int) -> int:
        from ..proc.collect import kpageflags
        return kpageflags(self, pfn)

    @property
    def events(self):
        """The /proc/vmstat event counters."""
        return self.system.events

    def check(self) -> None:
        """Recount every derived number from scratch; raise InvariantError listing violations."""
        from ..check import check_machine
        check_machine(self)
