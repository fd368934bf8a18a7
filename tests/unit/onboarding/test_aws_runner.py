"""On AWS the CLI starts the deployed state machine and follows its history (a fake Step Functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airlock import aws
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding import executions
from airlock.onboarding import names as onames
from schemas.onboarding import OnboardRequest, SftpUserSpec

PASSWORD = "correct horse battery staple"


class FakeSfn:
    def __init__(self, outcome: dict[str, Any]) -> None:
        self.started: dict[str, Any] = {}
        self.outcome = outcome
        self.polls = 0

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
        return {"stateMachineArn": stateMachineArn}

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started = kwargs
        return {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:airlock-onboard-tenant:x"}

    def get_execution_history(self, **_kwargs: Any) -> dict[str, Any]:
        events = [{"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "ValidateRequest"}}]
        if self.polls:
            events.append({"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "CreateKey"}})
        return {"events": events}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.polls += 1
        return {"status": "RUNNING"} if self.polls < 2 else self.outcome


@pytest.fixture
def tenant_record(names: Names) -> dict[str, Any]:
    return {"tenant_id": "acme", "status": "ACTIVE", "bucket": names.tenant_bucket("acme"),
            "role_arn": names.tenant_role_arn("acme"), "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/k"}


def use(monkeypatch: pytest.MonkeyPatch, fake: FakeSfn) -> None:
    monkeypatch.setattr(aws, "client", lambda service, region=None: fake)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_start_execution_with_hashed_passwords_and_follow_progress(
    monkeypatch: pytest.MonkeyPatch, names: Names, tenant_record: dict[str, Any]
) -> None:
    fake = FakeSfn({"status": "SUCCEEDED", "output": json.dumps(tenant_record)})
    use(monkeypatch, fake)
    lines: list[str] = []
    req = OnboardRequest(tenant_id="acme", users=(SftpUserSpec(username="acme-ops", password=PASSWORD),))

    tenant = executions.onboard(req, server_id=LOCAL_SERVER_ID, names=names, runner="auto",
                                progress=lines.append, sleep=lambda _s: None)

    assert tenant.tenant_id == "acme" and tenant.is_active
    assert fake.started["stateMachineArn"] == onames.state_machine_arn(names, onames.ONBOARD)
    assert PASSWORD not in fake.started["input"]
    assert json.loads(fake.started["input"])["users"][0]["password_hash"].startswith("$argon2id$")
    assert "  ValidateRequest" in lines and "  CreateKey" in lines


def test_a_failed_execution_raises_with_its_error_and_cause(monkeypatch: pytest.MonkeyPatch, names: Names) -> None:
    fake = FakeSfn({"status": "FAILED", "error": "IamPropagationError", "cause": "key policy: invalid principal"})
    use(monkeypatch, fake)
    with pytest.raises(executions.ExecutionFailed, match="IamPropagationError: key policy"):
        executions.onboard(OnboardRequest(tenant_id="acme"), server_id="", names=names, runner="aws",
                           sleep=lambda _s: None)
