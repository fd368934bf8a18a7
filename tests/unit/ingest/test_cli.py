"""``airlock validate``: exit codes, JSON shape, --out, --help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.cli import main

from .conftest import SAMPLES


def test_accepted_file_exits_zero_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLES / "strata/trades.csv"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"file", "kind", "verdict", "rows", "findings", "duration_s"}
    assert doc["kind"] == "trades" and doc["verdict"] == "accepted"
    assert doc["rows"] == {"total": 44, "accepted": 44, "rejected": 0}


def test_rejected_file_exits_one_and_names_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLES / "strata/quotes-invalid-date.csv"), "--json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert set(finding) == {"rule", "severity", "line", "column", "value", "message"}
    assert (finding["rule"], finding["line"]) == ("AIR-E010", 3)


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLES / "strata/fx-rates-invalid-duplicate.csv")]) == 1
    out = capsys.readouterr().out
    assert "rejected (fx_rates)" in out and "AIR-F008" in out and "line 4" in out


def test_could_not_run_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.csv")]) == 2
    assert main(["validate", str(SAMPLES / "strata/trades.csv"), "--encoding", "no-such-codec"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(SAMPLES / "strata/trades.csv"), "--kind", "nope"])
    assert exc.value.code == 2


def test_an_unusable_out_folder_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "report.txt"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "below"):
        assert main(["validate", str(SAMPLES / "strata/trades.csv"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: cannot use it as the output folder" in err and "Traceback" not in err
    assert a_file.read_text() == "not a folder", "nothing of the user's is overwritten"


def test_out_writes_parquet_and_reports(tmp_path: Path) -> None:
    assert main(["validate", str(SAMPLES / "strata/quotes-1.csv"), "--kind", "quotes", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.rglob("*.parquet"))) == 2
    assert json.loads((tmp_path / "reports" / "quotes-1.json").read_text())["verdict"] == "accepted"
    assert (tmp_path / "reports" / "quotes-1.csv").read_text().startswith("file,")


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    assert "airlock validate trades.csv" in capsys.readouterr().out


def test_report_csv_is_spreadsheet_safe() -> None:
    from airlock.ingest.pipeline import report_csv
    from schemas.report import FileReport, Finding, RowCounts, Severity, Verdict

    bad = Finding(rule="AIR-E011", severity=Severity.ERROR, line=2, column="Value", value="=HYPERLINK(1)", message="x")
    report = FileReport(
        file="@evil.csv",
        tenant_id="t",
        file_id="f",
        kind="quotes",
        verdict=Verdict.REJECTED,
        rows=RowCounts(total=1, rejected=1),
        findings=[bad],
        finding_counts={"AIR-E011": 1},
        schema_version="1",
        ingested_at="now",
        duration_s=0.1,
    )
    text = report_csv(report)
    assert "'=HYPERLINK(1)" in text and "'@evil.csv" in text
    assert "\n=" not in text and ",=" not in text and ",@" not in text
