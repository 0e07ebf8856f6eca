"""anon_vma and anon_vma_chain: Linux's reverse map for anonymous pages (mm/rmap.c).

The third seed (Tweedie/LaHaise, 1998) wanted every private anonymous page to name an anchor
from which all VMAs that might map it can be found. Linux has done it with anon_vma since
2.6.7 (Andrea Arcangeli, 2004) and, since 2.6.34 (Rik van Riel, 2010), with a chain per VMA:

  * an anon page's ->mapping is an anon_vma and ->index its linear page offset, so from a
    VMA linked to that anon_vma the page's address is vma_address(vma, index);
  * every VMA has an anon_vma_chain: one AVC per anon_vma whose pages it may map (its own,
    its parent's, its grandparent's... after fork);
  * every anon_vma has the set of AVCs pointing at it (an interval tree in Linux; a list
    here), which rmap_walk_anon() walks.

Fork (anon_vma_fork) links the child VMA to all of the parent VMA's anon_vmas and gives it a
new anon_vma of its own for the pages it COWs, unless an existing anon_vma with no active VMAs
and fewer than two children can be reused (Konstantin Khlebnikov's 2015 fix, commit
7a3ef208e662 "mm: prevent endless growth of anon_vma hierarchy", for the growth that
fork-heavy workloads such as AIM7 showed once anon_vma_chain arrived in 2.6.34). The design
option ``linux:anon_vma_reuse=0`` turns the reuse off to show that growth.

Field tags: (c) constant, (o) owned here, (d) derived (recounted by check()).

Order to respect: link the AVC (and set vma.anon_vma) before any page is added with this
anon_vma as its mapping; unlink AVCs only after the VMA's pages are zapped.
"""

from __future__ import annotations

from ...mm.vma import VMA, VM_ACCESS_FLAGS
from ...mm.vmflags import VM_SOFTDIRTY

ANON_VMA_BYTES = 104        # sizeof(struct anon_vma), /proc/slabinfo objsize on Linux 6.18 x86-64
AVC_BYTES = 64              # sizeof(struct anon_vma_chain), idem


class AnonVMA:
    """struct anon_vma."""

    __slots__ = ("id", "root", "parent", "refcount", "num_children", "num_active_vmas", "avcs")

    def __init__(self, owners) -> None:
        self.id = owners.add(self)       # (c) the value stored in frames.mapping
        self.root: AnonVMA = self        # (c)
        self.parent: AnonVMA = self      # (c)
        self.refcount = 1                # (o) anon_vma_alloc's reference + children's roots
        self.num_children = 0            # (o)
        self.num_active_vmas = 0         # (o) VMAs whose vma.anon_vma is this one
        self.avcs: list[AnonVMAChain] = []   # (o) the rb_root interval tree, as a list

    def __repr__(self) -> str:
        return f"<anon_vma {self.id} root={self.root.id} parent={self.parent.id} avcs={len(self.avcs)}>"


class AnonVMAChain:
    """struct anon_vma_chain: links one VMA to one anon_vma."""

    __slots__ = ("vma", "anon_vma")

    def __init__(self, vma: VMA, anon_vma: AnonVMA) -> None:
        self.vma = vma
        self.anon_vma = anon_vma


