"""Machine.check(): recount every derived number from scratch and compare (Linux's validate_mm,
extended to the whole machine).

What is verified, from first principles:

  page tables   every present PTE points at an allocated frame (or the zero page); every
                table row in use is reachable from exactly the mms that count it (as many
                upper entries point at it as its row_refs says); per mm,
                nr_ptes / nr_pmds / nr_puds equal the tables found by walking; the pool's
                table count and PG_pgtable frames agree; every free row is zero
  mapcount      each frame's mapcount equals the number of PTEs, in all processes, that map it
                (a PTE in a table several mms share counts once; their RSS counts it in each)
  refcount      each frame's non-mapping references equal its holders: the page cache of a
                shmem object (1), the swap cache, a page-table or the zero page (1); 0 otherwise
  RSS           each mm's MM_ANONPAGES / MM_FILEPAGES / MM_SHMEMPAGES / MM_SWAPENTS equal the
                PTEs found, by the kind of page they map
  VMAs          each tree sorted, non-overlapping, page aligned; total/data/exec/stack_vm equal
                the sums over the VMAs; no two neighbours that Linux's merge rules would have
                merged; every VMA's file holds it in i_mmap
  objects       shmem objects' page arrays agree with the frames' mapping/index; nrpages
  LRU           PG_lru is set on exactly the user pages still referenced (anon or cached), and
                PG_unevictable pages are exactly the PG_mlocked ones on the LRU
  commit        Committed_AS equals the pages of VM_ACCOUNT VMAs in live processes
  contents      blob references equal the frames holding them
  design        the design's own invariants (for `linux`: rmap finds every anon PTE)

Violations are collected, not raised one at a time, and reported together as InvariantError.
"""

from __future__ import annotations

import numpy as np

from .errors import InvariantError
from .hw import pte as P
from .hw.frames import (PG_anon, PG_buddy, PG_lru, PG_mlocked, PG_pgtable, PG_swapbacked,
                        PG_swapcache, PG_unevictable, PG_zero, ZERO_PFN)
from .hw.pagetable import PMD_LEVEL, PTE_LEVEL, PUD_LEVEL
from .mm.mm_struct import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, RSS_NAMES
from .mm.mm_struct import is_data_mapping, is_exec_mapping, is_stack_mapping
from .mm.vmflags import VM_ACCOUNT
from .kernel.vma_ops import VM_SPECIAL, can_merge_remove_vma, is_mergeable_vma

_U32 = np.uint32


def check_machine(machine) -> None:
    v = collect_violations(machine)
    if v:
        raise InvariantError(v)


