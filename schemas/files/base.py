"""The contract base class, column declarations and the cross-field rule vocabulary.

A contract is a pydantic model whose fields are cell types (``schemas.files.types``) declared with
``column(...)``; its row rules are small declarative objects that evaluate both one row (reference) and a
whole batch of Arrow arrays (fast path). The engine in ``airlock.ingest`` compiles contracts from these
declarations; nothing here knows about files, S3 or the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from schemas.files import rules as R
from schemas.files.types import CellType

SCHEMA_VERSION = "1.0.0"


def squash_header(name: str) -> str:
    """Header matching key: case-, space-, underscore- and hyphen-insensitive."""
    return "".join(ch for ch in name.casefold() if ch.isalnum() or ch in "/%")


@dataclass(frozen=True)
class ColumnSpec:
    """How a field is found in a header and whether the header must be present."""

    headers: tuple[str, ...]
    required: bool = False  # the header must be present (file-level AIR-F006)
    output: str | None = None  # output column name, default the field name


def column(*headers: str, required: bool = False, default: Any = None, output: str | None = None) -> Any:
    """Declare a field: the header spellings (first is canonical), header requirement and default."""
    spec = ColumnSpec(tuple(headers), required, output)
    return Field(default=default, json_schema_extra={"airlock": spec})  # type: ignore[dict-item]


def value_required(headers: Sequence[str]) -> Any:
    """A field whose header and value are both required."""
    spec = ColumnSpec(tuple(headers), True, None)
    return Field(json_schema_extra={"airlock": spec})  # type: ignore[dict-item]


class Columns(Mapping[str, pa.Array]):
    """Parsed columns as stored (some dictionary-encoded), decoded once on first plain access."""

    def __init__(self, stored: dict[str, pa.Array]) -> None:
        self._stored = stored
        self._plain: dict[str, pa.Array] = {}

    def stored(self, name: str) -> pa.Array:
        return self._stored[name]

    def __getitem__(self, name: str) -> pa.Array:
        hit = self._plain.get(name)
        if hit is None:
            arr = self._stored[name]
            hit = arr.dictionary_decode() if isinstance(arr, pa.DictionaryArray) else arr
            self._plain[name] = hit
        return hit

    def __contains__(self, name: object) -> bool:  # Mapping's would decode the column to answer
        return name in self._stored

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)


# ---- row rules ----------------------------------------------------------------------------------------
Row = Mapping[str, Any]
Cols = Mapping[str, pa.Array]


class Cond:
    """A boolean condition over one row (``py``) or over a batch of parsed columns (``vec``)."""

    def py(self, row: Row) -> bool:
        raise NotImplementedError

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        raise NotImplementedError

    def fields(self) -> tuple[str, ...]:
        """The fields this condition reads (named in findings)."""
        parts = [getattr(self, a) for a in ("names", "name", "a", "b") if hasattr(self, a)]
        out: list[str] = []
        for p in parts:
            out.extend(p if isinstance(p, tuple) else (p,))
        for child in getattr(self, "parts", ()) or ((self.part,) if hasattr(self, "part") else ()):
            out.extend(child.fields())
        return tuple(dict.fromkeys(out))

    def __and__(self, other: Cond) -> Cond:
        return All((self, other))

    def __or__(self, other: Cond) -> Cond:
        return Any_((self, other))

    def __invert__(self) -> Cond:
        return Not(self)


def _stored(cols: Cols, name: str) -> pa.Array | None:
    """The column as stored (dictionary-encoded ones stay encoded: no decode for a row rule)."""
    if isinstance(cols, Columns):
        return cols.stored(name) if name in cols else None
    return cols.get(name)


def _on_values(arr: pa.Array, kernel: Any) -> pa.Array:
    """A per-value boolean kernel; on a dictionary array it runs once per distinct value."""
    if isinstance(arr, pa.DictionaryArray):
        return kernel(arr.dictionary).take(arr.indices)
    return kernel(arr)


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


@dataclass(frozen=True)
class Present(Cond):
    """All named fields have a value."""

    names: tuple[str, ...]

    def py(self, row: Row) -> bool:
        return all(row.get(n) is not None for n in self.names)

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        out = np.ones(n, dtype=np.bool_)
        for name in self.names:
            arr = _stored(cols, name)
            if arr is None:
                return np.zeros(n, dtype=np.bool_)
            out &= _np(pc.is_valid(arr))
        return out


@dataclass(frozen=True)
class In(Cond):
    """The field's (canonical) value is one of ``values``."""

    name: str
    values: tuple[Any, ...]

    def py(self, row: Row) -> bool:
        return row.get(self.name) in self.values

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        arr = _stored(cols, self.name)
        if arr is None:
            return np.zeros(n, dtype=np.bool_)
        plain = arr.type.value_type if isinstance(arr, pa.DictionaryArray) else arr.type
        value_set = pa.array(self.values, type=plain)
        return _np(_on_values(arr, lambda a: pc.is_in(a, value_set=value_set)))


@dataclass(frozen=True)
class StartsWith(Cond):
    name: str
    prefix: str

    def py(self, row: Row) -> bool:
        value = row.get(self.name)
        return isinstance(value, str) and value.startswith(self.prefix)

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        arr = _stored(cols, self.name)
        if arr is None:
            return np.zeros(n, dtype=np.bool_)
        return _np(_on_values(arr, lambda a: pc.starts_with(a, self.prefix)))


