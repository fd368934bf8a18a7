"""Isolation shown dynamically: moto with IAM enforcement, three tenants, every ordered pair.

moto enforces identity policies for S3 and Secrets Manager, so here each channel of tenant A
(its role session, its SFTP session as the identity provider's response opens it, the worker's
session for one of A's files) really calls AWS APIs against tenant B and must be refused, while the
same calls in A's own tenant succeed (positive controls). moto evaluates KMS identity policies
without their resource (even a tenant's own key is refused) and ignores key policies, session
policies and bucket-policy conditions: those cells are proved in ``test_isolation_static.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.authorization import enable_iam_authentication

from airlock import aws
from airlock.local.resources import create_platform_resources, create_worker_role
from airlock.local.sftp import open_session
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding.steps import onboard
from airlock.tenancy.session import file_session, s3_client
from handlers.identity_provider import lambda_handler as identity_provider
from schemas.onboarding import OnboardRequest, SftpUserSpec
from schemas.tenant import Tenant

from .matrix import CHANNELS, FILE_ID, OWN_ALLOWED, PAIRS, S3_ACTIONS, SOURCE_KEY, TENANTS, put_key

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


def user(tenant_id: str) -> str:
    return f"{tenant_id}-ops"


@pytest.fixture
def world(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Three onboarded tenants, each with an object at SOURCE_KEY, and what their SFTP logins return."""
    create_platform_resources(names)
    worker_arn = create_worker_role(names)
    monkeypatch.setenv("AIRLOCK_WORKER_ROLE_ARN", worker_arn)
    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_IDS", LOCAL_SERVER_ID)
    tenants: dict[str, Tenant] = {}
    responses: dict[str, dict[str, Any]] = {}
    admin_s3 = boto3.client("s3")
    for t in TENANTS:
        spec = SftpUserSpec(username=user(t), public_keys=(PUBKEY,))
        tenants[t] = onboard(OnboardRequest(tenant_id=t, users=(spec,)), server_id=LOCAL_SERVER_ID, names=names)
        admin_s3.put_object(Bucket=tenants[t].bucket, Key=SOURCE_KEY, Body=f"{t} secret".encode())
        # exactly what Transfer Family gets back for a key login of this user
        responses[t] = identity_provider({"username": user(t), "serverId": LOCAL_SERVER_ID, "protocol": "SFTP",
                                          "sourceIp": "127.0.0.1"}, None)
        assert responses[t].get("Role") == tenants[t].role_arn
    iam = boto3.client("iam")
    iam.create_user(UserName="secret-reader")
    iam.put_user_policy(UserName="secret-reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    reader = iam.create_access_key(UserName="secret-reader")["AccessKey"]
    worker = boto3.client("sts").assume_role(RoleArn=worker_arn, RoleSessionName="ingest")["Credentials"]
    return {"tenants": tenants, "responses": responses, "reader": reader, "worker": worker, "admin_s3": admin_s3}


@contextmanager
def enforced_as_worker(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """IAM enforcement on, platform clients running as the ingest worker's role (as on Lambda)."""
    creds = world["worker"]
    with monkeypatch.context() as m:
        m.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
        m.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
        m.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
        aws.reset_clients()
        with enable_iam_authentication():
            yield
    aws.reset_clients()


@dataclass
class Channel:
    s3: Any
    sm: Any


def open_channel(channel: str, world: dict[str, Any], t: str) -> Channel:
    tenant: Tenant = world["tenants"][t]
    if channel == "worker":
        session = file_session(tenant, source_key=SOURCE_KEY, file_id=FILE_ID)
    elif channel == "sftp":
        sftp = open_session(user(t), "127.0.0.1", world["responses"][t])
        assert sftp is not None
        c = sftp.s3._request_signer._credentials.get_frozen_credentials()
        session = boto3.session.Session(aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key,
                                        aws_session_token=c.token, region_name="us-east-1")
        return Channel(sftp.s3, session.client("secretsmanager"))
    else:
        c = aws.client("sts").assume_role(RoleArn=tenant.role_arn, RoleSessionName=f"probe-{t}")["Credentials"]
        session = boto3.session.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                        aws_session_token=c["SessionToken"], region_name="us-east-1")
    return Channel(s3_client(session), session.client("secretsmanager"))


def call(action: str, ch: Channel, channel: str, victim: Tenant) -> Callable[[], Any]:
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": victim.kms_key_arn}
    return {
        "s3:GetObject": lambda: ch.s3.get_object(Bucket=victim.bucket, Key=SOURCE_KEY)["Body"].read(),  # noqa: PLW0108
        "s3:PutObject": lambda: ch.s3.put_object(Bucket=victim.bucket, Key=put_key(channel), Body=b"x", **sse),
        "s3:ListBucket": lambda: ch.s3.list_objects_v2(Bucket=victim.bucket, Prefix="inbound/"),
        "s3:DeleteObject": lambda: ch.s3.delete_object(Bucket=victim.bucket, Key=SOURCE_KEY),
        "secretsmanager:GetSecretValue": lambda: ch.sm.get_secret_value(
            SecretId=Names.sftp_secret_name(LOCAL_SERVER_ID, user(victim.tenant_id))),
    }[action]


def refused(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except ClientError as err:
        return err.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "403", "Forbidden")
    return False


def test_no_channel_of_a_tenant_touches_another_tenant_and_each_works_in_its_own(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants: dict[str, Tenant] = world["tenants"]
    refusals, controls = [], 0
    with enforced_as_worker(world, monkeypatch):
        for channel in CHANNELS:
            for a in TENANTS:
                ch = open_channel(channel, world, a)
                for b in TENANTS:
                    if a == b:
                        continue
                    for action in (*S3_ACTIONS, "secretsmanager:GetSecretValue"):
                        refusals.append((a, b, channel, action, refused(call(action, ch, channel, tenants[b]))))
                # positive controls: the refusals are IAM's answer about B, not a session that can do nothing
                for action in ("s3:GetObject", "s3:ListBucket", "s3:PutObject"):
                    if action in OWN_ALLOWED[channel]:
                        assert not refused(call(action, ch, channel, tenants[a])), (a, channel, action)
                        controls += 1
                # the tenant role never reads SFTP secrets, not even its own users'
                assert refused(call("secretsmanager:GetSecretValue", ch, channel, tenants[a]))
    assert [r for r in refusals if not r[-1]] == []
    assert len(refusals) == len(PAIRS) * len(CHANNELS) * 5 and controls == 3 * (3 + 3 + 2)
    for t in TENANTS:  # the refused deletes really did nothing
        body = world["admin_s3"].get_object(Bucket=tenants[t].bucket, Key=SOURCE_KEY)["Body"].read()
        assert body == f"{t} secret".encode()


def test_moto_does_enforce_secrets_manager_identity_policies(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without this the secret refusals above could be moto refusing everyone."""
    key = world["reader"]
    with enforced_as_worker(world, monkeypatch):
        sm = boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                   region_name="us-east-1").client("secretsmanager")
        secret = json.loads(sm.get_secret_value(SecretId=Names.sftp_secret_name(LOCAL_SERVER_ID, user("iso-b")))[
            "SecretString"])
        s3 = boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                   region_name="us-east-1").client("s3")
        assert refused(lambda: s3.get_object(Bucket=world["tenants"]["iso-b"].bucket, Key=SOURCE_KEY))
    assert secret["s3Bucket"] == world["tenants"]["iso-b"].bucket
