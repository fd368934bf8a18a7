"""Ingest one file: bytes in, typed Parquet, quarantine and a report out. No AWS, no Lambda.

Status (for the worker): all ten kinds work end to end through ``ingest`` -- trades, positions,
sensitivities (standard/list/grid), crif, quotes, fx_rates, fixings, curves, curve_groups,
curve_settings -- and every sample in tests/data/samples gets its SOURCES.md verdict. ``report_csv``
renders the spreadsheet-safe report. ``ingest`` never raises for file content; an internal error
becomes a rejected outcome with AIR-F015 (and is logged).

Flow: materialize the input (spool streams, expand gzip/zip with limits) -> ``LineSource`` cleans the
bytes and keeps physical line numbers -> kind detection -> pyarrow's streaming CSV reader in bounded
batches -> ``CompiledContract.validate`` per batch -> file-wide checks (duplicate keys, exact
duplicates, cross-row rules) -> good rows to Parquet (temporary names), bad rows to the quarantine CSV ->
verdict; a rejected file's Parquet is deleted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from airlock.ingest.detect import detect
from airlock.ingest.engine import Binding, CompiledContract, compiled
from airlock.ingest.exact import ExactDuplicates, fingerprints
from airlock.ingest.findings import Findings
from airlock.ingest.keys import SeenKeys, row_fingerprints
from airlock.ingest.reader import FileProblem, LineSource
from airlock.ingest.recordtext import RecordText
from airlock.ingest.source import Spool, materialize
from airlock.ingest.writer import PartitionedWriter, QuarantineWriter, Written, csv_text
from schemas.files import SCHEMA_VERSION
from schemas.files import rules as R
from schemas.files.base import Contract, FileCheck, Layout
from schemas.files.types import Ctx, Number, Text
from schemas.report import FileReport, Finding, OutputRef, RowCounts, Verdict
from schemas.tenant import IngestPolicy

BLOCK_SIZE = 16 << 20
BIG_FILE = 256 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOptions:
    tenant_id: str = "local"
    file_id: str = "local"
    source_key: str = ""  # e.g. "inbound/2024/quotes.csv"; used for routing globs and lineage
    kind: str | None = None  # force a kind; else routing rules then header sniffing
    policy: IngestPolicy = IngestPolicy()  # noqa: RUF009 - frozen pydantic model, safe to share
    ingested_at: datetime | None = None  # default now (UTC)


@dataclass(frozen=True)
class OutputFile:
    dataset: str
    partition: dict[str, str]
    path: Path
    rows: int


@dataclass
class IngestOutcome:
    kind: str
    verdict: Verdict
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    findings: list[Finding]
    finding_counts: dict[str, int]
    outputs: list[OutputFile]
    quarantine: Path | None
    schema_version: str
    duration_s: float
    file: str = ""
    tenant_id: str = "local"
    file_id: str = "local"
    source_key: str = ""
    ingested_at: str = ""

    def report(self) -> FileReport:
        return FileReport(
            file=self.file,
            tenant_id=self.tenant_id,
            file_id=self.file_id,
            source_key=self.source_key,
            kind=self.kind,
            verdict=self.verdict,
            rows=RowCounts(total=self.rows_total, accepted=self.rows_accepted, rejected=self.rows_rejected),
            findings=self.findings,
            finding_counts=self.finding_counts,
            outputs=[
                OutputRef(dataset=o.dataset, partition=o.partition, path=str(o.path), rows=o.rows) for o in self.outputs
            ],
            quarantine=str(self.quarantine) if self.quarantine else None,
            schema_version=self.schema_version,
            ingested_at=self.ingested_at,
            duration_s=self.duration_s,
        )


def report_csv(report: FileReport) -> str:
    """The report as CSV text for the counterparty; every cell is safe to open in a spreadsheet."""
    rows: list[list[object]] = [
        ["file", report.file],
        ["kind", report.kind],
        ["verdict", report.verdict.value],
        ["rows total", report.rows.total],
        ["rows accepted", report.rows.accepted],
        ["rows rejected", report.rows.rejected],
        [],
        ["rule", "count"],
    ]
    rows.extend([rule_id, n] for rule_id, n in sorted(report.finding_counts.items()))
    rows.append([])
    rows.append(["rule", "severity", "line", "column", "value", "message"])
    rows.extend([f.rule, f.severity.value, f.line, f.column, f.value, f.message] for f in report.findings)
    return csv_text(rows)


class _Prefetch:
    """Pulls the next parsed batch, its line numbers and its record spans on a thread, ahead of validation.

    pyarrow's streaming reader parses a block only when asked for the next batch; asking from here lets
    parsing (which releases the GIL) overlap the validation of the batch before. At most ``depth``
    batches wait, so memory stays flat; errors reach the consumer in order, at the batch they hit.
    """

    def __init__(self, reader: pacsv.CSVStreamingReader, src: LineSource, depth: int = 1) -> None:
        self._reader = reader
        self._src = src
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="airlock-parse", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    self._put(None)
                    return
                n = batch.num_rows
                spans = self._src.take_spans(n) if self._src.texts is not None else None
                self._put((batch, self._src.take_lines(n), spans))
        except BaseException as exc:  # handed to the consumer, which raises it where it always did
            self._put(exc)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray | None] | None:
        """The next batch with its lines and record spans; None at the end."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