@dataclass(frozen=True)
class Differ(Cond):
    """Two fields hold different values (true when either is empty)."""

    a: str
    b: str

    def py(self, row: Row) -> bool:
        x, y = row.get(self.a), row.get(self.b)
        return x is None or y is None or x != y

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        x, y = cols.get(self.a), cols.get(self.b)
        if x is None or y is None:
            return np.ones(n, dtype=np.bool_)
        return ~_np(pc.equal(x, y))


@dataclass(frozen=True)
class All(Cond):
    parts: tuple[Cond, ...]

    def py(self, row: Row) -> bool:
        return all(p.py(row) for p in self.parts)

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        out = np.ones(n, dtype=np.bool_)
        for p in self.parts:
            out &= p.vec(cols, n)
        return out


@dataclass(frozen=True)
class Any_(Cond):
    parts: tuple[Cond, ...]

    def py(self, row: Row) -> bool:
        return any(p.py(row) for p in self.parts)

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.bool_)
        for p in self.parts:
            out |= p.vec(cols, n)
        return out


@dataclass(frozen=True)
class Not(Cond):
    part: Cond

    def py(self, row: Row) -> bool:
        return not self.part.py(row)

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        return ~self.part.vec(cols, n)


class Always(Cond):
    def py(self, row: Row) -> bool:
        return True

    def vec(self, cols: Cols, n: int) -> np.ndarray:
        return np.ones(n, dtype=np.bool_)


def present(*names: str) -> Present:
    return Present(tuple(names))


def is_in(name: str, *values: Any) -> In:
    return In(name, tuple(values))


@dataclass(frozen=True)
class RowRule:
    """``when`` holds, then ``check`` must hold; otherwise the row fails with ``rule``."""

    rule: R.Rule
    check: Cond
    when: Cond = field(default_factory=Always)
    columns: tuple[str, ...] = ()

    def fields(self) -> tuple[str, ...]:
        return self.columns or self.check.fields()

    def failing_py(self, row: Row) -> bool:
        return self.when.py(row) and not self.check.py(row)

    def failing_vec(self, cols: Cols, n: int) -> np.ndarray:
        return self.when.vec(cols, n) & ~self.check.vec(cols, n)


class Layout:
    """Maps a raw batch in some wide layout to a raw batch with the contract's standard headers."""

    names: list[str]

    def apply(self, batch: pa.RecordBatch, lines: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
        raise NotImplementedError


class FileCheck:
    """A rule across the whole file with bounded state; ``check`` sees parsed columns batch by batch."""

    def check(self, cols: Mapping[str, pa.Array], lines: np.ndarray, ok: np.ndarray) -> list[tuple[R.Rule, np.ndarray]]:
        raise NotImplementedError

    def finish(self) -> list[tuple[R.Rule, int]]:
        return []

    def columns(self, n: int) -> dict[str, pa.Array]:
        """Extra output columns for the batch last checked (same rows, same schema every batch)."""
        return {}


# ---- the contract base --------------------------------------------------------------------------------
class Contract(BaseModel):
    """One file kind. Subclasses declare fields with ``column`` and the class variables below."""

    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    kind: ClassVar[str] = ""
    dataset: ClassVar[str] = ""
    description: ClassVar[str] = ""
    unique: ClassVar[tuple[str, ...]] = ()  # fields forming a key that may appear once (AIR-F008)
    exact_duplicates_warn: ClassVar[bool] = False  # exact duplicate rows: warning, kept once (AIR-W002)
    partition_by: ClassVar[str | None] = None  # a date field: one Hive partition per value
    row_rules: ClassVar[tuple[RowRule, ...]] = ()
    # Header signature for kind detection: all of ``signature`` must be present (besides required columns).
    signature: ClassVar[tuple[str, ...]] = ()
    # Groups of fields of which at least one header must be present (AIR-F006).
    required_one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()

    @model_validator(mode="after")
    def _row_rules(self, info: ValidationInfo) -> Contract:
        row = self.__dict__
        for rr in self.row_rules:
            if rr.failing_py(row):
                raise PydanticCustomError(rr.rule.id, rr.rule.title)
        return self

    @classmethod
    def outputs(cls, cols: Mapping[str, pa.Array]) -> dict[str, pa.Array]:
        """Normalized output columns from the parsed fields (override to split or rename).

        ``cols`` decodes dictionary-encoded columns on access; ``stored`` keeps them encoded for Parquet.
        """
        stored = getattr(cols, "stored", cols.__getitem__)
        return {spec.output or name: stored(name) for name, (spec, _t, _r) in cls.specs().items()}

    @classmethod
    def layout(cls, names: list[str]) -> Layout | None:
        """A reshaping of non-standard layouts (wide sensitivities) into the contract's own columns."""
        return None

    @classmethod
    def file_checks(cls) -> list[FileCheck]:
        """Fresh stateful checks that span batches (continuation rows, month-end fixings)."""
        return []

    @classmethod
    def specs(cls) -> dict[str, tuple[ColumnSpec, CellType, bool]]:
        """field -> (column spec, cell type, value required) in declaration order."""
        out: dict[str, tuple[ColumnSpec, CellType, bool]] = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            spec = extra.get("airlock") if isinstance(extra, dict) else None
            if not isinstance(spec, ColumnSpec):
                continue
            ctype = next((m for m in info.metadata if isinstance(m, CellType)), None)
            if ctype is None:
                raise TypeError(f"{cls.__name__}.{name} has no cell type")
            out[name] = (spec, ctype, info.is_required())
        return out
