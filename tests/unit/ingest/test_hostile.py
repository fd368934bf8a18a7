"""Hostile and odd input gets a finding and a verdict, never a traceback."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.ingest.pipeline import IngestOptions, IngestOutcome, ingest
from schemas.report import Verdict
from schemas.tenant import IngestPolicy, RoutingRule

QUOTES = b"Valuation Date,Symbology,Ticker,Field Name,Value\n2014-01-22,OG,T1,,1.5\n2014-01-22,OG,T2,,2.5\n"


def run(tmp_path: Path, data: bytes | Path, **kw: object) -> IngestOutcome:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path = tmp_path / "in.csv"
        path.write_bytes(data)
    else:
        path = data
    out = ingest(path, options=IngestOptions(**kw), out_dir=tmp_path / "out")  # type: ignore[arg-type]
    if out.verdict is Verdict.REJECTED:
        assert not list((tmp_path / "out").rglob("*.parquet"))
    return out


def rules(out: IngestOutcome) -> set[str]:
    return set(out.finding_counts)


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "AIR-F001"),
        (b"\n\n,,,\n# just a comment\n", "AIR-F001"),
        (b"Valuation Date,Symbology,Ticker,Field Name,Value\n", "AIR-F013"),
        (b"Valuation Date,Symbology,Ticker,Value\n\x00\x01\x02garbage\xff\xfe", "AIR-F003"),
        (bytes(range(256)) * 40, "AIR-F003"),
        (b"Valuation Date,Symbology,Ticker,Value\n2014-01-22,OG,caf\xe9,1\n", "AIR-F002"),
        (b"Valuation Date,Symbology,Symbology,Ticker,Value\n2014-01-22,a,a,b,1\n", "AIR-F007"),
        (b'Valuation Date,Symbology,Ticker,Value\n2014-01-22,OG,"open,1\n2014-01-22,OG,x,1\n', "AIR-F012"),
        (b"Reference,Foo,Bar\nx,y,z\n", "AIR-F004"),
        (b"Valuation Date,Ticker,Value\n2014-01-22,x,1\n", "AIR-F004"),
    ],
)
def test_file_problems_reject_with_a_finding(tmp_path: Path, data: bytes, rule: str) -> None:
    out = run(tmp_path, data)
    assert out.verdict is Verdict.REJECTED
    assert rule in rules(out), out.findings


def test_invalid_utf8_reports_the_byte_offset(tmp_path: Path) -> None:
    data = QUOTES + b"2014-01-23,OG,caf\xe9,,1\n"
    out = run(tmp_path, data)
    (f,) = [f for f in out.findings if f.rule == "AIR-F002"]
    assert f"offset {len(QUOTES) + 17}" in f.message and f.line == 4


def test_other_encoding_when_the_tenant_says_so(tmp_path: Path) -> None:
    data = QUOTES + "2014-01-23,OG,café,,1\n".encode("cp1252")
    out = run(tmp_path, data, policy=IngestPolicy(encoding="cp1252"))
    assert out.verdict is Verdict.ACCEPTED
    rows = pq.ParquetFile(out.outputs[-1].path).read().to_pylist()
    assert rows[-1]["ticker"] == "café"


def test_ten_megabyte_field(tmp_path: Path) -> None:
    data = QUOTES + b"2014-01-23,OG," + b"x" * (10 << 20) + b",,1\n"
    out = run(tmp_path, data)
    assert out.verdict is Verdict.REJECTED and "AIR-F011" in rules(out)


def test_ten_thousand_columns(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(10_000)).encode()
    out = run(tmp_path, header + b"\n" + b"," * 9_999 + b"1\n")
    assert out.verdict is Verdict.REJECTED and "AIR-F010" in rules(out)


def test_unknown_kind_names_the_candidates(tmp_path: Path) -> None:
    out = run(tmp_path, b"Valuation Date,Ticker,Value\n2014-01-22,x,1\n")
    (f,) = out.findings
    assert "quotes" in f.message and "Symbology" in f.message


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", QUOTES + b"," * (60 << 20))
    out = run(tmp_path, path)
    assert out.verdict is Verdict.REJECTED and "AIR-F009" in rules(out)
    assert "ratio" in out.findings[0].message


def test_zip_with_many_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", QUOTES)
        zf.writestr("b.csv", QUOTES)
    assert "AIR-F009" in rules(run(tmp_path, path))


def test_damaged_gzip(tmp_path: Path) -> None:
    assert "AIR-F009" in rules(run(tmp_path, gzip.compress(QUOTES)[:-12]))


def test_gzip_and_zip_inputs(tmp_path: Path) -> None:
    assert run(tmp_path / "g", gzip.compress(QUOTES)).verdict is Verdict.ACCEPTED
    path = tmp_path / "q.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("q.csv", QUOTES)
    assert run(tmp_path / "z", path).verdict is Verdict.ACCEPTED


def test_non_seekable_stream(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: memoryview) -> int:  # type: ignore[override]
            return self._b.readinto(b)

    stream = io.BufferedReader(Pipe(gzip.compress(QUOTES)))
    out = ingest(stream, options=IngestOptions(source_key="inbound/q.csv.gz"), out_dir=tmp_path)
    assert out.verdict is Verdict.ACCEPTED and out.rows_total == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".airlock-")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings_bom_and_noise_keep_physical_lines(tmp_path: Path, eol: bytes) -> None:
    lines = [
        b"\xef\xbb\xbf# exported by desk",
        b"Valuation Date;Symbology;Ticker;Field Name;Value",
        b"",
        b";;;;",
        b"2014-01-22;OG;T1;;1.5",
        b"# comment",
        b'2014-01-22;OG;"T;2";;2.5',
    ]
    out = run(tmp_path, eol.join(lines) + eol)
    assert out.verdict is Verdict.ACCEPTED, out.findings
    rows = pq.ParquetFile(out.outputs[0].path).read().to_pylist()
    assert [r["source_line"] for r in rows] == [5, 7]
    assert rows[1]["ticker"] == "T;2"


def test_quoted_newline_keeps_later_line_numbers(tmp_path: Path) -> None:
    data = QUOTES + b'2014-01-23,OG,"two\nlines",,1\n2014-01-23,OG,x,,bad\n'
    out = run(tmp_path, data)
    assert [(f.rule, f.line) for f in out.findings] == [("AIR-E011", 6)]


def test_ragged_rows_are_padded_trimmed_or_reported(tmp_path: Path) -> None:
    data = QUOTES + b"2014-01-23,OG,short,,1\n2014-01-23,OG,T9\n2014-01-23,OG,T8,,1,,,\n2014-01-23,OG,T7,,1,extra\n"
    out = run(tmp_path, data)
    assert out.finding_counts == {"AIR-E001": 1, "AIR-E002": 1}
    assert {(f.rule, f.line) for f in out.findings} == {("AIR-E001", 5), ("AIR-E002", 7)}


def test_partial_acceptance_follows_the_policy(tmp_path: Path) -> None:
    data = QUOTES + b"2014-01-23,OG,T3,,oops\n" + b"".join(b"2014-01-24,OG,X%d,,1\n" % i for i in range(20))
    strict = run(tmp_path / "a", data)
    assert strict.verdict is Verdict.REJECTED and strict.outputs == []
    partial = run(tmp_path / "b", data, policy=IngestPolicy(allow_partial=True, max_error_ratio=0.1))
    assert partial.verdict is Verdict.ACCEPTED_WITH_ERRORS
    assert (partial.rows_accepted, partial.rows_rejected) == (22, 1)
    assert partial.quarantine is not None and "oops" in partial.quarantine.read_text()
    over = run(tmp_path / "c", data, policy=IngestPolicy(allow_partial=True, max_error_ratio=0.01))
    assert over.verdict is Verdict.REJECTED and "AIR-F014" in rules(over)


def test_findings_are_capped_but_counts_exact(tmp_path: Path) -> None:
    data = b"Valuation Date,Symbology,Ticker,Value\n" + b"".join(b"2014-02-30,OG,T%d,1\n" % i for i in range(5000))
    out = run(tmp_path, data)
    assert out.finding_counts == {"AIR-E010": 5000}
    assert len(out.findings) == 20


def test_routing_rules_come_before_the_header(tmp_path: Path) -> None:
    policy = IngestPolicy(routing=(RoutingRule(glob="fx/*.csv", kind="fx_rates"),))
    out = run(tmp_path, QUOTES, source_key="inbound/fx/q.csv", policy=policy)
    assert out.kind == "fx_rates" and "AIR-F006" in rules(out)


def test_day_first_unless_the_tenant_says_mdy(tmp_path: Path) -> None:
    data = b"Valuation Date,Symbology,Ticker,Value\n02/03/2014,OG,T,1\n"
    dmy = pq.ParquetFile(run(tmp_path / "a", data).outputs[0].path)
    assert run(tmp_path / "a2", data).outputs[0].partition == {"valuation_date": "2014-03-02"}
    assert dmy.metadata.num_rows == 1
    mdy = run(tmp_path / "b", data, policy=IngestPolicy(date_order="mdy"))
    assert mdy.outputs[0].partition == {"valuation_date": "2014-02-03"}


def test_unknown_columns_warn_but_accept(tmp_path: Path) -> None:
    out = run(tmp_path, b"Valuation Date,Symbology,Ticker,Value,Desk\n2014-01-22,OG,T,1,x\n")
    assert out.verdict is Verdict.ACCEPTED and out.finding_counts == {"AIR-W001": 1}


def test_crif_pipe_and_tab_delimited_with_snake_case_headers(tmp_path: Path) -> None:
    for sep in (b"|", b"\t"):
        header = sep.join(
            [b"trade_id", b"risk_type", b"qualifier", b"bucket", b"label1", b"amount", b"amount_currency"]
        )
        row = sep.join([b"T1", b"Risk_IRCurve", b"USD", b"1", b"2w", b"1.5", b"USD"])
        out = run(tmp_path / os.fsdecode(sep.hex()), header + b"\n" + row + b"\n" + row + b"\n")
        assert out.kind == "crif" and out.verdict is Verdict.ACCEPTED
        assert out.finding_counts == {"AIR-W002": 1} and out.outputs[0].rows == 1


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.text(alphabet=st.sampled_from(list(',|;\t"\r\n =#x1-/.é\x00')), max_size=12), min_size=1, max_size=12
        ).map(lambda parts: "".join(parts).encode("utf-8")),
    ),
    prefix=st.sampled_from([b"", QUOTES, b"RiskType,Amount,AmountCurrency,Qualifier\n"]),
)
def test_random_bytes_never_raise(tmp_path_factory: pytest.TempPathFactory, data: bytes, prefix: bytes) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    out = run(tmp, prefix + data)
    assert out.rows_total == out.rows_accepted + out.rows_rejected
    assert out.verdict in set(Verdict)
    assert not [f for f in out.findings if "internal error" in f.message]


def test_variable_row_without_a_swap_rejects_the_file(tmp_path: Path) -> None:
    data = (
        b"Strata Trade Type,Id,Trade Date,Buy Sell,Notional,Fixed Rate,Start Date\n"
        b"Fra,1,01/06/2017,Buy,1000,0.5,\n"
        b"Variable,,,,2000,0.6,01/08/2018\n"
    )
    out = run(tmp_path, data)
    assert out.verdict is Verdict.REJECTED
    assert [(f.rule, f.line) for f in out.findings if f.rule == "AIR-F017"] == [("AIR-F017", 3)]
