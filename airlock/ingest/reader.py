"""Turn raw bytes into a clean record stream for pyarrow, keeping physical line numbers.

pyarrow's CSV reader is fast but forgets where rows came from and stops on noise lines. ``LineSource``
sits between the file and pyarrow: chunk by chunk, with numpy over the bytes (no per-line Python in the
common case) it checks encoding and NUL bytes, turns CR and CRLF into LF, finds quoted newlines, drops
blank, separator-only and comment lines, and records the physical line number of every record it passes
on. The engine pops those numbers batch by batch, in the same order pyarrow yields rows.

In ``exact`` mode it also counts the fields of every record and drops the ones whose count does not match
the header (reported as AIR-E002); the pipeline switches to it only when pyarrow meets such a row.
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from schemas.files import rules as R

CHUNK = 8 << 20
MAX_LINE = 1 << 20
MAX_COLUMNS = 1024
DELIMITERS = (",", "|", "\t", ";")
_BOM = b"\xef\xbb\xbf"


class FileProblem(Exception):
    """A problem with the file as a whole: the file is rejected with this finding."""

    def __init__(self, rule: R.Rule, line: int = 0, value: object = None, **fields: Any) -> None:
        super().__init__(rule.format(**fields))
        self.rule = rule
        self.line = line
        self.value = value
        self.fields = fields


@dataclass
class Header:
    names: list[str]
    line: int
    delimiter: str


@dataclass
class Dropped:
    """A record removed because its field count is wrong (exact mode)."""

    line: int
    fields: int
    text: bytes


@dataclass
class _Chunk:
    data: bytes
    first_line: int
    raw_offset: int


def sniff_delimiter(line: str) -> str:
    """The candidate delimiter seen most often outside quotes in the header line."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


