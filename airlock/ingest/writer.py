"""Write normalized batches incrementally: one Parquet file per (dataset, partition), committed at the end.

Files are written under temporary names and renamed by ``commit``; ``abort`` deletes them, so a rejected
file leaves no Parquet behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MAX_PARTITIONS = 366
WRITE_BATCH = 64 * 1024
# Rows without a partition value (a CRIF file with no ValuationDate): the folder name Hive, Athena,
# Spark and DuckDB all read back as NULL.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


@dataclass
class _Open:
    writer: pq.ParquetWriter
    tmp: Path
    final: Path
    rows: int = 0


@dataclass(frozen=True)
class Written:
    dataset: str
    partition: dict[str, str]
    path: Path
    rows: int


class PartitionedWriter:
    """ParquetWriters keyed by partition value, fed by two background threads in submission order.

    ``write`` takes a table or a function making one (the pipeline's exact-duplicate check, filter and
    lineage); functions run on a publishing thread, and Parquet encoding, which releases the GIL, on a
    second one, both overlapping the next batch's validation. Each stage holds one batch waiting at
    most, which keeps memory flat. Only low-cardinality columns are dictionary-encoded
    (``dictionary_columns``): trying dictionaries on ids and amounts costs time and saves nothing.
    """

    def __init__(
        self,
        out_dir: Path,
        dataset: str,
        file_id: str,
        partition_by: str | None,
        dictionary_columns: Collection[str] = (),
    ) -> None:
        self.out_dir = out_dir
        self.dataset = dataset
        self.file_id = file_id
        self.partition_by = partition_by
        self.dictionary_columns = set(dictionary_columns)
        self._open: dict[str, _Open] = {}
        # two single-thread stages, each in submission order: ``prepare`` runs the caller's functions
        # (making the table to publish), ``encode`` writes Parquet (which releases the GIL)
        self._prepare = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airlock-publish")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airlock-parquet")
        self._pending: deque[Future[None]] = deque()
        self._encoding: deque[Future[None]] = deque()

    def write(self, table: pa.Table | Callable[[], pa.Table]) -> None:
        """Queue a table, or a function making one; functions run on a background thread, in order."""
        if isinstance(table, pa.Table) and not table.num_rows:
            return
        while len(self._pending) >= 1:
            self._pending.popleft().result()
        self._pending.append(self._prepare.submit(self._prepared, table))

    def _prepared(self, table: pa.Table | Callable[[], pa.Table]) -> None:
        if not isinstance(table, pa.Table):
            table = table()
        if not table.num_rows:
            return
        while len(self._encoding) >= 1:  # one table encoding, one waiting at most: memory stays flat
            self._encoding.popleft().result()
        self._encoding.append(self._pool.submit(self._write_now, table))

    def flush(self) -> None:
        """Wait for everything queued so far (and raise what it raised)."""
        while self._pending:
            self._pending.popleft().result()
        while self._encoding:
            self._encoding.popleft().result()

    def _drain(self) -> None:
        try:
            self.flush()
        finally:
            self._prepare.shutdown(wait=True)
            self._pool.shutdown(wait=True)

    def _write_now(self, table: pa.Table) -> None:
        if self.partition_by is None:
            self._write_part("", table)
            return
        # Hive layout: the partition value lives in the folder name, not in the file (Athena, DuckDB).
        keys = table.column(self.partition_by)
        data = table.drop_columns([self.partition_by])
        uniques = pc.unique(keys)
        if len(uniques) == 1:
            self._write_part(_text(uniques[0].as_py()), data)
            return
        for value in uniques.to_pylist():
            mask = pc.is_null(keys) if value is None else pc.equal(keys, pa.scalar(value, keys.type))
            self._write_part(_text(value), data.filter(mask))

    def _write_part(self, value: str, table: pa.Table) -> None:
        entry = self._open.get(value)
        if entry is None and len(self._open) >= MAX_PARTITIONS:
            value = "__other__"
            entry = self._open.get(value)
        if entry is None:
            folder = self.out_dir / self.dataset
            if self.partition_by is not None:
                folder = folder / f"{self.partition_by}={value or NULL_PARTITION}"
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"{self.file_id}.parquet"
            tmp = folder / f".{self.file_id}.parquet.tmp"
            dictionary = [c for c in table.column_names if c in self.dictionary_columns]
            # statistics where query engines prune on them (dates, numbers, small vocabularies); min/max
            # over millions of distinct ids costs time and prunes nothing
            stats = [f.name for f in table.schema if f.name in dictionary or not pa.types.is_string(f.type)]
            writer = pq.ParquetWriter(
                tmp,
                table.schema,
                compression="snappy",
                use_dictionary=dictionary,
                write_statistics=stats,
                column_encoding={"source_line": "DELTA_BINARY_PACKED"} if "source_line" in table.column_names else None,
                # values handed to the encoders 64k at a time instead of 1,024: same pages and bytes, about
                # a tenth less CPU (pages still close at the default 1 MiB)
                write_batch_size=WRITE_BATCH,
            )
            entry = _Open(writer, tmp, final)
            self._open[value] = entry
        entry.writer.write_table(table)
        entry.rows += table.num_rows

    def commit(self) -> list[Written]:
        self._drain()
        out: list[Written] = []
        for value, entry in sorted(self._open.items()):
            entry.writer.close()
            entry.tmp.replace(entry.final)
            part = {self.partition_by: value or NULL_PARTITION} if self.partition_by else {}
            out.append(Written(self.dataset, part, entry.final, entry.rows))
        self._open.clear()
        return out

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # aborting: the files are deleted below whatever happened
            self._drain()
        for entry in self._open.values():
            try:
                entry.writer.close()
            finally:
                entry.tmp.unlink(missing_ok=True)
        self._open.clear()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def spreadsheet_safe(cell: object) -> str:
    """Neutralise formula injection: a cell a spreadsheet would evaluate gets a leading apostrophe."""
    text = "" if cell is None else str(cell)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_text(rows: list[list[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        w.writerow([spreadsheet_safe(c) for c in row])
    return buf.getvalue()


class QuarantineWriter:
    """Rejected rows as a spreadsheet-safe CSV: line, rules, then the row's original cells."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self._fh: io.TextIOWrapper | None = None
        self.rows = 0

    def add(self, line: int, rules: list[str], cells: list[object]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._fh, lineterminator="\r\n")
            self._csv.writerow(["line", "rules", *(spreadsheet_safe(h) for h in self.header)])
        self._csv.writerow([line, " ".join(rules), *(spreadsheet_safe(c) for c in cells)])
        self.rows += 1

    def close(self) -> Path | None:
        if self._fh is None:
            return None
        self._fh.close()
        return self.path
