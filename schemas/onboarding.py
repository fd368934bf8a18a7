"""Requests to onboard and offboard a tenant, and what each state-machine step reads and returns.

Step Functions records every state's input in the execution history, so an execution never carries
a clear password: :class:`OnboardRequest` (what a person types) becomes :class:`OnboardExecution`
(what the state machine sees) with each password replaced by its salted hash, before the start.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.sftp_user import LOOPBACK_CIDRS
from schemas.tenant import IngestPolicy

TENANT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$"
USERNAME_PATTERN = r"^[a-zA-Z0-9_][a-zA-Z0-9_@.-]{2,99}$"
SERVER_ID_PATTERN = r"^s-[0-9a-f]{17}$"
# Hash schemes the identity provider verifies (argon2id; bcrypt and SHA-512 crypt for migration).
PASSWORD_HASH_PATTERN = r"^\$(argon2id|2[aby]|6)\$"  # noqa: S105 - a pattern, not a password
MIN_KEY_DELETION_DAYS = 7
MAX_KEY_DELETION_DAYS = 30


def _tenant_id(v: str) -> str:
    if "--" in v:
        raise ValueError("tenant id must not contain '--'")
    return v


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
        return _tenant_id(v)


# -- what the state machines carry -----------------------------------------------------------------


class SftpUserInput(BaseModel):
    """An SFTP user as the execution carries it: a password hash, never the password."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    public_keys: tuple[str, ...] = ()
    password_hash: str | None = Field(default=None, pattern=PASSWORD_HASH_PATTERN, repr=False)
    allowed_cidrs: tuple[str, ...] = tuple(LOOPBACK_CIDRS)


class OnboardExecution(BaseModel):
    """The onboarding state machine's input (``extra="forbid"``: a stray ``password`` is refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    display_name: str = ""
    server_id: str = ""
    users: tuple[SftpUserInput, ...] = ()
    policy: IngestPolicy = Field(default_factory=IngestPolicy)

    @field_validator("tenant_id")
    @classmethod
    def _no_double_dash(cls, v: str) -> str:
        return _tenant_id(v)

    @field_validator("server_id")
    @classmethod
    def _server_id(cls, v: str) -> str:
        if v and not re.fullmatch(SERVER_ID_PATTERN, v):
            raise ValueError("server id must be 's-' and 17 hex digits")
        return v


class OffboardRequest(BaseModel):
    """The offboarding state machine's input. The key deletion window is the crypto-shredding delay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    server_id: str = ""
    key_deletion_window_days: int = Field(default=30, ge=MIN_KEY_DELETION_DAYS, le=MAX_KEY_DELETION_DAYS)
    requested_by: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=500)


# -- step inputs (the Parameters each Task state passes) -----------------------------------------


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)


class TenantStep(_Step):
    pass


class RoleStep(_Step):
    bucket: str
    key_arn: str


class BucketStep(_Step):
    bucket: str
    key_arn: str
    role_arn: str


class LockKeyStep(_Step):
    key_arn: str
    role_arn: str


class UsersStep(_Step):
    server_id: str = ""
    users: tuple[SftpUserInput, ...] = ()


class ActivateStep(_Step):
    key_arn: str
    role_arn: str
    bucket: str
    sftp_users: tuple[str, ...] = ()


class StatesErrorOutput(BaseModel):
    """What a Catch puts at its ResultPath: Step Functions' ``{"Error", "Cause"}``."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(default="States.Unknown", alias="Error")
    cause: str = Field(default="", alias="Cause")


class FailureStep(BaseModel):
    """MarkFailed's input: the execution's own input (the tenant may not be registered yet)."""

    model_config = ConfigDict(frozen=True)

    phase: str = Field(pattern=r"^(onboard|offboard)$")
    execution_id: str = ""
    execution_input: dict[str, Any] = Field(default_factory=dict)
    error: StatesErrorOutput = Field(default_factory=StatesErrorOutput)


class ScheduleDeletionStep(_Step):
    key_deletion_window_days: int = Field(default=30, ge=MIN_KEY_DELETION_DAYS, le=MAX_KEY_DELETION_DAYS)


class DisableUsersStep(_Step):
    server_id: str = ""


class OffboardedStep(_Step):
    execution_id: str = ""
    requested_by: str = ""
    reason: str = ""
    disabled_users: tuple[str, ...] = ()
    key_deletion_date: str | None = None


class TenantOffboarded(BaseModel):
    """The audit record of an offboarding, published on the platform bus (detail-type = class name)."""

    detail_type: ClassVar[str] = "TenantOffboarded"

    tenant_id: str
    bucket: str
    role_arn: str
    kms_key_arn: str | None
    key_deletion_date: str | None
    disabled_users: list[str]
    execution_id: str
    requested_by: str
    reason: str
    offboarded_at: str
