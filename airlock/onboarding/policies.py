"""Policy documents only onboarding needs: the tenant permissions boundary, deny-all, bucket policy.

Pure functions. ``template.yaml`` declares the boundary as a managed policy with the same document
(a test compares them).
"""

from __future__ import annotations

from airlock.naming import Names
from airlock.onboarding import names as onames
from airlock.tenancy import policies
from airlock.tenancy.policies import KMS_DATA_ACTIONS, TENANT_S3_DATA_ACTIONS, Policy

DENY_ALL_POLICY_NAME = "offboarded-deny-all"


def tenant_boundary(names: Names) -> Policy:
    """The most any tenant role may ever do, whatever its inline policy says: tenant buckets and keys."""
    bucket = f"arn:aws:s3:::{names.tenant_bucket_prefix}*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TenantBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation", *TENANT_S3_DATA_ACTIONS],
                "Resource": [bucket, f"{bucket}/*"],
            },
            {
                "Sid": "TenantKeys",
                "Effect": "Allow",
                "Action": KMS_DATA_ACTIONS,
                "Resource": f"arn:aws:kms:{names.region}:{names.account_id}:key/*",
                "Condition": {
                    "ForAnyValue:StringLike": {"kms:ResourceAliases": f"alias/{names.prefix}/tenant/*"}
                },
            },
        ],
    }


def deny_all() -> Policy:
    """Offboarding's inline policy: an explicit Deny beats every Allow, for live sessions too."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "TenantOffboarded", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }


def bucket_policy(names: Names, bucket: str, key_arn: str, role_arn: str, admin_role_arn: str | None) -> Policy:
    """The tenant bucket policy, admitting the onboarding bucket-admin role besides tenant and admin.

    Without it the Deny-other-principals statement would lock the onboarding step itself out of the
    bucket it configures, and a re-run could never converge.
    """
    return policies.tenant_bucket_policy(
        bucket, key_arn, role_arn, [admin_role_arn, onames.bucket_admin_role_arn(names)]
    )
