"""``airlock tenants check``: live resources against what onboarding sets up; drift exits 1."""

from __future__ import annotations

import json

import boto3
import pytest

from airlock.local.resources import create_platform_resources
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding.executions import offboard, onboard
from airlock.tenancy.check import check_tenant
from airlock.tenancy.registry import Registry
from schemas.onboarding import OffboardRequest, OnboardRequest
from schemas.tenant import Tenant, TenantStatus


@pytest.fixture
def tenant(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    create_platform_resources(names)
    return onboard(OnboardRequest(tenant_id="acme"), server_id=LOCAL_SERVER_ID, names=names)


def problems(tenant: Tenant, names: Names) -> dict[str, list[str]]:
    report = check_tenant(Registry(names).get(tenant.tenant_id) or tenant, names)
    out: dict[str, list[str]] = {}
    for f in report.findings:
        out.setdefault(f.aspect, []).append(f.problem)
    return out


def test_a_freshly_onboarded_tenant_has_no_drift(tenant: Tenant, names: Names) -> None:
    report = check_tenant(tenant, names)
    assert report.ok, report.findings
    assert {"key", "key policy", "encryption", "bucket policy", "notifications", "role"} <= set(report.checked)


def test_each_kind_of_drift_is_reported_by_aspect(tenant: Tenant, names: Names) -> None:
    s3, kms, iam = boto3.client("s3"), boto3.client("kms"), boto3.client("iam")
    s3.put_bucket_encryption(Bucket=tenant.bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    key_doc = json.loads(kms.get_key_policy(KeyId=tenant.kms_key_arn, PolicyName="default")["Policy"])
    key_doc["Statement"][1]["Principal"]["AWS"] = [tenant.role_arn, "arn:aws:iam::123456789012:role/intruder"]
    kms.put_key_policy(KeyId=tenant.kms_key_arn, PolicyName="default", Policy=json.dumps(key_doc))
    bucket_doc = json.loads(s3.get_bucket_policy(Bucket=tenant.bucket)["Policy"])
    bucket_doc["Statement"] = [s for s in bucket_doc["Statement"] if s["Sid"] != "DenyInsecureTransport"]
    s3.put_bucket_policy(Bucket=tenant.bucket, Policy=json.dumps(bucket_doc))
    s3.put_bucket_notification_configuration(Bucket=tenant.bucket, NotificationConfiguration={})
    trust = {"Version": "2012-10-17", "Statement": [{"Sid": "TransferFamilySessions", "Effect": "Allow",
             "Principal": {"Service": "transfer.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam.update_assume_role_policy(RoleName=names.tenant_role_name("acme"), PolicyDocument=json.dumps(trust))

    found = problems(tenant, names)

    assert "SSE-KMS" in found["encryption"][0]
    assert "intruder" in found["key policy"][0]
    assert found["bucket policy"] == ["bucket policy statement DenyInsecureTransport is missing"]
    assert "EventBridge" in found["notifications"][0]
    assert "role trust statement TransferFamilySessions was changed" in found["role"]
    assert "role trust statement IngestWorker is missing" in found["role"]


def test_an_offboarded_tenant_is_checked_for_shredding(tenant: Tenant, names: Names) -> None:
    offboard(OffboardRequest(tenant_id="acme", server_id=LOCAL_SERVER_ID), names=names)
    offboarded = Registry(names).get("acme")
    assert offboarded is not None and offboarded.status is TenantStatus.OFFBOARDED
    assert check_tenant(offboarded, names).ok
    kms = boto3.client("kms")
    key_id = kms.describe_key(KeyId=tenant.kms_key_arn)["KeyMetadata"]["KeyId"]
    kms.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    assert "PendingDeletion" in problems(tenant, names)["offboarded"][0]


def test_cli_check_exits_1_on_drift_and_0_without(
    tenant: Tenant, names: Names, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airlock.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    assert main(["tenants", "check"]) == 0
    assert "acme: OK" in capsys.readouterr().out
    boto3.client("s3").delete_bucket_policy(Bucket=tenant.bucket)
    assert main(["tenants", "check", "acme", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["drift"] == [{"aspect": "bucket policy", "problem": "the bucket has no policy"}]
    assert main(["tenants", "check", "nobody"]) == 2
    assert "no tenant 'nobody'" in capsys.readouterr().err
