"""A swap device: numbered 4 KiB slots on a block device, with I/O counters.

Models the storage under a swap area (a partition or a swap file; mm/page_io.c does the I/O).
Slot 0 holds the swap header, as on Linux, so it is never given to a page. A slot stores the
content token of the page written to it (hw/content.py): writing a page's token takes a
reference to its buffer, freeing the slot drops it. Writes are synchronous; the reclaim layer
models writeback's timing (a page written this pass is freed on a later one).

Fields: ``tokens`` (o) per-slot content, POISON when the slot holds nothing; ``reads``,
``writes`` (o) page I/O counts.
"""

from __future__ import annotations

import numpy as np

from .content import NP_POISON, ContentStore


class SwapDevice:
    def __init__(self, nslots: int, contents: ContentStore):
        if nslots < 2:
            raise ValueError("SwapDevice: a swap area needs the header slot and at least one more")
        self.nslots = nslots
        self.tokens = np.full(nslots, NP_POISON, np.uint64)
        self.contents = contents
        self.reads = 0
        self.writes = 0

    def write(self, slot: int, token: int) -> None:
        """swap_writepage(): store a copy of the page's contents in the slot."""
        old = int(self.tokens[slot])
        self.tokens[slot] = self.contents.dup(token)
        if old != int(NP_POISON):
            self.contents.release(old)
        self.writes += 1

    def read(self, slot: int) -> int:
        """swap_read_folio(): a new reference to the slot's contents (for a fresh frame)."""
        tok = int(self.tokens[slot])
        assert tok != int(NP_POISON), f"SwapDevice.read: slot {slot} holds nothing"
        self.reads += 1
        return self.contents.dup(tok)

    def discard(self, slot: int) -> None:
        """The slot is free again: drop what it held."""
        old = int(self.tokens[slot])
        if old != int(NP_POISON):
            self.contents.release(old)
            self.tokens[slot] = NP_POISON

    def nbytes(self) -> int:
        return self.tokens.nbytes