def collect_violations(machine) -> list[str]:
    kernel = machine.kernel
    sysm = machine.system
    f = sysm.frames
    pt = sysm.pagetables
    out: list[str] = []
    out += f.check()
    live = kernel.live_tasks()
    mms = [t.mm for t in live]
    mapcount = np.zeros(f.nframes, np.int64)
    swap_refs: dict[tuple[int, int], int] = {}
    rows_seen: dict[int, int] = {}
    leaf_owner: dict[int, int] = {}        # leaf row -> the first mm that reached it
    objects = {}
    committed = 0
    for t in live:
        mm = t.mm
        tag = f"pid {t.pid}"
        out += [f"{tag}: {m}" for m in mm.vmas.check()]
        # --- page tables reachable from this mm
        tables = pt.tables_under(mm.pgd)
        for lvl, rows in tables.items():
            for r in rows:
                rows_seen[r] = rows_seen.get(r, 0) + 1
                if pt.row_pfn[r] < 0:
                    out.append(f"{tag}: level-{lvl} table row {r} is reachable but free")
                elif not f.flags[pt.row_pfn[r]] & PG_pgtable:
                    out.append(f"{tag}: table row {r}'s frame is not PG_pgtable")
        for lvl, name in ((PTE_LEVEL, "nr_ptes"), (PMD_LEVEL, "nr_pmds"), (PUD_LEVEL, "nr_puds")):
            if len(tables[lvl]) != getattr(mm, name):
                out.append(f"{tag}: {name} is {getattr(mm, name)} but {len(tables[lvl])} tables are reachable")
        # --- PTEs inside VMAs; none outside
        rss = [0, 0, 0, 0]
        in_vma = 0
        for vma in mm.vmas:
            obj = vma.vm_file
            if obj is not None:
                objects[id(obj)] = obj
                if not any(x is vma for x in obj.i_mmap):
                    out.append(f"{tag}: VMA {vma.vm_start:#x} is not in its object's i_mmap")
            if vma.vm_flags & VM_ACCOUNT:
                committed += vma.pages()
            rows_, los, his, addrs = pt.leaves(mm.pgd, vma.vm_start, vma.vm_end)
            for row, lo, hi, a in zip(rows_.tolist(), los.tolist(), his.tolist(), addrs.tolist()):
                vals = pt.rows[row, lo:hi]
                nz = vals != 0
                in_vma += int(nz.sum())
                present = P.np_present(vals)
                swp = nz & ~present & ~P.np_marker(vals)
                rss[MM_SWAPENTS] += int(swp.sum())
                # a PTE table shared by several mms (design sharedpt) holds each of its PTEs
                # once: mapcounts and swap counts count it for the first mm only, RSS for all
                first = leaf_owner.setdefault(row, id(mm)) == id(mm)
                for e in (vals[swp].tolist() if first else ()):
                    key = (P.pte_swp_type(e), P.pte_swp_offset(e))
                    swap_refs[key] = swap_refs.get(key, 0) + 1
                if not present.any():
                    continue
                pfn = P.np_pfn(vals[present])
                bad = pfn >= f.nframes
                if bad.any():
                    out.append(f"{tag}: PTE maps pfn {int(pfn[bad][0])} beyond RAM")
                    pfn = pfn[~bad]
                normal = pfn[pfn != ZERO_PFN]
                fl = f.flags[normal]
                freed = (fl & _U32(PG_buddy)) != 0
                if freed.any():
                    out.append(f"{tag}: PTE at {a:#x}.. maps freed pfn {int(normal[freed][0])}")
                if first:
                    np.add.at(mapcount, normal, 1)
                anon = (fl & _U32(PG_anon)) != 0
                sb = (fl & _U32(PG_swapbacked)) != 0
                rss[MM_ANONPAGES] += int(anon.sum())
                rss[MM_SHMEMPAGES] += int((~anon & sb).sum())
                rss[MM_FILEPAGES] += int((~anon & ~sb).sum())
        all_ptes = 0
        for r in tables[PTE_LEVEL]:
            all_ptes += int((pt.rows[r] != 0).sum())
        if all_ptes != in_vma:
            out.append(f"{tag}: {all_ptes - in_vma} PTE(s) outside any VMA")
        for k in range(4):
            if rss[k] != mm.rss[k]:
                out.append(f"{tag}: {RSS_NAMES[k]} is {mm.rss[k]} but the page tables hold {rss[k]}")
        # --- VM counters and merges
        vm = {"total_vm": 0, "data_vm": 0, "exec_vm": 0, "stack_vm": 0}
        prev = None
        for vma in mm.vmas:
            n = vma.pages()
            vm["total_vm"] += n
            if is_exec_mapping(vma.vm_flags):
                vm["exec_vm"] += n
            elif is_stack_mapping(vma.vm_flags):
                vm["stack_vm"] += n
            elif is_data_mapping(vma.vm_flags):
                vm["data_vm"] += n
            if prev is not None and _should_have_merged(machine.design, prev, vma):
                out.append(f"{tag}: VMAs {prev.vm_start:#x}-{prev.vm_end:#x} and "
                           f"{vma.vm_start:#x}-{vma.vm_end:#x} should have been merged")
            prev = vma
        for k, val in vm.items():
            if getattr(mm, k) != val:
                out.append(f"{tag}: {k} is {getattr(mm, k)} but the VMAs add up to {val}")
    # --- tables: every allocated row is reachable (shared rows counted per reference)
    used = np.flatnonzero(pt.row_pfn >= 0)
    if len(used) != pt.ntables:
        out.append(f"page tables: ntables {pt.ntables} but {len(used)} rows allocated")
    for r in used.tolist():
        if rows_seen.get(r, 0) == 0:
            out.append(f"page tables: row {r} (level {pt.row_level[r]}) is allocated but unreachable")
        elif rows_seen[r] != pt.row_refs[r]:
            out.append(f"page tables: row {r} (level {pt.row_level[r]}) has row_refs "
                       f"{int(pt.row_refs[r])} but {rows_seen[r]} upper entries point at it")
    free_rows = pt.free_rows()
    if len(free_rows) and pt.rows[free_rows].any():
        dirty = free_rows[pt.rows[free_rows].any(axis=1)]
        out.append(f"page tables: free row {int(dirty[0])} is not zero "
                   f"({len(dirty)} free rows with entries)")
    flags, mapcounts = f.flags_copy(), f.mapcount_copy()     # contiguous: fast whole-table scans
    pgtable_frames = int(((flags & _U32(PG_pgtable)) != 0).sum())
    if pgtable_frames != pt.ntables:
        out.append(f"page tables: {pgtable_frames} PG_pgtable frames for {pt.ntables} tables")
    # --- mapcounts
    diff = np.flatnonzero(mapcount != mapcounts)
    for pfn in diff[:10].tolist():
        out.append(f"frame {pfn}: mapcount {int(f.mapcount[pfn])} but {int(mapcount[pfn])} PTEs map it")
    if len(diff) > 10:
        out.append(f"... and {len(diff) - 10} more mapcount mismatches")
    # --- shmem objects and refcounts
    expect_refs = np.zeros(f.nframes, np.int64)
    expect_refs[ZERO_PFN] = 1
    expect_refs[(flags & _U32(PG_pgtable)) != 0] = 1
    expect_refs[(flags & _U32(PG_swapcache)) != 0] += 1
    open_refs: dict[int, int] = {}
    seen_files: set[int] = set()
    for t in live:
        for of in getattr(t, "files", {}).values():
            if id(of) not in seen_files:
                seen_files.add(id(of))
                open_refs[id(of.inode)] = open_refs.get(id(of.inode), 0) + 1
    for obj in _all_objects(machine, objects):
        idx = np.flatnonzero(obj.pages >= 0)
        if len(idx) != obj.nrpages:
            out.append(f"{obj!r}: nrpages {obj.nrpages} but {len(idx)} pages cached")
        pfns = obj.pages[idx].astype(np.intp)
        np.add.at(expect_refs, pfns, 1)
        badm = (f.mapping[pfns] != obj.owner_id) | (f.index[pfns] != idx)
        if badm.any():
            out.append(f"{obj!r}: page at index {int(idx[badm][0])} does not point back at the object")
        for e in obj.swap[obj.swap != 0].tolist():
            key = (P.pte_swp_type(e), P.pte_swp_offset(e))
            swap_refs[key] = swap_refs.get(key, 0) + 1
        if obj.swap[idx].any():
            out.append(f"{obj!r}: an index holds both a page and a swap entry")
        if int((obj.swap != 0).sum()) != obj.nrswapped:
            out.append(f"{obj!r}: nrswapped {obj.nrswapped} but {int((obj.swap != 0).sum())} entries")
        holders = len(obj.i_mmap) + open_refs.get(id(obj), 0) + getattr(obj, "shm_refs", 0)
        if obj.refs != holders:
            out.append(f"{obj!r}: refs {obj.refs} but {len(obj.i_mmap)} VMAs, "
                       f"{open_refs.get(id(obj), 0)} open files and {getattr(obj, 'shm_refs', 0)} segments hold it")
    np.add.at(expect_refs, machine.design.held_pages(), 1)    # (bsd: its objects' pages)
    for e in machine.design.swap_refs():                         # (bsd: its swap blocks)
        key = (P.pte_swp_type(int(e)), P.pte_swp_offset(int(e)))
        swap_refs[key] = swap_refs.get(key, 0) + 1
    rdiff = np.flatnonzero(expect_refs != f.refcount)
    for pfn in rdiff[:10].tolist():
        out.append(f"frame {pfn}: refcount {int(f.refcount[pfn])} but {int(expect_refs[pfn])} holders")
    # --- swap: slot counts, the swap cache, slot contents
    out += _check_swap(machine, swap_refs)
    # --- LRU membership
    user = ((flags & _U32(PG_buddy | PG_pgtable | PG_zero)) == 0) & ((mapcounts > 0) | (f.refcount > 0))
    on_lru = (flags & _U32(PG_lru)) != 0
    wrong = np.flatnonzero(user != on_lru)
    for pfn in wrong[:5].tolist():
        out.append(f"frame {pfn}: {'on' if on_lru[pfn] else 'off'} the LRU but "
                   f"{'in' if user[pfn] else 'not in'} use")
    unev = (flags & _U32(PG_unevictable)) != 0
    mlk = (flags & _U32(PG_mlocked)) != 0
    locked_mapping = np.zeros(f.nframes, bool)
    for o in machine.kernel.address_spaces():
        if getattr(o, "unevictable", False):
            locked_mapping[o.pages[o.pages >= 0].astype(np.intp)] = True
    bad = np.flatnonzero(on_lru & (unev != (mlk | (locked_mapping & unev))))
    for pfn in bad[:5].tolist():
        out.append(f"frame {pfn}: PG_unevictable={bool(unev[pfn])} but PG_mlocked={bool(mlk[pfn])}")
    # --- commit charge, contents, design
    shmem_acct = sum(o.acct_pages for o in kernel.address_spaces())
    if committed + shmem_acct != kernel.committed_pages:
        out.append(f"Committed_AS: {kernel.committed_pages} pages charged but VM_ACCOUNT VMAs hold "
                   f"{committed} and shmem objects {shmem_acct}")
    holders = [f.content[(f.flags_copy() & _U32(PG_buddy)) == 0], machine.system.swap.content_tokens()]
    holders += [o.disk for o in machine.kernel.address_spaces() if hasattr(o, "disk")]
    out += f.contents.check(*holders)
    out += machine.design.check(mms)
    return out


