"""/proc/PID/status, byte for byte as Linux 6.18 prints it on x86-64.

The memory lines follow fs/proc/task_mmu.c: task_mem() exactly (:class:`TaskMem`,
:func:`render_task_mem`), then mm/hugetlb.c: hugetlb_report_usage() ("HugetlbPages:").
The other lines follow fs/proc/array.c: proc_pid_status() and its helpers (proc_task_name,
task_state, task_core_dumping, task_thp_status, task_untag_mask, task_sig, task_cap,
task_seccomp, task_cpus_allowed, task_context_switch_counts; kernel/cgroup/cpuset.c:
cpuset_task_status_allowed) with the host's configuration: no CONFIG_X86_USER_SHADOW_STACK
(so arch_proc_pid_thread_features() prints no x86_Thread_features lines),
CONFIG_ADDRESS_MASKING (untag_mask:), CONFIG_SECCOMP_FILTER, CONFIG_NUMA with
MAX_NUMNODES = 1024.

Only the memory lines need model data. The rest is a skeleton (:class:`StatusInfo`) whose
defaults are those of a root process on the 2-CPU, 1-node host; the lines included, in order:

    Name Umask State Tgid Ngid Pid PPid TracerPid Uid Gid FDSize Groups NStgid NSpid NSpgid
    NSsid Kthread VmPeak VmSize VmLck VmPin VmHWM VmRSS RssAnon RssFile RssShmem VmData VmStk
    VmExe VmLib VmPTE VmSwap HugetlbPages CoreDumping THP_enabled untag_mask Threads SigQ
    SigPnd ShdPnd SigBlk SigIgn SigCgt CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp
    Seccomp_filters Speculation_Store_Bypass SpeculationIndirectBranch Cpus_allowed
    Cpus_allowed_list Mems_allowed Mems_allowed_list voluntary_ctxt_switches
    nonvoluntary_ctxt_switches
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE

STATUS_LINES: tuple[str, ...] = (
    "Name", "Umask", "State", "Tgid", "Ngid", "Pid", "PPid", "TracerPid", "Uid", "Gid",
    "FDSize", "Groups", "NStgid", "NSpid", "NSpgid", "NSsid", "Kthread",
    "VmPeak", "VmSize", "VmLck", "VmPin", "VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem",
    "VmData", "VmStk", "VmExe", "VmLib", "VmPTE", "VmSwap", "HugetlbPages",
    "CoreDumping", "THP_enabled", "untag_mask", "Threads", "SigQ", "SigPnd", "ShdPnd",
    "SigBlk", "SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    "NoNewPrivs", "Seccomp", "Seccomp_filters", "Speculation_Store_Bypass",
    "SpeculationIndirectBranch", "Cpus_allowed", "Cpus_allowed_list", "Mems_allowed",
    "Mems_allowed_list", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches",
)


@dataclass
class TaskMem:
    """The mm_struct numbers task_mem() reads. Counts are in pages unless named _bytes.

    anon/file/shmem/swapents are get_mm_counter(MM_ANONPAGES/MM_FILEPAGES/MM_SHMEMPAGES/
    MM_SWAPENTS) (exact sums on 6.18); start_code/end_code are byte addresses of the main
    program's text (0/0 for a process that never exec'd a binary); pgtables_bytes is
    mm_pgtables_bytes(): PAGE_SIZE for every PTE, PMD and PUD table page (not the PGD).
    """

    total_vm: int = 0
    hiwater_vm: int = 0
    locked_vm: int = 0
    pinned_vm: int = 0
    anon: int = 0
    file: int = 0
    shmem: int = 0
    hiwater_rss: int = 0
    data_vm: int = 0
    stack_vm: int = 0
    exec_vm: int = 0
    start_code: int = 0
    end_code: int = 0
    pgtables_bytes: int = 0
    swapents: int = 0


def _kb_line(label: str, kb: int) -> str:
    return f"{label}:\t{kb:>8} kB\n"


def task_mem_values(mm: TaskMem) -> dict[str, int]:
    """task_mem()'s arithmetic: the value of each line in kB, truncating where it does."""
    k = PAGE_SHIFT - 10
    total_rss = mm.anon + mm.file + mm.shmem
    text = ((mm.end_code + PAGE_SIZE - 1) & PAGE_MASK) - (mm.start_code & PAGE_MASK)
    text = min(text, mm.exec_vm << PAGE_SHIFT)
    lib = (mm.exec_vm << PAGE_SHIFT) - text
    return {
        "VmPeak": max(mm.total_vm, mm.hiwater_vm) << k,
        "VmSize": mm.total_vm << k,
        "VmLck": mm.locked_vm << k,
        "VmPin": mm.pinned_vm << k,
        "VmHWM": max(total_rss, mm.hiwater_rss) << k,
        "VmRSS": total_rss << k,
        "RssAnon": mm.anon << k,
        "RssFile": mm.file << k,
        "RssShmem": mm.shmem << k,
        "VmData": mm.data_vm << k,
        "VmStk": mm.stack_vm << k,
        "VmExe": text >> 10,
        "VmLib": lib >> 10,
        "VmPTE": mm.pgtables_bytes >> 10,
        "VmSwap": mm.swapents << k,
    }


