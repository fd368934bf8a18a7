"""The idempotent steps that bring a tenant to ACTIVE. Each one is create-or-get: safe to run twice.

The Step Functions state machine (statemachines/onboard_tenant.asl.json) calls these one by one;
``onboard()`` below runs them in order for the CLI while the state machine is being built.
"""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names
from airlock.tenancy import policies
from airlock.tenancy.registry import Registry
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant, TenantStatus

TENANT_ROLE_POLICY_NAME = "tenant-data-access"


def worker_role_arn() -> str | None:
    return os.environ.get("AIRLOCK_WORKER_ROLE_ARN") or None


def admin_role_arn() -> str | None:
    return os.environ.get("AIRLOCK_ADMIN_ROLE_ARN") or None


def register_pending(names: Names, req: OnboardRequest, registry: Registry) -> Tenant:
    tenant = Tenant(
        tenant_id=req.tenant_id,
        display_name=req.display_name or req.tenant_id,
        bucket=names.tenant_bucket(req.tenant_id),
        role_arn=names.tenant_role_arn(req.tenant_id),
        kms_alias=names.tenant_key_alias(req.tenant_id),
        policy=req.policy,
    )
    return registry.create_pending(tenant)


def ensure_key(names: Names, tenant_id: str) -> str:
    """The tenant's customer-managed key, found by alias or created with it; returns the key ARN."""
    kms = aws.client("kms")
    alias = names.tenant_key_alias(tenant_id)
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])
    except ClientError as err:
        if err.response["Error"]["Code"] != "NotFoundException":
            raise
    key = kms.create_key(
        Description=f"Airlock tenant {tenant_id}: data at rest",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Policy=json.dumps(policies.tenant_key_policy(names, None, admin_role_arn())),
        Tags=[{"TagKey": "airlock:tenant", "TagValue": tenant_id}],
    )["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.enable_key_rotation(KeyId=key["KeyId"])
    return str(key["Arn"])


def ensure_role(names: Names, tenant_id: str, bucket: str, key_arn: str) -> str:
    iam = aws.client("iam")
    name = names.tenant_role_name(tenant_id)
    trust = json.dumps(policies.tenant_role_trust(names, worker_role_arn()))
    try:
        arn = iam.create_role(
            RoleName=name,
            Path=names.tenant_role_path,
            AssumeRolePolicyDocument=trust,
            Description=f"Airlock tenant {tenant_id}: SFTP sessions and ingest worker",
            MaxSessionDuration=3600,
            Tags=[{"Key": "airlock:tenant", "Value": tenant_id}],
        )["Role"]["Arn"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    iam.put_role_policy(
        RoleName=name,
        PolicyName=TENANT_ROLE_POLICY_NAME,
        PolicyDocument=json.dumps(policies.tenant_role_permissions(bucket, key_arn)),
    )
    return str(arn)


def ensure_bucket(names: Names, bucket: str, key_arn: str, role_arn: str) -> None:
    s3 = aws.client("s3")
    try:
        kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if names.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": names.region}
        s3.create_bucket(**kwargs)
    except ClientError as err:
        if err.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "abort-incomplete-uploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                },
                {
                    "ID": "expire-rejected",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "rejected/"},
                    "Expiration": {"Days": 90},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                },
            ]
        },
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(policies.tenant_bucket_policy(bucket, key_arn, role_arn, admin_role_arn())),
    )


def lock_key_policy(names: Names, key_arn: str, role_arn: str) -> None:
    aws.client("kms").put_key_policy(
        KeyId=key_arn,
        PolicyName="default",
        Policy=json.dumps(policies.tenant_key_policy(names, role_arn, admin_role_arn())),
    )


def create_users(names: Names, tenant: Tenant, req: OnboardRequest, server_id: str) -> list[str]:
    from airlock.identity.users import upsert_user

    for user in req.users:
        upsert_user(
            names=names,
            server_id=server_id,
            tenant=tenant,
            username=user.username,
            public_keys=list(user.public_keys),
            password=user.password,
            allowed_cidrs=list(user.allowed_cidrs),
        )
    return sorted({*tenant.sftp_users, *(u.username for u in req.users)})


def onboard(req: OnboardRequest, *, server_id: str, names: Names | None = None) -> Tenant:
    """Run every step in order; the tenant ends ACTIVE, or FAILED with the cause (then re-raises)."""
    names = names or Names.from_env()
    registry = Registry(names)
    tenant = register_pending(names, req, registry)
    if tenant.status is TenantStatus.OFFBOARDED:
        raise ValueError(f"tenant {req.tenant_id} was offboarded; its id cannot be reused")
    try:
        key_arn = ensure_key(names, req.tenant_id)
        role_arn = ensure_role(names, req.tenant_id, tenant.bucket, key_arn)
        ensure_bucket(names, tenant.bucket, key_arn, role_arn)
        lock_key_policy(names, key_arn, role_arn)
        tenant = tenant.model_copy(update={"kms_key_arn": key_arn, "role_arn": role_arn, "policy": req.policy})
        users = create_users(names, tenant, req, server_id)
        return registry.put(
            tenant.model_copy(update={"sftp_users": users, "status": TenantStatus.ACTIVE, "failure": None})
        )
    except Exception as err:
        registry.set_status(req.tenant_id, TenantStatus.FAILED, failure=f"{type(err).__name__}: {err}")
        raise
