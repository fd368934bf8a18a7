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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from schemas.files import rules as R

if TYPE_CHECKING:
    from airlock.ingest.recordtext import RecordText

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
    data: bytes | bytearray
    first_line: int
    raw_offset: int
    as_in_source: bool = False  # ``data`` is the source file's bytes from ``raw_offset`` (no CR, UTF-8)


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
        texts: RecordText | None = None,
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
        self.texts = texts  # when set: every record's span in the cleaned stream, for exact duplicates
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
        self._spans: deque[np.ndarray] = deque()  # (start, end) of each record in the cleaned stream
        self._open_span: np.ndarray | None = None  # the row of a record that runs on into the next chunk
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
            whole_chunk = isinstance(whole, (bytes, bytearray)) and len(pending) == len(whole)
            return whole if whole_chunk else bytes(pending)  # type: ignore[return-value]  # pyarrow takes either
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

    def take_spans(self, n: int) -> np.ndarray:
        """The next ``n`` records' ``(start, end)`` in the cleaned stream (``texts`` must be set).

        pyarrow yields a row only once it has read the row's end, so every span taken is complete.
        """
        with self._progress:
            return _take(self._spans, n)

    # -- header -----------------------------------------------------------------------------------
    def read_header(self) -> Header:
        """Find the first non-noise line, sniff the delimiter and parse the column names."""
        while self.header is None:
            chunk = self._read_raw_chunk()
            if chunk is None:
                raise FileProblem(R.EMPTY_FILE)
            data = chunk.data
            pos = 0
            line_no = chunk.first_line
            while pos < len(data):  # line by line until the header: the chunk is not split whole
                end = data.index(b"\n", pos)
                raw_line = data[pos:end]
                pos = end + 1
                if not raw_line.strip(b' \t",|;') or raw_line[:1] == b"#":
                    line_no += 1
                    continue
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
                self._rest = _Chunk(data[pos:], line_no + 1, chunk.raw_offset + pos, chunk.as_in_source)
                break
            self._next_line = line_no + 1 if self.header is not None else line_no
        return self.header

    # -- chunking ---------------------------------------------------------------------------------
    def _read_raw_chunk(self) -> _Chunk | None:
        """The next piece of the file ending at a line break, checked and LF-normalised."""
        # The file is read straight in behind the carry (less than a line), so the chunk's bytes are
        # copied once, by the read; the part after the last line break becomes the next carry.
        carry = self._carry
        data: bytes | bytearray
        while True:
            if self._eof:
                if not carry:
                    return None
                data, self._carry = carry, b""
                cut = len(data)
                break
            buf = bytearray(len(carry) + self.chunk_size)
            buf[: len(carry)] = carry
            with memoryview(buf) as view:
                got = self._raw.readinto(view[len(carry) :])  # type: ignore[attr-defined]
            if not got:
                self._eof = True
                continue
            del buf[len(carry) + got :]
            if self._raw_offset == 0 and not carry and buf.startswith(_BOM) and self._utf8:
                del buf[:3]
                self._raw_offset = 3
            end = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
            last_lf = buf.rfind(b"\n", 0, end)
            last = max(last_lf, buf.rfind(b"\r", last_lf + 1, end)) + 1  # a CR only counts after the last LF
            if last > 0:
                self._carry = bytes(buf[last:])
                del buf[last:]
                data = buf
                cut = len(data)
                break
            carry = bytes(buf)
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
        as_in_source = self._utf8
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            as_in_source = False
        if not data.endswith(b"\n"):
            data += b"\n"  # past the source's end: no record's text includes it
        return _Chunk(data, self._next_line, offset, as_in_source)

    def _line_at(self, data: bytes | bytearray, pos: int) -> int:
        head = data[:pos]
        bare_cr = head.count(b"\r") - head.count(b"\r\n")
        return self._next_line + head.count(b"\n") + bare_cr

    def _next_chunk(self) -> bytes | bytearray:
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
    def _process(self, chunk: _Chunk) -> bytes | bytearray:
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
        if self.texts is not None:
            self._queue_spans(
                out,
                rebuilt=out is not data,
                line_starts=starts,
                keep_start=keep_start,
                drop=drop,
                ends_open=bool(open_after[-1]),
                source_offset=chunk.raw_offset if chunk.as_in_source else None,
            )
        return out

    def _queue_spans(
        self,
        out: bytes | bytearray,
        *,
        rebuilt: bool,
        line_starts: np.ndarray,
        keep_start: np.ndarray,
        drop: np.ndarray,
        ends_open: bool,
        source_offset: int | None,
    ) -> None:
        """Queue the span of every record that starts in this chunk, and close the one left open.

        Records are contiguous in the cleaned stream, so a record ends one byte (its LF) before the next
        begins; the chunk's last record may run on (a quoted newline) and is closed by a later chunk.
        """
        assert self.texts is not None
        at = self.texts.add(out, None if rebuilt else source_offset)
        if rebuilt:  # dropped or repaired lines: find the line starts again, in ``out``
            nl_out = np.flatnonzero(np.frombuffer(out, dtype=np.uint8) == 10)
            line_starts = np.concatenate(([0], nl_out[:-1] + 1))
            record_starts = line_starts[keep_start[~drop]]
        else:
            record_starts = line_starts[keep_start]
        begins = at + record_starts.astype(np.int64)
        closes_at = at + len(out) - 1  # the chunk's last LF
        if self._open_span is not None:
            if len(begins):
                self._open_span[1] = begins[0] - 1
                self._open_span = None
            elif not ends_open:
                self._open_span[1] = closes_at
                self._open_span = None
        if not len(begins):
            return
        spans = np.empty((len(begins), 2), dtype=np.int64)
        spans[:, 0] = begins
        spans[:-1, 1] = begins[1:] - 1
        spans[-1, 1] = -1 if ends_open else closes_at
        if ends_open:
            self._open_span = spans[-1]
        self._spans.append(spans)

    def _drop_bad_counts(
        self,
        arr: np.ndarray,
        *,
        data: bytes | bytearray,
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
            text = bytes(data[starts[last] : nl[last]])
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
                self.dropped.append(
                    Dropped(first_line + int(lines[0]), count, bytes(data[starts[lines[0]] : nl[last]]))
                )
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


def _rebuild(
    data: bytes | bytearray, starts: np.ndarray, nl: np.ndarray, drop: np.ndarray, fixes: dict[int, bytes]
) -> bytes:
    """``data`` without dropped lines and with fixed lines; cost follows the number of edits."""
    edits = sorted({*np.flatnonzero(drop).tolist(), *fixes})
    pieces: list[bytes | bytearray] = []
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
