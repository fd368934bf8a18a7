"""Reusable cell types, each defined once with its pydantic validator and its vectorized twin.

``parse`` is the reference: it takes one stripped, non-empty cell and returns the typed value or raises
``Invalid``. ``parse_array`` is the fast path over an Arrow string array. Unless a type overrides it, the
fast path dictionary-encodes the column and runs ``parse`` once per distinct value, so the two paths
cannot disagree; types with many distinct values (numbers, free text) override it with Arrow kernels and
fall back to ``parse`` for any cell the kernel does not accept.
"""

from __future__ import annotations

import calendar
import math
import re
from datetime import date, time
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import GetCoreSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

from schemas.files import rules as R
from schemas.files.iso4217 import CURRENCIES

_CACHE_LIMIT = 100_000
_SPACES = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())  # what str.strip() strips


class Invalid(ValueError):
    """A cell that does not fit its type; carries the rule and a message for the counterparty."""

    def __init__(self, rule: R.Rule, detail: str = "") -> None:
        super().__init__(detail or rule.title)
        self.rule = rule
        self.detail = detail


class Ctx(dict[str, Any]):
    """Validation context shared by both paths (``date_order``: ``dmy`` or ``mdy``)."""

    @property
    def date_order(self) -> str:
        return str(self.get("date_order", "dmy"))


def clean(raw: object) -> str | None:
    """The engine's view of a raw cell: stripped text, or None when empty or blank."""
    if raw is None:
        return None
    text = str(raw).strip()
    if len(text) >= 3 and text.startswith('="') and text.endswith('"'):  # Excel's ="007" keeps zeros
        text = text[2:-1].strip()
    return text or None


class CellType:
    """Base of every cell type. Subclasses set ``rule``, ``arrow_type`` and implement ``parse``."""

    name: ClassVar[str] = "text"
    rule: R.Rule = R.MISSING_VALUE
    arrow_type: pa.DataType = pa.string()
    doc: str = ""
    # Small vocabularies (enums, currencies, tenors) come out dictionary-encoded: no string copy here,
    # and Parquet writes the dictionary as it is instead of hashing every value again.
    dictionary_output: ClassVar[bool] = False

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[bool, Any]] = {}

    # -- reference path ---------------------------------------------------------------------------
    def parse(self, text: str, ctx: Ctx) -> Any:
        return text

    def message(self, column: str, value: str) -> str:
        return self.rule.format(column=column, value=value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any, info: ValidationInfo) -> Any:
            ctx = Ctx(info.context or {})
            if not isinstance(value, str):
                if value is None:
                    raise PydanticCustomError(R.MISSING_VALUE.id, "required value is empty")
                return value
            text = clean(value)
            if text is None:
                raise PydanticCustomError(R.MISSING_VALUE.id, "required value is empty")
            try:
                return self.parse(text, ctx)
            except Invalid as exc:
                raise PydanticCustomError(exc.rule.id, exc.rule.title) from None

        return core_schema.with_info_plain_validator_function(validate)

    # -- fast path --------------------------------------------------------------------------------
    def parse_array(self, arr: pa.Array, ctx: Ctx) -> tuple[pa.Array, pa.Array]:
        """Typed values (null where blank or bad) and a boolean mask of bad cells."""
        return self._by_dictionary(arr, ctx, keep_dictionary=self.dictionary_output)

    def _by_dictionary(self, arr: pa.Array, ctx: Ctx, *, keep_dictionary: bool = False) -> tuple[pa.Array, pa.Array]:
        encoded = pc.dictionary_encode(arr)
        uniques = encoded.dictionary.to_pylist()
        order = ctx.date_order
        values: list[Any] = []
        bad: list[bool] = []
        for raw in uniques:
            key = (order, raw)
            hit = self._cache.get(key)
            if hit is None:
                text = clean(raw)
                if text is None:
                    hit = (True, None)
                else:
                    try:
                        hit = (True, self.parse(text, ctx))
                    except Invalid:
                        hit = (False, None)
                if len(self._cache) < _CACHE_LIMIT:
                    self._cache[key] = hit
            values.append(hit[1])
            bad.append(not hit[0])
        dict_values = pa.array(values, type=self.arrow_type)
        indices = encoded.indices
        if keep_dictionary:
            codes = indices
            if dict_values.null_count:  # blank or bad entries: point their rows at null instead
                remap = pa.array([None if v is None else i for i, v in enumerate(values)], pa.int32())
                codes = remap.take(indices)
                dict_values = pc.fill_null(dict_values, "")
            out: pa.Array = pa.DictionaryArray.from_arrays(codes, dict_values)
        else:
            out = dict_values.take(indices)
        if not any(bad):
            return out, pa.array(np.zeros(len(arr), dtype=np.bool_))
        bad_mask = pc.fill_null(pa.array(bad, type=pa.bool_()).take(indices), False)
        return out, bad_mask


