"""The idempotent steps that bring a tenant to ACTIVE. Each one is create-or-get: safe to run twice.

The onboarding state machine (statemachines/onboard_tenant.asl.json) calls each step through its own
Lambda function (handlers/onboarding.py). Retrying and failing are the state machine's job: a step
raises a named error (class name = Step Functions error name) and never sleeps or loops itself.
"""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from airlock import aws
from airlock.naming import Names
from airlock.onboarding import names as onames
from airlock.onboarding import policies as opolicies
from airlock.onboarding.errors import (
    KeyPendingDeletion,
    OnboardingError,
    RequestInvalid,
    TenantNotFound,
    TenantOffboarded,
    propagation_guard,
)
from airlock.tenancy import policies
from airlock.tenancy.registry import Registry
from schemas.onboarding import (
    ActivateStep,
    FailureStep,
    OnboardExecution,
    OnboardRequest,
    UsersStep,
)
from schemas.tenant import Tenant, TenantStatus

TENANT_ROLE_POLICY_NAME = "tenant-data-access"
TENANT_TAG = "airlock:tenant"
MAX_FAILURE_CHARS = 1000

M = TypeVar("M", bound=BaseModel)


def worker_role_arn(names: Names) -> str:
    """The ingest worker's role (template.yaml names it by convention); the env var overrides."""
    return os.environ.get("AIRLOCK_WORKER_ROLE_ARN") or names.worker_role_arn


def admin_role_arn(names: Names) -> str:
    """The platform admin role every tenant bucket admits (by convention); the env var overrides.

    By convention rather than configuration so that ``airlock tenants check``, run from an
    operator's shell, expects exactly the bucket policy the onboarding function wrote.
    """
    return os.environ.get("AIRLOCK_ADMIN_ROLE_ARN") or onames.platform_admin_role_arn(names)


