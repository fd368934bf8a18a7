"""Process one uploaded object: tenant from the registry, claim, validate, publish, record.

Order matters for "one outcome per upload": outputs are written first (deterministic keys, so a
re-run overwrites), then the original is copied to ``archive/`` and removed from ``inbound/`` (a
delete marker: the bucket is versioned and the source is read by version id), then the ledger
records the terminal state, and last the domain event is published. A crash anywhere before the
ledger update leaves the file claimable again once the lease runs out, and the re-run reads the same
version and writes identical outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from airlock import aws
from airlock.ingest.pipeline import IngestOptions, IngestOutcome, ingest, report_csv
from airlock.naming import (
    ARCHIVE_PREFIX,
    INBOUND_PREFIX,
    INGEST_MAX_RECEIVE_COUNT,
    OUTBOUND_PREFIX,
    PROCESSED_PREFIX,
    REJECTED_PREFIX,
    REPORTS_PREFIX,
    Names,
)
from airlock.tenancy.registry import Registry
from airlock.tenancy.session import file_session, s3_client
from airlock.worker.ledger import ClaimStatus, Ledger, file_id_for
from schemas.events import FileAccepted, FileEvent, FileFailed, FileRejected, UnknownBucket
from schemas.ledger import FileState, ObjectRef
from schemas.tenant import Tenant

log = logging.getLogger(__name__)

MAX_ATTEMPTS = INGEST_MAX_RECEIVE_COUNT
TRANSIENT_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
        "ProvisionedThroughputExceededException", "RequestTimeout", "RequestTimeoutException",
        "ServiceUnavailable", "SlowDown", "InternalError", "InternalFailure", "KMSInternalException",
        "TransactionConflictException", "IDPCommunicationError",
    }
)


# boto3's defaults (multipart above 8 MB, 8 MB parts), named so one place decides when an output
# goes up in parts; every part-upload starts with a CreateMultipartUpload that carries the SSE args.
UPLOAD_CONFIG = TransferConfig()


class TransientError(Exception):
    """The platform, not the data, failed: the message goes back to the queue for another try."""


@dataclass
class Result:
    """What happened to one event, for the handler's response and metrics."""

    status: str  # processed | duplicate | ignored | busy
    file_id: str | None = None
    tenant_id: str | None = None
    kind: str | None = None
    verdict: str | None = None
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    output_keys: list[str] = field(default_factory=list)
    report_key: str | None = None
    reason: str | None = None
    processing_s: float | None = None


