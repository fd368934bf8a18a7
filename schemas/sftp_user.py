"""The SFTP user secret stored in Secrets Manager at ``sftp/<server_id>/<username>``.

Field names follow the AWS reference identity provider (``roleArn``, ``s3Bucket``, ``publicKeys``)
so operators who know that design can read a secret at a glance. Everything defaults fail-safe: a
hand-written secret that omits ``allowedCidrs`` admits nobody, and one without a hash or a key has
no way in.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The onboarding default: only the local machine. On AWS the source IP is the counterparty's public
# address, so a user onboarded without an explicit allowlist cannot log in (fail-safe, and the audit
# reason ``source_ip_not_allowed`` says why).
LOOPBACK_CIDRS: tuple[str, ...] = ("127.0.0.1/32", "::1/128")


class SftpUserSecret(BaseModel):
    """One SFTP user. ``publicKeys`` are OpenSSH lines (``type base64 [comment]``), options stripped."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    role_arn: str = Field(alias="roleArn", min_length=20)
    s3_bucket: str = Field(alias="s3Bucket", min_length=3, max_length=63)
    tenant_id: str = Field(alias="tenantId", min_length=3, max_length=24)
    password_hash: str | None = Field(default=None, alias="passwordHash")
    public_keys: list[str] = Field(default_factory=list, alias="publicKeys")
    # Optional expiry per key, keyed by the key's ``SHA256:...`` fingerprint (as ssh-keygen -l shows).
    public_key_expiry: dict[str, datetime] = Field(default_factory=dict, alias="publicKeyExpiry")
    # Empty means nobody: the allowlist is never "any" by omission. Use 0.0.0.0/0 to mean any, explicitly.
    allowed_cidrs: list[str] = Field(default_factory=list, alias="allowedCidrs")
    disabled: bool = False

    @field_validator("allowed_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(c, strict=False)) for c in value]

    def to_secret_string(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)
