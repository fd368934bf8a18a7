"""Onboarding against moto in-process: every resource a tenant needs, created once, isolated."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from airlock.local.resources import create_platform_resources
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding.steps import onboard
from airlock.tenancy.registry import Registry
from schemas.onboarding import OnboardRequest, SftpUserSpec
from schemas.tenant import TenantStatus

PUBKEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"
)


@pytest.fixture
def platform(moto_aws: None, names: Names) -> Names:
    create_platform_resources(names)
    return names


def request(tenant: str = "acme", user: str = "acme-ops") -> OnboardRequest:
    return OnboardRequest(tenant_id=tenant, users=(SftpUserSpec(username=user, public_keys=(PUBKEY,)),))


def test_onboard_reaches_active_with_every_resource(platform: Names) -> None:
    tenant = onboard(request(), server_id=LOCAL_SERVER_ID, names=platform)

    assert tenant.status is TenantStatus.ACTIVE
    assert tenant.sftp_users == ["acme-ops"]
    s3 = boto3.client("s3")
    rule = s3.get_bucket_encryption(Bucket=tenant.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": tenant.kms_key_arn,
    }
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=tenant.bucket)["Status"] == "Enabled"
    # moto does not echo EventBridgeConfiguration on GET; show the notifications by their effect.
    s3.put_object(Bucket=tenant.bucket, Key="inbound/probe.csv", Body=b"a,b\n")
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName=platform.ingest_queue)["QueueUrl"]
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])]
    assert [b["detail"]["object"]["key"] for b in bodies] == ["inbound/probe.csv"]
    block = s3.get_public_access_block(Bucket=tenant.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    sids = {s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=tenant.bucket)["Policy"])["Statement"]}
    assert sids == {
        "DenyInsecureTransport", "DenyWrongEncryption", "DenyWrongKey", "DenyKmsWithoutTenantKey", "DenyOtherPrincipals"
    }

    kms = boto3.client("kms")
    key_policy = json.loads(kms.get_key_policy(KeyId=tenant.kms_key_arn, PolicyName="default")["Policy"])
    users = [s for s in key_policy["Statement"] if s["Sid"] == "TenantRoleUse"]
    assert users[0]["Principal"] == {"AWS": tenant.role_arn}

    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=f"sftp/{LOCAL_SERVER_ID}/acme-ops")["SecretString"]
    )
    assert secret["roleArn"] == tenant.role_arn
    assert secret["s3Bucket"] == tenant.bucket
    assert Registry(platform).by_bucket(tenant.bucket) == tenant


def test_onboarding_twice_converges_without_duplicates(platform: Names) -> None:
    first = onboard(request(), server_id=LOCAL_SERVER_ID, names=platform)
    second = onboard(request(), server_id=LOCAL_SERVER_ID, names=platform)

    assert second.kms_key_arn == first.kms_key_arn
    assert second.role_arn == first.role_arn
    kms = boto3.client("kms")
    tenant_keys = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith("alias/airlock/tenant/")]
    assert len(tenant_keys) == 1
    assert len(boto3.client("s3").list_buckets()["Buckets"]) == 1


def test_each_tenant_role_reaches_only_its_own_bucket_and_key(platform: Names) -> None:
    a = onboard(request("alpha", "alpha-ops"), server_id=LOCAL_SERVER_ID, names=platform)
    b = onboard(request("bravo", "bravo-ops"), server_id=LOCAL_SERVER_ID, names=platform)

    iam = boto3.client("iam")
    doc = iam.get_role_policy(RoleName=platform.tenant_role_name("alpha"), PolicyName="tenant-data-access")[
        "PolicyDocument"
    ]
    resources = json.dumps(doc)
    assert a.bucket in resources and a.kms_key_arn in resources
    assert b.bucket not in resources and b.kms_key_arn not in resources
    b_key_policy = boto3.client("kms").get_key_policy(KeyId=b.kms_key_arn, PolicyName="default")["Policy"]
    assert a.role_arn not in b_key_policy


def test_bad_tenant_id_is_refused_before_anything_is_created(platform: Names) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        OnboardRequest(tenant_id="Acme Corp")
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_cli_onboard_reports_a_weak_key_without_traceback(
    platform: Names, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airlock.cli import main

    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_ID", LOCAL_SERVER_ID)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # not a local stack: stay on moto in-process
    weak = tmp_path / "weak.pub"
    weak.write_text("ssh-dss AAAAB3NzaC1kc3MAAACBAP8= old@example\n")
    rc = main(["tenants", "onboard", "acme", "--user", "acme-ops", "--public-key", str(weak)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    assert "airlock:" in err
