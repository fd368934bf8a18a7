"""Compile a contract into vectorized checks over Arrow batches.

Per batch: each bound column goes through its cell type's fast path, required values are checked, and
the contract's row rules run over the rows whose cells are all valid, first failing rule only -- exactly
what pydantic does for one row (field errors, then the ``after`` validator). ``reference.py`` holds the
pydantic side; the differential test holds the two to the same findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airlock.ingest.findings import Findings
from schemas.files import rules as R
from schemas.files.base import Columns, ColumnSpec, Contract, squash_header
from schemas.files.types import CellType, Ctx


@dataclass(frozen=True)
class Binding:
    """Which source column feeds which field, and what the header got wrong."""

    fields: dict[str, int]
    unknown: list[str]
    missing: list[str]
    duplicates: list[str]
    names: list[str]


@dataclass
class BatchResult:
    table: pa.Table  # normalized, good rows only, without lineage
    bad: np.ndarray  # bool per input row
    rules: dict[int, list[str]] = field(default_factory=dict)  # row index -> rule ids (bad rows only)
    cols: Mapping[str, pa.Array] = field(default_factory=dict)  # parsed columns, all rows, decoded on access


def _bool_np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not arr.true_count:  # the common case, a popcount: no conversion
        return np.zeros(len(arr), dtype=np.bool_)
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


class CompiledContract:
    """A contract ready to check batches: header aliases resolved, cell types and defaults in hand."""

    def __init__(self, contract: type[Contract]) -> None:
        self.contract = contract
        self.specs: dict[str, tuple[ColumnSpec, CellType, bool]] = contract.specs()
        self.alias: dict[str, str] = {}
        for name, (spec, _ctype, _req) in self.specs.items():
            for header in (*spec.headers, name):
                self.alias.setdefault(squash_header(header), name)
        self.defaults: dict[str, Any] = {
            name: contract.model_fields[name].default for name in self.specs if not self.specs[name][2]
        }

    def display(self, name: str) -> str:
        return self.specs[name][0].headers[0]

    def bind(self, names: list[str]) -> Binding:
        fields: dict[str, int] = {}
        unknown: list[str] = []
        duplicates: list[str] = []
        seen: set[str] = set()
        for i, raw in enumerate(names):
            key = squash_header(raw)
            if key in seen and key:
                duplicates.append(raw)
                continue
            seen.add(key)
            target = self.alias.get(key)
            if target is None:
                unknown.append(raw)
            else:
                fields[target] = i
        missing = [self.display(n) for n, (spec, _t, _r) in self.specs.items() if spec.required and n not in fields]
        for group in self.contract.required_one_of:
            if not any(g in fields for g in group):
                missing.append(" or ".join(self.display(g) for g in group))
        return Binding(fields, unknown, missing, duplicates, names)

    def score(self, names: list[str]) -> tuple[int, int]:
        """Kind detection: (all required present, number of recognised columns)."""
        layout = self.contract.layout(names)
        b = self.bind(layout.names if layout else names)
        sig_ok = all(s in b.fields for s in self.contract.signature)
        return (1 if not b.missing and sig_ok else 0, len(b.fields))

    # -- the fast path ------------------------------------------------------------------------------
    def validate(
        self,
        batch: pa.RecordBatch,
        lines: np.ndarray,
        binding: Binding,
        ctx: Ctx,
        findings: Findings,
    ) -> BatchResult:
        n = batch.num_rows
        bad_rows = np.zeros(n, dtype=np.bool_)
        marks: list[tuple[str, np.ndarray]] = []
        stored: dict[str, pa.Array] = {}
        for name, (_spec, ctype, required) in self.specs.items():
            idx = binding.fields.get(name)
            header = binding.names[idx] if idx is not None else self.display(name)
            if idx is None:
                parsed: pa.Array = pa.nulls(n, type=ctype.arrow_type)
                bad = np.zeros(n, dtype=np.bool_)
                raw = None
            else:
                raw = batch.column(idx)
                parsed, bad_arr = ctype.parse_array(raw, ctx)
                bad = _bool_np(bad_arr)
                if bad.any():
                    self._report(findings, ctype.rule, bad, lines=lines, raw=raw, header=header)
                    marks.append((ctype.rule.id, bad))
            if required:
                missing = _bool_np(pc.is_null(parsed)) & ~bad if parsed.null_count else None
                if missing is not None and missing.any():
                    self._report(findings, R.MISSING_VALUE, missing, lines=lines, raw=raw, header=header)
                    marks.append((R.MISSING_VALUE.id, missing))
                    bad = bad | missing
            elif self.defaults.get(name) is not None:
                if isinstance(parsed, pa.DictionaryArray):
                    parsed = parsed.dictionary_decode()
                parsed = pc.fill_null(parsed, pa.scalar(self.defaults[name], type=ctype.arrow_type))
            bad_rows |= bad
            stored[name] = parsed
        cols = Columns(stored)
        if self.contract.row_rules:
            pending = ~bad_rows
            for rr in self.contract.row_rules:
                if not pending.any():
                    break
                fail = rr.failing_vec(cols, n) & pending
                if fail.any():
                    label = ", ".join(self.display(f) for f in rr.fields() if f in self.specs)
                    where = np.flatnonzero(fail)
                    findings.add_many(rr.rule, len(where), ((int(lines[i]), "") for i in where), column=label)
                    marks.append((rr.rule.id, fail))
                    pending &= ~fail
                    bad_rows |= fail
        rules: dict[int, list[str]] = {}
        for rule_id, mask in marks:
            for i in np.flatnonzero(mask).tolist():
                rules.setdefault(i, []).append(rule_id)
        table = pa.table(self.contract.outputs(cols))
        return BatchResult(table, bad_rows, rules, cols)

    @staticmethod
    def _report(
        findings: Findings, rule: R.Rule, mask: np.ndarray, *, lines: np.ndarray, raw: pa.Array | None, header: str
    ) -> None:
        where = np.flatnonzero(mask)

        def examples() -> Iterator[tuple[int, object]]:
            for i in where.tolist():
                yield int(lines[i]), (raw[i].as_py() if raw is not None else "")

        findings.add_many(rule, len(where), examples(), column=header)


_CACHE: dict[type[Contract], CompiledContract] = {}


def compiled(contract: type[Contract]) -> CompiledContract:
    hit = _CACHE.get(contract)
    if hit is None:
        hit = _CACHE[contract] = CompiledContract(contract)
    return hit
