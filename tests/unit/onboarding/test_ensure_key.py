"""``ensure_key`` converges: a tenant key found by its alias gets rotation on, not only a fresh one.

A run that dies between ``CreateAlias`` and ``EnableKeyRotation`` (a throttle, a timeout) leaves a
key that every later run finds by alias; before the fix they returned it as is, so rotation stayed
off for good. Real moto KMS throughout; the failure is injected at the API call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names
from airlock.onboarding.steps import ensure_key

TENANT = "acme"


def _rotation_on(key_arn: str) -> bool:
    return bool(aws.client("kms").get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"])


def _tenant_keys(names: Names) -> list[str]:
    """Key ids the tenant alias could point at: every key not pending deletion."""
    kms = aws.client("kms")
    keys = [k["KeyId"] for k in kms.list_keys()["Keys"]]
    return [k for k in keys if kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] != "PendingDeletion"]


def test_a_run_that_died_before_enabling_rotation_is_converged_by_the_next(
    platform: Names, fault: Callable[..., Any]
) -> None:
    before = set(_tenant_keys(platform))
    fail = fault("kms", "EnableKeyRotation", "ThrottlingException", "Rate exceeded", times=1)
    with pytest.raises(ClientError, match="ThrottlingException"):
        ensure_key(platform, TENANT)
    assert fail.raised == 1
    alias = aws.client("kms").describe_key(KeyId=platform.tenant_key_alias(TENANT))["KeyMetadata"]
    assert not _rotation_on(alias["Arn"]), "the first run left the aliased key without rotation"

    again = ensure_key(platform, TENANT)

    assert again == alias["Arn"], "the re-run reuses the key found by alias"
    assert _rotation_on(again)
    assert set(_tenant_keys(platform)) - before == {alias["KeyId"]}, "no second tenant key"


def test_a_key_found_by_alias_with_rotation_off_gets_rotation_on(platform: Names) -> None:
    kms = aws.client("kms")
    key = kms.create_key(Description="made by an earlier, interrupted run")["KeyMetadata"]
    kms.create_alias(AliasName=platform.tenant_key_alias(TENANT), TargetKeyId=key["KeyId"])
    assert not _rotation_on(key["Arn"])

    assert ensure_key(platform, TENANT) == key["Arn"]
    assert _rotation_on(key["Arn"])
    assert ensure_key(platform, TENANT) == key["Arn"] and _rotation_on(key["Arn"])  # idempotent
