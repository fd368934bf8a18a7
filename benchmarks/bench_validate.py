"""Benchmark: Airlock validate+normalize+write against bare and validating baselines, in one process.

    .venv/bin/python benchmarks/bench_validate.py --rows 1000000            # throughput and ratios
    .venv/bin/python benchmarks/bench_validate.py --big                     # + peak RSS on a ~2 GB file
    .venv/bin/python benchmarks/bench_validate.py --rows 1000000 --big --write-docs   # docs/benchmarks.md

Every contender reads the same generated CRIF file and writes Parquet:
  (a) pyarrow: read_csv + write_table, no checks
  (b) polars: read_csv + write_parquet, no checks
  (c) csv + pydantic: csv.reader, the CRIF contract's model_validate per row, valid rows to Parquet
  (d) pandas + pandera: read_csv, a DataFrameSchema with the equivalent checks, to_parquet
  airlock: airlock.ingest.pipeline.ingest (validate, normalize, lineage, partitioned Parquet)
Timings are wall-clock, best of ``--repeat``; nothing here asserts a timing. The peak RSS of the big run
is measured in a child process (its VmHWM), so this process's baselines do not count.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gen_crif import generate  # noqa: E402
from machine import machine  # noqa: E402

BIG_BYTES = 2 << 30
# A section another benchmark writes into docs/benchmarks.md, between its begin/end markers.
KEPT_SECTION_RE = re.compile(r"<!-- ([\w-]+):begin -->.*?<!-- \1:end -->", re.DOTALL)
NOTES = """\
## Reading the numbers

- What airlock does that the bare baselines do not: a byte pre-pass that keeps physical line numbers
  (CR, CRLF, noise lines, quoted newlines), UTF-8 and NUL checks; 15 typed columns checked and
  normalized (dates, ISO 4217, enums, tenors, numbers, four cross-field rules); exact-duplicate
  detection across the file; five lineage columns; Hive-partitioned Parquet written under a temporary
  name.
- How the work is spread (2 cores): pyarrow's I/O thread runs the byte pre-pass; a parse thread asks
  pyarrow for the next batch (pyarrow's streaming reader only parses when asked); the main thread
  validates; a publishing thread runs the exact-duplicate check, filters and adds lineage; a Parquet
  thread encodes. Each hand-over holds one batch at most.
- Where airlock's CPU goes on the 1M-row file (per-thread CPU time, 2026-12-01, this machine, about
  1.5 CPU-s in all): pyarrow parsing about 0.35 s and the byte pre-pass about 0.15 s (pyarrow's
  threads), validation about 0.44 s, the exact-duplicate check about 0.2 s (typed-row fingerprints
  0.1 s, the sorted store 0.1 s), Parquet writing about 0.33 s.
- Exact duplicates: a fingerprint of each typed row (number bits, dictionary values' hashes, text
  lengths) is a function of the record's text, so exact copies always share it; rows that share it
  are candidates, settled byte for byte against the earlier record's text (read back from the upload,
  or from a copy of the chunks whose cleaned text differs from the upload's bytes). Two different
  records are never merged, which a bare 64-bit record hash could not promise. The worst-case line
  above is a file whose rows agree on every typed value and differ only in their ids: nearly every
  row is then a candidate and costs a read and a comparison.
- Changes in the 2026-12-01 round (before: airlock 1.294 s wall, 2.19 CPU-s, 2.06x polars):
  Python record hashing (`bytes.split` + `hash` per record, 0.3 CPU-s) replaced by the typed-row
  fingerprint with text confirmation; the store packs a 40-bit fingerprint over a 24-bit row id into
  one sorted uint64 array (one plain sort per batch, no argsort); the file is read straight into the
  chunk buffer behind the carry (one copy per chunk instead of two); the header chunk is no longer
  split into lines whole; pyarrow's own UTF-8 check is off (the pre-pass guarantees UTF-8); lineage
  constants are one-value dictionaries (Parquet no longer hashes a million equal strings per column);
  text columns skip the trim when no value's first or last byte could need it (a numpy look at the
  offsets instead of trimming every value).
