"""Bounded-memory duplicate detection across batches: 64-bit fingerprints in sorted numpy arrays.

State is two sorted int64 arrays (fingerprint, first line), 16 bytes per distinct key, capped; past the
cap new keys are no longer remembered and the report says so (AIR-W003). Each batch is sorted once and
looked up with sorted queries, and new keys are merged in linear time.
"""

from __future__ import annotations

import numpy as np

DEFAULT_CAP = 1_000_000


class SeenKeys:
    """Remembers up to ``cap`` distinct fingerprints with the line that first had each."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self.keys = np.zeros(0, dtype=np.int64)
        self.lines = np.zeros(0, dtype=np.int64)
        self.capped = False

    def check(self, hashes: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is a repeat, line of the first occurrence) per row; remembers the new ones.

        Within a batch the earliest line of a key is the original, wherever the sort put it.
        """
        n = len(hashes)
        if not n:
            return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int64)
        order = np.argsort(hashes)
        hs = hashes[order]
        ls = lines[order]
        same_prev = np.zeros(n, dtype=np.bool_)
        same_prev[1:] = hs[1:] == hs[:-1]
        repeat_sorted = np.zeros(n, dtype=np.bool_)
        earliest = ls
        if same_prev.any():  # argsort is not stable: in each run of equal keys the earliest row is the original
            run = np.cumsum(~same_prev) - 1
            first_row = np.minimum.reduceat(order, np.flatnonzero(~same_prev))[run]
            repeat_sorted = order != first_row
            earliest = lines[first_row]
        before = np.zeros(n, dtype=np.bool_)
        pos = np.zeros(n, dtype=np.int64)
        ins = pos
        if len(self.keys):
            ins = np.searchsorted(self.keys, hs)
            pos = np.minimum(ins, len(self.keys) - 1)
            before = self.keys[pos] == hs
            repeat_sorted |= before
        fresh = ~repeat_sorted
        self._remember(hs[fresh], ls[fresh], ins[fresh])
        repeat = np.zeros(n, dtype=np.bool_)
        first = np.zeros(n, dtype=np.int64)
        if repeat_sorted.any():
            repeat[order] = repeat_sorted
            first[order] = np.where(before, self.lines_at(pos, before), earliest)
        return repeat, first

    @property
    def remembered(self) -> int:
        """Distinct keys held (what the duplicate check covered once capped)."""
        return len(self.keys)

    def lines_at(self, pos: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.zeros(len(pos), dtype=np.int64)
        if mask.any():
            out[mask] = self._old_lines[pos[mask]]
        return out

    def _remember(self, keys: np.ndarray, lines: np.ndarray, ins: np.ndarray) -> None:
        """Merge sorted new ``keys`` in; ``ins`` is where each goes in the old keys (searchsorted)."""
        self._old_lines = self.lines
        if not len(keys):
            return
        if len(self.keys) + len(keys) > self.cap:
            self.capped = True
            return
        slots = ins + np.arange(len(keys))
        self.keys, self.lines = merge_at(self.keys, keys, slots), merge_at(self.lines, lines, slots)


def merge_at(old: np.ndarray, new: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Two sorted runs merged in linear time: ``new[i]`` lands at ``slots[i]`` (its insertion point in
    ``old`` from searchsorted, plus i), the old values fill the rest in order."""
    out = np.empty(len(old) + len(new), dtype=old.dtype)
    rest = np.ones(len(out), dtype=np.bool_)
    rest[slots] = False
    out[slots] = new
    out[rest] = old
    return out


def row_fingerprints(columns: list[list[object]]) -> np.ndarray:
    """Python-hash of each row's key tuple (used for small kinds' natural keys)."""
    fixed = [[_hashable(v) for v in col] if col and isinstance(col[0], dict) else col for col in columns]
    return np.fromiter((hash(t) for t in zip(*fixed, strict=True)), dtype=np.int64, count=len(columns[0]))


def _hashable(value: object) -> object:
    return tuple(sorted(value.items())) if isinstance(value, dict) else value
