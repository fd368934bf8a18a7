"""docs/rules.md is generated from the contracts and must be up to date."""

from __future__ import annotations

from pathlib import Path

from airlock.ingest.rules_doc import render
from schemas.files.rules import RULES

DOC = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


def test_rules_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m airlock.ingest.rules_doc > docs/rules.md"


def test_every_rule_is_documented_once() -> None:
    text = DOC.read_text(encoding="utf-8")
    for rule_id in RULES:
        assert f"| `{rule_id}` |" in text
