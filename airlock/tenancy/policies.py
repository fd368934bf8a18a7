"""IAM, KMS and S3 policy documents for one tenant. Pure functions: tested statically and linted."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from airlock.naming import Names

Policy = dict[str, Any]

SSE_HEADER = "s3:x-amz-server-side-encryption"
SSE_KEY_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"
TENANT_S3_DATA_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"]
KMS_DATA_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:DescribeKey"]


def _doc(*statements: dict[str, Any]) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def tenant_role_trust(names: Names, worker_role_arn: str | None) -> Policy:
    """Transfer Family (for SFTP sessions, pinned to our account) and the ingest worker may assume."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TransferFamilySessions",
            "Effect": "Allow",
            "Principal": {"Service": "transfer.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": names.account_id}},
        }
    ]
    if worker_role_arn:
        statements.append(
            {
                "Sid": "IngestWorker",
                "Effect": "Allow",
                "Principal": {"AWS": worker_role_arn},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        )
    return _doc(*statements)


def tenant_role_permissions(bucket: str, key_arn: str) -> Policy:
    """Everything the tenant role may do: its own bucket and its own key, nothing else."""
    return _doc(
        {
            "Sid": "ListOwnBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": f"arn:aws:s3:::{bucket}",
        },
        {
            "Sid": "ReadWriteOwnObjects",
            "Effect": "Allow",
            "Action": TENANT_S3_DATA_ACTIONS,
            "Resource": f"arn:aws:s3:::{bucket}/*",
        },
        {"Sid": "UseOwnKey", "Effect": "Allow", "Action": KMS_DATA_ACTIONS, "Resource": key_arn},
    )


def tenant_key_policy(names: Names, tenant_role_arn: str | None, admin_role_arn: str | None = None) -> Policy:
    """Administration stays with the account; only the tenant role may use the key for data."""
    admin_principal = admin_role_arn or f"arn:aws:iam::{names.account_id}:root"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": admin_principal},
            "Action": [
                "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
            ],
            "Resource": "*",
        }
    ]
    if tenant_role_arn:
        statements.append(
            {
                "Sid": "TenantRoleUse",
                "Effect": "Allow",
                "Principal": {"AWS": tenant_role_arn},
                "Action": KMS_DATA_ACTIONS,
                "Resource": "*",
            }
        )
    return _doc(*statements)


def tenant_bucket_policy(
    bucket: str, key_arn: str, tenant_role_arn: str, admin_role_arns: Sequence[str | None] = ()
) -> Policy:
    """TLS only, only SSE-KMS with the tenant key, and no principal but the tenant role and the admins."""
    arn = f"arn:aws:s3:::{bucket}"
    allowed = [tenant_role_arn, *(a for a in admin_role_arns if a)]
    return _doc(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        # A put that names no encryption gets the bucket default (SSE-KMS, tenant key): that is how
        # Transfer Family writes. A put that names one must name exactly ours. (An ...IfExists operator
        # would be true for the absent header and deny every SFTP upload.)
        {
            "Sid": "DenyWrongEncryption",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{arn}/*",
            "Condition": {
                "Null": {SSE_HEADER: "false"},
                "StringNotEquals": {SSE_HEADER: "aws:kms"},
            },
        },
        {
            "Sid": "DenyWrongKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{arn}/*",
            "Condition": {
                "Null": {SSE_KEY_HEADER: "false"},
                "StringNotEquals": {SSE_KEY_HEADER: key_arn},
            },
        },
        {
            # aws:kms without a key id would mean the AWS-managed aws/s3 key, not the tenant's.
            "Sid": "DenyKmsWithoutTenantKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{arn}/*",
            "Condition": {
                "StringEquals": {SSE_HEADER: "aws:kms"},
                "Null": {SSE_KEY_HEADER: "true"},
            },
        },
        {
            "Sid": "DenyOtherPrincipals",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": allowed}},
        },
    )


def iam_literal(text: str) -> str:
    """Escape IAM's wildcards and variables so an object key matches only itself (``inbound/*`` is a legal key)."""
    return "".join({"*": "${*}", "?": "${?}", "$": "${$}"}.get(c, c) for c in text)


def worker_session_policy(bucket: str, source_key: str, file_id: str, key_arn: str) -> Policy:
    """Scope-down for the worker's tenant session: read this one object, write this file's outputs."""
    arn = f"arn:aws:s3:::{bucket}"
    return _doc(
        {
            "Sid": "ReadSource",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject"],
            "Resource": f"{arn}/{iam_literal(source_key)}",
        },
        {
            "Sid": "WriteOutputs",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [
                f"{arn}/processed/*/{file_id}.parquet",
                f"{arn}/reports/{file_id}.json",
                f"{arn}/rejected/{file_id}/*",
                f"{arn}/archive/{file_id}/*",
                f"{arn}/outbound/reports/{iam_literal(posixpath.basename(source_key))}.report.*",
            ],
        },
        {"Sid": "UseTenantKey", "Effect": "Allow", "Action": KMS_DATA_ACTIONS, "Resource": key_arn},
    )


def worker_role_permissions(names: Names) -> Policy:
    """The ingest worker's own identity policy: its tables, its bus, and assuming tenant roles.

    Deliberately no S3 or KMS data action: tenant data is reachable only through a tenant session.
    """
    arn = f"arn:aws:dynamodb:{names.region}:{names.account_id}:table"
    return _doc(
        {
            "Sid": "AssumeTenantRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Resource": f"arn:aws:iam::{names.account_id}:role{names.tenant_role_path}*",
        },
        {
            "Sid": "Tables",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": [
                f"{arn}/{names.tenants_table}",
                f"{arn}/{names.tenants_table}/index/*",
                f"{arn}/{names.files_table}",
                f"{arn}/{names.files_table}/index/*",
            ],
        },
        {
            "Sid": "DomainEvents",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": f"arn:aws:events:{names.region}:{names.account_id}:event-bus/{names.platform_bus}",
        },
    )
