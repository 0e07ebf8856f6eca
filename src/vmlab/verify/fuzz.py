"""Random scenarios for `vmlab verify --fuzz`: the corpus's comparison, on workloads nobody wrote.

Each scenario reserves one PROT_NONE range R and does everything inside it, with addresses
relative to R (so the host and the model agree on them): MAP_FIXED mappings of private or
shared anonymous memory (some populated, locked or NORESERVE), fill/touch/read, mprotect,
madvise (DONTNEED, FREE, COLD, PAGEOUT, POPULATE_*, WIPEONFORK/KEEPONFORK, DONTFORK/DOFORK,
RANDOM/NORMAL, DONTNEED_LOCKED), mlock/mlock2(ONFAULT)/munlock, munmap, mremap (in place, or
MAYMOVE|FIXED within R), fork and exit of up to four processes, with a checkpoint every four
steps. R is the only named region, so every checkpoint snapshots all of it in every process.

The generator is deterministic in its seed: ``generate(seed)`` always gives the same text, so a
failing seed can be re-run, shrunk (``shrink``: drop steps while the difference stays) and
turned into a corpus scenario.
"""

from __future__ import annotations

import random

NPAGES = 32
ADVICE = ("dontneed", "free", "cold", "pageout", "populate_read", "populate_write",
          "wipeonfork", "keeponfork", "dontfork", "dofork", "random", "normal",
          "dontneed_locked")


def generate(seed: int, steps: int = 30, swap: bool = False, moves: bool = True) -> str:
    """The text of random scenario number ``seed``."""
    r = random.Random(seed)
    lines = [f"# fuzz {seed}"]
    if swap:
        lines.append("machine ram=64M swap=64M")
    lines += ["spawn P", f"P: mmap R {NPAGES}pages none private,anonymous"]
    alive = ["P"]
    nchild = nreg = 0

    def span() -> tuple[int, int]:
        a = r.randrange(NPAGES)
        return a, r.randrange(a + 1, min(NPAGES, a + 12) + 1) - a

    for i in range(steps):
        p = r.choice(alive)
        k = r.random()
        a, n = span()
        if k < 0.12:
            nreg += 1
            kind = r.choice(("private", "private", "shared"))
            extra = r.choice(("", "", ",populate", ",locked", ",noreserve"))
            prot = r.choice(("rw", "rw", "r"))
            lines.append(f"{p}: mmap M{nreg} {n}pages {prot} {kind},anonymous,fixed{extra} "
                         f"at R+{a}pages")
        elif k < 0.30:
            lines.append(f"{p}: fill R+{a}pages {n}pages {r.randrange(256):#x}")
        elif k < 0.40:
            lines.append(f"{p}: touch R+{a}pages {n}pages {r.choice(('read', 'write'))}")
        elif k < 0.45:
            lines.append(f"{p}: read R+{a}pages 2")
        elif k < 0.53:
            lines.append(f"{p}: mprotect R+{a}pages {n}pages {r.choice(('rw', 'r', 'none', 'rw'))}")
        elif k < 0.66:
            advice = "pageout" if swap and r.random() < 0.4 else r.choice(ADVICE)
            lines.append(f"{p}: madvise R+{a}pages {n}pages {advice}")
        elif k < 0.72:
            op = r.choice(("mlock", "munlock", "mlock2"))
            lines.append(f"{p}: {op} R+{a}pages {n}pages" + (" onfault" if op == "mlock2" else ""))
        elif k < 0.76:
            lines.append(f"{p}: munmap R+{a}pages {n}pages")
        elif k < 0.82:
            a2, n2 = span()
            if moves and r.random() < 0.5 and a2 + n <= NPAGES:
                lines.append(f"{p}: mremap R+{a}pages {n}pages {n}pages maymove,fixed "
                             f"to R+{a2}pages as X")
            else:
                lines.append(f"{p}: mremap R+{a}pages {n}pages {n2}pages as X")
        elif k < 0.92 and len(alive) < 4:
            nchild += 1
            lines.append(f"{p}: fork C{nchild}")
            alive.append(f"C{nchild}")
        elif k < 0.96 and len(alive) > 1:
            q = r.choice(alive[1:])
            lines.append(f"{q}: exit")
            alive.remove(q)
        if i % 4 == 3:
            lines.append(f"checkpoint s{i}")
    lines.append("checkpoint end")
    return "\n".join(lines) + "\n"


def differs(text: str, path: str = "fuzz.vms") -> list:
    """Mismatch rows between the live host and the model for a scenario text."""
    from ..scenario import parse_text
    from .compare import compare_traces
    from .trace import run_trace
    sc = parse_text(text, path)
    host = run_trace(sc, path, "host")
    if host["error"] and host["error"].startswith("HostUnsupported"):
        return []
    return compare_traces(host, run_trace(sc, path, "model"))


def shrink(text: str, still_fails) -> str:
    """Drop steps (never the header, the spawn or the reservation of R) while
    ``still_fails(text)`` holds; one checkpoint at the end."""
    lines = text.splitlines()
    cut = next(i for i, ln in enumerate(lines) if ln.startswith("P: mmap R ")) + 1
    head = lines[:cut]
    cur = [ln for ln in lines[cut:] if not ln.startswith("checkpoint")]

    def build(steps):
        return "\n".join(head + steps + ["checkpoint end"]) + "\n"

    changed = True
    while changed:
        changed = False
        for i in range(len(cur) - 1, -1, -1):
            cand = cur[:i] + cur[i + 1:]
            if still_fails(build(cand)):
                cur, changed = cand, True
    return build(cur)
