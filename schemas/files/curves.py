"""Curve files (Strata ``RatesCalibrationCsvLoader`` family): curve values, curve groups, curve settings."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from schemas.files import rules as R
from schemas.files import types as T
from schemas.files.base import Contract, column, value_required

BAD_CURVE_TYPE = R.rule("AIR-E110", "Unknown curve type", "'{column}' must be Discount or Forward, got '{value}'.")
BAD_VALUE_TYPE = R.rule(
    "AIR-E111", "Unknown value type", "'{column}' must be Zero, DF, Forward or PriceIndex, got '{value}'."
)
BAD_INTERPOLATOR = R.rule(
    "AIR-E112", "Unknown interpolator", "'{column}' is not a curve interpolator Strata knows: '{value}'."
)
BAD_EXTRAPOLATOR = R.rule(
    "AIR-E113", "Unknown extrapolator", "'{column}' is not a curve extrapolator Strata knows: '{value}'."
)
INTERPOLATORS = (
    "Linear", "LogLinear", "SquareLinear", "DoubleQuadratic", "TimeSquare", "NaturalCubicSpline",
    "NaturalSplineNonnegativityCubic", "LogNaturalSplineDiscountFactor", "LogNaturalSplineMonotoneCubic",
    "LogLinearDiscountFactor", "ProductLinear", "ProductNaturalSplineMonotoneCubic", "StepUpper", "PCHIP",
    "NaturalSpline", "ClampedCubicSpline",
)  # fmt: skip
EXTRAPOLATORS = (
    "Flat", "Linear", "Exception", "Exponential", "Interpolator", "LogLinear", "Product", "QuadraticLeft",
    "DiscountFactorQuadraticLeftZeroRate", "DiscountFactorLinearRightZeroRate",
)  # fmt: skip


class CurveNode(Contract):
    kind: ClassVar[str] = "curves"
    dataset: ClassVar[str] = "curves"
    description: ClassVar[str] = "Curve node values; a repeated node date in one curve rejects the file."
    unique: ClassVar[tuple[str, ...]] = ("valuation_date", "curve_name", "date")
    partition_by: ClassVar[str | None] = "valuation_date"

    valuation_date: Annotated[date, T.FlexDate()] = value_required(["Valuation Date"])
    curve_name: Annotated[str, T.Text()] = value_required(["Curve Name"])
    date: Annotated[date, T.FlexDate()] = value_required(["Date"])
    value: Annotated[float, T.Number()] = value_required(["Value"])
    label: Annotated[str | None, T.Tenor(allow_zero=True)] = column("Label")


class CurveGroup(Contract):
    kind: ClassVar[str] = "curve_groups"
    dataset: ClassVar[str] = "curve_groups"
    description: ClassVar[str] = "Which curve serves as discount or forward curve for a reference."
    unique: ClassVar[tuple[str, ...]] = ("group_name", "curve_type", "reference")

    group_name: Annotated[str, T.Text()] = value_required(["Group Name"])
    curve_type: Annotated[str, T.choice("DISCOUNT", "FORWARD", rule=BAD_CURVE_TYPE)] = value_required(["Curve Type"])
    reference: Annotated[str, T.Text()] = value_required(["Reference"])
    curve_name: Annotated[str, T.Text()] = value_required(["Curve Name"])


class CurveSetting(Contract):
    kind: ClassVar[str] = "curve_settings"
    dataset: ClassVar[str] = "curve_settings"
    description: ClassVar[str] = "How each curve is interpolated: value type, day count, inter/extrapolators."
    unique: ClassVar[tuple[str, ...]] = ("curve_name",)

    curve_name: Annotated[str, T.Text()] = value_required(["Curve Name"])
    value_type: Annotated[
        str, T.choice("ZERO", "DF", "FORWARD", "PRICE_INDEX", rule=BAD_VALUE_TYPE, DF=("DiscountFactor",))
    ] = value_required(["Value Type"])
    day_count: Annotated[str, T.DayCount()] = value_required(["Day Count"])
    interpolator: Annotated[str, T.choice(*INTERPOLATORS, rule=BAD_INTERPOLATOR)] = value_required(["Interpolator"])
    left_extrapolator: Annotated[str, T.choice(*EXTRAPOLATORS, rule=BAD_EXTRAPOLATOR)] = value_required(
        ["Left Extrapolator"]
    )
    right_extrapolator: Annotated[str, T.choice(*EXTRAPOLATORS, rule=BAD_EXTRAPOLATOR)] = value_required(
        ["Right Extrapolator"]
    )
