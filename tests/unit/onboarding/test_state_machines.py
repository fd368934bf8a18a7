"""The onboarding and offboarding state machines, run locally from the real ASL files on moto.

IAM propagation cannot happen on moto, so faults are injected where AWS would raise them (the
botocore call), never in the step code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from airlock.local import asl_onboarding
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding import names as onames
from airlock.onboarding import steps
from airlock.onboarding.executions import ExecutionFailed, offboard, onboard, prepare_onboarding
from airlock.tenancy.registry import Registry
from schemas.onboarding import OffboardRequest, OnboardRequest, SftpUserSpec
from schemas.tenant import Tenant, TenantStatus

from .conftest import PASSWORD, PUBKEY, Fault

IAM_RETRIES = 8  # statemachines/onboard_tenant.asl.json, the IamPropagationError retrier


def request(tenant: str = "acme", **user: Any) -> OnboardRequest:
    spec = SftpUserSpec(username=f"{tenant}-ops", **(user or {"public_keys": (PUBKEY,)}))
    return OnboardRequest(tenant_id=tenant, users=(spec,))


def run_onboard(names: Names, sleeps: list[float], req: OnboardRequest | None = None) -> Tenant:
    return onboard(req or request(), server_id=LOCAL_SERVER_ID, names=names, sleep=sleeps.append)


def login(username: str, password: str) -> dict[str, Any]:
    from handlers.identity_provider import lambda_handler

    event = {"username": username, "password": password, "protocol": "SFTP", "serverId": LOCAL_SERVER_ID,
             "sourceIp": "127.0.0.1"}
    return lambda_handler(event, None)


def test_fresh_onboarding_reaches_active_with_every_resource(platform: Names, sleeps: list[float]) -> None:
    tenant = run_onboard(platform, sleeps)

    assert tenant.status is TenantStatus.ACTIVE and tenant.failure is None
    assert tenant.kms_key_arn and tenant.role_arn == platform.tenant_role_arn("acme")
    assert tenant.sftp_users == ["acme-ops"]
    assert Registry(platform).get("acme") == tenant
    assert sleeps == []

    s3 = boto3.client("s3")
    rule = s3.get_bucket_encryption(Bucket=tenant.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": tenant.kms_key_arn}
    assert rule["BucketKeyEnabled"] is True
    assert all(s3.get_public_access_block(Bucket=tenant.bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_ownership_controls(Bucket=tenant.bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert s3.get_bucket_versioning(Bucket=tenant.bucket)["Status"] == "Enabled"
    lifecycle = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=tenant.bucket)["Rules"]}
    assert lifecycle["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert lifecycle["expire-rejected"]["Filter"] == {"Prefix": "rejected/"}

    live = json.loads(s3.get_bucket_policy(Bucket=tenant.bucket)["Policy"])
    assert live == steps.bucket_policy(platform, tenant.bucket, str(tenant.kms_key_arn), tenant.role_arn)
    statements = {s["Sid"]: s for s in live["Statement"]}
    assert {"DenyInsecureTransport", "DenyWrongEncryption", "DenyWrongKey", "DenyOtherPrincipals"} <= set(statements)
    assert all(s["Effect"] == "Deny" for s in statements.values())
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tenant.kms_key_arn in json.dumps(statements["DenyWrongKey"]["Condition"])
    assert sorted(statements["DenyOtherPrincipals"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]) == sorted([
        tenant.role_arn, onames.platform_admin_role_arn(platform), onames.bucket_admin_role_arn(platform)])

    kms = boto3.client("kms")
    key_policy = json.loads(kms.get_key_policy(KeyId=tenant.kms_key_arn, PolicyName="default")["Policy"])
    users = {s["Principal"]["AWS"] for s in key_policy["Statement"] if "kms:Decrypt" in s["Action"]}
    assert users == {tenant.role_arn}
    admin = next(s for s in key_policy["Statement"] if s["Sid"] == "KeyAdministration")
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{platform.account_id}:root"}
    assert "kms:Decrypt" not in admin["Action"]
    meta = kms.describe_key(KeyId=platform.tenant_key_alias("acme"))["KeyMetadata"]
    assert meta["Arn"] == tenant.kms_key_arn
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is True
    assert {"TagKey": "airlock:tenant", "TagValue": "acme"} in kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]

    role = boto3.client("iam").get_role(RoleName=platform.tenant_role_name("acme"))["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == onames.tenant_boundary_policy_arn(platform)
    trust = {s["Sid"]: s for s in role["AssumeRolePolicyDocument"]["Statement"]}
    assert trust["TransferFamilySessions"]["Principal"] == {"Service": "transfer.amazonaws.com"}
    assert trust["TransferFamilySessions"]["Condition"] == {"StringEquals": {"aws:SourceAccount": platform.account_id}}
    assert trust["IngestWorker"]["Principal"] == {"AWS": platform.worker_role_arn}

    # Notifications on: an upload reaches the ingest queue through EventBridge (moto does not echo
    # EventBridgeConfiguration on GET).
    s3.put_object(Bucket=tenant.bucket, Key="inbound/probe.csv", Body=b"a,b\n")
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName=platform.ingest_queue)["QueueUrl"]
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]]
    assert [b["detail"]["object"]["key"] for b in bodies] == ["inbound/probe.csv"]

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=f"sftp/{LOCAL_SERVER_ID}/acme-ops")["SecretString"])
    assert (secret["roleArn"], secret["s3Bucket"], secret["publicKeys"]) == (tenant.role_arn, tenant.bucket, [PUBKEY])


def test_propagation_error_twice_is_absorbed_by_the_asl_retry_with_backoff_and_jitter(
    platform: Names, sleeps: list[float], fault: Callable[..., Fault]
) -> None:
    kms_fault = fault("kms", "PutKeyPolicy", "MalformedPolicyDocumentException",
                      "The new key policy will not allow you to update the key policy in the future.", 2)

    tenant = run_onboard(platform, sleeps)

    assert kms_fault.raised == 2
    assert tenant.status is TenantStatus.ACTIVE
    assert len(sleeps) == 2  # exactly the two retries, waited by the state machine, not the step
    # IntervalSeconds 2, BackoffRate 2, JitterStrategy FULL: attempt n waits a random share of 2 * 2^n.
    assert 0 <= sleeps[0] <= 2 and 0 <= sleeps[1] <= 4
    policy = boto3.client("kms").get_key_policy(KeyId=tenant.kms_key_arn, PolicyName="default")["Policy"]
    assert tenant.role_arn in policy


def test_propagation_that_never_clears_exhausts_the_retrier_then_fails_the_tenant(
    platform: Names, sleeps: list[float], fault: Callable[..., Fault], alerts: Callable[[], list[dict[str, Any]]]
) -> None:
    fault("kms", "PutKeyPolicy", "MalformedPolicyDocumentException", "Policy contains an invalid principal", 99)

    with pytest.raises(ExecutionFailed) as err:
        run_onboard(platform, sleeps)

    assert err.value.error == "IamPropagationError"
    assert len(sleeps) == IAM_RETRIES and max(sleeps) <= 20  # MaxDelaySeconds caps the backoff
    assert Registry(platform).get("acme").status is TenantStatus.FAILED  # type: ignore[union-attr]
    assert len(alerts()) == 1


def test_a_step_that_fails_for_good_marks_the_tenant_failed_alerts_and_a_rerun_converges(
    platform: Names, sleeps: list[float], fault: Callable[..., Fault], alerts: Callable[[], list[dict[str, Any]]]
) -> None:
    denied = fault("s3", "PutBucketPolicy", "AccessDenied", "not authorized to perform s3:PutBucketPolicy", 99)

    with pytest.raises(ExecutionFailed) as err:
        run_onboard(platform, sleeps)

    assert err.value.error == "ClientError" and "AccessDenied" in str(err.value)
    assert sleeps == []  # not a propagation error: no retry, straight to the Catch
    failed = Registry(platform).get("acme")
    assert failed is not None and failed.status is TenantStatus.FAILED
    assert failed.failure and "AccessDenied" in failed.failure
    (alert,) = alerts()
    assert "acme" in alert["Subject"] and "ClientError" in alert["Subject"]
    body = json.loads(alert["Message"])
    assert body["tenant_id"] == "acme" and body["tenant_status"] == "FAILED" and "AccessDenied" in body["failure"]

    denied.clear()
    first_key = boto3.client("kms").describe_key(KeyId=platform.tenant_key_alias("acme"))["KeyMetadata"]["Arn"]
    tenant = run_onboard(platform, sleeps)
    again = run_onboard(platform, sleeps)

    assert tenant.status is TenantStatus.ACTIVE and tenant.failure is None
    assert again.kms_key_arn == tenant.kms_key_arn == first_key
    aliases = [a for a in boto3.client("kms").list_aliases()["Aliases"] if a["AliasName"].startswith("alias/airlock/")]
    assert len(aliases) == 1
    kms = boto3.client("kms")
    tag = {"TagKey": "airlock:tenant", "TagValue": "acme"}
    tenant_keys = [k for k in kms.list_keys()["Keys"] if tag in kms.list_resource_tags(KeyId=k["KeyId"])["Tags"]]
    assert len(tenant_keys) == 1
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == [tenant.bucket]
    roles = boto3.client("iam").list_roles(PathPrefix=platform.tenant_role_path)["Roles"]
    assert [r["RoleName"] for r in roles] == [platform.tenant_role_name("acme")]
    assert len(alerts()) == 0


def test_passwords_are_hashed_before_the_execution_and_never_enter_its_history(
    platform: Names, sleeps: list[float]
) -> None:
    req = request(password=PASSWORD)
    payload = prepare_onboarding(req, LOCAL_SERVER_ID).model_dump(mode="json")
    assert PASSWORD not in json.dumps(payload)
    assert payload["users"][0]["password_hash"].startswith("$argon2id$")

    machine = asl_onboarding.state_machine(onames.ONBOARD, platform, sleep=sleeps.append)
    with asl_onboarding.lambda_environment(platform):
        asl_onboarding.ensure_prerequisites(platform)
        execution = machine.execute(payload)
    assert execution.succeeded, execution.cause
    assert PASSWORD not in json.dumps([e.detail for e in execution.history], default=str)
    assert "Role" in login("acme-ops", PASSWORD)


def test_an_execution_input_with_a_clear_password_is_refused(platform: Names, sleeps: list[float]) -> None:
    payload = {"tenant_id": "acme", "server_id": LOCAL_SERVER_ID,
               "users": [{"username": "acme-ops", "password": PASSWORD}]}
    machine = asl_onboarding.state_machine(onames.ONBOARD, platform, sleep=sleeps.append)
    with asl_onboarding.lambda_environment(platform):
        asl_onboarding.ensure_prerequisites(platform)
        execution = machine.execute(payload)
    assert execution.error == "RequestInvalid"
    assert Registry(platform).get("acme") is None  # nothing was registered


def test_offboarding_shreds_the_key_refuses_logins_denies_the_role_and_keeps_an_audit_record(
    platform: Names, sleeps: list[float], audit_events: Callable[[], list[dict[str, Any]]]
) -> None:
    tenant = run_onboard(platform, sleeps, request(password=PASSWORD))
    assert "Role" in login("acme-ops", PASSWORD)

    record = offboard(OffboardRequest(tenant_id="acme", server_id=LOCAL_SERVER_ID, key_deletion_window_days=7,
                                      requested_by="ops@example", reason="contract ended"), names=platform)

    kms = boto3.client("kms")
    meta = kms.describe_key(KeyId=tenant.kms_key_arn)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and record.key_deletion_date
    assert login("acme-ops", PASSWORD) == {}
    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=f"sftp/{LOCAL_SERVER_ID}/acme-ops")["SecretString"])
    assert secret["disabled"] is True
    deny = boto3.client("iam").get_role_policy(RoleName=platform.tenant_role_name("acme"),
                                                PolicyName="offboarded-deny-all")["PolicyDocument"]
    assert deny["Statement"] == [{"Sid": "TenantOffboarded", "Effect": "Deny", "Action": "*", "Resource": "*"}]
    assert Registry(platform).get("acme").status is TenantStatus.OFFBOARDED  # type: ignore[union-attr]
    assert record.disabled_users == ["acme-ops"] and record.requested_by == "ops@example"
    (event,) = audit_events()
    assert event["detail-type"] == "TenantOffboarded" and event["detail"]["tenant_id"] == "acme"
    assert event["detail"]["reason"] == "contract ended"

    # Again: converges, same deletion date; and the id cannot be onboarded again.
    second = offboard(OffboardRequest(tenant_id="acme", server_id=LOCAL_SERVER_ID), names=platform)
    assert second.key_deletion_date == record.key_deletion_date
    with pytest.raises(ExecutionFailed) as err:
        run_onboard(platform, sleeps)
    assert err.value.error == "TenantOffboarded"
    assert Registry(platform).get("acme").status is TenantStatus.OFFBOARDED  # type: ignore[union-attr]


def test_offboarding_an_unknown_tenant_fails_and_alerts(
    platform: Names, alerts: Callable[[], list[dict[str, Any]]]
) -> None:
    with pytest.raises(ExecutionFailed) as err:
        offboard(OffboardRequest(tenant_id="ghost"), names=platform)
    assert err.value.error == "TenantNotFound"
    (alert,) = alerts()
    assert "offboarding of ghost failed" in alert["Subject"]
