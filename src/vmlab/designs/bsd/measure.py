"""Shadow-chain measurements of the bsd design: a recount of its object graph.

``chain_stats(design, mms)`` describes the object graph of a running bsd machine:

  objects           live VM objects
  entries           map entries bound to an object
  max_depth         the longest shadow chain of any entry (1: the entry's object has no
                    backing object)
  mean_depth        the mean chain length over entries
  pages             pages resident in objects
  swapped           swap blocks held by objects
  hidden            pages and swap blocks held by objects that no entry can see any more:
                    every entry reaching them has a page (or zero marker) above them at that
                    index, or none covers the index — the memory a missing collapse wastes

Only structure counting lives here (the designs layer imports nothing above it); the command
that runs a scenario on ``bsd`` and ``bsd:collapse=0`` and prints these numbers is
tools/bsd_measure.py.
"""

from __future__ import annotations

import numpy as np

from .objects import chain_lookup

KEYS = ("objects", "entries", "max_depth", "mean_depth", "pages", "swapped", "hidden")


def chain_stats(design, mms: list) -> dict:
    visible: dict[int, set] = {}
    depths = []
    for mm in mms:
        for vma in mm.vmas:
            for e in vma.design_state or ():
                if e.obj is None:
                    continue
                chain = e.obj.chain()
                depths.append(len(chain))
                pidx = np.arange(e.lo, e.hi, dtype=np.int64)
                level, objs, _pg, _sw = chain_lookup(e.obj, pidx)
                for k, o in enumerate(objs):
                    hit = pidx[level == k]
                    if len(hit):
                        visible.setdefault(o.id, set()).update(hit.tolist())
    pages = swapped = hidden = 0
    for o in design.objects.values():
        pidx, pg, sw = o.items()
        held = (pg >= 0) | (sw != 0)
        pages += int((pg >= 0).sum())
        swapped += int((sw != 0).sum())
        seen = visible.get(o.id, set())
        hidden += sum(1 for p in pidx[held].tolist() if p not in seen)
    return {"objects": len(design.objects), "entries": len(depths),
            "max_depth": max(depths, default=0),
            "mean_depth": round(sum(depths) / len(depths), 2) if depths else 0.0,
            "pages": pages, "swapped": swapped, "hidden": hidden}
