"""Requests to onboard and offboard a tenant."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.sftp_user import LOOPBACK_CIDRS
from schemas.tenant import IngestPolicy

TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$"
USERNAME_PATTERN = r"^[a-zA-Z0-9_][a-zA-Z0-9_@.-]{2,99}$"


class SftpUserSpec(BaseModel):
    """One SFTP login to create for the tenant. Passwords arrive in clear and are hashed at once."""

    model_config = ConfigDict(frozen=True)

    username: str = Field(pattern=USERNAME_PATTERN)
    public_keys: tuple[str, ...] = ()
    password: str | None = Field(default=None, repr=False, min_length=12, max_length=1024)
    # Fail safe: loopback only (the local stack) until the operator names the counterparty's ranges.
    allowed_cidrs: tuple[str, ...] = tuple(LOOPBACK_CIDRS)


class OnboardRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    display_name: str = ""
    users: tuple[SftpUserSpec, ...] = ()
    policy: IngestPolicy = Field(default_factory=IngestPolicy)

    @field_validator("tenant_id")
    @classmethod
    def _no_double_dash(cls, v: str) -> str:
        if "--" in v:
            raise ValueError("tenant id must not contain '--'")
        return v
