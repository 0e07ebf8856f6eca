"""Per-process RSS limits, enforced by walking the process's own page tables.

The third seed (Tweedie, 1998) notes that physical-page reclaim cannot enforce a per-mm quota:
"imposing a mm_struct RSS limit means that we have to unlink a bunch of pages by walking
ptes, not physical pages". Linux never did it (RLIMIT_RSS is ignored); vmlab offers it as an
option (``Process.set_rss_limit``) in exactly that way, like Linux 2.2's swap_out():

  a cursor walks the mm's VMAs and PTEs round-robin; a young PTE gets a second chance (its
  accessed bit is cleared); an old one is unmapped from *this* mm only — an anonymous page is
  first given a swap slot and written (it stays in memory, in the swap cache, if another
  process still maps it); a shmem page's PTE just goes. It stops when the mm's RSS is within
  the limit or after two full sweeps.
"""

from __future__ import annotations


from ..hw import pte as P
from ..hw.frames import PG_anon, PG_dirty, PG_swapbacked, PG_swapcache, PG_mlocked, ZERO_PFN
from ..mm.vmflags import VM_LOCKED


def enforce_rss_limit(kernel, task) -> int:
    """Bring task's RSS under its limit; returns the PTEs unmapped."""
    mm = task.mm
    limit = getattr(mm, "rss_limit", None)
    if limit is None or mm.get_mm_rss() <= limit:
        return 0
    sysm = kernel.sys
    design = kernel.design
    reclaimer = kernel.reclaimer
    f = sysm.frames
    pt = sysm.pagetables
    cursor = getattr(mm, "rss_cursor", 0)
    unmapped = 0
    vmas = [v for v in mm.vmas.as_list() if not v.vm_flags & VM_LOCKED]
    if not vmas:
        return 0
    for _sweep in range(2 * max(1, mm.get_mm_rss())):
        if mm.get_mm_rss() <= limit:
            break
        v = next((v for v in vmas if v.vm_end > cursor), None)
        if v is None:
            cursor = 0
            v = vmas[0]
        addr = max(cursor, v.vm_start)
        cursor = addr + 4096
        row = pt.lookup_leaf(mm.pgd, addr)
        if row < 0:
            continue
        slot = (addr >> 12) & 511
        e = int(pt.rows[row, slot])
        if not P.pte_present(e) or P.pte_pfn(e) == ZERO_PFN:
            continue
        if e & P.ACCESSED:
            pt.rows[row, slot] = e & ~P.ACCESSED         # second chance
            continue
        pfn = P.pte_pfn(e)
        fl = int(f.flags[pfn])
        if fl & PG_mlocked:
            continue
        if fl & PG_anon and fl & PG_swapbacked and not fl & PG_swapcache:
            slot_ = sysm.swap.get_swap_page()
            if slot_ is None:
                break                                     # no swap: the limit cannot be met
            sysm.swap.add_to_cache(slot_[0], slot_[1], pfn)
            f.flags[pfn] = int(f.flags[pfn]) | PG_dirty
            reclaimer.pageout(pfn)
        if design.unmap_one(mm, v, row, slot, pfn, addr):
            unmapped += 1
    mm.rss_cursor = cursor
    return unmapped
