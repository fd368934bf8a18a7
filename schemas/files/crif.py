"""``crif``: ISDA SIMM sensitivities in the Common Risk Interchange Format (as ORE reads it)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from schemas.files import rules as R
from schemas.files import types as T
from schemas.files.base import Contract, RowRule, StartsWith, column, is_in, present, value_required

RISK_TYPES = (
    "Risk_IRCurve", "Risk_Inflation", "Risk_XCcyBasis", "Risk_IRVol", "Risk_InflationVol", "Risk_FX",
    "Risk_FXVol", "Risk_CreditQ", "Risk_CreditNonQ", "Risk_BaseCorr", "Risk_CreditVol",
    "Risk_CreditVolNonQ", "Risk_Equity", "Risk_EquityVol", "Risk_Commodity", "Risk_CommodityVol",
    "Param_ProductClassMultiplier", "Param_AddOnNotionalFactor", "Param_AddOnFixedAmount", "Notional", "PV",
)  # fmt: skip
BAD_RISK_TYPE = R.rule(
    "AIR-E101", "Unknown CRIF risk type", "'{column}' must be a CRIF risk type such as Risk_IRCurve, got '{value}'."
)
BAD_PRODUCT_CLASS = R.rule(
    "AIR-E102",
    "Unknown CRIF product class",
    "'{column}' must be RatesFX, Credit, Equity, Commodity (or Rates, FX, Other for Schedule), got '{value}'.",
)
BAD_IM_MODEL = R.rule(
    "AIR-E103", "Unknown IM model", "'{column}' must be SIMM, SIMM-P, SIMM-R or Schedule, got '{value}'."
)
BAD_BUCKET = R.rule("AIR-E104", "Bad CRIF bucket", "'{column}' must be a bucket number or Residual, got '{value}'.")
NO_AMOUNT = R.rule("AIR-E105", "No amount", "A CRIF row needs Amount (with AmountCurrency) or AmountUSD.")
NO_AMOUNT_CCY = R.rule(
    "AIR-E106", "Amount without currency", "Amount is given without AmountCurrency (only Param_ rows may omit it)."
)
NO_QUALIFIER = R.rule("AIR-E107", "No qualifier", "Risk_ rows need a Qualifier (the curve, issuer or currency).")
NO_END_DATE = R.rule("AIR-E108", "No end date", "Schedule IM rows need an EndDate.")


class CrifRecord(Contract):
    kind: ClassVar[str] = "crif"
    dataset: ClassVar[str] = "crif"
    description: ClassVar[str] = "ISDA CRIF sensitivities for SIMM and Schedule IM; exact duplicate rows warn."
    exact_duplicates_warn: ClassVar[bool] = True
    partition_by: ClassVar[str | None] = "valuation_date"
    required_one_of: ClassVar[tuple[tuple[str, ...], ...]] = (("amount", "amount_usd"),)
    row_rules: ClassVar[tuple[RowRule, ...]] = (
        RowRule(NO_AMOUNT, present("amount") | present("amount_usd")),
        RowRule(NO_AMOUNT_CCY, present("amount_currency"), present("amount") & ~StartsWith("risk_type", "Param_")),
        RowRule(NO_QUALIFIER, present("qualifier"), StartsWith("risk_type", "Risk_")),
        RowRule(NO_END_DATE, present("end_date"), is_in("im_model", "Schedule")),
    )

    valuation_date: Annotated[date | None, T.FlexDate()] = column("ValuationDate")
    portfolio_id: Annotated[str | None, T.Text()] = column("PortfolioID", "Portfolio")
    trade_id: Annotated[str | None, T.Text()] = column("TradeID")
    sensitivity_id: Annotated[str | None, T.Text()] = column("SensitivityID")
    product_class: Annotated[
        str | None, T.choice("RatesFX", "Credit", "Equity", "Commodity", "Rates", "FX", "Other", rule=BAD_PRODUCT_CLASS)
    ] = column("ProductClass")
    risk_type: Annotated[str, T.choice(*RISK_TYPES, rule=BAD_RISK_TYPE)] = value_required(["RiskType"])
    qualifier: Annotated[str | None, T.Text()] = column("Qualifier")
    bucket: Annotated[str | None, T.Pattern(r"\d{1,2}|Residual", BAD_BUCKET)] = column("Bucket")
    label1: Annotated[str | None, T.Tenor()] = column("Label1")
    label2: Annotated[str | None, T.Text()] = column("Label2")
    amount: Annotated[float | None, T.Number()] = column("Amount")
    amount_currency: Annotated[str | None, T.Currency()] = column("AmountCurrency")
    amount_usd: Annotated[float | None, T.Number()] = column("AmountUSD")
    im_model: Annotated[str | None, T.choice("SIMM", "SIMM-P", "SIMM-R", "Schedule", rule=BAD_IM_MODEL)] = column(
        "IMModel"
    )
    collect_regulations: Annotated[str | None, T.TextList()] = column("CollectRegulations")
    post_regulations: Annotated[str | None, T.TextList()] = column("PostRegulations")
    end_date: Annotated[date | None, T.FlexDate()] = column("EndDate")
