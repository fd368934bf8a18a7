"""``quotes``: market quotes per valuation date (Strata ``QuotesCsvLoader``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from schemas.files import types as T
from schemas.files.base import Contract, column, value_required


class Quote(Contract):
    kind: ClassVar[str] = "quotes"
    dataset: ClassVar[str] = "quotes"
    description: ClassVar[str] = "Market quotes; a repeated (date, symbology, ticker, field) rejects the file."
    unique: ClassVar[tuple[str, ...]] = ("valuation_date", "symbology", "ticker", "field_name")
    partition_by: ClassVar[str | None] = "valuation_date"

    valuation_date: Annotated[date, T.FlexDate()] = value_required(["Valuation Date"])
    symbology: Annotated[str, T.Text()] = value_required(["Symbology"])
    ticker: Annotated[str, T.Text()] = value_required(["Ticker"])
    field_name: Annotated[str, T.Text()] = column("Field Name", default="MarketValue")
    value: Annotated[float, T.Number()] = value_required(["Value"])
