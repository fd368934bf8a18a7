"""Fixtures shared by every suite: real sample files, moto in-process, names, the local stack.

The local stack (moto's server, event pump, SFTP server) is started once per test process.
Clients in integration tests come from localstack-client's session, so the same tests run unchanged
against a LocalStack container: set ``AIRLOCK_TEST_ENDPOINT=http://localhost:4566`` and the suite
uses that endpoint instead of starting moto (the event pump and SFTP server still run in-process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from airlock import aws
from airlock.local.stack import LocalStack, LocalStackConfig
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


_STACK_STARTED = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run every test that needs the local stack after every moto in-process test.

    The stack's moto server lives in this process and shares moto's backends with ``mock_aws``,
    which resets them; the stack starts lazily on first use, so ordering keeps the two apart
    (xdist hands tests to each worker in this order too).
    """
    def uses_stack(item: pytest.Item) -> bool:
        return "local_stack" in getattr(item, "fixturenames", ())

    items.sort(key=uses_stack)
    for item in items:
        if uses_stack(item) and not any(m.name in ("integration", "e2e") for m in item.iter_markers()):
            item.add_marker(pytest.mark.integration)


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

    if _STACK_STARTED:
        pytest.fail("mock_aws would reset the running local stack's state: stack tests must run last")

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


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir: Path = tmp_path_factory.mktemp("airlock-state")
    config = LocalStackConfig(
        aws_port=0, sftp_port=0, state_dir=state_dir, external_endpoint=os.environ.get("AIRLOCK_TEST_ENDPOINT")
    )
    global _STACK_STARTED  # noqa: PLW0603 - see pytest_collection_modifyitems
    stack = LocalStack(config).start()
    _STACK_STARTED = True
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def _point_at_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit fixtures may have moved the endpoint; every integration test talks to the stack."""
    if "local_stack" not in request.fixturenames:
        return
    stack: LocalStack = request.getfixturevalue("local_stack")
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_IDS", stack.config.server_id)
    monkeypatch.setenv("AIRLOCK_WORKER_ROLE_ARN", stack.names.worker_role_arn)
    aws.reset_clients()


@pytest.fixture
def ls_session(local_stack: LocalStack) -> Any:
    """A localstack-client session aimed at the stack under test."""
    from localstack_client.session import Session

    return Session(localstack_host=urlparse(local_stack.endpoint).netloc)


@dataclass(frozen=True)
class SentRequest:
    """One S3 request a tenant session put on the wire (what botocore's ``before-send`` saw)."""

    tenant_id: str
    operation: str  # PutObject, CreateMultipartUpload, CopyObject, GetObject, ...
    bucket: str | None  # None: the request was not for the tenant's own bucket
    key: str
    headers: dict[str, str]


def _header_text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def tenant_requests(monkeypatch: pytest.MonkeyPatch) -> list[SentRequest]:
    """Every S3 request the worker sends under a tenant session, recorded as sent, in order.

    The seam is the boto3 Session the worker builds per file (``file_session``): the real session,
    with a ``before-send`` hook registered before its S3 client is created (clients copy the
    session's hooks). Nothing is stubbed, so the recording shows the headers S3 actually receives,
    whatever the bucket's default encryption would have filled in. Works for the worker called
    directly and for the local stack's event pump (same process).
    """
    from airlock.worker import process

    sent: list[SentRequest] = []
    real_file_session = process.file_session

    def recording_file_session(tenant: Any, **kwargs: Any) -> Any:
        session = real_file_session(tenant, **kwargs)

        def record(request: Any, event_name: str, **_: Any) -> None:
            url = urlparse(request.url)
            path = unquote(url.path)
            bucket: str | None = None
            key = path.lstrip("/")
            if url.hostname and url.hostname.startswith(f"{tenant.bucket}."):  # virtual-hosted style
                bucket = tenant.bucket
            elif path == f"/{tenant.bucket}" or path.startswith(f"/{tenant.bucket}/"):  # path style
                bucket, key = tenant.bucket, path[len(tenant.bucket) + 2 :]
            headers = {k.lower(): _header_text(v) for k, v in request.headers.items()}
            sent.append(SentRequest(tenant.tenant_id, event_name.rsplit(".", 1)[-1], bucket, key, headers))

        session.events.register("before-send.s3", record)
        return session

    monkeypatch.setattr(process, "file_session", recording_file_session)
    return sent