class LineSource(io.RawIOBase):
    """A read-only byte stream of data records (header removed) plus their physical line numbers."""

    def __init__(
        self,
        raw: BinaryIO,
        *,
        encoding: str = "utf-8",
        chunk_size: int | None = None,  # default CHUNK (read at call time, so tests can shrink it)
        max_line: int = MAX_LINE,
        hash_records: bool = False,
        exact: bool = False,
        max_ahead: int = 2,
    ) -> None:
        super().__init__()
        self._raw = raw
        self.encoding = codecs.lookup(encoding).name
        self._utf8 = self.encoding == "utf-8"
        self._decoder = None if self._utf8 else codecs.getincrementaldecoder(self.encoding)()
        self.chunk_size = chunk_size or CHUNK
        self.max_line = max_line
        self.hash_records = hash_records
        self.exact = exact
        self.header: Header | None = None
        self.problem: FileProblem | None = None
        self.dropped: list[Dropped] = []
        self.dropped_count = 0
        self._carry = b""
        self._eof = False
        self._raw_offset = 0  # raw bytes before the carry
        self._next_line = 1  # physical number of the first line in the carry
        self._in_quote = False
        self._quote_line = 0
        self._pending = memoryview(b"")
        self._lines: deque[np.ndarray] = deque()
        self._hashes: deque[list[Any]] = deque()  # [_ChunkHashes, records already taken]
        self._open_hashes: _ChunkHashes | None = None  # its last record runs on into the next chunk
        self._ncols = 0
        self._delim = b","
        self._noise_bytes = b""
        self.records = 0
        self.max_ahead = max_ahead
        self._closed = False
        self._taken = 0
        self._progress = threading.Condition()
        self._rest: _Chunk | None = None

    # -- io.RawIOBase -----------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def read(self, size: int | None = -1) -> bytes:
        """Hand pyarrow whole cleaned chunks when they fit, without copying them again."""
        while not len(self._pending):
            if self._eof or self.problem is not None or self._closed:
                return b""
            self._throttle()
            try:
                self._pending = memoryview(self._next_chunk())
            except FileProblem as exc:
                self.problem = exc
                return b""
        pending = self._pending
        if size is None or size < 0 or size >= len(pending):
            self._pending = memoryview(b"")
            whole = pending.obj
            return whole if isinstance(whole, bytes) and len(pending) == len(whole) else bytes(pending)
        self._pending = pending[size:]
        return bytes(pending[:size])

    def _throttle(self) -> None:
        """Stop reading ahead while ``max_ahead`` chunks wait to be consumed.

        pyarrow's streaming reader parses ahead as fast as its input allows, buffering batches without
        bound when the consumer is slower; holding back its input is what keeps memory flat. The wait
        gives up after 30 s without progress, so a reader that needs more input to finish a batch cannot
        deadlock.
        """
        with self._progress:
            idle = 0
            while len(self._lines) > self.max_ahead and not self._closed and idle < 300:
                taken = self._taken
                self._progress.wait(0.1)
                idle = 0 if self._taken != taken else idle + 1

    def close(self) -> None:
        with self._progress:
            self._closed = True
            self._progress.notify_all()
        super().close()

    # -- line numbers for the engine --------------------------------------------------------------
    def take_lines(self, n: int) -> np.ndarray:
        with self._progress:
            out = _take(self._lines, n)
            self._taken += n
            self._progress.notify_all()
        return out

    def take_hashes(self, n: int) -> Callable[[], np.ndarray]:
        """The next ``n`` record hashes, as a function computing them (on whichever thread calls it).

        Hashing is Python work under the GIL; deferring it lets the caller run it off the reader's
        critical path. Call the functions in the order they were taken.
        """
        parts: list[tuple[_ChunkHashes, int, int]] = []
        need = n
        while need > 0 and self._hashes:
            head = self._hashes[0]
            entry, done = head
            step = min(need, entry.n - done)
            parts.append((entry, done, done + step))
            need -= step
            if done + step == entry.n:
                self._hashes.popleft()
            else:
                head[1] = done + step
        if need:
            raise RuntimeError(f"record bookkeeping out of step by {need} rows")

        def compute() -> np.ndarray:
            arrays = [entry.values(b)[a:b] for entry, a, b in parts]
            return np.concatenate(arrays) if len(arrays) != 1 else arrays[0]

        return compute

    # -- header -----------------------------------------------------------------------------------
    def read_header(self) -> Header:
        """Find the first non-noise line, sniff the delimiter and parse the column names."""
        while self.header is None:
            chunk = self._read_raw_chunk()
            if chunk is None:
                raise FileProblem(R.EMPTY_FILE)
            text_lines = chunk.data.split(b"\n")
            self._next_line = chunk.first_line + len(text_lines) - 1
            for i, raw_line in enumerate(text_lines[:-1]):
                stripped = raw_line.strip(b' \t",|;')
                if not stripped or raw_line[:1] == b"#":
                    continue
                line_no = chunk.first_line + i
                text = raw_line.decode("utf-8")
                delim = sniff_delimiter(text)
                names = next(csv.reader([text], delimiter=delim))
                names = [n.strip() for n in names]
                if len(names) > MAX_COLUMNS:
                    raise FileProblem(R.TOO_MANY_COLUMNS, line_no, len(names), limit=MAX_COLUMNS)
                self.header = Header(names, line_no, delim)
                self._ncols = len(names)
                self._delim = delim.encode()
                comment = b"#" if delim == ";" else b"#;"
                self._noise_bytes = comment
                rest = b"\n".join(text_lines[i + 1 :])
                offset = chunk.raw_offset + sum(len(x) + 1 for x in text_lines[: i + 1])
                self._rest = _Chunk(rest, line_no + 1, offset)
                break
        return self.header

    # -- chunking ---------------------------------------------------------------------------------
    def _read_raw_chunk(self) -> _Chunk | None:
        """The next piece of the file ending at a line break, checked and LF-normalised."""
        # One copy per chunk: the carry (less than a line) joined to the block up to its last line break.
        carry = self._carry
        while True:
            if self._eof:
                if not carry:
                    return None
                data, self._carry = carry, b""
                cut = len(data)
                break
            block = self._raw.read(self.chunk_size)
            if not block:
                self._eof = True
                continue
            if self._raw_offset == 0 and not carry and block.startswith(_BOM) and self._utf8:
                block = block[3:]
                self._raw_offset = 3
            end = len(block) - 1 if block.endswith(b"\r") else len(block)
            last_lf = block.rfind(b"\n", 0, end)
            last = max(last_lf, block.rfind(b"\r", last_lf + 1, end)) + 1  # a CR only counts after the last LF
            if last > 0:
                view = memoryview(block)
                data = b"".join((carry, view[:last]))
                self._carry = bytes(view[last:])
                cut = len(data)
                break
            carry += block
            if len(carry) > self.max_line:
                raise FileProblem(R.LINE_TOO_LONG, self._next_line, limit=self.max_line)
        offset = self._raw_offset
        self._raw_offset += cut
        nul = data.find(b"\x00")
        if nul >= 0:
            raise FileProblem(R.BINARY, self._line_at(data, nul), offset=offset + nul)
        if self._utf8:
            if not data.isascii():
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise FileProblem(
                        R.NOT_UTF8,
                        self._line_at(data, exc.start),
                        data[exc.start : exc.start + 4],
                        encoding="UTF-8",
                        offset=offset + exc.start,
                    ) from None
        else:
            assert self._decoder is not None
            try:
                data = self._decoder.decode(data, final=self._eof and not self._carry).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise FileProblem(
                    R.NOT_UTF8, self._line_at(data, exc.start), encoding=self.encoding, offset=offset + exc.start
                ) from None
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not data.endswith(b"\n"):
            data += b"\n"
        return _Chunk(data, self._next_line, offset)

    def _line_at(self, data: bytes, pos: int) -> int:
        head = data[:pos]
        bare_cr = head.count(b"\r") - head.count(b"\r\n")
        return self._next_line + head.count(b"\n") + bare_cr

    def _next_chunk(self) -> bytes:
        if self._rest is not None:
            rest, self._rest = self._rest, None
            out = self._process(rest)
            if out:
                return out
        while True:
            chunk = self._read_raw_chunk()
            if chunk is None:
                if self._in_quote:
                    raise FileProblem(R.UNBALANCED_QUOTE, self._quote_line)
                self._eof = True
                return b""
            out = self._process(chunk)
            if out:
                return out

    # -- the per-chunk work -----------------------------------------------------------------------
    def _process(self, chunk: _Chunk) -> bytes:
        data = chunk.data
        if not data:
            return b""
        arr = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        self._next_line = chunk.first_line + len(nl)
        starts = np.empty(len(nl), dtype=np.int64)
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
        lengths = nl - starts
        too_long = np.flatnonzero(lengths > self.max_line)
        if len(too_long):
            raise FileProblem(R.LINE_TOO_LONG, chunk.first_line + int(too_long[0]), limit=self.max_line)
        # quote state at the end of each line; a record starts where the previous line ended unquoted
        carried = 1 if self._in_quote else 0
        quotes = np.zeros(0, dtype=np.int64)
        if b'"' in data:
            # quote parity per line (xor of the line's quote flags), then a running parity: one pass over
            # the bytes, no quote positions (only exact mode needs those)
            parity = np.bitwise_xor.reduceat((arr == 34).view(np.uint8), starts)
            open_after = ((np.cumsum(parity, dtype=np.int64) + carried) & 1).astype(np.bool_)
            if self.exact:
                quotes = np.flatnonzero(arr == 34)
        else:
            open_after = np.full(len(nl), bool(carried))
        is_start = np.empty(len(nl), dtype=np.bool_)
        is_start[0] = not carried
        is_start[1:] = ~open_after[:-1]
        if open_after[-1]:
            opened = np.flatnonzero(is_start)
            self._quote_line = chunk.first_line + int(opened[-1]) if len(opened) else self._quote_line
        self._in_quote = bool(open_after[-1])
        # noise: record-start lines that are blank, separator-only or comments (checked one by one)
        first = arr[np.minimum(starts, len(arr) - 1)]
        cand_bytes = np.frombuffer(b'\n \t"' + self._delim + self._noise_bytes, dtype=np.uint8)
        candidates = np.flatnonzero(is_start & np.isin(first, cand_bytes))
        drop = np.zeros(len(nl), dtype=np.bool_)
        blank_chars = b' \t"' + self._delim
        for i in candidates.tolist():
            seg = data[starts[i] : nl[i]]
            if (seg[:1] and seg[:1] in self._noise_bytes) or (not seg.strip(blank_chars) and seg.count(b'"') % 2 == 0):
                drop[i] = True
        fixes: dict[int, bytes] = {}
        if self.exact:
            fixes = self._drop_bad_counts(
                arr,
                data=data,
                nl=nl,
                starts=starts,
                quotes=quotes,
                carried=carried,
                is_start=is_start,
                drop=drop,
                first_line=chunk.first_line,
            )
        keep_start = is_start & ~drop
        record_lines = chunk.first_line + np.flatnonzero(keep_start).astype(np.int64)
        out = _rebuild(data, starts, nl, drop, fixes) if drop.any() or fixes else data
        self._lines.append(record_lines)
        self.records += len(record_lines)
        if self.hash_records:
            self._queue_hashes(
                out,
                data=data,
                nl=nl,
                is_start=is_start,
                out_is_start=keep_start[~drop],
                n=len(record_lines),
                ends_open=bool(open_after[-1]),
            )
        return out

    def _queue_hashes(
        self,
        out: bytes,
        *,
        data: bytes,
        nl: np.ndarray,
        is_start: np.ndarray,
        out_is_start: np.ndarray,
        n: int,
        ends_open: bool,
    ) -> None:
        """Queue this chunk's record hashes (computed later); a record may run on into later chunks.

        Lines at the head of the chunk that continue a record begun earlier (a quoted newline across
        the chunk boundary) go to that record's hash, not to a record of their own.
        """
        starts_at = np.flatnonzero(is_start)
        head = int(starts_at[0]) if len(starts_at) else len(nl)  # leading continuation lines
        if self._open_hashes is not None:
            if head:
                self._open_hashes.tail.append(data[: int(nl[head - 1])])
            if len(starts_at):  # the record ended in this chunk
                self._open_hashes.closed = True
                self._open_hashes = None
        if n:
            entry = _ChunkHashes(out, out_is_start, n, runs_on=ends_open)
            if ends_open:
                self._open_hashes = entry
            self._hashes.append([entry, 0])

    def _drop_bad_counts(
        self,
        arr: np.ndarray,
        *,
        data: bytes,
        nl: np.ndarray,
        starts: np.ndarray,
        quotes: np.ndarray,
        carried: int,
        is_start: np.ndarray,
        drop: np.ndarray,
        first_line: int,
    ) -> dict[int, bytes]:
        """Exact mode: count unquoted delimiters per record and make every record fit the header.

        Short records are padded with empty fields and surplus empty trailing fields are trimmed (Strata
        files do both); a record with surplus non-empty fields is dropped and reported (AIR-E002).
        Returns replacement text for the last line of each fixed record.
        """
        fixes: dict[int, bytes] = {}
        delims = np.flatnonzero(arr == self._delim[0])
        if len(quotes):
            delims = delims[((np.searchsorted(quotes, delims) + carried) & 1) == 0]
        per_line = np.diff(np.searchsorted(delims, nl), prepend=0)
        record_id = np.cumsum(is_start) - 1
        if record_id[0] < 0:  # a record continued from the previous chunk: counted from here only
            record_id = record_id + 1
        per_record = np.bincount(record_id, weights=per_line).astype(np.int64) + 1
        bad_records = np.flatnonzero(per_record != self._ncols)
        if not len(bad_records):
            return fixes
        bounds = np.searchsorted(record_id, np.arange(record_id[-1] + 2))
        for rec in bad_records.tolist():
            lines = np.arange(bounds[rec], bounds[rec + 1])
            if not len(lines) or drop[lines[0]] or not is_start[lines[0]]:
                continue
            last = int(lines[-1])
            count = int(per_record[rec])
            text = data[starts[last] : nl[last]]
            if count < self._ncols:
                fixes[last] = text + self._delim * (self._ncols - count)
                continue
            surplus = count - self._ncols
            head, tail = _split_tail(text, self._delim, surplus)
            if tail is not None and not tail.strip(b" \t\r" + self._delim):
                fixes[last] = head
                continue
            drop[lines] = True
            self.dropped_count += 1
            if len(self.dropped) < 1000:
                self.dropped.append(Dropped(first_line + int(lines[0]), count, data[starts[lines[0]] : nl[last]]))
        return fixes


