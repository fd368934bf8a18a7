"""The local stack over HTTP, started once per test process.

Clients in these tests come from localstack-client's session, so the same tests run unchanged
against a LocalStack container: set ``AIRLOCK_TEST_ENDPOINT=http://localhost:4566`` and the suite
uses that endpoint instead of starting moto (the event pump and SFTP server still run in-process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from airlock import aws
from airlock.local.stack import LocalStack, LocalStackConfig


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir: Path = tmp_path_factory.mktemp("airlock-state")
    config = LocalStackConfig(
        aws_port=0, sftp_port=0, state_dir=state_dir, external_endpoint=os.environ.get("AIRLOCK_TEST_ENDPOINT")
    )
    stack = LocalStack(config).start()
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
