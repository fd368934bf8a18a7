"""The pipelined engine: chunk and batch boundaries, background stages and their failures.

Parsing runs ahead on a thread, the exact-duplicate check runs on the publishing thread, Parquet
encoding on another; none of it may change a finding, a line number or a published row.
"""

from __future__ import annotations

import functools
import io
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.ingest import exact, pipeline, reader
from airlock.ingest.pipeline import IngestOptions, IngestOutcome, ingest
from airlock.ingest.reader import FileProblem, LineSource
from schemas.report import Verdict
from schemas.tenant import IngestPolicy

AT = datetime(2024, 3, 28, 18, 0, tzinfo=UTC)
HEADER = (
    b"ValuationDate,TradeID,PortfolioID,ProductClass,RiskType,Qualifier,Bucket,Label1,Label2,"
    b"AmountCurrency,Amount,AmountUSD,IMModel,collect_regulations,post_regulations"
)


def crif(rows: int, *, seed: int, eol: bytes = b"\n") -> bytes:
    """A CRIF file with exact duplicates near and far, bad rows, noise lines and quoted newlines."""
    rnd = random.Random(seed)
    lines = [b"# exported by the risk engine", HEADER]
    made: list[bytes] = []
    for i in range(rows):
        roll = rnd.random()
        if made and roll < 0.08:  # an exact duplicate of an earlier row, possibly many batches back
            lines.append(rnd.choice(made))
            continue
        if roll < 0.11:
            lines.append(b"")
            continue
        if roll < 0.13:
            lines.append(b"# page %d" % i)
            continue
        amount = b"oops" if roll < 0.16 else b"%.2f" % rnd.uniform(-1e6, 1e6)
        regs = b'"ESA,\nUSPR"' if roll < 0.2 else b'"ESA,USPR"'
        row = b"2024-03-28,T%06d,PF%d,RatesFX,Risk_IRCurve,USD,%d,%s,Libor3m,USD,%s,,SIMM,%s,SEC" % (
            i,
            i % 7,
            1 + i % 12,
            rnd.choice([b"2w", b"1y", b"10y"]),
            amount,
            regs,
        )
        made.append(row)
        lines.append(row)
    return eol.join(lines) + eol


# Bad rows quarantined, good ones published: the comparisons below then cover published rows too.
PARTIAL = IngestPolicy(allow_partial=True, max_error_ratio=0.5)
STRICT = IngestPolicy()


def run(tmp_path: Path, data: bytes, policy: IngestPolicy = STRICT) -> IngestOutcome:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    options = IngestOptions(file_id="f", ingested_at=AT, policy=policy)
    return ingest(src, options=options, out_dir=tmp_path / "out")


def published(out: IngestOutcome) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for o in out.outputs:
        rows.extend(pq.ParquetFile(o.path).read().to_pylist())
    return sorted(rows, key=lambda r: int(r["source_line"]))  # type: ignore[call-overload]


def report(out: IngestOutcome) -> tuple[object, ...]:
    return (
        out.verdict,
        out.rows_total,
        out.rows_accepted,
        out.rows_rejected,
        out.finding_counts,
        [(f.rule, f.line, f.message) for f in out.findings],
    )


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_tiny_chunks_and_batches_give_the_same_report_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eol: bytes
) -> None:
    data = crif(3000, seed=11, eol=eol)
    whole = run(tmp_path / "whole", data, PARTIAL)
    monkeypatch.setattr(reader, "CHUNK", 700)  # records and quoted newlines straddle chunk boundaries
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", 2048)  # dozens of batches: duplicates across batches
    tiny = run(tmp_path / "tiny", data, PARTIAL)
    assert whole.verdict is Verdict.ACCEPTED_WITH_ERRORS
    assert whole.finding_counts.get("AIR-W002", 0) > 100 and whole.rows_rejected > 50
    assert report(tiny) == report(whole)
    rows = published(whole)
    assert len(rows) > 2000 and published(tiny) == rows


def test_exact_duplicates_are_published_once_with_their_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "CHUNK", 512)
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", 1024)
    rows = [
        b"2024-03-28,T%04d,PF1,RatesFX,Risk_IRCurve,USD,1,2w,Libor3m,USD,%d.5,,SIMM,,SEC" % (i, i) for i in range(400)
    ]
    dup_of = {402: 3, 403: 250, 404: 401, 405: 3}  # physical line -> line of the original
    lines = [HEADER, *rows, *(rows[first - 2] for first in dup_of.values())]
    out = run(tmp_path, b"\n".join(lines) + b"\n")
    assert out.verdict is Verdict.ACCEPTED and out.finding_counts == {"AIR-W002": 4}
    assert [(f.line, f.message) for f in out.findings] == [
        (line, f"This row is an exact copy of line {first}; it was kept once.") for line, first in dup_of.items()
    ]
    got = published(out)
    assert len(got) == 400 and [r["source_line"] for r in got] == list(range(2, 402))


@pytest.mark.parametrize(("eol", "block"), [(b"\n", 4096), (b"\r\n", 4096), (b"\n", 1 << 20)])
def test_exact_duplicates_do_not_depend_on_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eol: bytes, block: int
) -> None:
    """Every row a candidate (one fingerprint for all): the record text alone decides, same report.

    Small batches read each candidate's text on its own, big ones read the batch's text once.
    """
    data = crif(1500, seed=5, eol=eol)
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", block)
    normal = run(tmp_path / "normal", data, PARTIAL)
    monkeypatch.setattr(pipeline, "fingerprints", lambda table: np.zeros(table.num_rows, dtype=np.uint64))
    monkeypatch.setattr(reader, "CHUNK", 900)  # copies whose text spans two chunks, read back in pieces
    degenerate = run(tmp_path / "degenerate", data, PARTIAL)
    assert normal.finding_counts.get("AIR-W002", 0) > 50
    assert report(degenerate) == report(normal)
    assert published(degenerate) == published(normal)


