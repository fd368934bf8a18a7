"""Differential test: the vectorized engine reports exactly what pydantic row validation reports.

Rows are generated per contract from each cell type's interesting values plus random text, written as
CSV, ingested through the fast path, and compared with the pydantic models validating the same cells.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.ingest.engine import compiled
from airlock.ingest.findings import DEFAULT_EXAMPLES_PER_RULE
from airlock.ingest.pipeline import IngestOptions, ingest
from airlock.ingest.reference import reference_findings
from schemas.files import CONTRACTS
from schemas.files import types as T
from schemas.files.base import Contract
from schemas.tenant import IngestPolicy

# file-wide rules are not row validation: the reference does not model them
NOT_ROW_RULES = {"AIR-F008", "AIR-F013", "AIR-F017", "AIR-W001", "AIR-W002"}

SAMPLES: dict[type[T.CellType], list[str]] = {
    T.FlexDate: ["2014-01-22", "22/01/2014", "1/2/14", "20140122", "2014/1/2", "5-Jan-2014", "5jan14", "2014-02-30"],
    T.Number: ["1.5", "-2", "(3)", "1,234.5", "1e5", ".5", "5.", "inf", "nan", "1e999", "+1", "12.300,5", " 7 ", "0"],
    T.Currency: ["USD", "eur", "XXX", "US", "gbp "],
    T.CurrencyPair: ["EUR/USD", "eurusd", "EUR/EUR", "EUR/XXX"],
    T.Text: ["abc", " x ", '="007"', "Risk_IRCurve"],
    T.Tenor: ["1Y", "P3M", "0D", "1y6m", "T", "2w"],
    T.DayCount: ["Act/360", "act/365f", "30/360 ISDA", "Act", "Bus/252 BRBD"],
    T.YearMonthOrDate: ["2017-01", "Jan17", "2017-01-31", "2017-01-30", "2017-13"],
    T.LocalTime: ["11:00", "25:00", "9:05:10"],
    T.TextList: ["ESA, USPR", "SEC"],
    T.Pattern: ["1", "12", "Residual", "XEUR", "ab"],
}
NOISE = st.text(alphabet=' ,.-+()eE/0123456789aBzPYMD\u00e9\u0661="', max_size=10)


def cell(ctype: T.CellType) -> st.SearchStrategy[str]:
    options = list(SAMPLES.get(type(ctype), []))
    if isinstance(ctype, T.Choice):
        options += [*ctype.canonical, *ctype.lookup, "zzz"]
    return st.one_of(st.just(""), st.sampled_from(options or [""]), NOISE)


def table(contract: type[Contract], max_fields: int) -> st.SearchStrategy[tuple[list[str], list[list[str]]]]:
    specs = list(compiled(contract).specs.items())
    required = [n for n, (spec, _t, _r) in specs if spec.required]
    others = [n for n, (spec, _t, _r) in specs if not spec.required]

    @st.composite
    def build(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
        chosen = (
            required + draw(st.lists(st.sampled_from(others), unique=True, max_size=max_fields)) if others else required
        )
        for group in contract.required_one_of:
            if not any(g in chosen for g in group):
                chosen.append(group[0])
        header = [compiled(contract).display(n) for n in chosen]
        types = [compiled(contract).specs[n][1] for n in chosen]
        rows = draw(st.lists(st.tuples(*(cell(t) for t in types)).map(list), min_size=1, max_size=6))
        return header, [r for r in rows if not is_noise_line(r)] or [["x"] * len(header)]

    return build()


def is_noise_line(row: list[str]) -> bool:
    """A line made only of separators, quotes and blanks is noise, skipped before validation by design."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return not buf.getvalue().strip(' \t",')


def fast_findings(tmp: Path, contract: type[Contract], header: list[str], rows: list[list[str]], order: str) -> Counter:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path = tmp / "f.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    out = ingest(
        path, options=IngestOptions(kind=contract.kind, policy=IngestPolicy(date_order=order)), out_dir=tmp / "o"
    )
    assert out.kind == contract.kind
    found = Counter({r: n for r, n in out.finding_counts.items() if r not in NOT_ROW_RULES})
    lines = Counter((f.line, f.rule) for f in out.findings if f.rule not in NOT_ROW_RULES)
    return found, lines


@pytest.mark.parametrize("kind", sorted(CONTRACTS))
def test_engine_matches_pydantic(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    contract = CONTRACTS[kind]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=table(contract, max_fields=8), order=st.sampled_from(["dmy", "mdy"]))
    def check(data: tuple[list[str], list[list[str]]], order: str) -> None:
        header, rows = data
        tmp = tmp_path_factory.mktemp(kind)
        counts, lines = fast_findings(tmp, contract, header, rows, order)
        ref = reference_findings(contract, header, [(i + 2, r) for i, r in enumerate(rows)], {"date_order": order})
        assert counts == Counter(rule for _line, rule in ref), (header, rows)
        # examples are capped per rule; where a rule has more, the listed ones must still be real
        complete = {rule for rule, n in counts.items() if n <= DEFAULT_EXAMPLES_PER_RULE}
        assert Counter({k: n for k, n in lines.items() if k[1] in complete}) == Counter(
            k for k in ref if k[1] in complete
        ), (header, rows)
        assert set(lines) <= set(ref), (header, rows)

    check()
