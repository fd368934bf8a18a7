"""Fixtures shared by every suite: real sample files, moto in-process, names."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock import aws
from airlock.naming import Names

SAMPLES = Path(__file__).parent / "data" / "samples"

# No test may reach a real AWS account by accident: fake credentials unless a test opts in (-m aws).
for _k, _v in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process; any endpoint a local stack may have set is taken away for the test."""
    from moto import mock_aws

    from airlock.local import moto_bridge

    moto_bridge.install()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.reset_clients()
    with mock_aws():
        yield
    aws.reset_clients()