def _all_objects(machine, seen: dict) -> list:
    """Every shmem object: those mapped, plus any kept alive by other holders."""
    objs = dict(seen)
    for o in machine.kernel.address_spaces():
        objs[id(o)] = o
    return list(objs.values())


def _should_have_merged(design, a, b) -> bool:
    """Would Linux's rules have made a and b one VMA? (adjacent, compatible, linear pgoff)."""
    if a.vm_end != b.vm_start:
        return False
    if (a.vm_flags | b.vm_flags) & VM_SPECIAL:
        return False
    if a.special_name or b.special_name:
        return False
    if a.vm_end in a.vm_mm.unmerged_ok:         # fork left them apart; Linux does too
        return False
    if not can_merge_remove_vma(a) or not can_merge_remove_vma(b):
        return False                            # joining them would delete one with ->close
    if not is_mergeable_vma(a, b.vm_flags, b.vm_file):
        return False
    if a.vm_pgoff + a.pages() != b.vm_pgoff:
        return False
    return design.anon_mergeable(a, b, None) and design.anon_state_compatible(a, b)


def _check_swap(machine, swap_refs: dict) -> list[str]:
    """swap_map == references from swap PTEs and shmem objects, + SWAP_HAS_CACHE iff cached;
    the swap cache and the frames agree; free slots hold no data."""
    from .hw.content import NP_POISON
    from .mm.swapfile import SWAP_HAS_CACHE
    out = []
    f = machine.system.frames
    swap = machine.system.swap
    for a in swap.areas:
        if a is None:
            continue
        want = np.zeros(a.nslots, np.int64)
        for (t, off), n in swap_refs.items():
            if t == a.type:
                want[off] += n
        cached = a.cache >= 0
        want[cached] |= SWAP_HAS_CACHE
        want[0] = int(a.swap_map[0])
        bad = np.flatnonzero(want != a.swap_map)
        for off in bad[:10].tolist():
            out.append(f"swap {a.type}:{off}: swap_map {int(a.swap_map[off]):#x} but "
                       f"{int(want[off]) & 0x3F} reference(s){' + cache' if cached[off] else ''}")
        inuse = int((a.swap_map[1:] != 0).sum())
        if inuse != a.inuse:
            out.append(f"swap {a.type}: inuse {a.inuse} but {inuse} slots in use")
        for off in np.flatnonzero(cached).tolist():
            pfn = int(a.cache[off])
            if not int(f.flags[pfn]) & PG_swapcache or swap.entry_of(f.private[pfn]) != (a.type, off):
                out.append(f"swap {a.type}:{off}: cached page {pfn} does not point back at the slot")
        free = a.swap_map == 0
        if ((a.dev.tokens != NP_POISON) & free).any():
            out.append(f"swap {a.type}: a free slot still holds data")
    sc = np.flatnonzero((f.flags_copy() & _U32(PG_swapcache)) != 0)
    n_cached = sum(int((a.cache >= 0).sum()) for a in swap.areas if a is not None)
    if len(sc) != n_cached:
        out.append(f"swap cache: {len(sc)} frames flagged PG_swapcache but {n_cached} cached slots")
    return out
