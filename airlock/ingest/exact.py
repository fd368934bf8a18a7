"""Exact duplicate records across a file, with flat memory and no per-row Python in the common case.

A cheap fingerprint of each typed row (numbers' bits, dictionary codes' value hashes, text lengths) is a
function of the record text, so two exact copies always share it; rows that share it are only
*candidates*, and the record text, read back through ``RecordText``, decides. The fingerprint store is a
sorted numpy array (24 index bits packed under a 40-bit fingerprint, so one plain sort orders a batch
and keeps equal fingerprints in row order), capped like every key store (AIR-W003).

A fingerprint collision therefore costs a read and a comparison, never a row: unlike a bare 64-bit
record hash, two different records can never be merged. The price is paid by files whose rows agree on
every typed value but differ in text (``1.0`` and ``1.00``, two trade ids of one length), one read per
such row; ``benchmarks/`` measures the worst case, every row sharing one fingerprint.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airlock.ingest.keys import DEFAULT_CAP, merge_at
from airlock.ingest.recordtext import RecordText

INDEX_BITS = 24
GROUP_CAP = 200_000  # distinct records remembered among shared fingerprints (~150 bytes each)
LOW = np.uint64((1 << INDEX_BITS) - 1)
HIGH = ~LOW
_MIX = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x5BD1E9955BD1E995)


def fingerprints(table: pa.Table) -> np.ndarray:
    """A uint64 per row that equal rows share; cheap, vectorized, not collision-free."""
    h = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in table.columns:
            arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            h *= _MIX
            h += _column_bits(arr)
        h ^= h >> np.uint64(31)  # the high bits carry the store's key: fold the low ones in
        h *= _MIX
        h ^= h >> np.uint64(29)
    return h


def _column_bits(arr: pa.Array) -> np.ndarray:
    t = arr.type
    if pa.types.is_dictionary(t):
        return _by_codes((hash(v) for v in arr.dictionary.to_pylist()), len(arr.dictionary), arr.indices)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return pc.fill_null(pc.binary_length(arr), -1).to_numpy().astype(np.uint64)
    if pa.types.is_floating(t):
        return pc.fill_null(arr, np.nan).to_numpy().view(np.uint64)
    if pa.types.is_integer(t) or pa.types.is_temporal(t):
        width = pa.int32() if t.bit_width <= 32 else pa.int64()
        return (
            pc.fill_null(arr.view(width) if t.bit_width in (32, 64) else arr.cast(width), -1)
            .to_numpy()
            .astype(np.uint64)
        )
    # anything else (structs, lists, booleans): the Python hash of each distinct value
    encoded = pc.dictionary_encode(arr)
    values = encoded.dictionary.to_pylist()
    return _by_codes((hash(repr(v)) for v in values), len(values), encoded.indices)


def _by_codes(hashes: Iterator[int], count: int, codes: pa.Array) -> np.ndarray:
    """Each row's value hash through its dictionary code; a null code gets its own constant."""
    table = np.append(np.fromiter(hashes, dtype=np.int64, count=count).view(np.uint64), _NULL)
    return table[pc.fill_null(codes, count).to_numpy()]


