"""Kind detection: the tenant's routing rules first, then the header; a tie is a finding, not a guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.ingest import detect as detection
from airlock.ingest.pipeline import IngestOptions, ingest
from schemas.files import CONTRACTS
from schemas.report import Verdict
from schemas.tenant import IngestPolicy, RoutingRule

from .conftest import SAMPLES

QUOTES = SAMPLES / "strata/quotes-1.csv"
HEADER = ["Valuation Date", "Symbology", "Ticker", "Field Name", "Value"]


@pytest.fixture
def two_kinds_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second kind with the quotes contract: every quotes header now fits both equally well."""
    monkeypatch.setattr(detection, "CONTRACTS", {**CONTRACTS, "quotes_v2": CONTRACTS["quotes"]})


def test_a_tie_names_the_candidates_and_rejects_the_file(two_kinds_alike: None, tmp_path: Path) -> None:
    found = detection.detect(HEADER, kind=None, source_key="inbound/q.csv", policy=IngestPolicy())
    assert found.contract is None and found.problem is not None
    rule, fields = found.problem
    assert rule.id == "AIR-F005" and fields == {"candidates": "quotes, quotes_v2"}
    out = ingest(QUOTES, options=IngestOptions(source_key="inbound/quotes-1.csv"), out_dir=tmp_path)
    assert out.verdict is Verdict.REJECTED and out.finding_counts == {"AIR-F005": 1} and not out.outputs
    (finding,) = out.findings
    assert "quotes, quotes_v2" in finding.message and "routing rules" in finding.message


def test_a_routing_rule_settles_the_tie(two_kinds_alike: None, tmp_path: Path) -> None:
    policy = IngestPolicy(routing=(RoutingRule(glob="quotes-*.csv", kind="quotes"),))
    found = detection.detect(HEADER, kind=None, source_key="inbound/quotes-1.csv", policy=policy)
    assert (found.contract, found.how, found.problem) == (CONTRACTS["quotes"], "routing", None)
    options = IngestOptions(source_key="inbound/quotes-1.csv", policy=policy)
    out = ingest(QUOTES, options=options, out_dir=tmp_path)
    assert out.verdict is Verdict.ACCEPTED and out.kind == "quotes"


def test_routing_wins_over_the_header_and_an_unknown_routed_kind_is_named() -> None:
    policy = IngestPolicy(routing=(RoutingRule(glob="feeds/*", kind="fx_rates"), RoutingRule(glob="x/*", kind="nope")))
    routed = detection.detect(HEADER, kind=None, source_key="inbound/feeds/a.csv", policy=policy)
    assert (routed.contract, routed.how) == (CONTRACTS["fx_rates"], "routing")
    unknown = detection.detect(HEADER, kind=None, source_key="inbound/x/a.csv", policy=policy)
    assert unknown.problem is not None and unknown.problem[0].id == "AIR-F004"
    assert "'nope'" in unknown.problem[1]["detail"]
