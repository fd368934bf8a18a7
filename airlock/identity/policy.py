"""The scope-down session policy and logical home directory handed to Transfer Family per login.

The tenant role can do more than an SFTP user should (the ingest worker writes ``processed/`` and
``outbound/``); the session policy narrows each SFTP session to ``inbound/`` read-write and
``outbound/`` read-only. The logical home maps the client's ``/inbound`` and ``/outbound`` onto the
bucket, so the client never sees the bucket name or anything else in it.
"""

from __future__ import annotations

import json
from typing import Any

from airlock.naming import INBOUND_PREFIX, OUTBOUND_PREFIX

# Transfer Family refuses session policies longer than this.
MAX_POLICY_CHARS = 2048

# (client-visible entry, bucket prefix without trailing slash, writable)
LOGICAL_DIRS: tuple[tuple[str, str, bool], ...] = (
    ("/inbound", INBOUND_PREFIX.rstrip("/"), True),
    ("/outbound", OUTBOUND_PREFIX.rstrip("/"), False),
)

WRITE_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"]
READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]


def home_directory_details(bucket: str) -> list[dict[str, str]]:
    return [{"Entry": entry, "Target": f"/{bucket}/{prefix}"} for entry, prefix, _ in LOGICAL_DIRS]


def scope_down_policy(bucket: str, *, region: str, kms_key_arn: str | None) -> dict[str, Any]:
    """``inbound/`` read-write, ``outbound/`` read-only, the tenant key through S3 only; nothing else."""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    listable = [p for _, prefix, _ in LOGICAL_DIRS for p in (f"{prefix}/", f"{prefix}/*")]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListHome",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": listable}},
        },
        {"Sid": "Location", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": bucket_arn},
    ]
    for _, prefix, writable in LOGICAL_DIRS:
        statements.append(
            {
                "Sid": f"{prefix.capitalize()}{'ReadWrite' if writable else 'Read'}",
                "Effect": "Allow",
                "Action": WRITE_ACTIONS if writable else READ_ACTIONS,
                "Resource": f"{bucket_arn}/{prefix}/*",
            }
        )
    statements.append(
        {
            "Sid": "TenantKeyViaS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": kms_key_arn or "*",
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(policy: dict[str, Any]) -> str:
    text = json.dumps(policy, separators=(",", ":"))
    if len(text) > MAX_POLICY_CHARS:
        raise ValueError(f"session policy is {len(text)} chars; Transfer Family accepts {MAX_POLICY_CHARS}")
    return text