class _NeedsExact(Exception):
    """pyarrow met a row whose field count differs from the header: rerun in exact mode."""


@dataclass
class _State:
    findings: Findings = field(default_factory=Findings)
    kind: str = "unknown"
    total: int = 0
    good: int = 0
    bad: int = 0
    outputs: list[Written] = field(default_factory=list)
    quarantine: Path | None = None
    problem: bool = False


def ingest(source: Path | BinaryIO, *, options: IngestOptions, out_dir: Path) -> IngestOutcome:
    """Check and normalize one file; never raises for anything the file contains."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    at = options.ingested_at or datetime.now(UTC)
    spool = Spool(out_dir)
    name = str(source) if isinstance(source, (str, Path)) else (options.source_key or getattr(source, "name", "stream"))
    try:
        try:
            path = materialize(source, spool)
        except FileProblem as exc:
            state = _State()
            _file_problem(state.findings, exc)
            state.problem = True
        else:
            _tune_memory(path.stat().st_size)
            try:
                fast = _Run(path, options, out_dir, at, spool=spool, exact=False).execute()
                # a row whose field count differs from the header: the exact (slower) mode fixes or reports it
                exact = fast or _Run(path, options, out_dir, at, spool=spool, exact=True).execute()
                state = exact or _State(problem=True)
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a bug must not cost the counterparty a report: reject, say so, log
                log.exception("ingest failed on %s", name)
                state = _State(problem=True)
                state.findings.add(R.UNREADABLE, detail=f"internal error ({type(exc).__name__}); support has been told")
    finally:
        spool.close()
    verdict = _verdict(state, options.policy)
    outputs = [OutputFile(w.dataset, w.partition, w.path, w.rows) for w in state.outputs]
    if verdict is Verdict.REJECTED:
        for o in outputs:
            o.path.unlink(missing_ok=True)
        outputs = []
    return IngestOutcome(
        kind=state.kind,
        verdict=verdict,
        rows_total=state.total,
        rows_accepted=state.good if verdict is not Verdict.REJECTED else 0,
        rows_rejected=state.bad if verdict is not Verdict.REJECTED else state.total,
        findings=state.findings.listing(),
        finding_counts=dict(sorted(state.findings.counts.items())),
        outputs=outputs,
        quarantine=state.quarantine,
        schema_version=SCHEMA_VERSION,
        duration_s=round(time.perf_counter() - started, 6),
        file=name,
        tenant_id=options.tenant_id,
        file_id=options.file_id,
        source_key=options.source_key,
        ingested_at=at.isoformat(),
    )


def _tune_memory(size: int) -> None:
    """Keep RSS flat on big files: jemalloc returning freed pages at once (mimalloc holds on to them).

    Process-wide, set once per call; an explicit ARROW_DEFAULT_MEMORY_POOL is left alone. Small files
    keep jemalloc's default decay, which is faster.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return
    if pa.default_memory_pool().backend_name != "jemalloc":
        pa.set_memory_pool(pool)
    pa.jemalloc_set_decay_ms(0 if size > BIG_FILE else 1000)


def _verdict(state: _State, policy: IngestPolicy) -> Verdict:
    f = state.findings
    if state.problem or f.has_file_error():
        return Verdict.REJECTED
    if state.bad == 0:
        return Verdict.ACCEPTED
    ratio = state.bad / state.total if state.total else 1.0
    if policy.allow_partial and state.good > 0 and ratio < policy.max_error_ratio:
        return Verdict.ACCEPTED_WITH_ERRORS
    if policy.allow_partial:
        f.add(
            R.TOO_MANY_ERRORS,
            value=state.bad,
            total=state.total,
            detail=f"at most {policy.max_error_ratio:.2%} bad rows",
        )
    return Verdict.REJECTED