# ----------------------------------------------------------------------------------------------------
class Text(CellType):
    """Free text: stripped; blank is empty. Vectorized with Arrow's trim (many distinct values)."""

    name = "text"

    def __init__(self, max_len: int = 256) -> None:
        super().__init__()
        self.max_len = max_len
        self.rule = TEXT_TOO_LONG

    def parse(self, text: str, ctx: Ctx) -> str:
        if len(text) > self.max_len:
            raise Invalid(TEXT_TOO_LONG)
        return text

    def parse_array(self, arr: pa.Array, ctx: Ctx) -> tuple[pa.Array, pa.Array]:
        if _plain_values(arr, self.max_len):  # the common case: nothing to trim, nothing too long
            return arr, pa.array(np.zeros(len(arr), dtype=np.bool_))
        trimmed = pc.utf8_trim(arr, characters=_SPACES)
        if pc.any(pc.starts_with(trimmed, '="')).as_py():
            return self._by_dictionary(arr, ctx)
        # byte lengths are nearly free; characters are counted only when some value has more bytes than
        # the limit allows characters (a character is at least one byte)
        lengths = pc.binary_length(trimmed)
        longest = pc.max(lengths).as_py()
        empty = pc.equal(lengths, 0)
        if longest is not None and longest > self.max_len:
            lengths = pc.utf8_length(trimmed)
        too_long = pc.fill_null(pc.greater(lengths, self.max_len), False)
        drop = pc.or_(empty, too_long)
        if pc.any(drop).as_py():  # rare: only then pay for rebuilding the strings
            trimmed = pc.if_else(drop, pa.scalar(None, pa.string()), trimmed)
        return trimmed, too_long


# first or last bytes that may need ``str.strip`` (ASCII whitespace, any non-ASCII byte) or ``="...``
_EDGE = np.zeros(256, dtype=np.bool_)
_EDGE[[ord(c) for c in _SPACES if ord(c) < 128]] = True
_EDGE[128:] = True
_FIRST = _EDGE.copy()
_FIRST[ord("=")] = True


def _plain_values(arr: pa.Array, max_len: int) -> bool:
    """True when no value has an edge byte to look at, none is empty and none is over ``max_len`` bytes.

    Reads the string array's offsets and bytes with numpy: a few gathers instead of trimming every value.
    """
    if not isinstance(arr, pa.StringArray) or not len(arr):
        return False
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = arr.buffers()[2]
    if data is None:
        return False
    lengths = np.diff(offsets)
    if lengths.max() > max_len:
        return False  # a value that may be too long
    present = lengths > 0
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8), bitorder="little")
        valid = bits[arr.offset : arr.offset + n].view(np.bool_)
        if (valid & ~present).any():
            return False  # an empty string that is not null
        present &= valid
    elif not present.all():
        return False
    starts = offsets[:-1][present]
    ends = offsets[1:][present]
    body = np.frombuffer(data, dtype=np.uint8)
    return not (_FIRST[body[starts]].any() or _EDGE[body[ends - 1]].any())


TEXT_TOO_LONG = R.rule("AIR-E003", "Text too long", "'{column}' is longer than allowed: {value}")


class Pattern(CellType):
    """Text that must match a regular expression (same pattern in both paths); output upper-cased if asked."""

    dictionary_output = True
    name = "pattern"

    def __init__(self, regex: str, rule: R.Rule, *, upper: bool = False, doc: str = "") -> None:
        super().__init__()
        self.regex = re.compile(regex, re.IGNORECASE)
        self.rule = rule
        self.upper = upper
        self.doc = doc

    def parse(self, text: str, ctx: Ctx) -> str:
        if not self.regex.fullmatch(text):
            raise Invalid(self.rule)
        return text.upper() if self.upper else text


class Choice(CellType):
    """An enumeration: aliases in any case, spaces ignored; output is the canonical upper-case word."""

    dictionary_output = True
    name = "enum"

    def __init__(self, aliases: dict[str, tuple[str, ...]], rule: R.Rule) -> None:
        super().__init__()
        self.canonical = list(aliases)
        self.lookup: dict[str, str] = {}
        for canon, alts in aliases.items():
            for alias in (canon, *alts):
                self.lookup[_squash(alias)] = canon
        self.rule = rule
        self.doc = ", ".join(self.canonical)

    def parse(self, text: str, ctx: Ctx) -> str:
        hit = self.lookup.get(_squash(text))
        if hit is None:
            raise Invalid(self.rule)
        return hit


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).upper()


