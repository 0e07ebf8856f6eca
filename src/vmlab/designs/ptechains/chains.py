"""Per-page chains of PTE pointers: struct pte_chain and PG_direct of Linux 2.5-2.6.5 (mm/rmap.c).

Source read: mm/rmap.c as stored in ROCm/ROCK-Kernel-Driver (a 2.6 tree that still has pte
chains): NRPTE, struct pte_chain, the "pte_chain list management policy" comment,
page_add_rmap(), page_remove_rmap(), page_referenced().

What Linux kept, and how vmlab keeps it (numpy arrays, so that fork and exit of a gigabyte are
a few vector operations, not a Python loop per page):

  page->pte.direct   ``direct[pfn]``: the one PTE pointer of a page mapped once (PG_direct).
                     No chain node: the pointer lives in struct page itself.
  page->pte.chain    ``head[pfn]``: the first node of the page's chain, once a second mapping
                     arrived (page_add_rmap converts direct into a two-entry chain).
  struct pte_chain   one node = one L1 cache line: ``next_and_idx`` (the next node's address
                     with the index of the first used slot packed into its low bits) and
                     NRPTE pte_addr_t slots. On x86-64 (64-byte lines, 8-byte pte_addr_t)
                     NRPTE = (64 - 8) / 8 = 7 and a node is 64 bytes. Here: ``ptes[node]``
                     (NRPTE slots, -1 = empty), ``nxt[node]``, ``idx[node]``.

The list policy is mm/rmap.c's (2.6.0-2.6.5, comment "pte_chain list management policy"):
  * free slots exist only in the head node, and only at its start: slots idx..NRPTE-1 of the
    head and every slot of the other nodes are in use;
  * page_add_rmap writes the new pointer into the head's last free slot (idx-1) or, if the head
    is full, pushes a new node holding it in slot NRPTE-1;
  * page_remove_rmap searches the chain from the head, slot by slot, for the pointer; it
    overwrites the found slot with the head's first used entry (the "victim"), clears that,
    and frees the head if it became empty. A chain is never collapsed back to PG_direct here;
  * page_referenced collapses a single-entry chain back to PG_direct (only under memory
    pressure: it is reclaim that calls it).

A pte pointer (pte_addr_t, the PTE's physical address in the kernel) is the PTE's position in
the machine's table pool, ``row * 512 + slot``: one-to-one with the physical address of the PTE
(``row_pfn[row] << 12 | slot << 3``) while the table lives. The design turns it into an mm and
an address the way ptep_to_mm()/ptep_to_address() did, through the table page's record.

``owner[node]`` (the pfn a node belongs to) is not in the kernel's struct; check() uses it.
Costs go to the design's stats: chain_ops (every page_add_rmap / page_remove_rmap),
pte_chain_alloc / pte_chain_free (nodes), chain_search_steps (slots page_remove_rmap
compared before it found its entry), pte_chain_collapses.
"""

from __future__ import annotations

import numpy as np

L1_CACHE_BYTES = 64
PTE_ADDR_BYTES = 8                                   # pte_addr_t on x86-64
NRPTE = (L1_CACHE_BYTES - 8) // PTE_ADDR_BYTES       # 7: next_and_idx + 7 pointers = 64 bytes
PTE_CHAIN_BYTES = L1_CACHE_BYTES                     # ____cacheline_aligned, slab objsize 64
EMPTY = -1

_I64 = np.int64


