"""The idempotent steps of offboarding: suspend, disable SFTP users, deny the role, shred the key.

Scheduling the key's deletion crypto-shreds the tenant's data: every object is SSE-KMS under that
key, so once the window passes nothing in the bucket can be decrypted, by anyone. Until then the
deletion can be cancelled (``aws kms cancel-key-deletion``): the window is the undo period.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from airlock import aws
from airlock.naming import Names
from airlock.onboarding import policies as opolicies
from airlock.onboarding.errors import RequestInvalid, TenantNotFound
from airlock.onboarding.steps import describe_validation
from airlock.tenancy.registry import Registry
from schemas.onboarding import OffboardedStep, OffboardRequest, TenantOffboarded
from schemas.tenant import Tenant, TenantStatus

AUDIT_SOURCE = "airlock.onboarding"


def _tenant(registry: Registry, tenant_id: str) -> Tenant:
    tenant = registry.get(tenant_id)
    if tenant is None:
        raise TenantNotFound(f"no tenant {tenant_id!r} in the registry")
    return tenant


def suspend(raw: Any, registry: Registry) -> tuple[OffboardRequest, Tenant]:
    """Validate the request and stop logins and ingestion at once (both require ACTIVE)."""
    try:
        req = OffboardRequest.model_validate(raw)
    except ValidationError as err:
        raise RequestInvalid(describe_validation(err)) from err
    tenant = _tenant(registry, req.tenant_id)
    if tenant.status is not TenantStatus.OFFBOARDED and tenant.status is not TenantStatus.SUSPENDED:
        tenant = registry.put(tenant.model_copy(update={"status": TenantStatus.SUSPENDED, "failure": None}))
    return req, tenant


def disable_users(tenant_id: str, server_id: str, registry: Registry) -> list[str]:
    """Disable every SFTP user of the tenant: the registry's list and any found by tag."""
    from airlock.identity.errors import IdentityInputError
    from airlock.identity.users import list_users, set_disabled

    tenant = _tenant(registry, tenant_id)
    found = {(u.server_id, u.username) for u in list_users(tenant_id=tenant_id, server_id=server_id or None)}
    if server_id:
        found |= {(server_id, u) for u in tenant.sftp_users}
    disabled = []
    for sid, username in sorted(found):
        try:
            set_disabled(server_id=sid, username=username, disabled=True)
        except IdentityInputError:
            continue  # in the registry but never created: nothing to disable
        disabled.append(username)
    return sorted(set(disabled))


def deny_role(names: Names, tenant_id: str) -> dict[str, Any]:
    """Attach a deny-all inline policy: it overrides every Allow, also for sessions already issued."""
    iam = aws.client("iam")
    role_name = names.tenant_role_name(tenant_id)
    try:
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName=opolicies.DENY_ALL_POLICY_NAME,
            PolicyDocument=json.dumps(opolicies.deny_all()),
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "NoSuchEntity":
            raise
        return {"role_arn": names.tenant_role_arn(tenant_id), "denied": False}
    return {"role_arn": names.tenant_role_arn(tenant_id), "denied": True}


def schedule_key_deletion(names: Names, tenant_id: str, window_days: int) -> dict[str, Any]:
    """Schedule the tenant key's deletion (or report the date already scheduled)."""
    kms = aws.client("kms")
    try:
        meta = kms.describe_key(KeyId=names.tenant_key_alias(tenant_id))["KeyMetadata"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "NotFoundException":
            raise
        return {"key_arn": None, "key_deletion_date": None}
    if meta.get("KeyState") != "PendingDeletion":
        meta = {**meta, "DeletionDate": kms.schedule_key_deletion(
            KeyId=meta["KeyId"], PendingWindowInDays=window_days
        )["DeletionDate"]}
    when = meta.get("DeletionDate")
    return {
        "key_arn": meta["Arn"],
        "key_deletion_date": when.isoformat() if isinstance(when, datetime) else (str(when) if when else None),
    }


def mark_offboarded(names: Names, step: OffboardedStep, registry: Registry) -> TenantOffboarded:
    """OFFBOARDED in the registry (kept forever), and the audit record on the platform bus."""
    tenant = _tenant(registry, step.tenant_id)
    if tenant.status is not TenantStatus.OFFBOARDED:
        tenant = registry.put(tenant.model_copy(update={"status": TenantStatus.OFFBOARDED, "failure": None}))
    record = TenantOffboarded(
        tenant_id=tenant.tenant_id,
        bucket=tenant.bucket,
        role_arn=tenant.role_arn,
        kms_key_arn=tenant.kms_key_arn,
        key_deletion_date=step.key_deletion_date,
        disabled_users=list(step.disabled_users),
        execution_id=step.execution_id,
        requested_by=step.requested_by,
        reason=step.reason,
        offboarded_at=tenant.updated_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    resp = aws.client("events").put_events(
        Entries=[
            {
                "Source": AUDIT_SOURCE,
                "DetailType": TenantOffboarded.detail_type,
                "Detail": record.model_dump_json(),
                "EventBusName": names.platform_bus,
            }
        ]
    )
    if resp.get("FailedEntryCount"):
        raise RuntimeError(f"the audit event was not accepted: {resp['Entries']}")
    return record