# ---- numbers -------------------------------------------------------------------------------------------
_PLAIN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_ACCOUNTING = re.compile(r"(?:[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

BAD_NUMBER = R.rule("AIR-E011", "Not a number", "'{column}' must be a number, got '{value}'.")
NOT_POSITIVE = R.rule(
    "AIR-E016", "Not a positive number", "'{column}' must be a number greater than zero, got '{value}'."
)
NEGATIVE = R.rule("AIR-E017", "Not a non-negative number", "'{column}' must be a number, zero or more, got '{value}'.")


class Number(CellType):
    """A float64. ``accounting`` also accepts ``(123)`` negatives and US thousands commas; never ``12.300,5``.

    ``minimum`` (``">0"`` or ``">=0"``) gives the type its own rule, so every bad cell of a column has one
    rule id whichever path checked it. ``scale`` divides the value (100 turns percents into decimals).
    """

    name = "number"
    arrow_type = pa.float64()

    def __init__(self, *, accounting: bool = False, minimum: str = "", scale: float = 1.0) -> None:
        super().__init__()
        self.accounting = accounting
        self.minimum = minimum
        self.scale = scale
        self.rule = {"": BAD_NUMBER, ">0": NOT_POSITIVE, ">=0": NEGATIVE}[minimum]
        self.doc = ("accounting: (123) negatives, 1,234.5 thousands; " if accounting else "plain decimal") + (
            f" {minimum}" if minimum else ""
        )

    def parse(self, text: str, ctx: Ctx) -> float:
        body, sign = text, 1.0
        if self.accounting and len(body) > 2 and body[0] == "(" and body[-1] == ")":
            body, sign = body[1:-1].strip(), -1.0
            if body[:1] in "+-":
                raise Invalid(self.rule)
        grammar = _ACCOUNTING if self.accounting else _PLAIN
        if not grammar.fullmatch(body):
            raise Invalid(self.rule)
        value = sign * float(body.replace(",", ""))
        if not math.isfinite(value):
            raise Invalid(self.rule)
        if (self.minimum == ">0" and not value > 0) or (self.minimum == ">=0" and value < 0):
            raise Invalid(self.rule)
        return value / self.scale if self.scale != 1.0 else value

    def parse_array(self, arr: pa.Array, ctx: Ctx) -> tuple[pa.Array, pa.Array]:
        # Arrow's cast is the fast path. It accepts a few spellings the grammar does not ("inf", "nan",
        # "1e999"); those come out non-finite and send the column to ``parse``, as does any refused cell.
        try:
            values = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return self._by_dictionary(arr, ctx)
        if pc.all(pc.is_finite(values)).as_py() is False:
            return self._by_dictionary(arr, ctx)
        if self.minimum:
            ok = pc.greater(values, 0.0) if self.minimum == ">0" else pc.greater_equal(values, 0.0)
            bad = pc.fill_null(pc.invert(ok), False)
            values = pc.if_else(bad, pa.scalar(None, pa.float64()), values)
        else:
            bad = pa.array(np.zeros(len(arr), dtype=np.bool_))
        if self.scale != 1.0:
            values = pc.divide(values, self.scale)
        return values, bad


# ---- dates ---------------------------------------------------------------------------------------------
BAD_DATE = R.rule(
    "AIR-E010",
    "Not a valid date",
    "'{column}' must be a real date (yyyy-MM-dd, yyyyMMdd, d/M/yyyy, d-MMM-yyyy...), got '{value}'.",
)
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DATE_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"), "ymd"),
    (re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"), "ymd"),
    (re.compile(r"(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})"), "ymd"),
    (re.compile(r"(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})"), "slash"),
    (re.compile(r"(?P<d>\d{1,2})-(?P<mon>[A-Za-z]{3})-(?P<y>\d{4}|\d{2})"), "dmy"),
    (re.compile(r"(?P<d>\d{1,2})(?P<mon>[A-Za-z]{3})(?P<y>\d{4}|\d{2})"), "dmy"),
)


def parse_flex_date(text: str, order: str) -> date:
    """Every date form FORMATS.md lists; slash dates are day-first unless ``order`` is ``mdy``."""
    for regex, form in _DATE_FORMS:
        m = regex.fullmatch(text)
        if not m:
            continue
        g = m.groupdict()
        year = int(g["y"])
        if len(g["y"]) == 2:
            year += 2000
        if form == "slash":
            first, second = int(g["a"]), int(g["b"])
            day, month = (first, second) if order == "dmy" else (second, first)
        elif g.get("mon"):
            day, month = int(g["d"]), _MONTHS.get(g["mon"].upper(), 0)
        else:
            day, month = int(g["d"]), int(g["m"])
        try:
            return date(year, month, day)
        except ValueError:
            raise Invalid(BAD_DATE) from None
    raise Invalid(BAD_DATE)


class FlexDate(CellType):
    name = "date"
    arrow_type = pa.date32()
    rule = BAD_DATE
    doc = "ISO yyyy-MM-dd, yyyyMMdd, yyyy/M/d, d/M/yyyy (day-first unless the tenant says mdy), d-MMM-yyyy"

    def parse(self, text: str, ctx: Ctx) -> date:
        return parse_flex_date(text, ctx.date_order)


BAD_MONTH = R.rule(
    "AIR-E018",
    "Not a valid year-month",
    "'{column}' must be a year-month (yyyy-MM, MMMyy) or a date, got '{value}'.",
)
_YM_FORMS = (
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})"),
    re.compile(r"(?P<mon>[A-Za-z]{3})-?(?P<y>\d{4}|\d{2})"),
)


