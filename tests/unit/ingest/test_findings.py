from __future__ import annotations

from airlock.ingest.findings import Findings, safe_value
from schemas.files import rules as R


def test_values_are_truncated_and_control_characters_escaped() -> None:
    assert safe_value("a\x00b\x1b[31m\n") == "a\\x00b\\x1b[31m\\n"
    long = safe_value("x" * 500)
    assert len(long) == 83 and long.endswith("...")
    assert safe_value(b"\xff\xfe") == "\ufffd\ufffd"


def test_counts_exact_examples_capped() -> None:
    f = Findings(examples_per_rule=3)
    f.add_many(R.BINARY, 1_000_000, ((i, "v") for i in range(10**9)), offset=1)
    f.add(R.MISSING_VALUE, line=7, column="Ticker")
    assert f.counts == {"AIR-F003": 1_000_000, "AIR-E001": 1}
    assert len(f.listing()) == 4
    assert f.has_file_error()
