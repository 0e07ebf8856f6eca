"""The table-level reverse map of design `sharedpt`: which mms use a shared PTE table, and where.

Linus Torvalds, replying to Daniel Phillips' page-table sharing RFC (linux-kernel, 19 Feb 2002,
the fourth seed): swap-out is the one VM operation that is not local to an mm, so with shared
tables "you have to invalidate multiple mm's, you have to find them all"; he suggests a
"pmd-rmap": in the struct page of the table, a pointer to a circular list of the mms using it.
On-Demand-Fork (Zhao, Gong, Fonseca, EuroSys 2021; rssys/on-demand-fork, mm/memory.c) keeps
only a per-table reference count (``pte_table_refcount`` in the table's struct page) and
finds the other mms through the anon_vma walk.

vmlab keeps both: the hardware layer's ``PageTables.row_refs`` is the reference count (how
many PMD entries point at the table), and ``PmdRmap`` is Linus's list, one entry per
(table, mm) with the address the table maps in that mm. Only tables with more than one
reference are listed; a table whose last other user went away leaves the map.

Bytes (metadata): nothing of this was ever merged, so the entry size is ours, stated in the
historical style: a list_head (16 bytes on x86-64) linking the entries of one table, the mm
pointer (8) and the address (8): 32 bytes per (table, mm). The reference count lives in the
table's struct page, as in On-Demand-Fork, and costs nothing extra.
"""

from __future__ import annotations

PMD_RMAP_ENTRY_BYTES = 32


class PmdRmap:
    """row -> [(mm, base address), ...] for every PTE table referenced by more than one mm.

    Fields: ``users`` (o) the map; entries are kept in the order the mms started sharing.
    """

    __slots__ = ("users",)

    def __init__(self) -> None:
        self.users: dict[int, list[tuple[object, int]]] = {}

    def __bool__(self) -> bool:
        return bool(self.users)

    def __len__(self) -> int:
        return len(self.users)

    def get(self, row: int) -> list[tuple[object, int]] | None:
        return self.users.get(row)

    def mms(self, row: int) -> list:
        return [m for m, _ in self.users.get(row, ())]

    def add(self, row: int, owner, base: int, new_user, new_base: int) -> None:
        """``new_user`` starts sharing ``row`` (at ``new_base``); ``owner`` (at ``base``) is
        listed first if the table was not shared before."""
        lst = self.users.get(row)
        if lst is None:
            lst = self.users[row] = [(owner, base)]
        lst.append((new_user, new_base))

    def remove(self, row: int, mm, refs_left: int) -> None:
        """``mm`` stopped using ``row``; the row leaves the map once one user is left."""
        lst = self.users.get(row)
        if lst is None:
            return
        for k, (m, _b) in enumerate(lst):
            if m is mm:
                del lst[k]
                break
        if refs_left <= 1:
            del self.users[row]

    def entries(self) -> int:
        return sum(len(v) for v in self.users.values())

    def bytes(self) -> int:
        return self.entries() * PMD_RMAP_ENTRY_BYTES