def _dictionary_columns(cc: CompiledContract) -> set[str]:
    """Output columns worth dictionary-encoding: every typed field except free text and numbers."""
    wide = {spec.output or name for name, (spec, ct, _r) in cc.specs.items() if isinstance(ct, (Text, Number))}
    probe = {name: pa.nulls(0, ct.arrow_type) for name, (_s, ct, _r) in cc.specs.items()}
    names = set(cc.contract.outputs(probe))
    return (names - wide) | {"tenant_id", "file_id", "source_key"}


def _show(value: object) -> str:
    if isinstance(value, dict):  # struct cells such as a currency pair
        return "/".join(str(v) for v in value.values())
    return str(value)


def _file_problem(findings: Findings, exc: FileProblem) -> None:
    findings.add(exc.rule, line=exc.line, value=exc.value, **exc.fields)


class _Run:
    """One pass over the file (fast or exact mode)."""

    def __init__(
        self, path: Path, options: IngestOptions, out_dir: Path, at: datetime, *, spool: Spool, exact: bool
    ) -> None:
        self.path = path
        self.spool = spool
        self.options = options
        self.out_dir = out_dir
        self.at = at
        self.exact = exact
        self.ctx = Ctx(date_order=options.policy.date_order)
        self.state = _State()

    def execute(self) -> _State | None:
        """The run's state, or None when the fast mode must hand over to exact mode."""
        with self.path.open("rb") as fh:
            src = LineSource(fh, encoding=self.options.policy.encoding, exact=self.exact)
            try:
                header = src.read_header()
            except FileProblem as exc:
                _file_problem(self.state.findings, exc)
                self.state.problem = True
                return self.state
            except LookupError as exc:
                self.state.findings.add(R.UNREADABLE, detail=f"unknown encoding ({exc})")
                self.state.problem = True
                return self.state
            found = detect(
                header.names, kind=self.options.kind, source_key=self.options.source_key, policy=self.options.policy
            )
            if found.contract is None:
                assert found.problem is not None
                rule, fields = found.problem
                self.state.findings.add(rule, line=header.line, **fields)
                self.state.problem = True
                return self.state
            contract = found.contract
            self.state.kind = contract.kind
            if contract.exact_duplicates_warn:
                src.texts = RecordText(self.path, lambda: self.spool.new(".text"))
            try:
                return self._validate(src, header.line, header.names, header.delimiter, contract)
            finally:
                if src.texts is not None:
                    src.texts.close()

    def _validate(
        self, src: LineSource, header_line: int, names: list[str], delim: str, contract: type[Contract]
    ) -> _State | None:
        st = self.state
        cc = compiled(contract)
        layout: Layout | None = contract.layout(names)
        binding = cc.bind(layout.names if layout else names)
        for dup in binding.duplicates:
            st.findings.add(R.DUPLICATE_HEADER, line=header_line, column=dup)
        for col in binding.missing:
            st.findings.add(R.MISSING_COLUMN, line=header_line, column=col)
        if binding.duplicates or binding.missing:
            st.problem = True
            return st
        for col in binding.unknown:
            st.findings.add(R.UNKNOWN_COLUMNS, line=header_line, column=col, kind=contract.kind)
        ncols = len(names)
        col_names = [f"c{i}" for i in range(ncols)]
        mismatch: list[int] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            mismatch.append(row.actual_columns)
            return "error"

        reader: pacsv.CSVStreamingReader | None = None
        try:
            reader = self._open_reader(src, delim, col_names, on_invalid)
        except pa.ArrowInvalid as exc:
            if mismatch and not self.exact:
                return None
            if src.problem is None and src.records:  # no records at all is AIR-F013, reported below
                st.findings.add(R.UNREADABLE, detail=str(exc).splitlines()[0][:200])
                st.problem = True
        writer = PartitionedWriter(
            self.out_dir, contract.dataset, self.options.file_id, contract.partition_by, _dictionary_columns(cc)
        )
        quarantine = QuarantineWriter(self.out_dir / "quarantine" / f"{self.options.file_id}.csv", names)
        checks: list[FileCheck] = contract.file_checks()
        keys = SeenKeys() if contract.unique else None
        exact_dups = ExactDuplicates(src.texts) if src.texts is not None else None
        ahead = _Prefetch(reader, src) if reader is not None else None
        try:
            while ahead is not None:
                try:
                    item = ahead.next()
                except pa.ArrowInvalid as exc:
                    if mismatch and not self.exact:
                        writer.abort()
                        quarantine.close()
                        return None
                    if src.problem is None:
                        st.findings.add(R.UNREADABLE, detail=str(exc).splitlines()[0][:200])
                        st.problem = True
                    break
                if item is None:
                    break
                batch, lines, spans = item
                self._batch(
                    cc=cc,
                    binding=binding,
                    layout=layout,
                    batch=batch,
                    lines=lines,
                    spans=spans,
                    writer=writer,
                    quarantine=quarantine,
                    checks=checks,
                    keys=keys,
                    exact_dups=exact_dups,
                )
            for check in checks:
                for rule, count in check.finish():
                    st.findings.add_many(rule, count, ())
            if src.problem is not None:
                _file_problem(st.findings, src.problem)
                st.problem = True
            for d in src.dropped:
                st.findings.add(R.FIELD_COUNT, line=d.line, value=d.fields, expected=ncols)
                quarantine.add(d.line, [R.FIELD_COUNT.id], [d.text.decode("utf-8", "replace")])
            if src.dropped_count > len(src.dropped):
                st.findings.add_many(R.FIELD_COUNT, src.dropped_count - len(src.dropped), (), expected=ncols)
            st.bad += src.dropped_count
            st.total += src.dropped_count
            writer.flush()  # the writer's thread owns the exact-duplicate store until here
            for store in (keys, exact_dups):
                if store is not None and store.capped:
                    st.findings.add(R.DUPLICATE_CHECK_LIMIT, value=f"{store.remembered:,}")
                    break
            if st.total == 0 and not st.problem:
                st.findings.add(R.NO_ROWS, line=header_line)
                st.problem = True
        except BaseException:
            writer.abort()
            quarantine.close()
            raise
        finally:
            src.close()  # unblocks and stops pyarrow's reader thread, whatever happened above
            if ahead is not None:
                ahead.close()
        st.outputs = writer.commit()
        st.quarantine = quarantine.close()
        return st

    @staticmethod
    def _open_reader(
        src: LineSource, delim: str, col_names: list[str], on_invalid: Callable[[pacsv.InvalidRow], str]
    ) -> pacsv.CSVStreamingReader:
        return pacsv.open_csv(
            src,
            read_options=pacsv.ReadOptions(column_names=col_names, block_size=BLOCK_SIZE, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(col_names, pa.string()),
                check_utf8=False,  # LineSource hands on only valid UTF-8 (checked, or transcoded to it)
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )

    def _batch(
        self,
        *,
        cc: CompiledContract,
        binding: Binding,
        layout: Layout | None,
        batch: pa.RecordBatch,
        lines: np.ndarray,
        spans: np.ndarray | None,
        writer: PartitionedWriter,
        quarantine: QuarantineWriter,
        checks: list[FileCheck],
        keys: SeenKeys | None,
        exact_dups: ExactDuplicates | None,
    ) -> None:
        st = self.state
        raw_batch, raw_lines = batch, lines
        if layout is not None:
            batch, lines = layout.apply(batch, lines)
        res = cc.validate(batch, lines, binding, self.ctx, st.findings)
        bad = res.bad
        ok = ~bad
        table = res.table
        for check in checks:
            for rule, mask in check.check(res.cols, lines, ok):
                if mask.any():
                    st.findings.add_many(rule, int(mask.sum()), ((int(lines[i]), "") for i in np.flatnonzero(mask)))
                    for i in np.flatnonzero(mask).tolist():
                        res.rules.setdefault(i, []).append(rule.id)
                    bad = bad | mask
            for name, column in check.columns(len(bad)).items():
                table = table.append_column(name, column)
        if keys is not None and ok.any():
            self._unique(cc, cols=res.cols, lines=lines, bad=bad, keys=keys, rules=res.rules)
        keep = ~bad
        n_bad = int(bad.sum())
        n_rows = len(bad)
        st.total += n_rows
        st.bad += n_bad
        st.good += n_rows - n_bad
        if n_bad:
            self._quarantine(
                raw_batch, raw_lines=raw_lines, lines=lines, bad=bad, rules=res.rules, quarantine=quarantine
            )
        dups = exact_dups if spans is not None and layout is None else None
        if keep.any() or dups is not None:  # bad rows are remembered too: a later copy of one is a duplicate
            # exact duplicates, lineage and Parquet run on the writer's thread, in batch order, while this
            # thread validates the next batch (the fingerprint store is numpy work that releases the GIL)
            writer.write(lambda: self._publish(table, lines, keep, spans, dups))

    def _publish(
        self,
        table: pa.Table,
        lines: np.ndarray,
        keep: np.ndarray,
        spans: np.ndarray | None,
        dups: ExactDuplicates | None,
    ) -> pa.Table:
        """The batch's rows to publish: good rows, each exact duplicate of an earlier row dropped (warning).

        Runs on the writer's thread, batch after batch in order: the fingerprint store, filtering and
        lineage leave the validating thread's critical path.
        """
        if dups is not None and spans is not None:
            repeat, first = dups.check(fingerprints(table), lines, spans)
            dup = repeat & keep
            if dup.any():
                where = np.flatnonzero(dup)
                findings = self.state.findings
                room = findings.wants(R.EXACT_DUPLICATE.id)
                for i in where[:room].tolist():  # each example names its own original
                    findings.add(R.EXACT_DUPLICATE, line=int(lines[i]), first_line=int(first[i]))
                findings.add_many(R.EXACT_DUPLICATE, len(where) - min(room, len(where)), ())
                keep = keep & ~dup
        table = table if keep.all() else table.filter(pa.array(keep))
        return self._lineage(table, lines[keep])

    def _unique(
        self,
        cc: CompiledContract,
        *,
        cols: Mapping[str, pa.Array],
        lines: np.ndarray,
        bad: np.ndarray,
        keys: SeenKeys,
        rules: dict[int, list[str]],
    ) -> None:
        ok_idx = np.flatnonzero(~bad)
        if not len(ok_idx):
            return
        take = pa.array(ok_idx)
        key_cols = [cols[k].take(take).to_pylist() for k in cc.contract.unique]
        fp = row_fingerprints(key_cols)
        repeat, first = keys.check(fp, lines[ok_idx])
        if repeat.any():
            where = np.flatnonzero(repeat)
            label = ", ".join(cc.display(k) for k in cc.contract.unique)
            for j in where.tolist():
                i = int(ok_idx[j])
                self.state.findings.add(
                    R.DUPLICATE_KEY,
                    line=int(lines[i]),
                    column=label,
                    value=" | ".join(_show(c[j]) for c in key_cols),
                    first_line=int(first[j]),
                )
                rules.setdefault(i, []).append(R.DUPLICATE_KEY.id)

    def _quarantine(
        self,
        raw_batch: pa.RecordBatch,
        *,
        raw_lines: np.ndarray,
        lines: np.ndarray,
        bad: np.ndarray,
        rules: dict[int, list[str]],
        quarantine: QuarantineWriter,
    ) -> None:
        """Bad rows with their original cells (for wide layouts: the source line's cells, once)."""
        by_line: dict[int, list[str]] = {}
        for i in np.flatnonzero(bad).tolist():
            by_line.setdefault(int(lines[i]), []).extend(rules.get(i, []))
        wanted = np.isin(raw_lines, np.fromiter(by_line, dtype=np.int64, count=len(by_line)))
        idx = np.flatnonzero(wanted)
        rows = raw_batch.take(pa.array(idx)).to_pylist()
        for i, row in zip(idx.tolist(), rows, strict=True):
            line = int(raw_lines[i])
            quarantine.add(line, sorted(set(by_line[line])), list(row.values()))

    def _lineage(self, table: pa.Table, lines: np.ndarray) -> pa.Table:
        n = table.num_rows
        o = self.options
        zeros = pa.array(np.zeros(n, dtype=np.int32))
        for name, value in (("tenant_id", o.tenant_id), ("file_id", o.file_id), ("source_key", o.source_key)):
            # one-value dictionaries: Parquet writes them as they are instead of hashing n equal strings
            table = table.append_column(name, pa.DictionaryArray.from_arrays(zeros, pa.array([value], pa.string())))
        table = table.append_column("source_line", pa.array(lines, type=pa.int64()))
        at = pa.scalar(self.at, type=pa.timestamp("us", tz="UTC"))
        return table.append_column("ingested_at", pa.repeat(at, n))


__all__ = ["IngestOptions", "IngestOutcome", "OutputFile", "ingest", "pc", "report_csv"]