class YearMonthOrDate(CellType):
    """A year-month (kept as the first day of the month) or a full date; ``is_month`` tells them apart."""

    name = "year_month_or_date"
    arrow_type = pa.struct([("date", pa.date32()), ("is_month", pa.bool_())])
    rule = BAD_MONTH

    def parse(self, text: str, ctx: Ctx) -> dict[str, Any]:
        for regex in _YM_FORMS:
            m = regex.fullmatch(text)
            if m:
                g = m.groupdict()
                year = int(g["y"]) + (2000 if len(g["y"]) == 2 else 0)
                month = _MONTHS.get(g["mon"].upper(), 0) if g.get("mon") else int(g["m"])
                if not 1 <= month <= 12:
                    raise Invalid(BAD_MONTH)
                return {"date": date(year, month, 1), "is_month": True}
        try:
            return {"date": parse_flex_date(text, ctx.date_order), "is_month": False}
        except Invalid:
            raise Invalid(BAD_MONTH) from None


BAD_TIME = R.rule("AIR-E019", "Not a valid time", "'{column}' must be a time HH:mm[:ss], got '{value}'.")


class LocalTime(CellType):
    name = "time"
    arrow_type = pa.time32("s")
    rule = BAD_TIME

    def parse(self, text: str, ctx: Ctx) -> time:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
        if not m:
            raise Invalid(BAD_TIME)
        try:
            return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        except ValueError:
            raise Invalid(BAD_TIME) from None


# ---- market conventions -------------------------------------------------------------------------------
BAD_CURRENCY = R.rule("AIR-E012", "Unknown currency", "'{column}' must be an ISO 4217 currency code, got '{value}'.")


class Currency(CellType):
    dictionary_output = True
    name = "currency"
    rule = BAD_CURRENCY
    doc = "ISO 4217 three-letter code, any case; output upper case"

    def parse(self, text: str, ctx: Ctx) -> str:
        code = text.upper()
        if code not in CURRENCIES:
            raise Invalid(BAD_CURRENCY)
        return code


BAD_PAIR = R.rule(
    "AIR-E020",
    "Not a currency pair",
    "'{column}' must be two different ISO 4217 codes like EUR/USD, got '{value}'.",
)


class CurrencyPair(CellType):
    name = "currency_pair"
    rule = BAD_PAIR
    arrow_type = pa.struct([("base", pa.string()), ("quote", pa.string())])

    def parse(self, text: str, ctx: Ctx) -> dict[str, str]:
        m = re.fullmatch(r"([A-Za-z]{3})\s*/?\s*([A-Za-z]{3})", text)
        if not m:
            raise Invalid(BAD_PAIR)
        base, quote = m.group(1).upper(), m.group(2).upper()
        if base not in CURRENCIES or quote not in CURRENCIES or base == quote:
            raise Invalid(BAD_PAIR)
        return {"base": base, "quote": quote}


BAD_TENOR = R.rule(
    "AIR-E013", "Not a tenor", "'{column}' must be a positive tenor like 3M, 1Y6M or P2W, got '{value}'."
)
_TENOR = re.compile(r"P?((?:\d+[YMWD])+)", re.IGNORECASE)


