"""Collect findings with exact per-rule counts and a capped list of examples per rule."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from schemas.files.rules import RULES, Rule
from schemas.report import Finding, Severity

MAX_VALUE_CHARS = 80
DEFAULT_EXAMPLES_PER_RULE = 20


def safe_value(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """Truncate and escape control characters so a value is safe to log, print and show."""
    if value is None:
        return ""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    clipped = text[: limit + 1]
    out = []
    for ch in clipped[:limit]:
        code = ord(ch)
        if code < 32 or code == 127 or 0x80 <= code < 0xA0 or ch in "\u2028\u2029":
            out.append(repr(ch)[1:-1] if ch in "\t\n\r" else f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(clipped) > limit else "")


class Findings:
    """Exact counts per rule; examples capped per rule so a huge bad file still gives a small report.

    Thread-safe: the pipeline's publishing thread records exact duplicates while the validating thread
    records everything else (a count's ``+=`` is a read and a write, not one step).
    """

    def __init__(self, examples_per_rule: int = DEFAULT_EXAMPLES_PER_RULE) -> None:
        self.cap = examples_per_rule
        self.counts: Counter[str] = Counter()
        self._examples: dict[str, list[Finding]] = {}
        self._lock = threading.RLock()

    def wants(self, rule_id: str) -> int:
        """How many more examples of this rule would be kept."""
        return max(0, self.cap - len(self._examples.get(rule_id, ())))

    def add(self, rule: Rule, *, line: int = 0, column: str = "", value: object = None, **fields: Any) -> None:
        with self._lock:
            self.counts[rule.id] += 1
            if self.wants(rule.id):
                self._example(rule, line, column, value, fields)

    def add_many(
        self,
        rule: Rule,
        count: int,
        examples: Iterable[tuple[int, object]],
        *,
        column: str = "",
        **fields: object,
    ) -> None:
        """Count ``count`` occurrences; ``examples`` yields (line, value) and is consumed only up to the cap."""
        if count <= 0:
            return
        with self._lock:
            self.counts[rule.id] += count
            room = self.wants(rule.id)
            for i, (line, value) in enumerate(examples):
                if i >= room:
                    break
                self._example(rule, line, column, value, fields)

    def _example(self, rule: Rule, line: int, column: str, value: object, fields: dict[str, object]) -> None:
        shown = safe_value(value)
        message = rule.format(column=column, value=shown, **fields)
        finding = Finding(
            rule=rule.id, severity=Severity(rule.severity), line=line, column=column, value=shown, message=message
        )
        self._examples.setdefault(rule.id, []).append(finding)

    @property
    def errors(self) -> int:
        with self._lock:
            return sum(n for r, n in self.counts.items() if RULES[r].severity == "error")

    def has_file_error(self) -> bool:
        with self._lock:
            return any(RULES[r].scope == "file" and RULES[r].severity == "error" for r in self.counts)

    def listing(self) -> list[Finding]:
        """Examples ordered by line, then rule."""
        with self._lock:
            out: list[Finding] = [f for fs in self._examples.values() for f in fs]
        return sorted(out, key=lambda f: (f.line, f.rule))
