"""Sessions under a tenant's own role: the only way the worker touches tenant data."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from airlock import aws
from airlock.tenancy import policies
from schemas.tenant import Tenant

SESSION_SECONDS = 900
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
# A fresh botocore session re-reads and re-parses the service and endpoint JSON (about 0.15 s of CPU,
# per file, on Lambda too); sessions share one loader, whose cache holds the parsed data. The loader
# only reads files and caches what it read, so sharing it across threads is safe.
_LOADER = botocore.session.get_session().get_component("data_loader")


def file_session(tenant: Tenant, *, source_key: str, file_id: str) -> boto3.session.Session:
    """Assume the tenant role for one file, scoped down to its source object and its own outputs.

    One session per file rather than one cached per tenant: the scope-down names the file, and a
    cached session would have to be wide enough for every file the tenant sends.
    """
    if not tenant.kms_key_arn:
        raise ValueError(f"tenant {tenant.tenant_id} has no KMS key recorded")
    policy = policies.worker_session_policy(tenant.bucket, source_key, file_id, tenant.kms_key_arn)
    creds = aws.client("sts").assume_role(
        RoleArn=tenant.role_arn,
        RoleSessionName=f"ingest-{file_id}"[:64],
        DurationSeconds=SESSION_SECONDS,
        Policy=json.dumps(policy),
        Tags=[{"Key": "tenant", "Value": tenant.tenant_id}, {"Key": "file_id", "Value": file_id}],
    )["Credentials"]
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def s3_client(session: boto3.session.Session) -> Any:
    return session.client("s3", config=_CONFIG)