class Tenor(CellType):
    """``1D 2W 3M 1Y6M``, leading ``P`` optional, positive; canonical upper case without the ``P``.

    ``allow_zero`` accepts ``0D`` (curve node labels); ``allow_term`` accepts ``T``/``1T``/``Term``
    (Strata's term frequency).
    """

    dictionary_output = True
    name = "tenor"
    rule = BAD_TENOR

    def __init__(self, *, allow_zero: bool = False, allow_term: bool = False) -> None:
        super().__init__()
        self.allow_zero = allow_zero
        self.allow_term = allow_term

    def parse(self, text: str, ctx: Ctx) -> str:
        upper = text.upper().replace(" ", "")
        if self.allow_term and upper in ("T", "1T", "TERM"):
            return "TERM"
        m = _TENOR.fullmatch(upper)
        if not m:
            raise Invalid(BAD_TENOR)
        body = m.group(1)
        if not self.allow_zero and not any(int(n) for n in re.findall(r"\d+", body)):
            raise Invalid(BAD_TENOR)
        return body


BAD_DAY_COUNT = R.rule(
    "AIR-E021",
    "Unknown day count",
    "'{column}' must be a day count such as Act/360, Act/365F, 30/360 ISDA or Act/Act ISDA, got '{value}'.",
)
DAY_COUNTS = (
    "1/1", "Act/Act ISDA", "Act/Act ICMA", "Act/Act AFB", "Act/Act Year", "Act/365 Actual", "Act/365L",
    "Act/360", "Act/364", "Act/365F", "Act/365.25", "NL/360", "NL/365", "30/360 ISDA", "30U/360",
    "30U/360 EOM", "30/360 German", "30/360 ICMA", "30E/360 ISDA", "30E/360", "30E/365", "30E+/360",
    "Bus/252",
)  # fmt: skip


class DayCount(CellType):
    dictionary_output = True
    name = "day_count"
    rule = BAD_DAY_COUNT
    doc = ", ".join(DAY_COUNTS)
    _lookup: ClassVar[dict[str, str]] = {_squash(d): d for d in DAY_COUNTS}

    def parse(self, text: str, ctx: Ctx) -> str:
        hit = self._lookup.get(_squash(text))
        if hit is None and _squash(text).startswith("BUS/252"):
            hit = "Bus/252" + text.strip()[7:].upper()
        if hit is None:
            raise Invalid(BAD_DAY_COUNT)
        return hit


class TextList(CellType):
    """A comma list inside one quoted cell (``"ESA,USPR"``): kept as canonical comma-joined text."""

    dictionary_output = True
    name = "text_list"

    def parse(self, text: str, ctx: Ctx) -> str:
        items = [p.strip() for p in text.split(",")]
        return ",".join(p for p in items if p)


# ---- enumerations (FORMATS.md: any case, canonical upper-case words) ----------------------------------
BAD_BUY_SELL = R.rule("AIR-E014", "Not buy or sell", "'{column}' must be Buy/B or Sell/S, got '{value}'.")
BAD_PAY_RECEIVE = R.rule("AIR-E015", "Not pay or receive", "'{column}' must be Pay/P or Receive/Rec/R, got '{value}'.")
BAD_PUT_CALL = R.rule("AIR-E022", "Not put or call", "'{column}' must be Put/P or Call/C, got '{value}'.")
BAD_LONG_SHORT = R.rule("AIR-E023", "Not long or short", "'{column}' must be Long/L or Short/S, got '{value}'.")
BAD_YES_NO = R.rule("AIR-E024", "Not yes or no", "'{column}' must be Yes/Y/True/T or No/N/False/F, got '{value}'.")
BAD_CHOICE = R.rule("AIR-E025", "Not an allowed value", "'{column}' has a value that is not allowed: '{value}'.")


def buy_sell() -> Choice:
    return Choice({"BUY": ("B",), "SELL": ("S",)}, BAD_BUY_SELL)


def pay_receive() -> Choice:
    return Choice({"PAY": ("P",), "RECEIVE": ("REC", "R")}, BAD_PAY_RECEIVE)


def put_call() -> Choice:
    return Choice({"PUT": ("P",), "CALL": ("C",)}, BAD_PUT_CALL)


def long_short() -> Choice:
    return Choice({"LONG": ("L",), "SHORT": ("S",)}, BAD_LONG_SHORT)


def yes_no() -> Choice:
    return Choice({"YES": ("Y", "T", "TRUE"), "NO": ("N", "F", "FALSE")}, BAD_YES_NO)


def choice(*values: str, rule: R.Rule = BAD_CHOICE, **aliases: tuple[str, ...]) -> Choice:
    table: dict[str, tuple[str, ...]] = {v: () for v in values}
    for canon, alts in aliases.items():
        table[canon] = alts
    return Choice(table, rule)
