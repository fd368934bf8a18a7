"""Rule ids: every finding Airlock can report, registered once so docs/rules.md is generated from code.

Ids are stable forever: ``AIR-F`` file-level (always rejects), ``AIR-E`` row errors, ``AIR-W`` warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RULES: dict[str, Rule] = {}


@dataclass(frozen=True)
class Rule:
    """A rule id with its severity and a message template (``{column}``, ``{value}`` and extras)."""

    id: str
    severity: Literal["error", "warning"]
    title: str
    message: str
    scope: Literal["file", "row"] = "row"
    kinds: tuple[str, ...] = ()

    def format(self, **fields: object) -> str:
        try:
            return self.message.format(**fields)
        except (KeyError, IndexError, ValueError):
            return self.message


def rule(
    rule_id: str,
    title: str,
    message: str,
    *,
    severity: Literal["error", "warning"] = "error",
    scope: Literal["file", "row"] = "row",
    kinds: tuple[str, ...] = (),
) -> Rule:
    """Register a rule; the same id may be declared again only with the same text (module reloads)."""
    new = Rule(rule_id, severity, title, message, scope, kinds)
    old = RULES.get(rule_id)
    if old is not None and (old.title, old.message) != (title, message):
        raise ValueError(f"rule id {rule_id} declared twice with different meanings")
    if old is not None and kinds:
        new = Rule(rule_id, severity, title, message, scope, tuple(sorted(set(old.kinds) | set(kinds))))
    RULES[rule_id] = new
    return new


# --- file-level rules: any of these rejects the file -------------------------------------------------
EMPTY_FILE = rule("AIR-F001", "Empty file", "The file is empty: no header line was found.", scope="file")
NOT_UTF8 = rule(
    "AIR-F002",
    "Not valid text in the expected encoding",
    "The file is not valid {encoding} at byte offset {offset}; save it as UTF-8 and send it again.",
    scope="file",
)
BINARY = rule(
    "AIR-F003",
    "Binary content",
    "The file contains NUL bytes at byte offset {offset}: it looks binary, not a CSV text file.",
    scope="file",
)
UNKNOWN_KIND = rule(
    "AIR-F004",
    "Unknown file kind",
    "Airlock cannot tell what kind of file this is. {detail}",
    scope="file",
)
AMBIGUOUS_KIND = rule(
    "AIR-F005",
    "Ambiguous file kind",
    "The header fits several kinds equally well ({candidates}); name the kind in the routing rules.",
    scope="file",
)
MISSING_COLUMN = rule(
    "AIR-F006",
    "Missing required column",
    "Required column '{column}' is missing from the header.",
    scope="file",
)
DUPLICATE_HEADER = rule(
    "AIR-F007",
    "Duplicate column",
    "Column '{column}' appears more than once in the header.",
    scope="file",
)
DUPLICATE_KEY = rule(
    "AIR-F008",
    "Duplicate key",
    "This row repeats the key ({column}) of line {first_line}; each key may appear only once.",
    scope="file",
)
ARCHIVE = rule(
    "AIR-F009",
    "Unsafe or unreadable archive",
    "The compressed file cannot be accepted: {detail}",
    scope="file",
)
TOO_MANY_COLUMNS = rule(
    "AIR-F010",
    "Too many columns",
    "The header has {value} columns; at most {limit} are accepted.",
    scope="file",
)
LINE_TOO_LONG = rule(
    "AIR-F011",
    "Line too long",
    "A line is longer than {limit} bytes; fields this large are not accepted.",
    scope="file",
)
UNBALANCED_QUOTE = rule(
    "AIR-F012",
    "Unbalanced quotes",
    "A quoted field opened on this line is never closed.",
    scope="file",
)
NO_ROWS = rule("AIR-F013", "No data rows", "The file has a header but no data rows.", scope="file")
TOO_MANY_ERRORS = rule(
    "AIR-F014",
    "Too many bad rows",
    "{value} of {total} rows are bad; the agreed policy ({detail}) does not allow publishing this file.",
    scope="file",
)
UNREADABLE = rule(
    "AIR-F015",
    "Unreadable CSV",
    "The file could not be read as CSV: {detail}",
    scope="file",
)

# --- row rules shared by all kinds ---------------------------------------------------------------------
MISSING_VALUE = rule("AIR-E001", "Missing value", "'{column}' is required but empty.")
FIELD_COUNT = rule(
    "AIR-E002",
    "Wrong number of fields",
    "This line has {value} fields but the header has {expected}; check delimiters and quotes.",
)

# --- warnings ------------------------------------------------------------------------------------------
UNKNOWN_COLUMNS = rule(
    "AIR-W001",
    "Unknown columns ignored",
    "Column '{column}' is not part of the {kind} format; it was ignored.",
    severity="warning",
    scope="file",
)
EXACT_DUPLICATE = rule(
    "AIR-W002",
    "Duplicate row",
    "This row is an exact copy of line {first_line}; it was kept once.",
    severity="warning",
)
DUPLICATE_CHECK_LIMIT = rule(
    "AIR-W003",
    "Duplicate check limited",
    "Duplicate checking covered the first {value} keys only.",
    severity="warning",
    scope="file",
)
