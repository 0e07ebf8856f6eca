"""The OOM killer (mm/oom_kill.c) and the retry loop around allocations that may need it.

When an allocation finds no free frame even after reclaim, Linux picks the task with the
highest oom_badness() — RSS + swap entries + page-table pages, plus oom_score_adj scaled to
total pages — kills it and lets its memory go, then retries the allocation. Ties go to the
task found last in process-list order (oom_evaluate_task replaces on equal points), i.e. the
newest. If the victim is the task that was allocating, its operation ends with
ProcessKilled.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from ..errors import ProcessKilled, VMLabError
from ..hw.frames import OutOfFrames
from ..mm.mm_struct import MM_SWAPENTS

T = TypeVar("T")


def oom_badness(kernel, task) -> int:
    mm = task.mm
    points = mm.get_mm_rss() + mm.rss[MM_SWAPENTS] + (mm.pgtables_bytes() >> 12)
    total = kernel.sys.frames.nframes
    return points + task.oom_score_adj * total // 1000


def out_of_memory(kernel) -> object:
    """select_bad_process() + oom_kill_process(); returns the victim."""
    chosen, best = None, None
    for t in kernel.live_tasks():
        if t.oom_score_adj <= -1000:
            continue
        pts = oom_badness(kernel, t)
        if best is None or pts >= best:
            chosen, best = t, pts
    if chosen is None or (best is not None and best <= 0 and chosen.mm.get_mm_rss() == 0):
        raise VMLabError("out of memory and no killable process (the kernel would panic)")
    from .exit import do_exit
    kernel.sys.events.count("oom_kill")
    do_exit(kernel, chosen, reason=f"killed by the OOM killer (badness {best})")
    return chosen


def with_oom_retry(kernel, task, op: Callable[[], T]) -> T:
    """Run ``op``; on OutOfFrames invoke the OOM killer and try again.

    ``op`` must be safe to repeat after a failure (every design method allocates before it
    changes anything). If ``task`` itself is chosen, raise ProcessKilled.
    """
    while True:
        try:
            return op()
        except OutOfFrames:
            victim = out_of_memory(kernel)
            if task is not None and victim is task:
                raise ProcessKilled(task.pid, task.exit_reason) from None
