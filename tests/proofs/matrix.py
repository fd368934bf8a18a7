"""The isolation matrix: tenants, channels and data actions, and what each channel may do to whom.

One definition drives the static proof (policy documents through ``airlock.tenancy.policy_eval``),
the dynamic proof (moto with IAM enforcement on S3) and the real-account run (``-m aws``).
A channel is how tenant A reaches AWS: its role session, its SFTP session (role + scope-down) and
the ingest worker acting for one of A's files (role + per-file scope-down).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from airlock.identity.policy import scope_down_policy
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.tenancy import policies
from airlock.tenancy.policy_eval import Policy, Request

TENANTS = ("iso-a", "iso-b", "iso-c")
SOURCE_KEY = "inbound/positions.csv"  # an object every tenant has; the worker's file for the matrix
FILE_ID = "f0123456789abcdef0123456"
CHANNELS = ("role", "sftp", "worker")
ACTIONS = (
    "s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject",
    "kms:Decrypt", "kms:GenerateDataKey", "secretsmanager:GetSecretValue",
)
S3_ACTIONS = ACTIONS[:4]
PAIRS = [(a, b) for a, b in itertools.permutations(TENANTS, 2)]

# What a channel may do in its *own* tenant (the positive controls that keep the matrix honest).
OWN_ALLOWED: dict[str, frozenset[str]] = {
    "role": frozenset(ACTIONS[:6]),
    "sftp": frozenset(S3_ACTIONS) | {"kms:Decrypt", "kms:GenerateDataKey"},  # KMS only through S3
    "worker": frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "kms:Decrypt", "kms:GenerateDataKey"}),
}


@dataclass(frozen=True)
class TenantDocs:
    """A tenant's resources and the policy documents onboarding generates for them."""

    tenant_id: str
    bucket: str
    role_arn: str
    key_arn: str
    secret_arn: str
    names: Names

    @classmethod
    def build(cls, tenant_id: str, names: Names, key_arn: str | None = None) -> TenantDocs:
        key = key_arn or f"arn:aws:kms:{names.region}:{names.account_id}:key/{tenant_id}-0000-0000-0000-000000000000"
        secret = (f"arn:aws:secretsmanager:{names.region}:{names.account_id}:secret:"
                  f"{names.sftp_secret_name(LOCAL_SERVER_ID, tenant_id + '-ops')}-AbCdEf")
        return cls(tenant_id, names.tenant_bucket(tenant_id), names.tenant_role_arn(tenant_id), key, secret, names)

    @property
    def session_arn(self) -> str:
        name = self.names.tenant_role_name(self.tenant_id)
        return f"arn:aws:sts::{self.names.account_id}:assumed-role/{name}/probe"

    def identity(self) -> Policy:
        return policies.tenant_role_permissions(self.bucket, self.key_arn)

    def bucket_policy(self, admin_role_arn: str | None = None) -> Policy:
        return policies.tenant_bucket_policy(self.bucket, self.key_arn, self.role_arn, [admin_role_arn])

    def key_policy(self, admin_role_arn: str | None = None) -> Policy:
        return policies.tenant_key_policy(self.names, self.role_arn, admin_role_arn)

    def session_policies(self, channel: str) -> list[Policy]:
        if channel == "role":
            return []
        if channel == "sftp":
            return [scope_down_policy(self.bucket, region=self.names.region, kms_key_arn=self.key_arn)]
        return [policies.worker_session_policy(self.bucket, SOURCE_KEY, FILE_ID, self.key_arn)]


def put_key(channel: str) -> str:
    """Where a channel legitimately writes in its own bucket (so only the bucket differs for B)."""
    return f"reports/{FILE_ID}.json" if channel == "worker" else "inbound/upload.csv"


def target(action: str, victim: TenantDocs, channel: str) -> str:
    """The resource of ``action`` in the victim tenant, at the place the channel uses in its own."""
    if action.startswith("kms:"):
        return victim.key_arn
    if action.startswith("secretsmanager:"):
        return victim.secret_arn
    if action == "s3:ListBucket":
        return f"arn:aws:s3:::{victim.bucket}"
    if action == "s3:PutObject":
        return f"arn:aws:s3:::{victim.bucket}/{put_key(channel)}"
    return f"arn:aws:s3:::{victim.bucket}/{SOURCE_KEY}"


def contexts(action: str, actor: TenantDocs, victim: TenantDocs, channel: str) -> list[dict[str, str]]:
    """Every request context an attacker could choose; isolation must hold for all of them."""
    region = actor.names.region
    if action == "s3:PutObject":
        return [
            {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": k}
            for k in (victim.key_arn, actor.key_arn)
        ] + [{}]
    if action == "s3:ListBucket":
        return [{"s3:prefix": "inbound/"}, {"s3:prefix": ""}, {}]
    if action.startswith("kms:"):
        return [{"kms:ViaService": f"s3.{region}.amazonaws.com"}, {}]
    return [{}]


def own_context(action: str, me: TenantDocs, channel: str) -> dict[str, str]:
    """The context of the legitimate request the channel makes in its own tenant."""
    if action == "s3:PutObject":
        return {"s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": me.key_arn}
    if action == "s3:ListBucket":
        return {"s3:prefix": "inbound/"}
    if action.startswith("kms:") and channel == "sftp":
        return {"kms:ViaService": f"s3.{me.names.region}.amazonaws.com"}
    return {}


def request(actor: TenantDocs, action: str, resource: str, ctx: dict[str, str]) -> Request:
    return Request(action=action, resource=resource, principal_arn=actor.role_arn, session_arn=actor.session_arn,
                   context=ctx)


def resource_policy(action: str, victim: TenantDocs, admin_role_arn: str | None = None) -> tuple[Policy | None, bool]:
    """The victim's resource policy for ``action`` and whether it is a KMS key policy."""
    if action.startswith("kms:"):
        return victim.key_policy(admin_role_arn), True
    if action.startswith("s3:"):
        return victim.bucket_policy(admin_role_arn), False
    return None, False  # SFTP user secrets carry no resource policy


def decide_cell(
    actor: TenantDocs, victim: TenantDocs, channel: str, action: str, ctx: dict[str, str], *,
    identity: Policy | None = None, bucket_policy: Policy | None = None, key_policy: Policy | None = None,
) -> bool:
    """Would AWS allow ``actor``'s ``channel`` to do ``action`` on ``victim``'s resource in context ``ctx``?

    The documents default to the generated ones; pass installed ones to evaluate what onboarding put.
    """
    from airlock.tenancy.policy_eval import authorize

    res, is_key = resource_policy(action, victim)
    if action.startswith("kms:") and key_policy is not None:
        res = key_policy
    if action.startswith("s3:") and bucket_policy is not None:
        res = bucket_policy
    out = authorize(
        request(actor, action, target(action, victim, channel), ctx),
        identity=[identity or actor.identity()],
        session=actor.session_policies(channel),
        resource=res,
        key_policy=is_key,
    )
    return out.allowed
