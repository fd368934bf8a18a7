"""The one place that names platform and per-tenant resources.

`template.yaml` declares the platform resources with the same names (``${Prefix}-...``); a test holds
the two together. Per-tenant names follow a convention so IAM policies can scope by ARN pattern
rather than ``*``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

DEFAULT_PREFIX = "airlock"
DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"
# Transfer Family server ids are "s-" and 17 hex digits; the local SFTP server uses this one.
LOCAL_SERVER_ID = "s-00000000000000a1c"

MAX_BUCKET_NAME = 63
# Receives of one ingest message before the queue dead-letters it (template.yaml's redrive policy).
INGEST_MAX_RECEIVE_COUNT = 5
TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$"
_TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)

# S3 prefixes inside a tenant bucket.
INBOUND_PREFIX = "inbound/"
OUTBOUND_PREFIX = "outbound/"
PROCESSED_PREFIX = "processed/"
REPORTS_PREFIX = "reports/"
REJECTED_PREFIX = "rejected/"
ARCHIVE_PREFIX = "archive/"


def valid_tenant_id(tenant_id: str) -> bool:
    """Tenant ids end up in bucket names, role names and aliases: lower-case DNS-safe, 3-24 chars."""
    return bool(_TENANT_ID_RE.fullmatch(tenant_id)) and "--" not in tenant_id


@dataclass(frozen=True)
class Names:
    """Resource names for one deployment (one prefix, one account, one region)."""

    prefix: str = DEFAULT_PREFIX
    account_id: str = LOCAL_ACCOUNT_ID
    region: str = DEFAULT_REGION

    @classmethod
    def from_env(cls) -> Names:
        return cls(
            prefix=os.environ.get("AIRLOCK_PREFIX", DEFAULT_PREFIX),
            account_id=os.environ.get("AIRLOCK_ACCOUNT_ID", LOCAL_ACCOUNT_ID),
            region=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)),
        )

    # -- platform resources (declared in template.yaml) ------------------------------------------
    @property
    def tenants_table(self) -> str:
        return f"{self.prefix}-tenants"

    @property
    def files_table(self) -> str:
        return f"{self.prefix}-files"

    @property
    def ingest_queue(self) -> str:
        return f"{self.prefix}-ingest"

    @property
    def ingest_dlq(self) -> str:
        return f"{self.prefix}-ingest-dlq"

    @property
    def object_created_rule(self) -> str:
        return f"{self.prefix}-tenant-object-created"

    @property
    def login_attempts_table(self) -> str:
        return f"{self.prefix}-login-attempts"

    @property
    def platform_bus(self) -> str:
        return f"{self.prefix}-platform"

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    def queue_arn(self, queue: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{queue}"

    @property
    def worker_role_name(self) -> str:
        """The ingest function's own role: it may only assume tenant roles, never read tenant data."""
        return f"{self.prefix}-ingest-worker"

    @property
    def worker_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.worker_role_name}"

    @property
    def tenant_role_path(self) -> str:
        return f"/{self.prefix}/tenants/"

    @property
    def tenant_bucket_prefix(self) -> str:
        """Every tenant bucket starts with this; the EventBridge rule matches on it."""
        return f"{self.prefix}-t-"

    # -- per-tenant resources --------------------------------------------------------------------
    def tenant_bucket(self, tenant_id: str) -> str:
        name = f"{self.tenant_bucket_prefix}{tenant_id}-{self.account_id}-{self.region}"
        if len(name) > MAX_BUCKET_NAME:
            raise ValueError(f"bucket name {name!r} is longer than S3's {MAX_BUCKET_NAME}: use a shorter prefix or id")
        return name

    def tenant_role_name(self, tenant_id: str) -> str:
        return f"{self.prefix}-tenant-{tenant_id}"

    def tenant_role_arn(self, tenant_id: str) -> str:
        return f"arn:aws:iam::{self.account_id}:role{self.tenant_role_path}{self.tenant_role_name(tenant_id)}"

    def tenant_key_alias(self, tenant_id: str) -> str:
        return f"alias/{self.prefix}/tenant/{tenant_id}"

    @staticmethod
    def sftp_secret_name(server_id: str, username: str) -> str:
        """The secret layout of the AWS reference identity provider: ``sftp/<server_id>/<username>``."""
        return f"sftp/{server_id}/{username}"
