"""The tenant registry record and the per-tenant ingest policy."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TenantStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    FAILED = "FAILED"
    OFFBOARDED = "OFFBOARDED"


class RoutingRule(BaseModel):
    """Route keys matching ``glob`` (relative to ``inbound/``) to a file kind, before header sniffing."""

    model_config = ConfigDict(frozen=True)

    glob: str = Field(min_length=1, max_length=256)
    kind: str = Field(min_length=1, max_length=40)


class IngestPolicy(BaseModel):
    """What the tenant agreed to: how to read their files and when partial acceptance is allowed."""

    model_config = ConfigDict(frozen=True)

    date_order: Literal["dmy", "mdy"] = "dmy"
    encoding: str = "utf-8"
    allow_partial: bool = False
    max_error_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    routing: tuple[RoutingRule, ...] = ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Tenant(BaseModel):
    """One item of the tenant registry table (partition key ``tenant_id``; GSI on ``bucket``)."""

    tenant_id: str
    status: TenantStatus = TenantStatus.PENDING
    display_name: str = ""
    bucket: str
    role_arn: str
    kms_key_arn: str | None = None
    kms_alias: str | None = None
    sftp_users: list[str] = Field(default_factory=list)
    policy: IngestPolicy = Field(default_factory=IngestPolicy)
    failure: str | None = None
    created_at: str = Field(default_factory=_now)
    updated_at: str = Field(default_factory=_now)

    @property
    def is_active(self) -> bool:
        return self.status is TenantStatus.ACTIVE
