"""The file ledger record: one per uploaded object version, claimed before any work is done."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class FileState(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    ACCEPTED = "ACCEPTED"
    ACCEPTED_WITH_ERRORS = "ACCEPTED_WITH_ERRORS"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {FileState.ACCEPTED, FileState.ACCEPTED_WITH_ERRORS, FileState.REJECTED, FileState.FAILED}
)


class ObjectRef(BaseModel):
    """The uploaded object as the event names it. Only ``bucket`` decides the tenant."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    request_id: str | None = None  # S3's request id for the upload: joins logs to CloudTrail


class FileRecord(BaseModel):
    file_id: str
    tenant_id: str
    bucket: str
    key: str
    version: str  # the object version id, or its ETag in an unversioned bucket
    version_id: str = ""
    etag: str = ""
    state: FileState
    received_at: str
    updated_at: str
    attempts: int = 0
    replays: int = 0
    lease_owner: str | None = None
    lease_until: int | None = None
    kind: str | None = None
    verdict: str | None = None
    rows_total: int | None = None
    rows_accepted: int | None = None
    rows_rejected: int | None = None
    report_key: str | None = None
    output_keys: list[str] = Field(default_factory=list)
    error: str | None = None
