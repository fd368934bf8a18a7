"""``trades``: OTC and listed trades in Strata's trade layout (``TradeCsvLoader``).

Every row names its ``Strata Trade Type``; each type has its own required columns (row rules below).
``Variable`` rows continue the Swap or Swaption above them (step-ups): they are kept as rows of type
VARIABLE carrying ``parent_trade_id`` and ``parent_line`` of that trade, and a ``Variable`` row with no
swap above it rejects the file. Percent columns (``Fixed Rate``,
``Strike``) are output as decimals (0.5 -> 0.005).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, ClassVar

import numpy as np
import pyarrow as pa

from schemas.files import rules as R
from schemas.files import types as T
from schemas.files.base import Contract, Differ, FileCheck, RowRule, column, is_in, present, value_required

TRADE_TYPES: dict[str, tuple[str, ...]] = {
    "FRA": (),
    "SWAP": (),
    "SWAPTION": (),
    "TERM_DEPOSIT": (),
    "FX_SINGLE": ("FX",),
    "FX_SWAP": (),
    "FX_NDF": ("NDF",),
    "FX_VANILLA_OPTION": (),
    "FX_SINGLE_BARRIER_OPTION": (),
    "BULLET_PAYMENT": ("Bullet",),
    "CDS": (),
    "CDS_INDEX": (),
    "IBOR_CAP_FLOOR": ("CapFloor",),
    "OVERNIGHT_CAP_FLOOR": (),
    "SECURITY": (),
    "VARIABLE": (),
}
BAD_TRADE_TYPE = R.rule(
    "AIR-E140", "Unknown trade type", "'{column}' is not a trade type Airlock knows (Fra, Swap, FX...): '{value}'."
)
BAD_CAP_FLOOR = R.rule("AIR-E141", "Not cap or floor", "'{column}' must be Cap or Floor, got '{value}'.")
LEGS_SAME = R.rule(
    "AIR-E142", "Legs in the same direction", "Leg 1 and Leg 2 point the same way; one must Pay and one Receive."
)
ORPHAN_VARIABLE = R.rule(
    "AIR-F017",
    "Variable row without a swap",
    "A 'Variable' row must follow the Swap or Swaption it continues.",
    scope="file",
    kinds=("trades",),
)


def _needs(type_rule: str, title: str, what: str) -> R.Rule:
    return R.rule(type_rule, title, f"This trade type needs {what}.")


FRA_TERMS = _needs("AIR-E143", "Incomplete FRA", "Buy Sell, Notional, Fixed Rate and Period To Start or Start/End Date")
SWAP_TERMS = _needs(
    "AIR-E144",
    "Incomplete swap",
    "Convention, Buy Sell, Notional, Fixed Rate and Tenor or End Date, or Leg 1/Leg 2 Direction",
)
SWAPTION_TERMS = _needs("AIR-E145", "Incomplete swaption", "Long Short and Expiry Date")
DEPOSIT_TERMS = _needs("AIR-E146", "Incomplete term deposit", "Buy Sell, Notional, Fixed Rate and Tenor or End Date")
FX_TERMS = _needs(
    "AIR-E147",
    "Incomplete FX trade",
    "Buy Sell, Currency, Notional, FX Rate and Payment Date, or both legs' Direction, Currency and Notional",
)
FX_SWAP_TERMS = _needs("AIR-E148", "Incomplete FX swap", "the near leg terms plus Far FX Rate and Far Payment Date")
FX_OPTION_TERMS = _needs("AIR-E149", "Incomplete FX option", "Long Short, Expiry Date and the FX terms")
BULLET_TERMS = _needs("AIR-E150", "Incomplete bullet payment", "Direction, Currency, Notional and Payment Date")
CDS_TERMS = _needs("AIR-E151", "Incomplete CDS", "Buy Sell, Notional, Fixed Rate and Convention or Currency")
CDS_INDEX_TERMS = _needs("AIR-E152", "Incomplete CDS index", "Buy Sell, Notional, Fixed Rate and CDS Index Id")
CAP_FLOOR_TERMS = _needs(
    "AIR-E153", "Incomplete cap/floor", "CapFloor, Direction, Strike, Index, Notional, Start Date and End Date"
)
SECURITY_TERMS = _needs("AIR-E154", "Incomplete security trade", "Security Id and Quantity")

_FX_SINGLE = present("buy_sell", "currency", "notional", "fx_rate", "payment_date") | present(
    "leg1_direction", "leg1_currency", "leg1_notional", "leg2_direction", "leg2_currency", "leg2_notional"
)
_SWAP = present("buy_sell", "notional", "fixed_rate", "convention") & (
    present("tenor") | present("end_date")
) | present("leg1_direction", "leg2_direction")


class VariableRows(FileCheck):
    """A Variable row continues the Swap/Swaption above it (through other Variable rows).

    State across batches is the last trade's type, id and line; each Variable row gets the id and line
    of the trade it belongs to (``parent_trade_id``, ``parent_line``), and an orphan rejects the file.
    """

    def __init__(self) -> None:
        self.last: tuple[str | None, str | None, int | None] = (None, None, None)
        self._parents: tuple[list[str | None], list[int | None]] = ([], [])

    def check(self, cols: Mapping[str, pa.Array], lines: np.ndarray, ok: np.ndarray) -> list[tuple[R.Rule, np.ndarray]]:
        types = cols["trade_type"].to_pylist()
        ids = cols["trade_id"].to_pylist()
        bad = np.zeros(len(types), dtype=np.bool_)
        parent_ids: list[str | None] = []
        parent_lines: list[int | None] = []
        for i, t in enumerate(types):
            if t == "VARIABLE":
                last_type, last_id, last_line = self.last
                if last_type not in ("SWAP", "SWAPTION"):
                    bad[i] = True
                parent_ids.append(last_id)
                parent_lines.append(last_line)
            else:
                if t is not None:
                    self.last = (t, ids[i], int(lines[i]))
                parent_ids.append(None)
                parent_lines.append(None)
        self._parents = (parent_ids, parent_lines)
        return [(ORPHAN_VARIABLE, bad)]

    def columns(self, n: int) -> dict[str, pa.Array]:
        ids, lines = self._parents
        return {"parent_trade_id": pa.array(ids, pa.string()), "parent_line": pa.array(lines, pa.int64())}


Pct = T.Number(accounting=True, scale=100.0)


class Trade(Contract):
    kind: ClassVar[str] = "trades"
    dataset: ClassVar[str] = "trades"
    description: ClassVar[str] = "OTC and listed trades (Strata layout); Variable rows continue the swap above."
    row_rules: ClassVar[tuple[RowRule, ...]] = (
        RowRule(LEGS_SAME, Differ("leg1_direction", "leg2_direction")),
        RowRule(
            FRA_TERMS,
            present("buy_sell", "notional", "fixed_rate")
            & (present("period_to_start") | present("start_date", "end_date")),
            is_in("trade_type", "FRA"),
        ),
        RowRule(SWAP_TERMS, _SWAP, is_in("trade_type", "SWAP", "SWAPTION")),
        RowRule(SWAPTION_TERMS, present("long_short", "expiry_date"), is_in("trade_type", "SWAPTION")),
        RowRule(
            DEPOSIT_TERMS,
            present("buy_sell", "notional", "fixed_rate") & (present("tenor") | present("end_date")),
            is_in("trade_type", "TERM_DEPOSIT"),
        ),
        RowRule(FX_TERMS, _FX_SINGLE, is_in("trade_type", "FX_SINGLE", "FX_NDF")),
        RowRule(
            FX_SWAP_TERMS,
            present("buy_sell", "currency", "notional", "fx_rate", "payment_date", "far_fx_rate", "far_payment_date"),
            is_in("trade_type", "FX_SWAP"),
        ),
        RowRule(
            FX_OPTION_TERMS,
            present("long_short", "expiry_date") & _FX_SINGLE,
            is_in("trade_type", "FX_VANILLA_OPTION", "FX_SINGLE_BARRIER_OPTION"),
        ),
        RowRule(
            BULLET_TERMS,
            present("direction", "currency", "notional", "payment_date"),
            is_in("trade_type", "BULLET_PAYMENT"),
        ),
        RowRule(
            CDS_TERMS,
            present("buy_sell", "notional", "fixed_rate") & (present("convention") | present("currency")),
            is_in("trade_type", "CDS"),
        ),
        RowRule(
            CDS_INDEX_TERMS,
            present("buy_sell", "notional", "fixed_rate", "cds_index_id"),
            is_in("trade_type", "CDS_INDEX"),
        ),
        RowRule(
            CAP_FLOOR_TERMS,
            present("cap_floor", "direction", "strike", "index", "notional", "start_date", "end_date"),
            is_in("trade_type", "IBOR_CAP_FLOOR", "OVERNIGHT_CAP_FLOOR"),
        ),
        RowRule(SECURITY_TERMS, present("security_id", "quantity"), is_in("trade_type", "SECURITY")),
    )

    trade_type: Annotated[str, T.Choice(TRADE_TYPES, BAD_TRADE_TYPE)] = value_required(["Strata Trade Type"])
    id_scheme: Annotated[str | None, T.Text()] = column("Id Scheme")
    trade_id: Annotated[str | None, T.Text()] = column("Id")
    counterparty_scheme: Annotated[str | None, T.Text()] = column("Counterparty Scheme")
    counterparty: Annotated[str | None, T.Text()] = column("Counterparty")
    ccp: Annotated[str | None, T.Text()] = column("CCP")
    trade_date: Annotated[date | None, T.FlexDate()] = column("Trade Date")
    trade_time: Annotated[time | None, T.LocalTime()] = column("Trade Time")
    trade_zone: Annotated[str | None, T.Text()] = column("Trade Zone")
    settlement_date: Annotated[date | None, T.FlexDate()] = column("Settlement Date")
    convention: Annotated[str | None, T.Text()] = column("Convention")
    buy_sell: Annotated[str | None, T.buy_sell()] = column("Buy Sell")
    direction: Annotated[str | None, T.pay_receive()] = column("Direction")
    period_to_start: Annotated[str | None, T.Tenor()] = column("Period To Start")
    tenor: Annotated[str | None, T.Tenor()] = column("Tenor")
    index: Annotated[str | None, T.Text()] = column("Index")
    interpolated_index: Annotated[str | None, T.Text()] = column("Interpolated Index")
    fixed_rate: Annotated[float | None, Pct] = column("Fixed Rate")
    fx_rate: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("FX Rate")
    day_count: Annotated[str | None, T.DayCount()] = column("Day Count")
    currency: Annotated[str | None, T.Currency()] = column("Currency")
    notional: Annotated[float | None, T.Number(accounting=True)] = column("Notional")
    start_date: Annotated[date | None, T.FlexDate()] = column("Start Date")
    end_date: Annotated[date | None, T.FlexDate()] = column("End Date")
    date_convention: Annotated[str | None, T.Text()] = column("Date Convention")
    date_calendar: Annotated[str | None, T.Text()] = column("Date Calendar")
    stub_convention: Annotated[str | None, T.Text()] = column("Stub Convention")
    payment_date: Annotated[date | None, T.FlexDate()] = column("Payment Date")
    payment_date_convention: Annotated[str | None, T.Text()] = column("Payment Date Convention")
    payment_date_calendar: Annotated[str | None, T.Text()] = column("Payment Date Calendar")
    far_fx_rate: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Far FX Rate")
    far_payment_date: Annotated[date | None, T.FlexDate()] = column("Far Payment Date")
    long_short: Annotated[str | None, T.long_short()] = column("Long Short")
    expiry_date: Annotated[date | None, T.FlexDate()] = column("Expiry Date")
    expiry_time: Annotated[time | None, T.LocalTime()] = column("Expiry Time")
    expiry_zone: Annotated[str | None, T.Text()] = column("Expiry Zone")
    premium_direction: Annotated[str | None, T.pay_receive()] = column("Premium Direction")
    premium_currency: Annotated[str | None, T.Currency()] = column("Premium Currency")
    premium_amount: Annotated[float | None, T.Number(accounting=True)] = column("Premium Amount")
    premium_date: Annotated[date | None, T.FlexDate()] = column("Premium Date")
    premium_date_convention: Annotated[str | None, T.Text()] = column("Premium Date Convention")
    premium_date_calendar: Annotated[str | None, T.Text()] = column("Premium Date Calendar")
    payoff_settlement_type: Annotated[str | None, T.Text()] = column("Payoff Settlement Type")
    payoff_settlement_date: Annotated[date | None, T.FlexDate()] = column("Payoff Settlement Date")
    security_id_scheme: Annotated[str | None, T.Text()] = column("Security Id Scheme")
    security_id: Annotated[str | None, T.Text()] = column("Security Id")
    quantity: Annotated[float | None, T.Number(accounting=True)] = column("Quantity")
    price: Annotated[float | None, T.Number(accounting=True)] = column("Price")
    tick_size: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Tick Size")
    tick_value: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Tick Value")
    contract_size: Annotated[float | None, T.Number(accounting=True, minimum=">0")] = column("Contract Size")
    legal_entity_id_scheme: Annotated[str | None, T.Text()] = column("Legal Entity Id Scheme")
    legal_entity_id: Annotated[str | None, T.Text()] = column("Legal Entity Id")
    frequency: Annotated[str | None, T.Tenor(allow_term=True)] = column("Frequency")
    roll_convention: Annotated[str | None, T.Text()] = column("Roll Convention")
    payment_on_default: Annotated[str | None, T.Text()] = column("Payment On Default")
    protection_start: Annotated[str | None, T.Text()] = column("Protection Start")
    step_in_date_offset_days: Annotated[float | None, T.Number()] = column("Step In Date Offset Days")
    step_in_date_offset_calendar: Annotated[str | None, T.Text()] = column("Step In Date Offset Calendar")
    settlement_date_offset_days: Annotated[float | None, T.Number()] = column("Settlement Date Offset Days")
    settlement_date_offset_calendar: Annotated[str | None, T.Text()] = column("Settlement Date Offset Calendar")
    cds_index_id: Annotated[str | None, T.Text()] = column("CDS Index Id")
    cap_floor: Annotated[str | None, T.choice("CAP", "FLOOR", rule=BAD_CAP_FLOOR)] = column("CapFloor")
    strike: Annotated[float | None, Pct] = column("Strike", output="strike_rate")
    payment_frequency: Annotated[str | None, T.Tenor(allow_term=True)] = column("Payment Frequency")
    red_code: Annotated[str | None, T.Text()] = column("RED Code")
    seniority: Annotated[str | None, T.Text()] = column("Seniority")
    index_series: Annotated[float | None, T.Number()] = column("Index Series")
    index_version: Annotated[float | None, T.Number()] = column("Index Version")
    leg1_direction: Annotated[str | None, T.pay_receive()] = column("Leg 1 Direction")
    leg1_start_date: Annotated[date | None, T.FlexDate()] = column("Leg 1 Start Date")
    leg1_end_date: Annotated[date | None, T.FlexDate()] = column("Leg 1 End Date")
    leg1_stub_convention: Annotated[str | None, T.Text()] = column("Leg 1 Stub Convention")
    leg1_roll_convention: Annotated[str | None, T.Text()] = column("Leg 1 Roll Convention")
    leg1_frequency: Annotated[str | None, T.Tenor(allow_term=True)] = column("Leg 1 Frequency")
    leg1_currency: Annotated[str | None, T.Currency()] = column("Leg 1 Currency")
    leg1_notional: Annotated[float | None, T.Number(accounting=True)] = column("Leg 1 Notional")
    leg1_fixed_rate: Annotated[float | None, Pct] = column("Leg 1 Fixed Rate")
    leg1_known_amount: Annotated[float | None, T.Number(accounting=True)] = column("Leg 1 Known Amount")
    leg1_day_count: Annotated[str | None, T.DayCount()] = column("Leg 1 Day Count")
    leg1_date_convention: Annotated[str | None, T.Text()] = column("Leg 1 Date Convention")
    leg1_date_calendar: Annotated[str | None, T.Text()] = column("Leg 1 Date Calendar")
    leg1_index: Annotated[str | None, T.Text()] = column("Leg 1 Index")
    leg2_direction: Annotated[str | None, T.pay_receive()] = column("Leg 2 Direction")
    leg2_start_date: Annotated[date | None, T.FlexDate()] = column("Leg 2 Start Date")
    leg2_end_date: Annotated[date | None, T.FlexDate()] = column("Leg 2 End Date")
    leg2_frequency: Annotated[str | None, T.Tenor(allow_term=True)] = column("Leg 2 Frequency")
    leg2_currency: Annotated[str | None, T.Currency()] = column("Leg 2 Currency")
    leg2_notional: Annotated[float | None, T.Number(accounting=True)] = column("Leg 2 Notional")
    leg2_fixed_rate: Annotated[float | None, Pct] = column("Leg 2 Fixed Rate")
    leg2_day_count: Annotated[str | None, T.DayCount()] = column("Leg 2 Day Count")
    leg2_index: Annotated[str | None, T.Text()] = column("Leg 2 Index")
    leg2_accrual_method: Annotated[str | None, T.Text()] = column("Leg 2 Accrual Method")

    @classmethod
    def file_checks(cls) -> list[FileCheck]:
        return [VariableRows()]
