"""Which AWS the CLI talks to, and under which account the names are made."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock import aws, target
from airlock.naming import Names


@pytest.fixture
def on_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No endpoint, no local stack: the default credential chain (moto in-process stands in for STS)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AIRLOCK_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("AIRLOCK_WORKER_ROLE_ARN", raising=False)
    return tmp_path / "no-stack-here"


def test_on_aws_the_account_comes_from_sts(on_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, bucket and role names would carry the local stack's account id and name nothing."""
    from moto import mock_aws

    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111122223333")
    aws.reset_clients()
    with mock_aws():
        where = target.resolve(on_aws)
    aws.reset_clients()
    assert not where.local and "account 111122223333 from STS" in where.description
    names = Names.from_env()
    assert names.account_id == "111122223333"
    assert names.tenant_bucket("acme").endswith("-111122223333-us-east-1")
    assert names.worker_role_arn.startswith("arn:aws:iam::111122223333:")


def test_an_explicit_account_wins_and_no_credentials_is_said(on_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRLOCK_ACCOUNT_ID", "444455556666")
    assert "account 444455556666 from AIRLOCK_ACCOUNT_ID" in target.resolve(on_aws).description
    monkeypatch.delenv("AIRLOCK_ACCOUNT_ID")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: STS fails fast
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws.reset_clients()
    assert "AWS_ENDPOINT_URL" in target.resolve(on_aws).description  # an explicit endpoint asks no STS
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.reset_clients()
    where = target.resolve(on_aws)
    aws.reset_clients()
    assert "account unknown (NoCredentialsError): set AIRLOCK_ACCOUNT_ID" in where.description
