"""Lint the IAM documents onboarding and the identity provider generate, with parliament.

The policies are built at run time (one set per tenant), so cfn-lint and checkov never see them.
This renders every generator for a sample tenant and runs parliament (unknown actions, condition
keys that do not apply, type mismatches, resource-star) over each. Known, reasoned exceptions live
in ``ACCEPTED`` with their reason; anything else fails ``make test`` (tests/unit/tenancy/).
Trust policies have no Resource, which parliament cannot read, so they get a small check of our own.

Usage: ``python -m airlock.tenancy.policy_lint`` (exit 1 on a finding). Needs parliament (dev extra).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Literal

from airlock.identity.policy import scope_down_policy
from airlock.naming import Names
from airlock.onboarding import policies as onboarding
from airlock.tenancy import policies

Kind = Literal["identity", "resource", "trust"]
Policy = dict[str, Any]

SAMPLE_TENANT = "acme"
SAMPLE_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
SAMPLE_ADMIN_ROLE = "airlock-admin"

# (policy name, parliament issue) -> why it is right as generated.
ACCEPTED: dict[tuple[str, str], str] = {
    ("tenant_key_policy", "RESOURCE_STAR"): (
        'In a key policy "Resource": "*" means this key and nothing else (AWS requires "*" there).'
    ),
    ("tenant_bucket_policy", "MISMATCHED_TYPE_BUT_USABLE"): (
        "s3:x-amz-server-side-encryption-aws-kms-key-id carries the key ARN as a string; AWS documents "
        "String operators for it. parliament types the ARN value, not the key."
    ),
    ("onboarding_bucket_policy", "MISMATCHED_TYPE_BUT_USABLE"): (
        "The same statement as tenant_bucket_policy (onboarding adds one admitted principal, nothing else)."
    ),
    ("tenant_permissions_boundary", "UNKNOWN_CONDITION_FOR_ACTION"): (
        "kms:ResourceAliases applies to every operation on a KMS key (the KMS developer guide's permissions "
        "table lists it under 'Conditions for KMS key operations'); the Service Authorization Reference that "
        "parliament's database follows does not list every KMS condition key, as that guide warns."
    ),
}


@dataclass(frozen=True)
class Finding:
    policy: str
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.policy}: {self.issue}: {self.detail}"


def sample_policies(names: Names | None = None) -> dict[str, tuple[Kind, Policy]]:
    """Every generated document, rendered for one sample tenant of ``names``."""
    n = names or Names()
    bucket = n.tenant_bucket(SAMPLE_TENANT)
    key_arn = f"arn:aws:kms:{n.region}:{n.account_id}:key/{SAMPLE_KEY_ID}"
    role_arn = n.tenant_role_arn(SAMPLE_TENANT)
    admin_arn = f"arn:aws:iam::{n.account_id}:role/{SAMPLE_ADMIN_ROLE}"
    return {
        "tenant_role_trust": ("trust", policies.tenant_role_trust(n, n.worker_role_arn)),
        "tenant_role_permissions": ("identity", policies.tenant_role_permissions(bucket, key_arn)),
        "tenant_key_policy": ("resource", policies.tenant_key_policy(n, role_arn, admin_arn)),
        "tenant_bucket_policy": ("resource", policies.tenant_bucket_policy(bucket, key_arn, role_arn, [admin_arn])),
        "worker_session_policy": (
            "identity",
            policies.worker_session_policy(bucket, "inbound/trades.csv", "f-0001", key_arn),
        ),
        "worker_role_permissions": ("identity", policies.worker_role_permissions(n)),
        "sftp_scope_down_policy": ("identity", scope_down_policy(bucket, region=n.region, kms_key_arn=key_arn)),
        # what onboarding installs on top of the generators above
        "onboarding_bucket_policy": ("resource", onboarding.bucket_policy(n, bucket, key_arn, role_arn, admin_arn)),
        "tenant_permissions_boundary": ("identity", onboarding.tenant_boundary(n)),
        "offboarded_deny_all": ("identity", onboarding.deny_all()),
    }


def _statements(doc: Policy) -> list[dict[str, Any]]:
    st = doc.get("Statement", [])
    return st if isinstance(st, list) else [st]


def lint_trust(name: str, doc: Policy) -> list[Finding]:
    """Trust policies: no wildcard principal, and a service principal only under a source condition."""
    out: list[Finding] = []
    for s in _statements(doc):
        principal = s.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in json.dumps(principal)):
            out.append(Finding(name, "WILDCARD_PRINCIPAL", f"statement {s.get('Sid')} trusts anyone"))
        if isinstance(principal, dict) and "Service" in principal:
            conds = json.dumps(s.get("Condition", {}))
            if "aws:SourceAccount" not in conds and "aws:SourceArn" not in conds:
                out.append(Finding(name, "CONFUSED_DEPUTY", f"statement {s.get('Sid')}: service without source"))
        if s.get("Effect") == "Allow" and not str(s.get("Action", "")).count("sts:"):
            out.append(Finding(name, "NOT_STS", f"statement {s.get('Sid')} allows {s.get('Action')}"))
    return out


def lint_with_parliament(name: str, doc: Policy) -> list[Finding]:
    from parliament import analyze_policy_string  # dev-only dependency, never shipped to Lambda

    analyzed = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True)
    return [
        Finding(name, str(f.issue), json.dumps(f.detail, default=str)[:300])
        for f in analyzed.findings
        if (name, str(f.issue)) not in ACCEPTED
    ]


def lint(name: str, kind: Kind, doc: Policy) -> list[Finding]:
    return lint_trust(name, doc) if kind == "trust" else lint_with_parliament(name, doc)


def lint_all(names: Names | None = None) -> list[Finding]:
    return [f for name, (kind, doc) in sample_policies(names).items() for f in lint(name, kind, doc)]


def main() -> int:
    findings = lint_all()
    for f in findings:
        print(f, file=sys.stderr)
    print(f"policy_lint: {len(sample_policies())} policies, {len(findings)} findings", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