def render_task_mem(mm: TaskMem) -> str:
    """task_mem(): VmPeak .. VmSwap, each "Label:\\t%8lu kB"."""
    return "".join(_kb_line(name, kb) for name, kb in task_mem_values(mm).items())


@dataclass
class StatusInfo:
    """Everything in /proc/PID/status that is not task_mem(). Defaults: a root process on
    the host (2 CPUs, one NUMA node, full root capabilities, no signals, no seccomp)."""

    name: str = "vmlab"
    umask: int = 0o022
    state: str = "R (running)"
    tgid: int = 1
    ngid: int = 0
    pid: int = 1
    ppid: int = 0
    tracer_pid: int = 0
    uid: tuple[int, int, int, int] = (0, 0, 0, 0)
    gid: tuple[int, int, int, int] = (0, 0, 0, 0)
    fdsize: int = 256
    groups: tuple[int, ...] = ()
    nstgid: tuple[int, ...] | None = None      # None: (tgid,)
    nspid: tuple[int, ...] | None = None       # None: (pid,)
    nspgid: tuple[int, ...] = (1,)
    nssid: tuple[int, ...] = (1,)
    kthread: int = 0
    hugetlb_kb: int = 0
    core_dumping: int = 0
    thp_enabled: int = 1
    untag_mask: int = 0xFFFFFFFFFFFFFFFF
    threads: int = 1
    sigq: tuple[int, int] = (0, 96365)
    sig_pnd: int = 0
    shd_pnd: int = 0
    sig_blk: int = 0
    sig_ign: int = 0
    sig_cgt: int = 0
    cap_inh: int = 0
    cap_prm: int = 0x000001FFFEFFFFFF
    cap_eff: int = 0x000001FFFEFFFFFF
    cap_bnd: int = 0x000001FFFEFFFFFF
    cap_amb: int = 0
    no_new_privs: int = 0
    seccomp: int = 0
    seccomp_filters: int = 0
    speculation_store_bypass: str = "thread vulnerable"
    speculation_indirect_branch: str = "conditional enabled"
    cpus_allowed: tuple[int, ...] = (0, 1)
    mems_allowed: tuple[int, ...] = (0,)
    nr_mem_nodes_bits: int = 1024                 # MAX_NUMNODES (NODES_SHIFT = 10)
    voluntary_ctxt_switches: int = 0
    nonvoluntary_ctxt_switches: int = 0


def escape_task_name(name: str) -> str:
    """proc_task_name(..., escape=true): "\\n" and "\\\\" are escaped (seq_escape_str with
    ESCAPE_SPACE | ESCAPE_SPECIAL restricted to "\\n\\\\"). Task names are at most 15 bytes
    (TASK_COMM_LEN - 1)."""
    return name.replace("\\", "\\\\").replace("\n", "\\n")


def bitmap_hex(bits: tuple[int, ...], nbits: int) -> str:
    """"%*pb" (lib/vsprintf.c: bitmap_string()): 32-bit chunks in hex, most significant
    first, separated by commas; every chunk has 8 digits except the first, which has just
    enough digits for the bits that remain (nbits = 2 gives "3", nbits = 1024 gives 32 chunks
    of 8 digits)."""
    value = 0
    for b in bits:
        if not 0 <= b < nbits:
            raise ValueError(f"bitmap_hex: bit {b} outside a {nbits}-bit map")
        value |= 1 << b
    nwords = (nbits + 31) // 32
    top_bits = nbits - 32 * (nwords - 1)
    out = []
    for i in reversed(range(nwords)):
        word = (value >> (32 * i)) & 0xFFFFFFFF
        digits = (top_bits + 3) // 4 if i == nwords - 1 else 8
        out.append(f"{word:0{digits}x}")
    return ",".join(out)


