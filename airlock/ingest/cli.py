"""``airlock validate``: check one file offline, no AWS, and say what is wrong in plain English."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from airlock.ingest.pipeline import IngestOptions, IngestOutcome, ingest, report_csv
from schemas.files import CONTRACTS
from schemas.report import Verdict
from schemas.tenant import IngestPolicy

EXAMPLE = """\
examples:
  airlock validate trades.csv                     verdict and findings, human-readable
  airlock validate crif.csv.gz --kind crif --json  one JSON object (file, kind, verdict, rows, findings)
  airlock validate quotes.csv --out out/          also write the normalized Parquet and the reports

exit status: 0 accepted, 1 row or file errors found, 2 could not run (missing file, bad option)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a file against its contract, offline",
        description="Validate one CSV file (plain, gzip or zip) against its file contract, with no AWS.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="the file to check")
    p.add_argument("--kind", choices=sorted(CONTRACTS), help="force the file kind instead of detecting it")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--out", type=Path, help="write the normalized Parquet, quarantine and reports here")
    p.add_argument("--date-order", choices=("dmy", "mdy"), default="dmy", help="slash dates: day-first (default)")
    p.add_argument("--encoding", default="utf-8", help="the file's text encoding (default utf-8)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"airlock validate: no such file: {path}", file=sys.stderr)
        return 2
    try:
        policy = IngestPolicy(date_order=args.date_order, encoding=args.encoding)
        "".encode(policy.encoding)
    except (ValueError, LookupError) as exc:
        print(f"airlock validate: bad option: {exc}", file=sys.stderr)
        return 2
    options = IngestOptions(source_key=path.name, kind=args.kind, policy=policy, file_id=path.stem or "file")
    if args.out is not None:
        try:  # a user mistake, not a traceback: --out names a file, or a folder we may not create
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"airlock validate: --out {args.out}: cannot use it as the output folder ({exc.strerror})",
                file=sys.stderr,
            )
            return 2
        outcome = _ingest(path, options, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="airlock-validate-") as tmp:
            outcome = _ingest(path, options, Path(tmp))
    if args.json:
        print(json.dumps(summary(outcome, str(path))))
    else:
        print(text_summary(outcome, str(path)))
    return 0 if outcome.verdict is Verdict.ACCEPTED and not outcome.rows_rejected else 1


def _ingest(path: Path, options: IngestOptions, out: Path) -> IngestOutcome:
    outcome = ingest(path, options=options, out_dir=out)
    if out is not None:
        report = outcome.report()
        (out / "reports").mkdir(parents=True, exist_ok=True)
        (out / "reports" / f"{options.file_id}.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
        (out / "reports" / f"{options.file_id}.csv").write_text(report_csv(report), encoding="utf-8", newline="")
    return outcome


def summary(outcome: IngestOutcome, file: str) -> dict[str, object]:
    return {
        "file": file,
        "kind": outcome.kind,
        "verdict": outcome.verdict.value,
        "rows": {"total": outcome.rows_total, "accepted": outcome.rows_accepted, "rejected": outcome.rows_rejected},
        "findings": [
            {
                "rule": f.rule,
                "severity": f.severity.value,
                "line": f.line,
                "column": f.column,
                "value": f.value,
                "message": f.message,
            }
            for f in outcome.findings
        ],
        "duration_s": outcome.duration_s,
    }


def text_summary(outcome: IngestOutcome, file: str) -> str:
    lines = [
        f"{file}: {outcome.verdict.value} ({outcome.kind}); rows {outcome.rows_total} total, "
        f"{outcome.rows_accepted} accepted, {outcome.rows_rejected} rejected"
    ]
    for f in outcome.findings:
        where = f"line {f.line}" if f.line else "file"
        col = f" [{f.column}]" if f.column else ""
        lines.append(f"  {f.rule} {f.severity.value:7} {where}{col}: {f.message}")
    shown: dict[str, int] = {}
    for f in outcome.findings:
        shown[f.rule] = shown.get(f.rule, 0) + 1
    for rule, n in outcome.finding_counts.items():
        if n > shown.get(rule, 0):
            lines.append(f"  ... {rule}: {n} in total, {shown.get(rule, 0)} shown")
    return "\n".join(lines)
