"""Names of the onboarding resources, derived from :class:`airlock.naming.Names`.

``template.yaml`` names the same resources from ``${Prefix}``; ``tests/unit/onboarding`` holds the
two together. (Candidates to move into ``airlock/naming.py``.)
"""

from __future__ import annotations

from airlock.naming import Names

ONBOARD = "onboard-tenant"
OFFBOARD = "offboard-tenant"


def state_machine_name(names: Names, which: str) -> str:
    return f"{names.prefix}-{which}"


def state_machine_arn(names: Names, which: str) -> str:
    return f"arn:aws:states:{names.region}:{names.account_id}:stateMachine:{state_machine_name(names, which)}"


def function_name(names: Names, step: str) -> str:
    """``step`` is the kebab-case step (``create-key``): ``airlock-onboarding-create-key``."""
    return f"{names.prefix}-onboarding-{step}"


def function_arn(names: Names, step: str) -> str:
    return f"arn:aws:lambda:{names.region}:{names.account_id}:function:{function_name(names, step)}"


def tenant_boundary_policy_name(names: Names) -> str:
    return f"{names.prefix}-tenant-boundary"


def tenant_boundary_policy_arn(names: Names) -> str:
    return f"arn:aws:iam::{names.account_id}:policy/{names.prefix}/{tenant_boundary_policy_name(names)}"


def bucket_admin_role_name(names: Names) -> str:
    """The CreateBucket step's role: configures tenant buckets, so every bucket policy admits it."""
    return f"{names.prefix}-onboarding-bucket-admin"


def bucket_admin_role_arn(names: Names) -> str:
    return f"arn:aws:iam::{names.account_id}:role/{bucket_admin_role_name(names)}"


def platform_admin_role_arn(names: Names) -> str:
    """Operators' role: administers tenant buckets (bucket policies admit it, and only it, besides the tenant)."""
    return f"arn:aws:iam::{names.account_id}:role/{names.prefix}-platform-admin"