def test_rows_equal_once_typed_but_written_differently_are_not_duplicates(tmp_path: Path) -> None:
    row = b"2024-03-28,T1,PF1,RatesFX,Risk_IRCurve,USD,1,2w,Libor3m,USD,%s,,SIMM,%s,SEC"
    lines = [
        HEADER,
        row % (b"1.5", b"ESA"),
        row % (b"1.50", b"ESA"),  # the same number, other text
        (row % (b"1.5", b"ESA")).replace(b"RatesFX", b"ratesfx"),  # the same enum, other case
        row % (b"1.5", b"ESA"),  # an exact copy of line 2
        (row % (b"1.5", b"ESA")).replace(b"T1", b"T2"),  # same length, other trade: same fingerprint
    ]
    out = run(tmp_path, b"\n".join(lines) + b"\n")
    assert out.verdict is Verdict.ACCEPTED and out.finding_counts == {"AIR-W002": 1}
    assert [(f.line, f.message) for f in out.findings] == [
        (5, "This row is an exact copy of line 2; it was kept once.")
    ]
    assert [r["source_line"] for r in published(out)] == [2, 3, 4, 6]


def test_exact_duplicates_in_a_file_read_through_another_encoding(tmp_path: Path) -> None:
    """Transcoded chunks are not the source's bytes: their text is read back from the spooled copy."""
    row = "2024-03-28,T%d,PF1,RatesFX,Risk_IRCurve,Zürich,1,2w,Libor3m,USD,%d.5,,SIMM,,SEC"
    lines = [HEADER.decode(), *(row % (i, i) for i in range(50)), row % (7, 7), row % (49, 49)]
    out = run(tmp_path, ("\r\n".join(lines) + "\r\n").encode("cp1252"), IngestPolicy(encoding="cp1252"))
    assert out.verdict is Verdict.ACCEPTED and out.finding_counts == {"AIR-W002": 2}
    assert [f.line for f in out.findings] == [52, 53]
    assert published(out)[0]["qualifier"] == "Zürich" and len(published(out)) == 50


def test_past_the_cap_the_report_says_how_far_the_duplicate_check_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "ExactDuplicates", functools.partial(exact.ExactDuplicates, cap=100))
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", 2048)
    rows = [
        b"2024-03-28,T%04d,PF1,RatesFX,Risk_IRCurve,USD,1,2w,Libor3m,USD,%d.5,,SIMM,,SEC" % (i, i) for i in range(300)
    ]
    out = run(tmp_path, b"\n".join([HEADER, *rows, rows[3], rows[150]]) + b"\n")
    assert out.verdict is Verdict.ACCEPTED and out.finding_counts == {"AIR-W002": 1, "AIR-W003": 1}
    (dup,) = [f for f in out.findings if f.rule == "AIR-W002"]
    (limit,) = [f for f in out.findings if f.rule == "AIR-W003"]
    assert (dup.line, dup.message) == (302, "This row is an exact copy of line 5; it was kept once.")
    covered = int(limit.message.split("first ")[1].split(" ")[0])
    assert 0 < covered <= 100 and limit.message == f"Duplicate checking covered the first {covered} keys only."
    assert len(published(out)) == 301  # the copy of line 152, past the cap, is published again


def test_a_failure_on_the_publishing_thread_rejects_the_file_and_leaves_no_parquet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, table: object, lines: object) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline._Run, "_lineage", broken)
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", 1024)
    out = run(tmp_path, crif(500, seed=3))
    assert out.verdict is Verdict.REJECTED and out.finding_counts == {"AIR-F015": 1}
    assert not list((tmp_path / "out").rglob("*.parquet*"))


def drain(data: bytes, chunk: int) -> tuple[bytes, list[int], tuple[str, int] | None]:
    src = LineSource(io.BytesIO(data), chunk_size=chunk, max_ahead=1 << 30)
    try:
        src.read_header()
    except FileProblem as exc:
        return b"", [], (exc.rule.id, exc.line)
    out = b""
    while block := src.read():
        out += block
    lines = src.take_lines(src.records).tolist() if src.records else []
    problem = (src.problem.rule.id, src.problem.line) if src.problem else None
    return out, lines, problem


def test_quote_state_is_carried_across_chunks() -> None:
    data = b'a,b\n1,"x\n\ny"\n2,""""\n# note\n3,"\n"\n4,z\n'
    out, lines, problem = drain(data, 1 << 20)
    assert problem is None and lines == [2, 5, 7, 9]
    assert out == b'1,"x\n\ny"\n2,""""\n3,"\n"\n4,z\n'
    for chunk in (1, 2, 3, 5, 8):
        assert drain(data, chunk) == (out, lines, problem)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(alphabet='ab,"#; \t', max_size=8), min_size=1, max_size=30), st.integers(1, 40))
def test_any_chunk_size_gives_the_same_records_and_lines(cells: list[str], chunk: int) -> None:
    data = ("a,b\n" + "\n".join(cells) + "\n").encode()
    assert drain(data, chunk) == drain(data, 1 << 20)
