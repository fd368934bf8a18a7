"""``fixings``: historical index fixings (Strata ``FixingSeriesCsvLoader``).

Price indices (GB-RPI, US-CPI-U, EU-HICP...) are fixed monthly: their dates must be a year-month or a
month-end date; anything else rejects the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.files import rules as R
from schemas.files import types as T
from schemas.files.base import Cond, Contract, Row, RowRule, _np, value_required

PRICE_INDEX = r"(?i)(^|-)(CPI|RPI|RPIX|HICP|CPIX|HICPX)(-|$)"
NOT_MONTHLY = R.rule(
    "AIR-F016",
    "Price index fixing not monthly",
    "Price index fixings must be dated by year-month (2017-01) or month end; this date is neither.",
    scope="file",
    kinds=("fixings",),
)


class Matches(Cond):
    def __init__(self, name: str, regex: str) -> None:
        self.name, self.regex = name, regex
        self._re = re.compile(regex)

    def py(self, row: Row) -> bool:
        value = row.get(self.name)
        return isinstance(value, str) and bool(self._re.search(value))

    def vec(self, cols: Mapping[str, pa.Array], n: int) -> np.ndarray:
        return _np(pc.match_substring_regex(cols[self.name], self.regex))


class MonthOrMonthEnd(Cond):
    def __init__(self, name: str) -> None:
        self.name = name

    def py(self, row: Row) -> bool:
        value = row.get(self.name)
        if not isinstance(value, dict):
            return True
        return bool(value["is_month"]) or (value["date"] + timedelta(days=1)).day == 1

    def vec(self, cols: Mapping[str, pa.Array], n: int) -> np.ndarray:
        arr = cols[self.name]
        d = pc.struct_field(arr, "date")
        is_month = _np(pc.struct_field(arr, "is_month"))
        next_day = pc.add(pc.cast(d, pa.timestamp("s")), pa.scalar(86400, pa.duration("s")))
        month_end = _np(pc.equal(pc.day(next_day), 1))
        return is_month | month_end | ~_np(pc.is_valid(arr))


class Fixing(Contract):
    kind: ClassVar[str] = "fixings"
    dataset: ClassVar[str] = "fixings"
    description: ClassVar[str] = "Index fixings; price-index dates must be year-months or month ends."
    row_rules: ClassVar[tuple[RowRule, ...]] = (
        RowRule(NOT_MONTHLY, MonthOrMonthEnd("date"), Matches("reference", PRICE_INDEX)),
    )

    reference: Annotated[str, T.Text()] = value_required(["Reference"])
    date: Annotated[dict[str, Any], T.YearMonthOrDate()] = value_required(["Date"])
    value: Annotated[float, T.Number()] = value_required(["Value"])

    @classmethod
    def outputs(cls, cols: Mapping[str, pa.Array]) -> dict[str, pa.Array]:
        return {
            "reference": cols["reference"],
            "date": pc.struct_field(cols["date"], "date"),
            "is_year_month": pc.struct_field(cols["date"], "is_month"),
            "value": cols["value"],
        }
