"""The reference path: validate rows one by one through the pydantic contract.

Slow (some forty times slower than the engine on a CRIF file) and exact by definition: the
differential test holds the vectorized engine to the same findings, and the benchmark's
``csv + pydantic`` baseline validates with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from airlock.ingest.engine import compiled
from schemas.files import rules as R
from schemas.files.base import Contract
from schemas.files.types import clean


def row_input(fields: dict[str, int], cells: Sequence[str | None]) -> dict[str, str]:
    """What pydantic sees for one row: bound fields with a non-blank cell (blank means absent)."""
    out: dict[str, str] = {}
    for name, idx in fields.items():
        raw = cells[idx] if idx < len(cells) else None
        if clean(raw) is not None:
            out[name] = str(raw)
    return out


def validate_row(contract: type[Contract], data: dict[str, Any], context: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule id, field) for every problem pydantic reports on this row; empty when the row is valid."""
    try:
        contract.model_validate(data, context=context)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            rule = R.MISSING_VALUE.id if err["type"] == "missing" else err["type"]
            field = str(err["loc"][0]) if err["loc"] else ""
            out.append((rule, field))
        return out
    return []


def reference_findings(
    contract: type[Contract],
    header: list[str],
    rows: Iterable[tuple[int, Sequence[str | None]]],
    context: dict[str, Any] | None = None,
) -> list[tuple[int, str]]:
    """(line, rule id) for every problem in the rows, as the pydantic models see them."""
    binding = compiled(contract).bind(header)
    ctx = context or {}
    out: list[tuple[int, str]] = []
    for line, cells in rows:
        for rule, _field in validate_row(contract, row_input(binding.fields, cells), ctx):
            out.append((line, rule))
    return out
