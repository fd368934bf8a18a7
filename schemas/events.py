"""Domain events the worker publishes on the platform bus (detail-type = the class name)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel


class FileEvent(BaseModel):
    detail_type: ClassVar[str] = "FileEvent"

    tenant_id: str
    file_id: str
    source_key: str
    kind: str | None = None
    verdict: str | None = None
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    report_key: str | None = None


class FileAccepted(FileEvent):
    detail_type: ClassVar[str] = "FileAccepted"


class FileRejected(FileEvent):
    detail_type: ClassVar[str] = "FileRejected"


class FileFailed(FileEvent):
    detail_type: ClassVar[str] = "FileFailed"
    error: str = ""


class UnknownBucket(BaseModel):
    """An upload event for a bucket the registry does not know, or whose tenant is not active."""

    detail_type: ClassVar[str] = "UnknownBucket"

    bucket: str
    key: str
    reason: str
