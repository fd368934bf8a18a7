"""What a file's check produces: findings, per-rule counts, the verdict, and the file report."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Verdict(StrEnum):
    """FORMATS.md verdicts: everything good, good rows published with bad ones quarantined, or nothing."""

    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    REJECTED = "rejected"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Finding(BaseModel):
    """One problem, located by physical line number (0 = the file as a whole) and column."""

    model_config = ConfigDict(frozen=True)

    rule: str = Field(pattern=r"^AIR-[EFW]\d{3}$")
    severity: Severity
    line: int = Field(ge=0)
    column: str = ""
    value: str = ""
    message: str


class RowCounts(BaseModel):
    total: int = 0
    accepted: int = 0
    rejected: int = 0


class OutputRef(BaseModel):
    dataset: str
    partition: dict[str, str] = Field(default_factory=dict)
    path: str
    rows: int


class FileReport(BaseModel):
    """The manifest of one ingested file: JSON for machines, ``report_csv`` for people."""

    file: str
    tenant_id: str
    file_id: str
    source_key: str = ""
    kind: str
    verdict: Verdict
    rows: RowCounts
    findings: list[Finding] = Field(default_factory=list)
    finding_counts: dict[str, int] = Field(default_factory=dict)
    outputs: list[OutputRef] = Field(default_factory=list)
    quarantine: str | None = None
    schema_version: str
    ingested_at: str
    duration_s: float
    # SHA-256 of the object as uploaded (before any gzip/zip expansion), hashed by the worker as it
    # streams the source: under SSE-KMS the ETag is no MD5 of the bytes. None outside the worker.
    source_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