- Evaluated and not kept (2026-11-23 and 2026-12-01): pyarrow parsing straight into dictionary arrays
  (costs more in the parser than `dictionary_encode` saves), 4/8 MiB blocks (no faster), an
  open-addressing hash table for the fingerprint store (page faults cost what the sort saved), zstd or
  no compression (same CPU within noise; snappy kept), a switch interval below 5 ms (no change), one
  shared dictionary per enum column across batches (each batch is its own Parquet row group, which
  writes its own dictionary anyway: no change).
- Memory stays flat: the pre-pass holds back pyarrow's read-ahead (at most two 8 MiB chunks waiting),
  each thread hand-over holds one batch, duplicate stores are capped (1M fingerprints, 200,000 records
  sharing fingerprints, then AIR-W003), and files over 256 MiB switch jemalloc to return freed pages
  at once.
- This machine is shared with other builds; each fast contender keeps its best of the interleaved
  rounds, and CPU seconds are given alongside.
"""


def bench_pyarrow(src: Path, out: Path) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(src)
    pq.write_table(table, out / "a.parquet")
    return table.num_rows


def bench_polars(src: Path, out: Path) -> int:
    import polars as pl

    df = pl.read_csv(src)
    df.write_parquet(out / "b.parquet")
    return df.height


def bench_pydantic(src: Path, out: Path, limit: int | None = None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airlock.ingest.engine import compiled
    from airlock.ingest.reference import row_input
    from schemas.files.crif import CrifRecord

    ctx = {"date_order": "dmy"}
    writer: pq.ParquetWriter | None = None
    rows = 0
    good: list[dict[str, object]] = []
    with src.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        fields = compiled(CrifRecord).bind(header).fields
        for cells in reader:
            rows += 1
            with contextlib.suppress(ValueError):  # invalid rows are dropped, as a bad row would be
                good.append(CrifRecord.model_validate(row_input(fields, cells), context=ctx).model_dump())
            if len(good) >= 100_000:
                table = pa.Table.from_pylist(good)
                writer = writer or pq.ParquetWriter(out / "c.parquet", table.schema)
                writer.write_table(table)
                good.clear()
            if limit and rows >= limit:
                break
    if good:
        table = pa.Table.from_pylist(good)
        writer = writer or pq.ParquetWriter(out / "c.parquet", table.schema)
        writer.write_table(table)
    if writer:
        writer.close()
    return rows


def bench_pandera(src: Path, out: Path) -> int:
    import pandas as pd
    import pandera.pandas as pa

    from schemas.files.crif import RISK_TYPES
    from schemas.files.iso4217 import CURRENCIES

    schema = pa.DataFrameSchema(
        {
            "ValuationDate": pa.Column("datetime64[ns]", nullable=True),
            "TradeID": pa.Column(str, nullable=True),
            "PortfolioID": pa.Column(str, nullable=True),
            "ProductClass": pa.Column(
                str, pa.Check.isin(["RatesFX", "Credit", "Equity", "Commodity", "Rates", "FX", "Other"]), nullable=True
            ),
            "RiskType": pa.Column(str, pa.Check.isin(list(RISK_TYPES))),
            "Qualifier": pa.Column(str, nullable=True),
            "Bucket": pa.Column(str, pa.Check.str_matches(r"^(\d{1,2}|Residual)$"), nullable=True),
            "Label1": pa.Column(str, pa.Check.str_matches(r"^(?i:P?(\d+[YMWD])+)$"), nullable=True),
            "Label2": pa.Column(str, nullable=True),
            "AmountCurrency": pa.Column(str, pa.Check.isin(sorted(CURRENCIES)), nullable=True),
            "Amount": pa.Column(float, pa.Check(lambda s: s.abs() < float("inf")), nullable=True),
            "AmountUSD": pa.Column(float, nullable=True),
            "IMModel": pa.Column(str, pa.Check.isin(["SIMM", "SIMM-P", "SIMM-R", "Schedule"]), nullable=True),
        },
        checks=[pa.Check(lambda df: df["Amount"].notna() | df["AmountUSD"].notna())],
        strict=False,
        coerce=True,
    )
    df = pd.read_csv(src, dtype={"Bucket": str})
    df["ValuationDate"] = pd.to_datetime(df["ValuationDate"], format="%Y-%m-%d", errors="coerce")
    df = schema.validate(df, lazy=True)
    df.to_parquet(out / "d.parquet", index=False)
    return len(df)


def bench_airlock(src: Path, out: Path) -> int:
    from airlock.ingest.pipeline import IngestOptions, ingest

    outcome = ingest(src, options=IngestOptions(file_id="bench", source_key="inbound/bench.csv"), out_dir=out)
    assert outcome.verdict.value == "accepted", outcome.finding_counts
    return outcome.rows_total


def timed(fn: Callable[[Path, Path], int], src: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of all threads, rows) of one run."""
    out = Path(tempfile.mkdtemp(prefix="airlock-bench-"))
    gc.collect()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    rows = fn(src, out)
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    shutil.rmtree(out, ignore_errors=True)
    return wall, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), rows