class ExactDuplicates:
    """Remembers up to ``cap`` distinct records (fingerprint, line, text span) and spots exact copies.

    The store is one sorted uint64 array: a fingerprint's high 40 bits over the 24-bit id of the row that
    first had it. Row ids index ``_parts``: each remembered batch's record starts (plus where its last
    record ends; records are contiguous in the cleaned stream, so one ends where the next begins) and its
    lines as offsets from the batch's first line: 12 bytes a row.
    """

    def __init__(self, text: RecordText, cap: int = DEFAULT_CAP, group_cap: int = GROUP_CAP) -> None:
        self.text = text
        self.cap = min(cap, 1 << INDEX_BITS)
        self.capped = False
        self.store = np.zeros(0, dtype=np.uint64)
        self._parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (first line, starts + end, line offsets)
        self._part_ids: list[int] = []  # id of each part's first row
        self._next_id = 0
        # fingerprints that more than one row had: the distinct records by a hash of their text
        self.groups: dict[int, dict[int, list[tuple[int, int, int]]]] = {}
        self.group_cap = group_cap
        self._grouped = 0
        self.compared = 0  # candidate rows settled by reading text

    @property
    def remembered(self) -> int:
        """Distinct records held (what the duplicate check covered once capped)."""
        return len(self.store) + self._grouped

    def check(self, fps: np.ndarray, lines: np.ndarray, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is an exact copy of an earlier record, that record's line) per row; remembers the others."""
        n = len(fps)
        repeat = np.zeros(n, dtype=np.bool_)
        first = np.zeros(n, dtype=np.int64)
        step = 1 << (INDEX_BITS - 1)
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            self._check(fps[lo:hi], lines[lo:hi], spans[lo:hi], repeat[lo:hi], first[lo:hi])
        return repeat, first

    def _check(
        self, fps: np.ndarray, lines: np.ndarray, spans: np.ndarray, repeat: np.ndarray, first: np.ndarray
    ) -> None:
        n = len(fps)
        if not n:
            return
        packed = (fps & HIGH) | np.arange(n, dtype=np.uint64)
        packed.sort()  # equal fingerprints end up in row order: the first of a run is the earliest row
        hs = packed & HIGH
        same_prev = np.zeros(n, dtype=np.bool_)
        np.equal(hs[1:], hs[:-1], out=same_prev[1:])
        fresh = ~same_prev
        hit = np.zeros(n, dtype=np.bool_)
        ins = pos = np.zeros(0, dtype=np.int64)
        if len(self.store):
            ins = np.searchsorted(self.store, hs)
            pos = np.minimum(ins, len(self.store) - 1)
            hit = (self.store[pos] & HIGH) == hs
            fresh &= ~hit
        candidates = np.flatnonzero(~fresh)
        if len(candidates):
            order = (packed & LOW).astype(np.int64)
            found = self._settle(candidates, hit=hit, pos=pos, hs=hs, order=order, lines=lines, spans=spans)
            for row, line in found.items():
                repeat[row] = True
                first[row] = line
        self._remember(packed, fresh, ins, lines, spans)

    def _settle(
        self,
        candidates: np.ndarray,
        *,
        hit: np.ndarray,
        pos: np.ndarray,
        hs: np.ndarray,
        order: np.ndarray,
        lines: np.ndarray,
        spans: np.ndarray,
    ) -> dict[int, int]:
        """The candidates that are exact copies (row -> the original's line), settled by their text.

        A fingerprint's group holds its distinct records keyed by a hash of their text, so a candidate
        costs one read and one comparison however many distinct records share its fingerprint.
        """
        found: dict[int, int] = {}
        read = self.text.read
        mine_of = read
        if len(candidates) > 64:  # many: read the batch's text once and slice it
            base = int(spans[0, 0])
            blob = read(base, int(spans[-1, 1]))

            def mine_of(start: int, end: int) -> bytes:
                return blob[start - base : end - base]

        for p in candidates.tolist():
            key = int(hs[p])
            group = self.groups.get(key)
            if group is None:  # first collision on this fingerprint: start from the record that had it
                if hit[p]:
                    line, start, end = self._ref(int(self.store[pos[p]] & LOW))
                else:  # the run's first row, new to the store, is the original
                    row0 = int(order[np.searchsorted(hs, hs[p])])
                    line, start, end = int(lines[row0]), int(spans[row0, 0]), int(spans[row0, 1])
                group = {hash(read(start, end)): [(line, start, end)]}
                if self._grouped < self.group_cap:
                    self.groups[key] = group
                    self._grouped += 1
                else:
                    self.capped = True
            row = int(order[p])
            start, end = int(spans[row, 0]), int(spans[row, 1])
            mine = mine_of(start, end)
            self.compared += 1
            text_hash = hash(mine)
            same_hash = group.get(text_hash, ())
            match = next((k for k in same_hash if read(k[1], k[2]) == mine), None)
            if match is not None:
                found[row] = match[0]
            elif self._grouped < self.group_cap:
                group.setdefault(text_hash, []).append((int(lines[row]), start, end))
                self._grouped += 1
            else:
                self.capped = True
        return found

    def _ref(self, entry: int) -> tuple[int, int, int]:
        """(line, start, end) of a remembered row."""
        part = bisect.bisect_right(self._part_ids, entry) - 1
        first_line, starts, offsets = self._parts[part]
        i = entry - self._part_ids[part]
        return first_line + int(offsets[i]), int(starts[i]), int(starts[i + 1]) - 1

    def _remember(
        self, packed: np.ndarray, fresh: np.ndarray, ins: np.ndarray, lines: np.ndarray, spans: np.ndarray
    ) -> None:
        """Merge the batch's new fingerprints into the store (sorted, in one pass) and keep their rows."""
        count = int(np.count_nonzero(fresh))
        if not count:
            return
        if len(self.store) + count > self.cap or self._next_id + len(packed) > 1 << INDEX_BITS:
            self.capped = True
            return
        everyone = count == len(packed)
        new = (packed if everyone else packed[fresh]) + np.uint64(self._next_id)  # row index -> row id
        if not np.array_equal(spans[1:, 0], spans[:-1, 1] + 1):
            raise RuntimeError("record spans are not contiguous")  # ends are derived from the next start
        starts = np.empty(len(packed) + 1, dtype=np.int64)
        starts[:-1] = spans[:, 0]
        starts[-1] = spans[-1, 1] + 1
        first_line = int(lines[0])
        self._parts.append((first_line, starts, (lines - first_line).astype(np.int32)))
        self._part_ids.append(self._next_id)
        self._next_id += len(packed)
        if not len(self.store):
            self.store = new
            return
        self.store = merge_at(self.store, new, (ins if everyone else ins[fresh]) + np.arange(count))
