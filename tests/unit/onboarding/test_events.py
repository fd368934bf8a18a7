"""Each events/onboarding_*.json is what Step Functions passes that step; fed to its handler in order.

The events carry a sample key ARN; the live one (moto's) replaces it once CreateKey has run.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from airlock.local import asl_onboarding
from airlock.local.context import LocalLambdaContext
from airlock.naming import Names
from schemas.tenant import TenantStatus

EVENTS = Path(__file__).resolve().parents[3] / "events"
SAMPLE_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ONBOARD = ["validate_request", "register_tenant", "create_key", "create_role", "create_bucket", "lock_key_policy",
           "create_sftp_users", "activate_tenant"]
OFFBOARD = ["suspend_tenant", "disable_sftp_users", "deny_tenant_role", "schedule_key_deletion", "mark_offboarded"]


def handler_of(step: str) -> Any:
    path = next(h for s, h in asl_onboarding.STEP_FUNCTIONS.values() if s == step.replace("_", "-"))
    module, attr = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), attr)


def event(step: str, key_arn: str | None) -> Any:
    text = (EVENTS / f"onboarding_{step}.json").read_text()
    return json.loads(text.replace(SAMPLE_KEY, key_arn) if key_arn else text)


def invoke(step: str, key_arn: str | None = None) -> Any:
    return handler_of(step)(event(step, key_arn), LocalLambdaContext(function_name=step))


def test_there_is_one_event_per_step_function() -> None:
    files = {p.stem.removeprefix("onboarding_") for p in EVENTS.glob("onboarding_*.json")}
    assert files == {s.replace("-", "_") for s, _ in asl_onboarding.STEP_FUNCTIONS.values()}


def test_the_events_drive_every_handler_from_request_to_offboarded(platform: Names) -> None:
    asl_onboarding.ensure_prerequisites(platform)
    key_arn = None
    for step in ONBOARD:
        out = invoke(step, key_arn)
        key_arn = key_arn or (out or {}).get("key_arn")
    assert out["status"] == TenantStatus.ACTIVE.value and out["kms_key_arn"] == key_arn
    for step in OFFBOARD:
        out = invoke(step, key_arn)
    assert out["tenant_id"] == "acme" and out["disabled_users"] == ["acme-ops"]


def test_the_failure_event_marks_a_registered_tenant_failed(platform: Names) -> None:
    invoke("register_tenant")
    alert = invoke("mark_failed")
    assert alert["status"] == "FAILED" and alert["subject"].startswith("Airlock: onboarding of acme failed")
    assert "invalid principals" in alert["failure"]


@pytest.mark.parametrize("step", ["create_role", "lock_key_policy", "activate_tenant"])
def test_a_malformed_step_input_is_a_request_error_not_a_crash(step: str) -> None:
    from airlock.onboarding.errors import RequestInvalid

    with pytest.raises(RequestInvalid, match="tenant_id"):
        handler_of(step)({"tenant_id": "Not Valid"}, LocalLambdaContext(function_name=step))