def bitmap_list(bits: tuple[int, ...]) -> str:
    """"%*pbl": ranges like "0-1,4"."""
    out = []
    s = sorted(set(bits))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(f"{s[i]}-{s[j]}" if j > i else f"{s[i]}")
        i = j + 1
    return ",".join(out)


def render_status(info: StatusInfo, mm: TaskMem | None, *, nr_cpu_ids: int = 2) -> str:
    """proc_pid_status(). ``mm`` None is a kernel thread or a zombie: proc_pid_status() prints
    task_mem() (VmPeak .. HugetlbPages), CoreDumping, THP_enabled and untag_mask only for a
    task that has an mm."""
    ids = lambda t: "\t".join(str(x) for x in t)   # noqa: E731
    nstgid = info.nstgid if info.nstgid is not None else (info.tgid,)
    nspid = info.nspid if info.nspid is not None else (info.pid,)
    groups = " ".join(str(g) for g in info.groups)
    out = [
        f"Name:\t{escape_task_name(info.name)}\n",
        f"Umask:\t{info.umask:04o}\n",
        f"State:\t{info.state}\n",
        f"Tgid:\t{info.tgid}\n",
        f"Ngid:\t{info.ngid}\n",
        f"Pid:\t{info.pid}\n",
        f"PPid:\t{info.ppid}\n",
        f"TracerPid:\t{info.tracer_pid}\n",
        f"Uid:\t{ids(info.uid)}\n",
        f"Gid:\t{ids(info.gid)}\n",
        f"FDSize:\t{info.fdsize}\n",
        f"Groups:\t{groups} \n",
        f"NStgid:\t{ids(nstgid)}\n",
        f"NSpid:\t{ids(nspid)}\n",
        f"NSpgid:\t{ids(info.nspgid)}\n",
        f"NSsid:\t{ids(info.nssid)}\n",
        f"Kthread:\t{info.kthread}\n",
    ]
    if mm is not None:
        out += [
            render_task_mem(mm),
            f"HugetlbPages:\t{info.hugetlb_kb:>8} kB\n",
            f"CoreDumping:\t{info.core_dumping}\n",
            f"THP_enabled:\t{info.thp_enabled}\n",
            f"untag_mask:\t{info.untag_mask:#x}\n",
        ]
    out += [
        f"Threads:\t{info.threads}\n",
        f"SigQ:\t{info.sigq[0]}/{info.sigq[1]}\n",
        f"SigPnd:\t{info.sig_pnd:016x}\n",
        f"ShdPnd:\t{info.shd_pnd:016x}\n",
        f"SigBlk:\t{info.sig_blk:016x}\n",
        f"SigIgn:\t{info.sig_ign:016x}\n",
        f"SigCgt:\t{info.sig_cgt:016x}\n",
        f"CapInh:\t{info.cap_inh:016x}\n",
        f"CapPrm:\t{info.cap_prm:016x}\n",
        f"CapEff:\t{info.cap_eff:016x}\n",
        f"CapBnd:\t{info.cap_bnd:016x}\n",
        f"CapAmb:\t{info.cap_amb:016x}\n",
        f"NoNewPrivs:\t{info.no_new_privs}\n",
        f"Seccomp:\t{info.seccomp}\n",
        f"Seccomp_filters:\t{info.seccomp_filters}\n",
        f"Speculation_Store_Bypass:\t{info.speculation_store_bypass}\n",
        f"SpeculationIndirectBranch:\t{info.speculation_indirect_branch}\n",
        f"Cpus_allowed:\t{bitmap_hex(info.cpus_allowed, nr_cpu_ids)}\n",
        f"Cpus_allowed_list:\t{bitmap_list(info.cpus_allowed)}\n",
        f"Mems_allowed:\t{bitmap_hex(info.mems_allowed, info.nr_mem_nodes_bits)}\n",
        f"Mems_allowed_list:\t{bitmap_list(info.mems_allowed)}\n",
        f"voluntary_ctxt_switches:\t{info.voluntary_ctxt_switches}\n",
        f"nonvoluntary_ctxt_switches:\t{info.nonvoluntary_ctxt_switches}\n",
    ]
    return "".join(out)
