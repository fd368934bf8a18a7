"""Tenant isolation with moto's IAM enforcement on S3: who can read which tenant's objects.

moto enforces identity policies for S3 (not KMS key policies, bucket-policy conditions or session
policies, which tests/unit/tenancy check statically), so these are the dynamic half of the proof.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.authorization import enable_iam_authentication

from airlock import aws
from airlock.local.resources import create_platform_resources, create_worker_role
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding.steps import onboard
from airlock.tenancy.session import file_session, s3_client
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant


@pytest.fixture
def tenants(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> dict[str, Tenant]:
    create_platform_resources(names)
    worker_arn = create_worker_role(names)
    monkeypatch.setenv("AIRLOCK_WORKER_ROLE_ARN", worker_arn)
    out = {t: onboard(OnboardRequest(tenant_id=t), server_id=LOCAL_SERVER_ID, names=names) for t in ("alpha", "bravo")}
    s3 = boto3.client("s3")
    for t in out.values():
        s3.put_object(Bucket=t.bucket, Key="inbound/secret.csv", Body=f"{t.tenant_id} data".encode())
    return out


@pytest.fixture
def as_worker(
    names: Names, monkeypatch: pytest.MonkeyPatch, tenants: dict[str, Tenant]
) -> Iterator[boto3.session.Session]:
    """Run with the ingest worker role's own credentials, as the Lambda function does, IAM enforced.

    The environment carries them (as on Lambda) for airlock's clients; the yielded session is for
    the test's own calls (boto3's default session would keep credentials it resolved earlier).
    """
    creds = boto3.client("sts").assume_role(RoleArn=names.worker_role_arn, RoleSessionName="ingest")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    aws.reset_clients()
    with enable_iam_authentication():
        yield boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    aws.reset_clients()


def denied(call: Any) -> bool:
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"] in ("AccessDenied", "403", "Forbidden")
    return False


def test_the_worker_role_itself_cannot_read_any_tenant_bucket(
    tenants: dict[str, Tenant], as_worker: boto3.session.Session
) -> None:
    own = as_worker.client("s3")
    for t in tenants.values():
        assert denied(lambda t=t: own.get_object(Bucket=t.bucket, Key="inbound/secret.csv"))
        assert denied(lambda t=t: own.put_object(Bucket=t.bucket, Key="processed/x", Body=b"x"))


def test_a_tenant_session_reads_its_own_bucket_and_nothing_of_another(
    tenants: dict[str, Tenant], as_worker: boto3.session.Session
) -> None:
    alpha, bravo = tenants["alpha"], tenants["bravo"]
    s3 = s3_client(file_session(alpha, source_key="inbound/secret.csv", file_id="f1"))

    assert s3.get_object(Bucket=alpha.bucket, Key="inbound/secret.csv")["Body"].read() == b"alpha data"
    assert denied(lambda: s3.get_object(Bucket=bravo.bucket, Key="inbound/secret.csv"))
    assert denied(lambda: s3.put_object(Bucket=bravo.bucket, Key="processed/x.parquet", Body=b"x"))
    assert denied(lambda: s3.list_objects_v2(Bucket=bravo.bucket))
    assert denied(lambda: s3.delete_object(Bucket=bravo.bucket, Key="inbound/secret.csv"))


def test_the_scope_down_for_a_file_names_only_that_tenant(tenants: dict[str, Tenant]) -> None:
    """Session policies are not enforced by moto: check the document the worker sends to STS."""
    from airlock.tenancy.policies import worker_session_policy

    alpha, bravo = tenants["alpha"], tenants["bravo"]
    assert alpha.kms_key_arn
    doc = json.dumps(worker_session_policy(alpha.bucket, "inbound/secret.csv", "f1", alpha.kms_key_arn))
    assert alpha.bucket in doc
    assert bravo.bucket not in doc and str(bravo.kms_key_arn) not in doc
    assert '"*"' not in doc  # no wildcard resource
