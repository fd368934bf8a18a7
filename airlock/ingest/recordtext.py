"""Read back the text of any record pyarrow parsed, without keeping the file in memory.

The exact-duplicate check finds candidates by a cheap fingerprint of the typed row and settles each one
by comparing record text byte for byte, so it needs the text of a row seen many batches earlier. The
cleaned stream ``LineSource`` hands pyarrow is addressed by its offset: a chunk whose bytes are the
source file's own (UTF-8, LF line ends, no line dropped) is read from the source file; any other chunk
(CR or CRLF line ends, another encoding, noise lines removed, records repaired) is copied to a spool
file as it goes by. Reads are ``pread`` calls, so any thread may read while the reader appends.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from pathlib import Path


class RecordText:
    """The cleaned stream, chunk by chunk, addressable by stream offset."""

    def __init__(self, source: Path, new_spool: Callable[[], Path]) -> None:
        self._source = os.open(source, os.O_RDONLY)
        self._new_spool = new_spool
        self._spool: int | None = None
        self._spool_size = 0
        self._starts: list[int] = []  # stream offset of each segment
        self._segments: list[tuple[int, int, int]] = []  # (fd, file offset, length)
        self.size = 0  # stream bytes so far

    def add(self, data: bytes | bytearray, source_offset: int | None) -> int:
        """Append the next chunk of the stream; ``source_offset`` when it is the source's bytes there."""
        at = self.size
        if source_offset is None:
            if self._spool is None:
                self._spool = os.open(self._new_spool(), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.pwrite(self._spool, data, self._spool_size)
            segment = (self._spool, self._spool_size, len(data))
            self._spool_size += len(data)
        else:
            segment = (self._source, source_offset, len(data))
        self._segments.append(segment)
        self._starts.append(at)
        self.size += len(data)
        return at

    def read(self, start: int, end: int) -> bytes:
        """Stream bytes ``[start, end)``, which may span several chunks."""
        pieces: list[bytes] = []
        i = bisect.bisect_right(self._starts, start) - 1
        pos = start
        while pos < end:
            fd, offset, length = self._segments[i]
            seg_start = self._starts[i]
            stop = min(end, seg_start + length)
            pieces.append(os.pread(fd, stop - pos, offset + pos - seg_start))
            pos = stop
            i += 1
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        """Close both files; safe to call twice."""
        for fd in (self._source, self._spool):
            if fd is not None and fd >= 0:
                os.close(fd)
        self._source, self._spool = -1, None
