"""``sensitivities``: curve sensitivities in Strata's standard, list and grid layouts, pivoted to long form.

standard: ``Reference, Sensitivity Type, Sensitivity Tenor, Value`` -- one row per value.
list: ``Reference, Sensitivity Tenor, <type>, <type>...`` -- one value column per sensitivity type.
grid: ``Sensitivity Tenor, <reference>, <reference>...`` -- one value column per curve; the type comes
from a ``Sensitivity Type`` column when there is one, else ``ZeroRateDelta``.
An empty value cell skips that (row, column): nothing to report.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.files import rules as R
from schemas.files import types as T
from schemas.files.base import Contract, Layout, RowRule, column, present, squash_header, value_required

NO_TENOR = R.rule("AIR-E120", "No tenor or date", "A sensitivity needs a Sensitivity Tenor or a Sensitivity Date.")
_KEYS = {
    "id": "Id",
    "reference": "Reference",
    "sensitivitytype": "Sensitivity Type",
    "sensitivitytenor": "Sensitivity Tenor",
    "sensitivitydate": "Sensitivity Date",
    "currency": "Currency",
}
DEFAULT_TYPE = "ZeroRateDelta"


class WideLayout(Layout):
    """Pivot list or grid layouts to the standard columns, one output row per non-empty value cell."""

    def __init__(self, names: list[str]) -> None:
        self.fixed: dict[str, int] = {}
        self.values: list[tuple[int, str]] = []
        for i, raw in enumerate(names):
            key = squash_header(raw)
            if key in _KEYS and _KEYS[key] not in self.fixed:
                self.fixed[_KEYS[key]] = i
            else:
                self.values.append((i, raw.strip()))
        self.grid = "Reference" not in self.fixed
        self.names = [*self.fixed, *(["Reference"] if self.grid else []), "Value"]
        if "Sensitivity Type" not in self.fixed:
            self.names.insert(len(self.fixed), "Sensitivity Type")

    def apply(self, batch: pa.RecordBatch, lines: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
        parts: list[dict[str, pa.Array]] = []
        line_parts: list[np.ndarray] = []
        for idx, label in self.values:
            values = batch.column(idx)
            keep = pc.is_valid(values)
            take = np.flatnonzero(np.asarray(keep.to_numpy(zero_copy_only=False), dtype=np.bool_))
            if not len(take):
                continue
            sel = pa.array(take)
            cols = {name: batch.column(i).take(sel) for name, i in self.fixed.items()}
            n = len(take)
            label_col = pa.repeat(pa.scalar(label, pa.string()), n)
            if self.grid:
                cols["Reference"] = label_col
                if "Sensitivity Type" not in cols:
                    cols["Sensitivity Type"] = pa.repeat(pa.scalar(DEFAULT_TYPE, pa.string()), n)
            else:
                cols["Sensitivity Type"] = label_col
            cols["Value"] = values.take(sel)
            parts.append(cols)
            line_parts.append(lines[take])
        if not parts:
            empty = {name: pa.array([], pa.string()) for name in self.names}
            return pa.RecordBatch.from_pydict(empty), np.zeros(0, dtype=np.int64)
        order = np.argsort(np.concatenate(line_parts), kind="stable")
        merged = {name: pa.concat_arrays([p[name] for p in parts]).take(pa.array(order)) for name in self.names}
        return pa.RecordBatch.from_pydict(merged), np.concatenate(line_parts)[order]


class Sensitivity(Contract):
    kind: ClassVar[str] = "sensitivities"
    dataset: ClassVar[str] = "sensitivities"
    description: ClassVar[str] = "Curve sensitivities (standard, list or grid layout), output in long form."
    signature: ClassVar[tuple[str, ...]] = ()
    row_rules: ClassVar[tuple[RowRule, ...]] = (RowRule(NO_TENOR, present("tenor") | present("sensitivity_date")),)

    sensitivity_id: Annotated[str | None, T.Text()] = column("Id")
    reference: Annotated[str, T.Text()] = value_required(["Reference"])
    sensitivity_type: Annotated[str, T.Text()] = value_required(["Sensitivity Type"])
    tenor: Annotated[str | None, T.Tenor()] = column("Sensitivity Tenor")
    sensitivity_date: Annotated[date | None, T.FlexDate()] = column("Sensitivity Date")
    currency: Annotated[str | None, T.Currency()] = column("Currency")
    value: Annotated[float, T.Number(accounting=True)] = value_required(["Value"])

    @classmethod
    def layout(cls, names: list[str]) -> Layout | None:
        keys = {squash_header(n) for n in names}
        if "value" in keys or not keys & {"sensitivitytenor", "sensitivitydate"}:
            return None
        return WideLayout(names)
