"""A small burst in ``make test``: several tenants upload over SFTP at once; none lost, twice or crossed.

The full burst (50 tenants, 1,000 files, several workers) is ``benchmarks/bench_burst.py``; both run
``benchmarks/burst_run.py``, which documents what is checked.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from airlock.local.stack import LocalStack


def burst_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "burst_run.py"
    spec = importlib.util.spec_from_file_location("burst_run", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["burst_run"] = module
    spec.loader.exec_module(module)
    return module


def test_a_small_burst_over_sftp_loses_nothing_repeats_nothing_crosses_nothing(local_stack: LocalStack) -> None:
    burst = burst_module()
    config = burst.BurstConfig(tenants=5, files=30, invalid_share=0.1, duplicate_share=0.04, upload_threads=5,
                               prefix="bs", timeout_s=120)
    result = burst.run_burst(local_stack, config, log=sys.stderr)
    summary = result.summary()
    assert result.problems == [], result.problems[:10]
    assert summary["terminal"] == 30 and summary["duplicate_events"] == 1 and summary["invalid_files"] == 3
    assert summary["verdicts"].get("rejected") == 3
