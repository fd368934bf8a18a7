"""Drift check: does what is live in AWS still match what onboarding set up for each tenant?

Compares the registry record with the live key (state, rotation, key policy principals), bucket
(encryption with the tenant key, policy, public access block, versioning, ownership, EventBridge
notifications) and role (trust, boundary, inline policy). Expected documents come from the same
functions onboarding uses, so "expected" can never drift from "what we create".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names
from airlock.onboarding import names as onames
from airlock.onboarding import policies as opolicies
from airlock.onboarding import steps
from airlock.tenancy import policies
from schemas.tenant import Tenant, TenantStatus

DATA_ACTIONS = {"kms:decrypt", "kms:encrypt", "kms:generatedatakey", "kms:reencrypt*", "kms:*"}


@dataclass(frozen=True)
class Finding:
    tenant_id: str
    aspect: str
    problem: str

    def __str__(self) -> str:
        return f"{self.aspect}: {self.problem}"


@dataclass
class Report:
    tenant_id: str
    status: str
    checked: list[str]
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "status": self.status,
            "ok": self.ok,
            "checked": self.checked,
            "drift": [{"aspect": f.aspect, "problem": f.problem} for f in self.findings],
        }


def canonical(value: Any) -> Any:
    """A policy document in a comparable form: single values as lists, lists sorted, keys sorted."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            listed = [v] if k in ("Action", "NotAction", "Resource", "NotResource") and isinstance(v, str) else v
            out[k] = canonical(listed)
        return out
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True)) if len(items) != 1 else items[0]
    return value


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _statements_diff(what: str, expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    want = {s.get("Sid", f"#{i}"): canonical(s) for i, s in enumerate(expected.get("Statement", []))}
    got_list = actual.get("Statement", [])
    got_list = [got_list] if isinstance(got_list, dict) else got_list
    got = {s.get("Sid", f"#{i}"): canonical(s) for i, s in enumerate(got_list)}
    problems = [f"{what} statement {sid} is missing" for sid in want if sid not in got]
    problems += [f"{what} statement {sid} was changed" for sid in want if sid in got and got[sid] != want[sid]]
    problems += [f"{what} has an extra statement {sid}" for sid in got if sid not in want]
    return problems


class _Checker:
    def __init__(self, tenant: Tenant, names: Names) -> None:
        self.tenant, self.names = tenant, names
        self.checked: list[str] = []
        self.findings: list[Finding] = []

    def aspect(self, name: str, check: Callable[[], list[str]]) -> None:
        self.checked.append(name)
        try:
            problems = check()
        except ClientError as err:
            error = err.response.get("Error", {})
            problems = [f"cannot read it ({error.get('Code')}: {error.get('Message', '')})"]
        self.findings.extend(Finding(self.tenant.tenant_id, name, p) for p in problems)

    # -- the aspects -----------------------------------------------------------------------------
    def registry(self) -> list[str]:
        t, n = self.tenant, self.names
        problems = []
        if t.bucket != n.tenant_bucket(t.tenant_id):
            problems.append(f"bucket {t.bucket} is not the conventional {n.tenant_bucket(t.tenant_id)}")
        if t.role_arn != n.tenant_role_arn(t.tenant_id):
            problems.append(f"role {t.role_arn} is not the conventional {n.tenant_role_arn(t.tenant_id)}")
        if not t.kms_key_arn:
            problems.append("no KMS key recorded")
        return problems

    def key(self) -> list[str]:
        kms = aws.client("kms")
        meta = kms.describe_key(KeyId=self.names.tenant_key_alias(self.tenant.tenant_id))["KeyMetadata"]
        problems = []
        if meta["Arn"] != self.tenant.kms_key_arn:
            problems.append(f"alias points at {meta['Arn']}, the registry says {self.tenant.kms_key_arn}")
        if meta.get("KeyState") != "Enabled":
            problems.append(f"key state is {meta.get('KeyState')}, expected Enabled")
        if not kms.get_key_rotation_status(KeyId=meta["KeyId"]).get("KeyRotationEnabled"):
            problems.append("automatic key rotation is off")
        return problems

    def key_policy(self) -> list[str]:
        doc = _doc(aws.client("kms").get_key_policy(KeyId=self.tenant.kms_key_arn, PolicyName="default")["Policy"])
        users: set[str] = set()
        for s in doc.get("Statement", []):
            actions = {a.lower() for a in ([s["Action"]] if isinstance(s.get("Action"), str) else s.get("Action", []))}
            if s.get("Effect") == "Allow" and actions & DATA_ACTIONS:
                principal = s.get("Principal", {})
                aws_p = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
                users.update([aws_p] if isinstance(aws_p, str) else aws_p)
        if users != {self.tenant.role_arn}:
            return [f"data use allowed for {sorted(users) or 'nobody'}, expected only {self.tenant.role_arn}"]
        return _statements_diff("key policy", steps.key_policy(self.names, self.tenant.role_arn), doc)

    def encryption(self) -> list[str]:
        rules = aws.client("s3").get_bucket_encryption(Bucket=self.tenant.bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"]
        want = steps.encryption_rule(str(self.tenant.kms_key_arn))
        got = rules[0] if rules else {}
        if got.get("ApplyServerSideEncryptionByDefault") != want["ApplyServerSideEncryptionByDefault"]:
            return [f"default encryption is {got.get('ApplyServerSideEncryptionByDefault')}, expected SSE-KMS "
                    f"with {self.tenant.kms_key_arn}"]
        return [] if got.get("BucketKeyEnabled") else ["S3 bucket key is off"]

    def bucket_policy(self) -> list[str]:
        try:
            raw = aws.client("s3").get_bucket_policy(Bucket=self.tenant.bucket)["Policy"]
        except ClientError as err:
            if err.response["Error"]["Code"] == "NoSuchBucketPolicy":
                return ["the bucket has no policy"]
            raise
        want = steps.bucket_policy(self.names, self.tenant.bucket, str(self.tenant.kms_key_arn), self.tenant.role_arn)
        return _statements_diff("bucket policy", want, _doc(raw))

    def bucket_settings(self) -> list[str]:
        s3 = aws.client("s3")
        b = self.tenant.bucket
        problems = []
        block = s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
        if block != steps.PUBLIC_ACCESS_BLOCK:
            problems.append(f"public access block is {block}")
        if s3.get_bucket_versioning(Bucket=b).get("Status") != "Enabled":
            problems.append("versioning is not enabled")
        try:
            rules = s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"]
        except ClientError as err:
            if err.response["Error"]["Code"] != "OwnershipControlsNotFoundError":
                raise
            rules = []
        if [r.get("ObjectOwnership") for r in rules] != ["BucketOwnerEnforced"]:
            problems.append("object ownership is not BucketOwnerEnforced (ACLs are back)")
        return problems

    def notifications(self) -> list[str]:
        config = aws.client("s3").get_bucket_notification_configuration(Bucket=self.tenant.bucket)
        if "EventBridgeConfiguration" not in config:
            return ["EventBridge notifications are off: uploads will not be ingested"]
        return []

    def role(self) -> list[str]:
        iam = aws.client("iam")
        name = self.names.tenant_role_name(self.tenant.tenant_id)
        role = iam.get_role(RoleName=name)["Role"]
        problems = _statements_diff(
            "role trust", policies.tenant_role_trust(self.names, steps.worker_role_arn(self.names)),
            _doc(role["AssumeRolePolicyDocument"]),
        )
        boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        if boundary != onames.tenant_boundary_policy_arn(self.names):
            want_boundary = onames.tenant_boundary_policy_arn(self.names)
            problems.append(f"permissions boundary is {boundary}, expected {want_boundary}")
        inline = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
        if opolicies.DENY_ALL_POLICY_NAME in inline:
            problems.append("the role carries the offboarding deny-all policy")
        if steps.TENANT_ROLE_POLICY_NAME not in inline:
            problems.append(f"inline policy {steps.TENANT_ROLE_POLICY_NAME} is missing")
        else:
            doc = iam.get_role_policy(RoleName=name, PolicyName=steps.TENANT_ROLE_POLICY_NAME)["PolicyDocument"]
            want = policies.tenant_role_permissions(self.tenant.bucket, str(self.tenant.kms_key_arn))
            problems += _statements_diff("role permissions", want, _doc(doc))
        if iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            problems.append("managed policies are attached to the tenant role")
        return problems

    # -- offboarded ------------------------------------------------------------------------------
    def shredded(self) -> list[str]:
        problems = []
        if self.tenant.kms_key_arn:
            state = aws.client("kms").describe_key(KeyId=self.tenant.kms_key_arn)["KeyMetadata"].get("KeyState")
            if state not in ("PendingDeletion", "Disabled"):
                problems.append(f"the key of an offboarded tenant is {state}, expected PendingDeletion")
        try:
            inline = aws.client("iam").list_role_policies(RoleName=self.names.tenant_role_name(self.tenant.tenant_id))
        except ClientError as err:
            if err.response["Error"]["Code"] == "NoSuchEntity":
                return problems
            raise
        if opolicies.DENY_ALL_POLICY_NAME not in inline["PolicyNames"]:
            problems.append("the role of an offboarded tenant has no deny-all policy")
        return problems


def check_tenant(tenant: Tenant, names: Names) -> Report:
    c = _Checker(tenant, names)
    if tenant.status is TenantStatus.OFFBOARDED:
        c.aspect("offboarded", c.shredded)
    elif tenant.status is not TenantStatus.ACTIVE:
        c.checked.append("status")
        c.findings.append(Finding(tenant.tenant_id, "status", f"{tenant.status.value}"
                                  + (f" ({tenant.failure})" if tenant.failure else "")
                                  + ": run `airlock tenants onboard` again to converge"))
    else:
        c.aspect("registry", c.registry)
        if tenant.kms_key_arn:
            c.aspect("key", c.key)
            c.aspect("key policy", c.key_policy)
            c.aspect("encryption", c.encryption)
            c.aspect("bucket policy", c.bucket_policy)
        c.aspect("bucket settings", c.bucket_settings)
        c.aspect("notifications", c.notifications)
        c.aspect("role", c.role)
    return Report(tenant.tenant_id, tenant.status.value, c.checked, c.findings)