class AnonVMAs:
    """The design's anon_vma operations, bound to the page-owner registry."""

    def __init__(self, owners, reuse: bool = True) -> None:
        self.owners = owners
        self.live: dict[int, AnonVMA] = {}
        self.reuse = reuse          # the 2015 fix (7a3ef208e662); off: 2.6.34 .. 3.18 behaviour

    def _alloc(self) -> AnonVMA:
        av = AnonVMA(self.owners)
        self.live[av.id] = av
        return av

    def _put(self, av: AnonVMA) -> None:
        """put_anon_vma(): drop a reference; free it (and its root reference) at zero."""
        av.refcount -= 1
        assert av.refcount >= 0, "put_anon_vma: refcount underflow"
        if av.refcount == 0:
            assert not av.avcs, "put_anon_vma: freeing an anon_vma that still has AVCs"
            root = av.root
            del self.live[av.id]
            self.owners.remove(av.id)
            if root is not av:
                self._put(root)

    @staticmethod
    def _link(vma: VMA, av: AnonVMA) -> None:
        """anon_vma_chain_link(): at the head of the VMA's chain (index 0), like list_add()."""
        avc = AnonVMAChain(vma, av)
        vma.anon_vma_chain.insert(0, avc)
        av.avcs.append(avc)

    # --- mm/rmap.c ------------------------------------------------------------------------------
    def prepare(self, vma: VMA) -> AnonVMA:
        """anon_vma_prepare(): make sure the VMA has an anon_vma before its first anon page.

        Reuses a neighbour's anon_vma when the neighbour could merge with this VMA but for its
        access flags (find_mergeable_anon_vma), so mprotect'ed pieces can merge back later.
        """
        if vma.anon_vma is not None:
            return vma.anon_vma
        av = self.find_mergeable(vma)
        if av is None:
            av = self._alloc()
            av.num_children += 1          # self-parent link of a new root
        vma.anon_vma = av
        self._link(vma, av)
        av.num_active_vmas += 1
        return av

    def find_mergeable(self, vma: VMA) -> AnonVMA | None:
        """find_mergeable_anon_vma(): try the next VMA, then the previous one."""
        tree = vma.vm_mm.vmas
        nxt = tree.next(vma)
        if nxt is not None:
            av = _reusable(nxt, vma, nxt)
            if av is not None:
                return av
        prev = tree.prev(vma)
        if prev is not None:
            return _reusable(prev, prev, vma)
        return None

    def clone(self, dst: VMA, src: VMA) -> None:
        """anon_vma_clone(): dst (a split piece, or a fork child) joins all of src's anon_vmas.

        A split piece arrives with dst.anon_vma already equal to src's (vm_area_dup copied it).
        A fork child arrives with none, and takes as its own the first anon_vma, walking src's
        chain from its newest end, that has no active VMA and fewer than two children. The
        root is never taken: it counts itself as a child and has at least one more.
        """
        for avc in reversed(src.anon_vma_chain):
            av = avc.anon_vma
            self._link(dst, av)
            if (self.reuse and dst.anon_vma is None and src.anon_vma is not None
                    and av.num_children < 2 and av.num_active_vmas == 0):
                dst.anon_vma = av
        if dst.anon_vma is not None:
            dst.anon_vma.num_active_vmas += 1

    def fork(self, vma: VMA, pvma: VMA) -> None:
        """anon_vma_fork(): the child VMA ``vma`` of parent VMA ``pvma``."""
        vma.anon_vma = None
        vma.anon_vma_chain = []
        if pvma.anon_vma is None:
            return
        self.clone(vma, pvma)
        if vma.anon_vma is not None:
            return
        av = self._alloc()
        av.num_active_vmas += 1
        av.root = pvma.anon_vma.root
        av.parent = pvma.anon_vma
        av.root.refcount += 1            # get_anon_vma(root)
        vma.anon_vma = av
        self._link(vma, av)
        av.parent.num_children += 1

    def unlink(self, vma: VMA) -> None:
        """unlink_anon_vmas(): the VMA leaves every anon_vma it was linked to."""
        emptied = []
        for avc in vma.anon_vma_chain:
            av = avc.anon_vma
            av.avcs.remove(avc)
            if not av.avcs:
                emptied.append(av)
        if vma.anon_vma is not None:
            vma.anon_vma.num_active_vmas -= 1
        for av in emptied:
            av.parent.num_children -= 1
        vma.anon_vma_chain = []
        vma.anon_vma = None
        for av in emptied:
            self._put(av)

    def chain_ids(self, vma: VMA) -> list[int]:
        return [avc.anon_vma.id for avc in vma.anon_vma_chain]

    def bytes(self) -> dict[str, int]:
        n_avc = sum(len(av.avcs) for av in self.live.values())
        return {"anon_vma": len(self.live) * ANON_VMA_BYTES, "anon_vma_chain": n_avc * AVC_BYTES}


def anon_vma_compatible(a: VMA, b: VMA) -> bool:
    """anon_vma_compatible(): a and b could merge but for their access flags."""
    return (a.vm_end == b.vm_start
            and (a.vm_flags ^ b.vm_flags) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY) == 0
            and a.vm_file is b.vm_file
            and b.vm_pgoff == a.vm_pgoff + a.pages())


def _reusable(old: VMA, a: VMA, b: VMA) -> AnonVMA | None:
    """reusable_anon_vma()."""
    if anon_vma_compatible(a, b):
        av = old.anon_vma
        if av is not None and len(old.anon_vma_chain) == 1:
            return av
    return None
