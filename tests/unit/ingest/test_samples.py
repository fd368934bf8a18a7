"""Every real sample gets the verdict SOURCES.md gives it (Strata's and ORE's own tests are the oracle)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from airlock.ingest.pipeline import IngestOptions, ingest, report_csv
from schemas.report import Verdict
from schemas.tenant import IngestPolicy

from .conftest import SAMPLES

EXPECTED = {
    "strata/trades.csv": ("trades", Verdict.ACCEPTED),
    "strata/fxtrades.csv": ("trades", Verdict.ACCEPTED),
    "strata/fxtrades_legs_same_direction.csv": ("trades", Verdict.REJECTED),
    "strata/positions.csv": ("positions", Verdict.ACCEPTED),
    "strata/sensitivity-standard.csv": ("sensitivities", Verdict.ACCEPTED),
    "strata/sensitivity-list.csv": ("sensitivities", Verdict.ACCEPTED),
    "strata/sensitivity-grid.csv": ("sensitivities", Verdict.ACCEPTED),
    "strata/quotes-1.csv": ("quotes", Verdict.ACCEPTED),
    "strata/quotes-invalid-date.csv": ("quotes", Verdict.REJECTED),
    "strata/quotes-invalid-duplicate.csv": ("quotes", Verdict.REJECTED),
    "strata/example-quotes.csv": ("quotes", Verdict.ACCEPTED),
    "strata/fx-rates-1.csv": ("fx_rates", Verdict.ACCEPTED),
    "strata/fx-rates-invalid-duplicate.csv": ("fx_rates", Verdict.REJECTED),
    "strata/fixings-1.csv": ("fixings", Verdict.ACCEPTED),
    "strata/fixings-invalid-date.csv": ("fixings", Verdict.REJECTED),
    "strata/fixings-price1.csv": ("fixings", Verdict.ACCEPTED),
    "strata/fixings-price-invalid.csv": ("fixings", Verdict.REJECTED),
    "strata/curves-1.csv": ("curves", Verdict.ACCEPTED),
    "strata/example-curves-2014-01-22.csv": ("curves", Verdict.ACCEPTED),
    "strata/curves-invalid-duplicate-points.csv": ("curves", Verdict.REJECTED),
    "strata/groups.csv": ("curve_groups", Verdict.ACCEPTED),
    "strata/settings.csv": ("curve_settings", Verdict.ACCEPTED),
    "crif/ore-crif.csv": ("crif", Verdict.ACCEPTED),
    "crif/ore-crif-schedule.csv": ("crif", Verdict.ACCEPTED),
}


def test_every_sample_is_listed() -> None:
    on_disk = {str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*.csv")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_verdict(name: str, tmp_path: Path) -> None:
    kind, verdict = EXPECTED[name]
    out = ingest(SAMPLES / name, options=IngestOptions(file_id="f1", source_key=f"inbound/{name}"), out_dir=tmp_path)
    assert (out.kind, out.verdict) == (kind, verdict), out.findings
    assert out.rows_total == out.rows_accepted + out.rows_rejected
    parquet = list(tmp_path.rglob("*.parquet"))
    if verdict is Verdict.REJECTED:
        assert parquet == [] and out.outputs == []
        assert any(f.severity == "error" for f in out.findings)
    else:
        assert out.rows_accepted == out.rows_total > 0
        assert sum(o.rows for o in out.outputs) == out.rows_total
        assert sorted(parquet) == sorted(o.path for o in out.outputs)
        table = pq.ParquetFile(out.outputs[0].path).read()
        assert {"tenant_id", "file_id", "source_key", "source_line", "ingested_at"} <= set(table.column_names)
    report = out.report()
    assert report.model_dump(mode="json")["verdict"] == verdict.value
    assert report_csv(report)


def test_trades_counts_and_normalization(tmp_path: Path) -> None:
    out = ingest(SAMPLES / "strata/trades.csv", options=IngestOptions(), out_dir=tmp_path)
    table = pq.ParquetFile(out.outputs[0].path).read().to_pylist()
    assert len(table) == 44
    assert sum(r["trade_type"] == "VARIABLE" for r in table) == 9
    steps = [(r["source_line"], r["parent_trade_id"], r["parent_line"]) for r in table if r["trade_type"] == "VARIABLE"]
    assert steps[:4] == [(9, "123413", 8), (10, "123413", 8), (11, "123413", 8), (12, "123413", 8)]
    assert steps[4] == (18, "123418", 17)
    fra = table[0]
    assert fra["trade_id"] == "123401" and fra["buy_sell"] == "BUY" and fra["fixed_rate"] == pytest.approx(0.005)
    assert str(fra["trade_date"]) == "2017-06-01"  # 01/06/2017 is day-first
    assert fra["source_line"] == 2
    assert table[3]["source_line"] == 6  # the separator-only line 5 is skipped, numbering is physical


def test_quotes_lines_defaults_and_partitions(tmp_path: Path) -> None:
    out = ingest(SAMPLES / "strata/quotes-1.csv", options=IngestOptions(), out_dir=tmp_path)
    assert [o.partition for o in out.outputs] == [{"valuation_date": "2014-01-22"}, {"valuation_date": "2014-01-23"}]
    rows = [r for o in out.outputs for r in pq.ParquetFile(o.path).read().to_pylist()]
    assert [r["source_line"] for r in rows] == [3, 4, 6, 7]
    assert rows[1]["field_name"] == "MarketValue"


def test_findings_name_line_column_and_value(tmp_path: Path) -> None:
    out = ingest(SAMPLES / "strata/quotes-invalid-date.csv", options=IngestOptions(), out_dir=tmp_path)
    (f,) = out.findings
    assert (f.rule, f.line, f.column, f.value) == ("AIR-E010", 3, "Valuation Date", "2014-01-32")
    assert out.quarantine is not None and "2014-01-32" in out.quarantine.read_text()


def test_crlf_and_unterminated_last_line(tmp_path: Path) -> None:
    out = ingest(SAMPLES / "strata/settings.csv", options=IngestOptions(), out_dir=tmp_path)
    rows = pq.ParquetFile(out.outputs[0].path).read().to_pylist()
    assert [r["source_line"] for r in rows] == [2, 3, 4]
    assert rows[2]["right_extrapolator"] == "Flat" and rows[2]["value_type"] == "PRICE_INDEX"


def test_crif_quoted_lists_and_schedule_dates(tmp_path: Path) -> None:
    out = ingest(SAMPLES / "crif/ore-crif.csv", options=IngestOptions(), out_dir=tmp_path / "a")
    row = pq.ParquetFile(out.outputs[0].path).read().to_pylist()[0]
    assert row["collect_regulations"] == "ESA,USPR" and row["label1"] == "10Y"
    out = ingest(SAMPLES / "crif/ore-crif-schedule.csv", options=IngestOptions(), out_dir=tmp_path / "b")
    row = pq.ParquetFile(out.outputs[0].path).read().to_pylist()[0]
    assert str(row["end_date"]) == "2022-08-23" and row["im_model"] == "Schedule"


def test_fx_rates_split_pair(tmp_path: Path) -> None:
    out = ingest(SAMPLES / "strata/fx-rates-1.csv", options=IngestOptions(), out_dir=tmp_path)
    row = pq.ParquetFile(out.outputs[0].path).read().to_pylist()[0]
    assert (row["base_ccy"], row["quote_ccy"], row["rate"]) == ("EUR", "USD", 1.11)


def test_sensitivity_layouts_pivot_to_the_same_long_form(tmp_path: Path) -> None:
    def rows(name: str) -> set[tuple[object, ...]]:
        out = ingest(SAMPLES / f"strata/{name}", options=IngestOptions(), out_dir=tmp_path / name)
        t = pq.ParquetFile(out.outputs[0].path).read().to_pylist()
        return {(r["reference"], r["sensitivity_type"], r["tenor"], r["value"]) for r in t}

    standard = rows("sensitivity-standard.csv")
    listed = rows("sensitivity-list.csv")
    assert standard <= listed
    assert len(rows("sensitivity-grid.csv")) == 20


def test_a_currency_outside_iso_4217_rejects_the_row_with_its_line_column_and_value(tmp_path: Path) -> None:
    """ORE's CRIF with one AmountCurrency changed to XYZ (no such ISO 4217 code) on line 3."""
    lines = (SAMPLES / "crif/ore-crif.csv").read_bytes().split(b"\n")
    assert b",OIS,USD,-304.84," in lines[2]  # Label2, AmountCurrency, Amount
    lines[2] = lines[2].replace(b",OIS,USD,", b",OIS,XYZ,")
    src = tmp_path / "ore-crif-xyz.csv"
    src.write_bytes(b"\n".join(lines))
    out = ingest(src, options=IngestOptions(source_key="inbound/ore-crif-xyz.csv"), out_dir=tmp_path / "out")
    assert out.verdict is Verdict.REJECTED and out.finding_counts == {"AIR-E012": 1} and not out.outputs
    (finding,) = out.findings
    assert (finding.line, finding.column, finding.value) == (3, "AmountCurrency", "XYZ")
    assert "ISO 4217" in finding.message
    partial = IngestOptions(source_key="inbound/ore-crif-xyz.csv",
                            policy=IngestPolicy(allow_partial=True, max_error_ratio=0.1))
    out = ingest(src, options=partial, out_dir=tmp_path / "partial")
    assert out.verdict is Verdict.ACCEPTED_WITH_ERRORS and (out.rows_accepted, out.rows_rejected) == (26, 1)
    published = [n for o in out.outputs for n in pq.ParquetFile(o.path).read().column("source_line").to_pylist()]
    assert 3 not in published and len(published) == 26, "the bad row is quarantined, the rest published"
