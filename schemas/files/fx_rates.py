"""``fx_rates``: FX rates per valuation date (Strata ``FxRatesCsvLoader``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from schemas.files import types as T
from schemas.files.base import Contract, value_required


class FxRate(Contract):
    kind: ClassVar[str] = "fx_rates"
    dataset: ClassVar[str] = "fx_rates"
    description: ClassVar[str] = "FX rates; both currencies ISO 4217, rate > 0; a repeated pair on one date rejects."
    unique: ClassVar[tuple[str, ...]] = ("valuation_date", "currency_pair")
    partition_by: ClassVar[str | None] = "valuation_date"

    valuation_date: Annotated[date, T.FlexDate()] = value_required(["Valuation Date"])
    currency_pair: Annotated[dict[str, Any], T.CurrencyPair()] = value_required(["Currency Pair"])
    value: Annotated[float, T.Number(minimum=">0")] = value_required(["Value"])

    @classmethod
    def outputs(cls, cols: Mapping[str, pa.Array]) -> dict[str, pa.Array]:
        pair = cols["currency_pair"]
        return {
            "valuation_date": cols["valuation_date"],
            "base_ccy": pc.struct_field(pair, "base"),
            "quote_ccy": pc.struct_field(pair, "quote"),
            "rate": cols["value"],
        }