def _split_tail(text: bytes, delim: bytes, surplus: int) -> tuple[bytes, bytes | None]:
    """Split off the last ``surplus`` fields when they are unquoted; (text, None) otherwise."""
    cut = len(text)
    for _ in range(surplus):
        cut = text.rfind(delim, 0, cut)
        if cut < 0:
            return text, None
    tail = text[cut:]
    return (text[:cut], tail) if b'"' not in tail else (text, None)


def _take(store: deque[np.ndarray], n: int) -> np.ndarray:
    parts: list[np.ndarray] = []
    need = n
    while need > 0 and store:
        head = store[0]
        if len(head) <= need:
            parts.append(store.popleft())
            need -= len(head)
        else:
            parts.append(head[:need])
            store[0] = head[need:]
            need = 0
    if need:
        raise RuntimeError(f"record bookkeeping out of step by {need} rows")
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _rebuild(data: bytes, starts: np.ndarray, nl: np.ndarray, drop: np.ndarray, fixes: dict[int, bytes]) -> bytes:
    """``data`` without dropped lines and with fixed lines; cost follows the number of edits."""
    edits = sorted({*np.flatnonzero(drop).tolist(), *fixes})
    pieces: list[bytes] = []
    keep_from = 0
    for i in edits:
        begin = int(starts[i])
        if begin > keep_from:
            pieces.append(data[keep_from:begin])
        if not drop[i]:
            pieces.append(fixes[i] + b"\n")
        keep_from = int(nl[i]) + 1
    pieces.append(data[keep_from:])
    return b"".join(pieces)