class PteChains:
    """Every page's reverse map: PG_direct pointers and pte_chain nodes."""

    def __init__(self, nframes: int, stats, capacity: int = 1024) -> None:
        self.stats = stats
        self.direct = np.full(nframes, EMPTY, _I64)      # (o) page->pte.direct
        self.head = np.full(nframes, EMPTY, _I64)        # (o) page->pte.chain
        self._mark = np.full(nframes, -1, _I64)          # scratch: duplicate detection
        self.ptes = np.full((capacity, NRPTE), EMPTY, _I64)
        self.nxt = np.full(capacity, EMPTY, _I64)
        self.idx = np.zeros(capacity, _I64)
        self.owner = np.full(capacity, EMPTY, _I64)
        self._free = np.arange(capacity - 1, -1, -1, dtype=_I64)   # stack, top at the end
        self._nfree = capacity
        self.nodes = 0                                  # (d) nodes in use
        self.peak = 0

    # --- node allocation: kmem_cache_alloc(pte_chain_cache) / __pte_chain_free ---------------
    def _grow(self, need: int) -> None:
        cap = len(self.nxt)
        add = max(cap, need)
        self.ptes = np.concatenate([self.ptes, np.full((add, NRPTE), EMPTY, _I64)])
        self.nxt = np.concatenate([self.nxt, np.full(add, EMPTY, _I64)])
        self.idx = np.concatenate([self.idx, np.zeros(add, _I64)])
        self.owner = np.concatenate([self.owner, np.full(add, EMPTY, _I64)])
        stack = self._free[:self._nfree]
        self._free = np.concatenate([np.arange(cap + add - 1, cap - 1, -1, dtype=_I64), stack])
        self._nfree += add

    def _alloc(self, pfns: np.ndarray) -> np.ndarray:
        k = len(pfns)
        if not k:
            return np.empty(0, _I64)
        if self._nfree < k:
            self._grow(k - self._nfree)
        nodes = self._free[self._nfree - k:self._nfree].copy()
        self._nfree -= k
        self.owner[nodes] = pfns
        self.nodes += k
        if self.nodes > self.peak:
            self.peak = self.nodes
            self.stats["pte_chain_peak_nodes"] = self.peak
        self.stats.add("pte_chain_alloc", k)
        return nodes

    def _release(self, nodes: np.ndarray) -> None:
        k = len(nodes)
        if not k:
            return
        self.ptes[nodes] = EMPTY
        self.nxt[nodes] = EMPTY
        self.idx[nodes] = 0
        self.owner[nodes] = EMPTY
        if len(self._free) < self._nfree + k:
            self._free = np.concatenate([self._free, np.empty(k, _I64)])
        self._free[self._nfree:self._nfree + k] = nodes
        self._nfree += k
        self.nodes -= k
        self.stats.add("pte_chain_free", k)

    # --- batches that may name a page more than once ------------------------------------------------
    def _rounds(self, pfns: np.ndarray, pteps: np.ndarray):
        """Split a batch into rounds in which no pfn repeats (fancy assignment needs that)."""
        while len(pfns):
            pos = np.arange(len(pfns), dtype=_I64)
            self._mark[pfns] = pos
            first = self._mark[pfns] == pos            # one occurrence of each pfn wins
            self._mark[pfns] = -1
            if first.all():
                yield pfns, pteps
                return
            yield pfns[first], pteps[first]
            pfns, pteps = pfns[~first], pteps[~first]

    # --- page_add_rmap ----------------------------------------------------------------------------------
    def add(self, pfns: np.ndarray, pteps: np.ndarray) -> None:
        """page_add_rmap() for each (page, pte pointer)."""
        pfns = np.asarray(pfns, np.intp)
        pteps = np.asarray(pteps, _I64)
        self.stats.add("chain_ops", len(pfns))
        for p, t in self._rounds(pfns, pteps):
            self._add_unique(p, t)

    def _add_unique(self, pfns: np.ndarray, pteps: np.ndarray) -> None:
        d = self.direct[pfns]
        h = self.head[pfns]
        isdir = d != EMPTY
        chained = h != EMPTY
        first = ~isdir & ~chained
        if first.any():                                  # unmapped: PG_direct, no node
            self.direct[pfns[first]] = pteps[first]
        if isdir.any():                                  # second mapping: direct -> chain
            p = pfns[isdir]
            nodes = self._alloc(p)
            self.ptes[nodes, NRPTE - 1] = d[isdir]
            self.ptes[nodes, NRPTE - 2] = pteps[isdir]
            self.idx[nodes] = NRPTE - 2
            self.nxt[nodes] = EMPTY
            self.head[p] = nodes
            self.direct[p] = EMPTY
        if chained.any():
            p, t, hh = pfns[chained], pteps[chained], h[chained]
            full = self.idx[hh] == 0
            if full.any():                               # head full: a new head node
                nodes = self._alloc(p[full])
                self.ptes[nodes, NRPTE - 1] = t[full]
                self.idx[nodes] = NRPTE - 1
                self.nxt[nodes] = hh[full]
                self.head[p[full]] = nodes
            room = ~full
            if room.any():                               # the head's last free slot
                hn = hh[room]
                self.idx[hn] -= 1
                self.ptes[hn, self.idx[hn]] = t[room]

    # --- page_remove_rmap ------------------------------------------------------------------------------
    def remove(self, pfns: np.ndarray, pteps: np.ndarray, count_search: bool = True) -> None:
        """page_remove_rmap() for each (page, pte pointer). With ``count_search`` False the
        slots compared are not counted (try_to_unmap removes the entries it is walking)."""
        pfns = np.asarray(pfns, np.intp)
        pteps = np.asarray(pteps, _I64)
        self.stats.add("chain_ops", len(pfns))
        for p, t in self._rounds(pfns, pteps):
            self._remove_unique(p, t, count_search)

    def _remove_unique(self, pfns: np.ndarray, pteps: np.ndarray, count_search: bool) -> None:
        d = self.direct[pfns]
        isdir = d != EMPTY
        if isdir.any():
            bad = d[isdir] != pteps[isdir]
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise AssertionError(f"page_remove_rmap: pfn {int(pfns[isdir][k])} is PG_direct "
                                     f"to pte {int(d[isdir][k])}, not {int(pteps[isdir][k])}")
            self.direct[pfns[isdir]] = EMPTY
        ch = ~isdir
        if not ch.any():
            return
        P, T = pfns[ch], pteps[ch]
        start = self.head[P]
        if (start == EMPTY).any():
            k = int(np.flatnonzero(start == EMPTY)[0])
            raise AssertionError(f"page_remove_rmap: pfn {int(P[k])} has no reverse mapping")
        n = len(P)
        fnode = np.empty(n, _I64)
        fslot = np.empty(n, _I64)
        pend = np.arange(n, dtype=_I64)
        cur = start.copy()
        steps = 0
        while len(pend):
            slots = self.ptes[cur]                         # (m, NRPTE); empty slots are -1
            match = slots == T[pend][:, None]
            hit = match.any(axis=1)
            where = match.argmax(axis=1)
            if count_search:
                lo = self.idx[cur]
                steps += int(np.where(hit, where - lo + 1, NRPTE - lo).sum())
            fnode[pend[hit]] = cur[hit]
            fslot[pend[hit]] = where[hit]
            miss = ~hit
            pend, cur = pend[miss], self.nxt[cur[miss]]
            if (cur == EMPTY).any():
                k = int(pend[np.flatnonzero(cur == EMPTY)[0]])
                raise AssertionError(f"page_remove_rmap: pte {int(T[k])} is not on pfn "
                                     f"{int(P[k])}'s chain")
        if count_search:
            self.stats.add("chain_search_steps", steps)
        vi = self.idx[start]
        self.ptes[fnode, fslot] = self.ptes[start, vi]     # the victim fills the hole
        self.ptes[start, vi] = EMPTY
        emptied = vi == NRPTE - 1
        if emptied.any():
            gone = start[emptied]
            self.head[P[emptied]] = self.nxt[gone]
            self._release(gone)
        keep = start[~emptied]
        self.idx[keep] += 1

    # --- walks --------------------------------------------------------------------------------------
    def entries(self, pfn: int) -> list[int]:
        """The page's pte pointers in walk order (head node first, each from its idx)."""
        d = int(self.direct[pfn])
        if d != EMPTY:
            return [d]
        out: list[int] = []
        c = int(self.head[pfn])
        while c != EMPTY:
            out.extend(self.ptes[c, int(self.idx[c]):].tolist())
            c = int(self.nxt[c])
        return out

    def length(self, pfn: int) -> int:
        return len(self.entries(pfn))

    def nodes_of(self, pfn: int) -> int:
        n, c = 0, int(self.head[pfn])
        while c != EMPTY:
            n += 1
            c = int(self.nxt[c])
        return n

    def collapse_single(self, pfn: int) -> bool:
        """page_referenced()'s tail: a chain with one entry becomes PG_direct again."""
        h = int(self.head[pfn])
        if h == EMPTY or int(self.nxt[h]) != EMPTY or int(self.idx[h]) != NRPTE - 1:
            return False
        self.direct[pfn] = self.ptes[h, NRPTE - 1]
        self.head[pfn] = EMPTY
        self._release(np.array([h], _I64))
        self.stats.add("pte_chain_collapses")
        return True

    # --- self-check ----------------------------------------------------------------------------------
    def all_entries(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Every (pfn, pte pointer) the chains hold, and violations of the list policy."""
        out: list[str] = []
        dp = np.flatnonzero(self.direct != EMPTY)
        both = dp[self.head[dp] != EMPTY]
        for p in both[:5].tolist():
            out.append(f"pte_chain: pfn {p} is PG_direct and has a chain")
        used = np.flatnonzero(self.owner != EMPTY)
        if len(used) != self.nodes:
            out.append(f"pte_chain: {len(used)} nodes owned but {self.nodes} counted in use")
        cols = np.arange(NRPTE)
        slots = self.ptes[used]
        lo = self.idx[used][:, None]
        bad = ((cols < lo) & (slots != EMPTY)) | ((cols >= lo) & (slots == EMPTY))
        for n in used[bad.any(axis=1)][:5].tolist():
            out.append(f"pte_chain: node {n} breaks the layout (idx {int(self.idx[n])}, "
                       f"slots {self.ptes[n].tolist()})")
        heads = np.flatnonzero(self.head != EMPTY)
        seen = np.zeros(len(self.nxt), bool)
        for p in heads.tolist():
            c, first, steps = int(self.head[p]), True, 0
            while c != EMPTY and steps <= self.nodes:
                if seen[c]:
                    out.append(f"pte_chain: node {c} is on two chains or in a loop (pfn {p})")
                    break
                seen[c] = True
                if int(self.owner[c]) != p:
                    out.append(f"pte_chain: node {c} on pfn {p}'s chain is owned by {int(self.owner[c])}")
                if not first and int(self.idx[c]) != 0:
                    out.append(f"pte_chain: node {c} of pfn {p} is not the head but not full")
                first = False
                c, steps = int(self.nxt[c]), steps + 1
        stray = used[~seen[used]]
        for n in stray[:5].tolist():
            out.append(f"pte_chain: node {n} (owner {int(self.owner[n])}) is on no chain")
        mask = (slots != EMPTY)
        node_pfn = np.repeat(self.owner[used], NRPTE).reshape(-1, NRPTE)[mask]
        pfn = np.concatenate([dp, node_pfn]).astype(_I64)
        ptep = np.concatenate([self.direct[dp], slots[mask]]).astype(_I64)
        return pfn, ptep, out