def is_transient(err: BaseException | None) -> bool:
    """Throttling, 5xx, timeouts: anywhere in the chain (boto3's upload_file wraps the ClientError)."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, ClientError):
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in TRANSIENT_CODES or status >= 500:
                return True
        elif isinstance(err, BotoCoreError | TimeoutError | ConnectionError):
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return False


IGNORED_KEY_REASONS = ("outside inbound/", "folder marker", "path traversal")


class HashingReader(io.RawIOBase):
    """The S3 body as a raw stream that hashes what passes through: the source checksum needs no second read.

    The ETag is no checksum of the bytes under SSE-KMS (nor for multipart uploads), so the manifest
    carries this SHA-256 of the original object instead.
    """

    def __init__(self, body: Any) -> None:
        self._body = body
        self._sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        view[: len(data)] = data
        self._sha256.update(data)
        return len(data)

    def hexdigest(self) -> str:
        """The digest of the whole object: whatever the reader left unread is hashed first."""
        while chunk := self._body.read(1 << 20):
            self._sha256.update(chunk)
        return self._sha256.hexdigest()

    def close(self) -> None:
        self._body.close()
        super().close()


def ignorable_key(key: str) -> str | None:
    """Why an object is not a file for us, or None. Keys are never trusted to pick the tenant."""
    if not key.startswith(INBOUND_PREFIX):
        return "outside inbound/"
    if key.endswith("/"):
        return "folder marker"
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts[1:]):
        return "path traversal or empty segment"
    return None


def output_keys(file_id: str, source_key: str, outcome: IngestOutcome) -> dict[str, str]:
    name = posixpath.basename(source_key)
    return {
        "report": f"{REPORTS_PREFIX}{file_id}.json",
        "outbound_csv": f"{OUTBOUND_PREFIX}reports/{name}.report.csv",
        "outbound_json": f"{OUTBOUND_PREFIX}reports/{name}.report.json",
        "archive": f"{ARCHIVE_PREFIX}{file_id}/{name}",
        "quarantine": f"{REJECTED_PREFIX}{file_id}/rejected-rows.csv",
        "rejected_original": f"{REJECTED_PREFIX}{file_id}/{name}",
    }


def parquet_key(file_id: str, dataset: str, partition: dict[str, str]) -> str:
    parts = "".join(f"{k}={v}/" for k, v in partition.items())
    return f"{PROCESSED_PREFIX}{dataset}/{parts}{file_id}.parquet"


class Worker:
    """Holds the platform clients; ``process`` handles one object reference."""

    def __init__(self, names: Names | None = None) -> None:
        self.names = names or Names.from_env()
        self.registry = Registry(self.names)
        self.ledger = Ledger(self.names)
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"

    def process(self, ref: ObjectRef) -> Result:
        why = ignorable_key(ref.key)
        if why:
            return Result(status="ignored", reason=why)
        tenant = self.registry.by_bucket(ref.bucket)
        if tenant is None or not tenant.is_active:
            reason = "unknown bucket" if tenant is None else f"tenant {tenant.status.value.lower()}"
            log.warning("upload for a bucket with no active tenant", extra={"bucket": ref.bucket, "reason": reason})
            self._publish(UnknownBucket(bucket=ref.bucket, key=ref.key, reason=reason))
            return Result(status="ignored", reason=reason, tenant_id=tenant.tenant_id if tenant else None)

        # One token per attempt, not per worker: two deliveries handled by one warm worker (or two
        # threads locally) must not mistake each other's claim for their own.
        owner = f"{self.worker_id}-{uuid.uuid4().hex[:8]}"
        claim = self.ledger.claim(ref, tenant.tenant_id, owner)
        record = claim.record
        if claim.status is ClaimStatus.DONE:
            return Result(status="duplicate", file_id=record.file_id, tenant_id=tenant.tenant_id,
                          verdict=record.verdict, kind=record.kind)
        if claim.status is ClaimStatus.BUSY:
            raise TransientError(f"file {record.file_id} is being processed by {record.lease_owner}")

        try:
            return self._run(tenant, ref, record.file_id, datetime.fromisoformat(record.received_at), owner)
        except Exception as err:
            if is_transient(err) and record.attempts < MAX_ATTEMPTS:
                self.ledger.release(record.file_id, owner, f"{type(err).__name__}: {err}")
                raise TransientError(str(err)) from err
            log.exception("file failed", extra={"file_id": record.file_id, "tenant_id": tenant.tenant_id})
            error = f"{type(err).__name__}: {err}"[:1000]
            self.ledger.finish(record.file_id, owner, FileState.FAILED, error=error)
            self._publish(FileFailed(tenant_id=tenant.tenant_id, file_id=record.file_id, source_key=ref.key,
                                     error=type(err).__name__))
            return Result(status="processed", file_id=record.file_id, tenant_id=tenant.tenant_id,
                          verdict="failed", reason=str(err))

    def _run(self, tenant: Tenant, ref: ObjectRef, file_id: str, received_at: datetime, owner: str) -> Result:
        assert tenant.kms_key_arn
        s3 = s3_client(file_session(tenant, source_key=ref.key, file_id=file_id))
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": tenant.kms_key_arn}
        get_args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id and ref.version_id != "null":
            get_args["VersionId"] = ref.version_id
        started = time.monotonic()
        options = IngestOptions(
            tenant_id=tenant.tenant_id,
            file_id=file_id,
            source_key=ref.key,
            policy=tenant.policy,
            ingested_at=received_at,  # stable across re-runs, so outputs are identical
        )
        with tempfile.TemporaryDirectory(prefix=f"airlock-{file_id}-") as tmp:
            source = HashingReader(s3.get_object(**get_args)["Body"])
            with io.BufferedReader(source, buffer_size=1 << 20) as stream:  # closing it closes the body
                outcome = ingest(stream, options=options, out_dir=Path(tmp))
                source_sha256 = source.hexdigest()
            keys = output_keys(file_id, ref.key, outcome)
            written: list[str] = []
            for out in outcome.outputs:
                key = parquet_key(file_id, out.dataset, out.partition)
                s3.upload_file(str(out.path), ref.bucket, key, ExtraArgs=sse, Config=UPLOAD_CONFIG)
                written.append(key)
            if outcome.quarantine is not None:
                s3.upload_file(str(outcome.quarantine), ref.bucket, keys["quarantine"], ExtraArgs=sse,
                               Config=UPLOAD_CONFIG)
                written.append(keys["quarantine"])
            if outcome.verdict.value == "rejected":
                s3.copy_object(Bucket=ref.bucket, Key=keys["rejected_original"],
                               CopySource=get_args, **sse)
                written.append(keys["rejected_original"])
            report = outcome.report().model_copy(update={"source_sha256": source_sha256}).model_dump(mode="json")
            manifest = {
                **report,
                "file_id": file_id,
                "tenant_id": tenant.tenant_id,
                "source_key": ref.key,
                "source_version": ref.version_id,
                "source_etag": ref.etag,
                "outputs": written,  # S3 keys, not the worker's temporary paths
                "quarantine": keys["quarantine"] if outcome.quarantine is not None else None,
                "processing_s": round(time.monotonic() - started, 3),
            }
            body_json = json.dumps(manifest, indent=2, sort_keys=True).encode()
            s3.put_object(Bucket=ref.bucket, Key=keys["report"], Body=body_json,
                          ContentType="application/json", **sse)
            s3.put_object(Bucket=ref.bucket, Key=keys["outbound_json"], Body=body_json,
                          ContentType="application/json", **sse)
            s3.put_object(Bucket=ref.bucket, Key=keys["outbound_csv"],
                          Body=report_csv(outcome.report()).encode(), ContentType="text/csv", **sse)
            s3.copy_object(Bucket=ref.bucket, Key=keys["archive"], CopySource=get_args, **sse)

        # Tenant buckets are versioned and the source is read by version id, so the original can leave
        # inbound/ before the verdict is recorded: a crash in between re-reads the same version.
        s3.delete_object(Bucket=ref.bucket, Key=ref.key)
        state = FileState(outcome.verdict.value.upper())
        self.ledger.finish(
            file_id, owner, state,
            kind=outcome.kind, verdict=outcome.verdict.value,
            rows_total=outcome.rows_total, rows_accepted=outcome.rows_accepted,
            rows_rejected=outcome.rows_rejected, report_key=keys["report"], output_keys=written,
        )
        event_type: type[FileEvent] = FileAccepted if state is not FileState.REJECTED else FileRejected
        self._publish(event_type(
            tenant_id=tenant.tenant_id, file_id=file_id, source_key=ref.key, kind=outcome.kind,
            verdict=outcome.verdict.value, rows_total=outcome.rows_total, rows_accepted=outcome.rows_accepted,
            rows_rejected=outcome.rows_rejected, report_key=keys["report"],
        ))
        return Result(
            status="processed", file_id=file_id, tenant_id=tenant.tenant_id, kind=outcome.kind,
            verdict=outcome.verdict.value, rows_total=outcome.rows_total, rows_accepted=outcome.rows_accepted,
            rows_rejected=outcome.rows_rejected, output_keys=written, report_key=keys["report"],
            processing_s=time.monotonic() - started,
        )

    def _publish(self, event: FileEvent | UnknownBucket) -> None:
        try:
            aws.client("events").put_events(Entries=[{
                "Source": "airlock.ingest",
                "DetailType": event.detail_type,
                "Detail": event.model_dump_json(),
                "EventBusName": self.names.platform_bus,
            }])
        except (ClientError, BotoCoreError):  # an event lost must not undo a verdict already recorded
            log.exception("could not publish domain event", extra={"detail_type": event.detail_type})


__all__ = ["Result", "TransientError", "Worker", "file_id_for", "is_transient"]