def big_run(path: Path) -> tuple[float, float, int]:
    """Ingest the big file in a child process; (seconds, peak RSS MiB, rows).

    The peak is the child's own VmHWM (reset by exec), not ``ru_maxrss`` of children: a forked child's
    maxrss starts out counting the parent's pages, and this parent holds every baseline's libraries.
    """
    code = (
        "import sys,time,tempfile,shutil,resource;from pathlib import Path;"
        "from airlock.ingest.pipeline import IngestOptions, ingest;"
        "o=Path(tempfile.mkdtemp());t=time.perf_counter();"
        "r=ingest(Path(sys.argv[1]),options=IngestOptions(file_id='big'),out_dir=o);s=time.perf_counter()-t;"
        "st=Path('/proc/self/status');"
        "hwm=[int(x.split()[1]) for x in st.read_text().splitlines() if x.startswith('VmHWM')] if st.exists() "
        "else [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss];"
        "print(s, hwm[0], r.rows_total, r.verdict.value, dict(r.finding_counts));shutil.rmtree(o)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, cwd=ROOT)
    seconds, peak_kib, rows, *_ = proc.stdout.split(maxsplit=3)
    print(f"  big run: {proc.stdout.strip()}", file=sys.stderr)
    return float(seconds), int(peak_kib) / 1024, int(rows)


def versions() -> str:
    from importlib.metadata import version

    names = ["pyarrow", "polars", "pandas", "pandera", "pydantic", "numpy"]
    return ", ".join(f"{n} {version(n)}" for n in names)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated CRIF file")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; best of N per contender (pandera, pydantic: 1)")
    ap.add_argument("--pydantic-rows", type=int, default=0, help="validate only the first N rows with pydantic")
    ap.add_argument("--big", action="store_true", help="also measure peak RSS ingesting a ~2 GB file")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "airlock-bench")
    ap.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md")
    args = ap.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / f"crif-{args.rows}.csv"
    if not src.exists():
        print(f"generating {src}", file=sys.stderr)
        generate(src, args.rows)
    size_mb = src.stat().st_size / 1e6
    import pandas  # noqa: F401 - imported once up front so no contender pays for it

    # Rounds interleave the fast contenders so a burst of load on a shared machine hits them alike;
    # each keeps its best wall time (and the CPU time of that run).
    results: dict[str, tuple[float, float]] = {}
    fast = (("pyarrow", bench_pyarrow), ("polars", bench_polars), ("airlock", bench_airlock))
    for round_ in range(args.repeat):
        for name, fn in fast:
            wall, cpu, _rows = timed(fn, src)
            print(f"  round {round_ + 1} {name}: {wall:.3f} s wall, {cpu:.3f} s CPU", file=sys.stderr)
            if name not in results or wall < results[name][0]:
                results[name] = (wall, cpu)
    wall, cpu, _rows = timed(bench_pandera, src)
    results["pandas+pandera"] = (wall, cpu)
    print(f"  pandas+pandera: {wall:.3f} s", file=sys.stderr)
    worst_src = args.workdir / f"crif-{args.rows}-same-amounts.csv"
    if not worst_src.exists():
        generate(worst_src, args.rows, same_amounts=True)
    worst = min((timed(bench_airlock, worst_src) for _ in range(args.repeat)), key=lambda r: r[0])
    print(f"  airlock, rows differing only in ids: {worst[0]:.3f} s", file=sys.stderr)
    limit = args.pydantic_rows or None
    wall, cpu, rows = timed(lambda s, o: bench_pydantic(s, o, limit), src)
    scale = args.rows / rows  # extrapolated when limited
    results["csv+pydantic"] = (wall * scale, cpu * scale)
    print(f"  csv+pydantic: {wall:.3f} s for {rows} rows", file=sys.stderr)

    ours = results["airlock"][0]
    fastest_bare = min(results["pyarrow"][0], results["polars"][0])
    lines = [
        "| contender | wall s | CPU s | rows/s | contender time / airlock time |",
        "|---|---|---|---|---|",
    ]
    for name, (secs, cpu) in results.items():
        lines.append(f"| {name} | {secs:.3f} | {cpu:.2f} | {args.rows / secs:,.0f} | {secs / ours:.2f} |")
    summary = [
        f"- airlock / fastest bare baseline: {ours / fastest_bare:.2f}x (target <= 1.5x: "
        f"{_met(ours / fastest_bare <= 1.5)})",
        f"- airlock / pyarrow: {ours / results['pyarrow'][0]:.2f}x; "
        f"airlock / polars: {ours / results['polars'][0]:.2f}x",
        f"- pandas+pandera / airlock: {results['pandas+pandera'][0] / ours:.2f}x (target > 1: "
        f"{_met(results['pandas+pandera'][0] > ours)})",
        f"- csv+pydantic / airlock: {results['csv+pydantic'][0] / ours:.1f}x (target >= 15x: "
        f"{_met(results['csv+pydantic'][0] >= 15 * ours)})"
        + (f" (pydantic timed on {limit:,} rows, extrapolated)" if limit else ""),
        f"- exact-duplicate worst case: the same file with every amount equal, so rows differ only in their "
        f"ids and nearly every row is a fingerprint candidate settled by reading its text: {worst[0]:.3f} s "
        f"wall, {worst[1]:.2f} CPU-s ({worst[0] / ours:.1f}x the normal file)",
        f"- two-core floor: airlock's {results['airlock'][1]:.2f} CPU-s over {os.cpu_count()} cores is at least "
        f"{results['airlock'][1] / (os.cpu_count() or 1):.2f} s wall; 1.5x the fastest bare baseline is "
        f"{1.5 * fastest_bare:.2f} s",
    ]
    big = ""
    if args.big:
        big_src = args.workdir / "crif-big.csv"
        if not big_src.exists():
            print(f"generating {big_src} (~2 GB)", file=sys.stderr)
            generate(big_src, int(BIG_BYTES / (size_mb * 1e6 / args.rows)))
        seconds, peak, rows = big_run(big_src)
        big = (
            f"- big file: {big_src.stat().st_size / 2**30:.2f} GiB, {rows:,} rows in {seconds:.1f} s "
            f"({rows / seconds:,.0f} rows/s), peak RSS {peak:.0f} MiB (target < 400 MiB: {_met(peak < 400)})"
        )
        summary.append(big)
    report = "\n".join([*lines, "", *summary])
    print(report)
    if args.write_docs:
        doc = ROOT / "docs" / "benchmarks.md"
        # Other benchmarks own marked sections of the same file (bench_identity.py): carry them over.
        kept = [m.group(0) for m in KEPT_SECTION_RE.finditer(doc.read_text(encoding="utf-8"))] if doc.exists() else []
        doc.write_text(
            "\n".join(
                [
                    "# Benchmarks",
                    "",
                    f"Generated by `benchmarks/bench_validate.py` on {datetime.now(UTC):%Y-%m-%d}.",
                    "",
                    f"- machine: {machine()}",
                    f"- load average at the end of the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
                    "(the machine is shared; wall times are best-of-N, CPU times are less sensitive to load)",
                    f"- libraries: {versions()}",
                    f"- input: generated CRIF, {args.rows:,} rows, {size_mb:.0f} MB, comma-separated with quoted "
                    "regulation lists (`benchmarks/gen_crif.py`)",
                    f"- each contender reads the file and writes Parquet; best of {args.repeat} (pandera and "
                    "pydantic: one run)",
                    "",
                    report,
                    "",
                    NOTES,
                    *(f"\n{section}\n" for section in kept),
                ]
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
