"""``positions``: listed positions in Strata's layout (securities, futures, options)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from schemas.files import rules as R
from schemas.files import types as T
from schemas.files.base import Contract, RowRule, column, is_in, present

BAD_POSITION_TYPE = R.rule(
    "AIR-E130", "Unknown position type", "'{column}' must be SEC/Security, FUT/Future or OPT/Option, got '{value}'."
)
BAD_MIC = R.rule("AIR-E131", "Bad exchange", "'{column}' must be a four-character MIC such as XEUR, got '{value}'.")
NO_QUANTITY = R.rule("AIR-E132", "No quantity", "A position needs Quantity, or Long Quantity and/or Short Quantity.")
NO_SECURITY = R.rule("AIR-E133", "No security", "A security position needs a Security Id.")
NO_CONTRACT = R.rule(
    "AIR-E134",
    "Incomplete contract",
    "A future or option position needs Exchange, Contract Code and Expiry (or a Security Id).",
)
NO_OPTION_TERMS = R.rule(
    "AIR-E135", "Incomplete option", "An option position needs Put Call and Exercise Price (or a Security Id)."
)
BAD_SMALL_INT = R.rule("AIR-E136", "Bad expiry week or day", "'{column}' must be a small whole number, got '{value}'.")


class Position(Contract):
    kind: ClassVar[str] = "positions"
    dataset: ClassVar[str] = "positions"
    description: ClassVar[str] = "Listed positions; the type is inferred from Expiry when absent."
    signature: ClassVar[tuple[str, ...]] = ()
    required_one_of: ClassVar[tuple[tuple[str, ...], ...]] = (("quantity", "long_quantity", "short_quantity"),)
    row_rules: ClassVar[tuple[RowRule, ...]] = (
        RowRule(NO_QUANTITY, present("quantity") | present("long_quantity") | present("short_quantity")),
        RowRule(
            NO_SECURITY,
            present("security_id"),
            is_in("position_type", "SECURITY") | (~present("position_type") & ~present("expiry")),
        ),
        RowRule(
            NO_CONTRACT,
            present("exchange", "contract_code", "expiry") | present("security_id"),
            is_in("position_type", "FUTURE", "OPTION"),
        ),
        RowRule(
            NO_OPTION_TERMS,
            present("put_call", "exercise_price") | present("security_id"),
            is_in("position_type", "OPTION"),
        ),
    )

    position_type: Annotated[
        str | None, T.Choice({"SECURITY": ("SEC",), "FUTURE": ("FUT",), "OPTION": ("OPT",)}, BAD_POSITION_TYPE)
    ] = column("Strata Position Type")
    id_scheme: Annotated[str | None, T.Text()] = column("Id Scheme")
    position_id: Annotated[str | None, T.Text()] = column("Id")
    security_id_scheme: Annotated[str | None, T.Text()] = column("Security Id Scheme")
    security_id: Annotated[str | None, T.Text()] = column("Security Id")
    quantity: Annotated[float | None, T.Number(accounting=True)] = column("Quantity")
    long_quantity: Annotated[float | None, T.Number(accounting=True, minimum=">=0")] = column("Long Quantity")
    short_quantity: Annotated[float | None, T.Number(accounting=True, minimum=">=0")] = column("Short Quantity")
    exchange: Annotated[str | None, T.Pattern(r"[A-Z0-9]{4}", BAD_MIC, upper=True)] = column("Exchange")
    contract_code: Annotated[str | None, T.Text()] = column("Contract Code")
    expiry: Annotated[dict[str, Any] | None, T.YearMonthOrDate()] = column("Expiry")
    expiry_week: Annotated[str | None, T.Pattern(r"[1-5]", BAD_SMALL_INT)] = column("Expiry Week")
    expiry_day: Annotated[str | None, T.Pattern(r"[1-9]|[12]\d|3[01]", BAD_SMALL_INT)] = column("Expiry Day")
    settlement_type: Annotated[str | None, T.choice(CASH=("C",), PHYSICAL=("P",))] = column("Settlement Type")
    exercise_style: Annotated[str | None, T.choice(AMERICAN=("A",), EUROPEAN=("E",), BERMUDAN=("B",))] = column(
        "Exercise Style"
    )
    put_call: Annotated[str | None, T.put_call()] = column("Put Call")
    exercise_price: Annotated[float | None, T.Number(accounting=True)] = column("Exercise Price")
    underlying_expiry: Annotated[dict[str, Any] | None, T.YearMonthOrDate()] = column("Underlying Expiry")
    currency: Annotated[str | None, T.Currency()] = column("Currency")
    tick_size: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Tick Size")
    tick_value: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Tick Value")
    contract_size: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Contract Size")

    @classmethod
    def outputs(cls, cols: Mapping[str, pa.Array]) -> dict[str, pa.Array]:
        out = super().outputs(cols)
        inferred = pc.if_else(
            pc.is_valid(cols["expiry"]),
            pc.if_else(pc.is_valid(cols["put_call"]), "OPTION", "FUTURE"),
            "SECURITY",
        )
        out["position_type"] = pc.coalesce(cols["position_type"], inferred)
        for name in ("expiry", "underlying_expiry"):
            out[name] = pc.struct_field(cols[name], "date")
        return out