class _ChunkHashes:
    """A chunk's record hashes, computed on first use (the chunk's bytes are kept until then).

    When the chunk's last record runs on into later chunks (a quoted newline), the reader appends the
    rest of its text to ``tail`` and sets ``closed``; pyarrow yields that row only after reading its end,
    so by the time anyone asks for the last hash, the record is whole.
    """

    __slots__ = ("_last", "_out", "_starts", "_values", "closed", "n", "runs_on", "tail")

    def __init__(self, out: bytes, line_is_start: np.ndarray, n: int, *, runs_on: bool = False) -> None:
        self._out = out
        self._starts: np.ndarray | None = line_is_start
        self._values: np.ndarray | None = None
        self._last: bytes | None = None  # the last record's own text while its tail may still grow
        self.n = n
        self.tail: list[bytes] = []
        self.runs_on = runs_on
        self.closed = not runs_on

    def values(self, stop: int) -> np.ndarray:
        """The hashes, at least the first ``stop`` of them filled in."""
        if self._values is None:
            assert self._starts is not None
            records = _record_texts(self._out, self._starts)
            self._out, self._starts = b"", None
            if self.runs_on:
                self._last = records.pop()
            self._values = np.empty(self.n, dtype=np.int64)
            self._values[: len(records)] = np.fromiter(map(hash, records), dtype=np.int64, count=len(records))
        if self._last is not None and stop == self.n:
            self._values[-1] = hash(b"\n".join([self._last, *self.tail]))
            self._last = None
        return self._values


def _record_texts(out: bytes, line_is_start: np.ndarray) -> list[bytes]:
    """The emitted text of each record that starts in ``out`` (leading continuation lines skipped)."""
    lines = out.split(b"\n")[:-1]
    if line_is_start.all():
        return lines
    records: list[bytes] = []
    for text, start in zip(lines, line_is_start.tolist(), strict=True):
        if start:
            records.append(text)
        elif records:
            records[-1] += b"\n" + text
    return records


def _record_hashes(out: bytes, line_is_start: np.ndarray) -> np.ndarray:
    """A 64-bit hash per record of the emitted text (exact-duplicate detection)."""
    records = _record_texts(out, line_is_start)
    return np.fromiter(map(hash, records), dtype=np.int64, count=len(records))