def describe_validation(err: ValidationError) -> str:
    """One line per problem, with the field named: what a person needs to fix the request."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "request"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_step(model: type[M], event: Any) -> M:
    """A step's Parameters as its model; a mismatch is the ASL's bug, reported as RequestInvalid."""
    try:
        return model.model_validate(event)
    except ValidationError as err:
        raise RequestInvalid(describe_validation(err)) from err


# -- 1. validate ---------------------------------------------------------------------------------


def validate_request(raw: Any, names: Names, registry: Registry) -> OnboardExecution:
    """Parse the execution input; refuse bad keys, unknown servers and offboarded tenant ids."""
    from airlock.identity.decide import allowed_server_ids_from_env
    from airlock.identity.errors import IdentityInputError
    from airlock.identity.keys import parse_public_key

    try:
        req = OnboardExecution.model_validate(raw)
    except ValidationError as err:
        raise RequestInvalid(describe_validation(err)) from err
    try:
        names.tenant_bucket(req.tenant_id)
    except ValueError as err:
        raise RequestInvalid(str(err)) from err
    if req.users and not req.server_id:
        raise RequestInvalid("users need a server_id (the Transfer Family server they log in to)")
    allowed = allowed_server_ids_from_env()
    if req.users and allowed and req.server_id not in allowed:
        raise RequestInvalid(f"server {req.server_id} is not one of this deployment's SFTP servers")
    for user in req.users:
        if not user.public_keys and not user.password_hash:
            raise RequestInvalid(f"user {user.username!r} needs a public key or a password")
        try:
            for key in user.public_keys:
                parse_public_key(key)
        except IdentityInputError as err:
            raise RequestInvalid(f"user {user.username!r}: {err}") from err
    existing = registry.get(req.tenant_id)
    if existing is not None and existing.status is TenantStatus.OFFBOARDED:
        raise TenantOffboarded(f"tenant {req.tenant_id} was offboarded; its id cannot be reused")
    return req


# -- 2. register ---------------------------------------------------------------------------------


def register_pending(names: Names, req: OnboardExecution | OnboardRequest, registry: Registry) -> Tenant:
    """Conditional write: a new tenant starts PENDING; an ACTIVE one stays ACTIVE while it converges."""
    tenant = Tenant(
        tenant_id=req.tenant_id,
        display_name=req.display_name or req.tenant_id,
        bucket=names.tenant_bucket(req.tenant_id),
        role_arn=names.tenant_role_arn(req.tenant_id),
        kms_alias=names.tenant_key_alias(req.tenant_id),
        policy=req.policy,
    )
    stored = registry.create_pending(tenant)
    if stored.status is TenantStatus.OFFBOARDED:
        raise TenantOffboarded(f"tenant {req.tenant_id} was offboarded; its id cannot be reused")
    update: dict[str, Any] = {"policy": req.policy, "display_name": tenant.display_name}
    if stored.status is TenantStatus.FAILED:
        update |= {"status": TenantStatus.PENDING, "failure": None}  # a re-run: back in progress
    if any(getattr(stored, k) != v for k, v in update.items()):
        stored = registry.put(stored.model_copy(update=update))
    return stored


# -- 3. key --------------------------------------------------------------------------------------


def ensure_key(names: Names, tenant_id: str) -> str:
    """The tenant's customer-managed key, found by alias or created with it; returns the key ARN.

    Created with an administration-only policy: the tenant role does not exist yet, and naming it
    would fail until IAM propagates. ``lock_key_policy`` adds the role later.

    Rotation is switched on for a found key as well as a created one: a run that died between
    ``create_alias`` and ``enable_key_rotation`` leaves a key that later runs find by alias, and
    converging means that key ends up rotated too (``EnableKeyRotation`` is idempotent).
    """
    kms = aws.client("kms")
    alias = names.tenant_key_alias(tenant_id)
    try:
        meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "NotFoundException":
            raise
    else:
        if meta.get("KeyState") == "PendingDeletion":
            raise KeyPendingDeletion(
                f"the key of tenant {tenant_id} ({meta['Arn']}) is scheduled for deletion: cancel it with "
                f"`aws kms cancel-key-deletion --key-id {meta['KeyId']}` and enable it, or onboard a new tenant id"
            )
        kms.enable_key_rotation(KeyId=meta["KeyId"])
        return str(meta["Arn"])
    key = kms.create_key(
        Description=f"Airlock tenant {tenant_id}: data at rest",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Policy=json.dumps(policies.tenant_key_policy(names, None)),
        Tags=[{"TagKey": TENANT_TAG, "TagValue": tenant_id}, {"TagKey": "airlock:prefix", "TagValue": names.prefix}],
    )["KeyMetadata"]
    try:
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    except ClientError as err:
        if err.response["Error"]["Code"] != "AlreadyExistsException":
            raise
        # A concurrent run won the alias: retire our key, use theirs.
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
        theirs = kms.describe_key(KeyId=alias)["KeyMetadata"]
        kms.enable_key_rotation(KeyId=theirs["KeyId"])  # the winner may not have got this far yet
        return str(theirs["Arn"])
    kms.enable_key_rotation(KeyId=key["KeyId"])
    return str(key["Arn"])


# -- 4. role -------------------------------------------------------------------------------------


def ensure_role(names: Names, tenant_id: str, bucket: str, key_arn: str) -> str:
    """The tenant role: trusted by Transfer Family (our account) and the ingest worker; bounded."""
    iam = aws.client("iam")
    name = names.tenant_role_name(tenant_id)
    trust = json.dumps(policies.tenant_role_trust(names, worker_role_arn(names)))
    boundary = onames.tenant_boundary_policy_arn(names)
    try:
        with propagation_guard("trust policy of the tenant role"):
            arn = iam.create_role(
                RoleName=name,
                Path=names.tenant_role_path,
                AssumeRolePolicyDocument=trust,
                Description=f"Airlock tenant {tenant_id}: SFTP sessions and ingest worker",
                MaxSessionDuration=3600,
                PermissionsBoundary=boundary,
                Tags=[{"Key": TENANT_TAG, "Value": tenant_id}],
            )["Role"]["Arn"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        role = iam.get_role(RoleName=name)["Role"]
        arn = role["Arn"]
        with propagation_guard("trust policy of the tenant role"):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        if role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn") != boundary:
            iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
    iam.put_role_policy(
        RoleName=name,
        PolicyName=TENANT_ROLE_POLICY_NAME,
        PolicyDocument=json.dumps(policies.tenant_role_permissions(bucket, key_arn)),
    )
    return str(arn)


# -- 5. bucket -----------------------------------------------------------------------------------

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
INCOMPLETE_UPLOAD_DAYS = 1
REJECTED_EXPIRY_DAYS = 90


def encryption_rule(key_arn: str) -> dict[str, Any]:
    return {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True,
    }


def lifecycle_rules() -> list[dict[str, Any]]:
    return [
        {
            "ID": "abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": INCOMPLETE_UPLOAD_DAYS},
        },
        {
            "ID": "expire-rejected",
            "Status": "Enabled",
            "Filter": {"Prefix": "rejected/"},
            "Expiration": {"Days": REJECTED_EXPIRY_DAYS},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        },
    ]


def bucket_policy(names: Names, bucket: str, key_arn: str, role_arn: str) -> dict[str, Any]:
    return opolicies.bucket_policy(names, bucket, key_arn, role_arn, admin_role_arn(names))


def ensure_bucket(names: Names, bucket: str, key_arn: str, role_arn: str) -> None:
    s3 = aws.client("s3")
    try:
        kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if names.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": names.region}
        s3.create_bucket(**kwargs)
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code == "BucketAlreadyExists":
            raise OnboardingError(f"bucket {bucket} belongs to another account: choose another prefix") from err
        if code != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [encryption_rule(key_arn)]}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules()})
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    s3.put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": TENANT_TAG, "Value": bucket_tenant(names, bucket)}]}
    )
    with propagation_guard("bucket policy"):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(names, bucket, key_arn, role_arn)))


def bucket_tenant(names: Names, bucket: str) -> str:
    suffix = f"-{names.account_id}-{names.region}"
    return bucket.removeprefix(names.tenant_bucket_prefix).removesuffix(suffix)


# -- 6. key policy -------------------------------------------------------------------------------


def key_policy(names: Names, role_arn: str) -> dict[str, Any]:
    """Administration by the account (delegated to the platform's roles through IAM), use by the tenant."""
    return policies.tenant_key_policy(names, role_arn)


def lock_key_policy(names: Names, key_arn: str, role_arn: str) -> None:
    """KMS refuses a policy naming a role it cannot see yet: MalformedPolicyDocumentException, retried."""
    with propagation_guard("key policy naming the tenant role"):
        aws.client("kms").put_key_policy(
            KeyId=key_arn, PolicyName="default", Policy=json.dumps(key_policy(names, role_arn))
        )


# -- 7. users ------------------------------------------------------------------------------------


def create_users(names: Names, step: UsersStep, registry: Registry) -> list[str]:
    """Create or update each SFTP user; a password arrives as its hash and is stored as such."""
    from airlock.identity.errors import IdentityInputError
    from airlock.identity.store import SecretsManagerStore
    from airlock.identity.users import upsert_user

    tenant = registry.get(step.tenant_id)
    if tenant is None:
        raise TenantNotFound(f"tenant {step.tenant_id} is not registered")
    store = SecretsManagerStore()
    for user in step.users:
        try:
            upsert_user(
                names=names,
                server_id=step.server_id,
                tenant=tenant,
                username=user.username,
                # [] (not None) so a password-only user can be created before its hash is set
                public_keys=list(user.public_keys),
                password=None,
                allowed_cidrs=list(user.allowed_cidrs),
            )
        except IdentityInputError as err:
            raise RequestInvalid(f"user {user.username!r}: {err}") from err
        if user.password_hash:
            current = store.get_user(step.server_id, user.username)
            if current is not None and current.password_hash != user.password_hash:
                store.client.put_secret_value(
                    SecretId=Names.sftp_secret_name(step.server_id, user.username),
                    SecretString=current.model_copy(update={"password_hash": user.password_hash}).to_secret_string(),
                )
    return sorted({*tenant.sftp_users, *(u.username for u in step.users)})


# -- 8. activate ---------------------------------------------------------------------------------


def activate(names: Names, step: ActivateStep, registry: Registry) -> Tenant:
    tenant = registry.get(step.tenant_id)
    if tenant is None:
        raise TenantNotFound(f"tenant {step.tenant_id} is not registered")
    return registry.put(
        tenant.model_copy(
            update={
                "status": TenantStatus.ACTIVE,
                "failure": None,
                "kms_key_arn": step.key_arn,
                "role_arn": step.role_arn,
                "bucket": step.bucket,
                "kms_alias": names.tenant_key_alias(step.tenant_id),
                "sftp_users": sorted({*tenant.sftp_users, *step.sftp_users}),
            }
        )
    )


# -- on failure ----------------------------------------------------------------------------------


def summarize_cause(error: str, cause: str) -> str:
    """``Error: message`` from Step Functions' error output (a Lambda Cause is a JSON document)."""
    message = cause
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            message = str(parsed["errorMessage"])
    except ValueError:
        pass
    text = f"{error}: {message}" if message else error
    return text[:MAX_FAILURE_CHARS]


def mark_failed(step: FailureStep, registry: Registry) -> dict[str, Any]:
    """Record the failure on the tenant (FAILED; SUSPENDED for an offboarding) and shape the alert."""
    tenant_id = step.execution_input.get("tenant_id")
    failure = summarize_cause(step.error.error, step.error.cause)
    status: str | None = None
    tenant = registry.get(tenant_id) if isinstance(tenant_id, str) and tenant_id else None
    if tenant is not None and tenant.status is not TenantStatus.OFFBOARDED:
        if step.phase == "onboard":
            new_status = TenantStatus.ACTIVE if tenant.status is TenantStatus.ACTIVE else TenantStatus.FAILED
        else:
            new_status = TenantStatus.SUSPENDED
        # A failed re-run of an ACTIVE tenant keeps it ACTIVE (its resources work) but says why.
        tenant = registry.put(tenant.model_copy(update={"status": new_status, "failure": f"{step.phase}: {failure}"}))
        status = tenant.status.value
    who = tenant_id if isinstance(tenant_id, str) and tenant_id else "(unknown tenant)"
    message = {
        "alert": f"tenant {step.phase}ing failed",
        "tenant_id": who,
        "phase": step.phase,
        "error": step.error.error,
        "failure": failure,
        "tenant_status": status,
        "execution": step.execution_id,
        "action": f"fix the cause, then run `airlock tenants {step.phase} {who}` again: every step is idempotent",
    }
    return {
        "tenant_id": who,
        "status": status,
        "subject": f"Airlock: {step.phase}ing of {who} failed ({step.error.error})"[:100],
        "message": json.dumps(message, indent=2),
        "failure": failure,
    }


# -- the whole thing -----------------------------------------------------------------------------


def onboard(req: OnboardRequest, *, server_id: str, names: Names | None = None) -> Tenant:
    """Onboard through the onboarding state machine (locally: the same ASL, run in-process).

    Returns the ACTIVE tenant; raises :class:`airlock.onboarding.executions.ExecutionFailed` with
    the state machine's error and cause otherwise (the tenant is then FAILED and an alert is out).
    """
    from airlock.onboarding.executions import onboard as run

    return run(req, server_id=server_id, names=names)
