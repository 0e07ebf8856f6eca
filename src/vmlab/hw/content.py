"""Page contents as tokens: what a frame holds, without 4 KiB of Python per page.

A frame's content is a 64-bit token:

    0 .. 255         the page is uniformly that byte (0 is a zeroed page)
    256 + i          blob i: a real 4096-byte buffer, for pages written with arbitrary data
    POISON           the frame is free; reading it is a bug (a stale PTE), and says so

Filling a 1 GiB region costs one integer per frame. Only pages that received non-uniform
data carry a buffer, and a buffer that becomes uniform again (a memset over the whole page)
goes back to being a small token.

Ownership: every frame holding a blob token owns one reference to that blob. ``dup`` (a COW
copy) takes another reference; ``release`` drops one; ``write`` consumes the caller's
reference to the old token and returns a reference to the new one, copying the buffer only if
someone else still shares it (copy-on-write inside the model, mirroring the thing it models).

This module has no notion of frames or pages being mapped; frames.py stores the tokens.
"""

from __future__ import annotations

import numpy as np

from ..constants import PAGE_SIZE

POISON = (1 << 64) - 1
NP_POISON = np.uint64(POISON)
BLOB_BASE = 256
_NP_BLOB_BASE = np.uint64(BLOB_BASE)


def uniform(byte: int) -> int:
    """The token of a page filled with ``byte``."""
    return byte & 0xFF


class ContentStore:
    """The side table of real page buffers, with reference counts.

    Fields: ``blobs`` (o) list of bytearray-or-None; ``refs`` (o) per-blob reference count;
    ``free`` (o) recycled blob slots.
    """

    def __init__(self) -> None:
        self.blobs: list[bytearray | None] = []
        self.refs: list[int] = []
        self.free: list[int] = []

    # --- bookkeeping ------------------------------------------------------------------------
    def _new_blob(self, buf: bytearray) -> int:
        if self.free:
            i = self.free.pop()
            self.blobs[i] = buf
            self.refs[i] = 1
        else:
            i = len(self.blobs)
            self.blobs.append(buf)
            self.refs.append(1)
        return BLOB_BASE + i

    def _token_for(self, buf: bytearray) -> int:
        """Store ``buf`` (exactly PAGE_SIZE long) and return its token, uniform if possible."""
        first = buf[0]
        if buf.count(first) == PAGE_SIZE:
            return first
        return self._new_blob(buf)

    def nblobs(self) -> int:
        return len(self.blobs) - len(self.free)

    def nbytes(self) -> int:
        """Model memory held by page buffers (for the bytes-per-page figure)."""
        return self.nblobs() * PAGE_SIZE + 8 * 2 * len(self.blobs)

    # --- single-token operations ----------------------------------------------------------
    def dup(self, token: int) -> int:
        """Another reference to the same contents (a COW copy shares the buffer)."""
        if BLOB_BASE <= token < POISON:
            self.refs[token - BLOB_BASE] += 1
        return token

    def release(self, token: int) -> None:
        if BLOB_BASE <= token < POISON:
            i = token - BLOB_BASE
            self.refs[i] -= 1
            assert self.refs[i] >= 0, "ContentStore.release: blob refcount underflow"
            if self.refs[i] == 0:
                self.blobs[i] = None
                self.free.append(i)

    def page_bytes(self, token: int) -> bytes:
        """All 4096 bytes of a page with this token."""
        if token < BLOB_BASE:
            return bytes([token]) * PAGE_SIZE
        assert token != POISON, "ContentStore.page_bytes: read of a freed frame (poisoned)"
        buf = self.blobs[token - BLOB_BASE]
        assert buf is not None, "ContentStore.page_bytes: dangling blob token"
        return bytes(buf)

    def read(self, token: int, off: int, n: int) -> bytes:
        if token < BLOB_BASE:
            return bytes([token]) * n
        assert token != POISON, "ContentStore.read: read of a freed frame (poisoned)"
        buf = self.blobs[token - BLOB_BASE]
        assert buf is not None, "ContentStore.read: dangling blob token"
        return bytes(buf[off:off + n])

    def byte_at(self, token: int, off: int) -> int:
        if token < BLOB_BASE:
            return token
        assert token != POISON, "ContentStore.byte_at: read of a freed frame (poisoned)"
        return self.blobs[token - BLOB_BASE][off]

    def write(self, token: int, off: int, data: bytes | bytearray | memoryview) -> int:
        """Store ``data`` at ``off`` in a page holding ``token``; return the page's new token.

        Consumes the caller's reference to ``token``. Writing a whole page of one byte value
        yields a uniform token; writing the byte already there changes nothing.
        """
        n = len(data)
        assert 0 <= off and off + n <= PAGE_SIZE, "ContentStore.write: out of page bounds"
        if n == 0:
            return token
        if token < BLOB_BASE:
            if bytes(data).count(token) == n:
                return token
            if n == PAGE_SIZE:
                return self._token_for(bytearray(data))
            buf = bytearray([token]) * PAGE_SIZE
            buf[off:off + n] = data
            return self._new_blob(buf)
        assert token != POISON, "ContentStore.write: write to a freed frame (poisoned)"
        i = token - BLOB_BASE
        buf = self.blobs[i]
        assert buf is not None, "ContentStore.write: dangling blob token"
        if self.refs[i] == 1:
            buf[off:off + n] = data
            first = buf[0]
            if buf.count(first) == PAGE_SIZE:       # became uniform: give the buffer back
                self.refs[i] = 0
                self.blobs[i] = None
                self.free.append(i)
                return first
            return token
        self.refs[i] -= 1
        nbuf = bytearray(buf)
        nbuf[off:off + n] = data
        return self._token_for(nbuf)

    def fill(self, token: int, off: int, n: int, byte: int) -> int:
        """memset inside one page; see write()."""
        if n == PAGE_SIZE:
            self.release(token)
            return byte & 0xFF
        return self.write(token, off, bytes([byte & 0xFF]) * n)

    # --- vector operations (hot paths: fork, zap, COW over a range) -----------------------
    def dup_many(self, tokens: np.ndarray) -> None:
        """dup() every token in the array (the array itself is the copy)."""
        blob = tokens >= _NP_BLOB_BASE
        if blob.any():
            for t in tokens[blob].tolist():
                self.dup(t)

    def release_many(self, tokens: np.ndarray) -> None:
        blob = (tokens >= _NP_BLOB_BASE) & (tokens != NP_POISON)
        if blob.any():
            for t in tokens[blob].tolist():
                self.release(t)

    def check(self, *holders: np.ndarray) -> list[str]:
        """Recount blob references from every array of tokens that holds them (the frames'
        contents, swap slots, ...); return violations."""
        out: list[str] = []
        counts: dict[int, int] = {}
        for tokens in holders:
            live = tokens[(tokens >= _NP_BLOB_BASE) & (tokens != NP_POISON)]
            for t in live.tolist():
                counts[t - BLOB_BASE] = counts.get(t - BLOB_BASE, 0) + 1
        for i, r in enumerate(self.refs):
            if counts.get(i, 0) != r:
                out.append(f"content: blob {i} has refcount {r} but {counts.get(i, 0)} frame(s) hold it")
            if r and self.blobs[i] is None:
                out.append(f"content: blob {i} referenced but has no buffer")
        return out
