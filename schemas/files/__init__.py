"""File contracts, one module per kind; ``CONTRACTS`` maps each kind name to its contract."""

from __future__ import annotations

from schemas.files.base import SCHEMA_VERSION, Contract
from schemas.files.crif import CrifRecord
from schemas.files.curves import CurveGroup, CurveNode, CurveSetting
from schemas.files.fixings import Fixing
from schemas.files.fx_rates import FxRate
from schemas.files.positions import Position
from schemas.files.quotes import Quote
from schemas.files.sensitivities import Sensitivity
from schemas.files.trades import Trade

CONTRACTS: dict[str, type[Contract]] = {
    c.kind: c
    for c in (Trade, Position, Sensitivity, CrifRecord, Quote, FxRate, Fixing, CurveNode, CurveGroup, CurveSetting)
}

__all__ = ["CONTRACTS", "SCHEMA_VERSION", "Contract"]
