"""The full burst: 50 tenants, 1,000 files over SFTP, several ingest workers; figures into docs/assurance.md.

    .venv/bin/python benchmarks/bench_burst.py [--tenants 50] [--files 1000] [--workers 6] [--no-write]

Starts its own local stack (moto server, SFTP server, event pump with ``--workers`` threads) on free
ports, runs ``burst_run.run_burst`` and replaces the block between the burst markers in
``docs/assurance.md`` with this run's figures. Exit status 1 if anything was lost, repeated or crossed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from burst_run import BurstConfig, run_burst

from airlock.local.stack import LocalStack, LocalStackConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "assurance.md"
BEGIN, END = "<!-- burst:begin -->", "<!-- burst:end -->"


def render(summary: dict[str, object], workers: int, seconds: float) -> str:
    s = summary
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items()))  # type: ignore[attr-defined]
    return "\n".join(
        [
            BEGIN,
            f"Last full run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"`benchmarks/bench_burst.py` ({seconds:.0f} s wall including onboarding and checks), "
            f"{os.cpu_count()} CPUs, {workers} pump workers, one process (moto server, SFTP server, workers).",
            "",
            "| figure | value |",
            "|---|---|",
            f"| tenants / files uploaded over SFTP | {s['tenants']} / {s['files']} |",
            f"| invalid files / duplicated events | {s['invalid_files']} / {s['duplicate_events']} |",
            f"| files with one terminal ledger entry | {s['terminal']} ({verdicts}) |",
            f"| upload phase (all files over SFTP) | {s['upload_s']} s |",
            f"| throughput, first upload to last verdict | {s['files_per_s']} files/s |",
            f"| upload -> report latency p50 / p95 / max | {s['p50_s']} s / {s['p95_s']} s / {s['max_s']} s |",
            f"| lost / processed twice / crossed tenants / dead-lettered | "
            f"{'0 / 0 / 0 / 0' if not s['problems'] else 'SEE PROBLEMS'} |",
            "",
            END,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=6, help="event pump threads (ingest workers)")
    parser.add_argument("--upload-threads", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/assurance.md")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="airlock-burst-") as state:
        log = Path(state) / "handlers.log"
        config = LocalStackConfig(aws_port=0, sftp_port=0, state_dir=Path(state), pump_concurrency=args.workers)
        with log.open("w") as handler_log, contextlib.redirect_stdout(handler_log), LocalStack(config) as stack:
            result = run_burst(
                stack,
                BurstConfig(tenants=args.tenants, files=args.files, upload_threads=args.upload_threads),
                log=sys.stderr,
            )
    summary = result.summary()
    print(json.dumps(summary, indent=2))
    if not args.no_write and DOC.exists():
        text = DOC.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            DOC.write_text(head + render(summary, args.workers, time.monotonic() - started) + rest.split(END, 1)[1])
            print(f"figures written to {DOC}", file=sys.stderr)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
