"""IngestFunction: SQS batches of S3 "Object Created" events -> one outcome per uploaded file.

Accepts EventBridge events (the deployed path) and, as a second shape, S3 notification records.
A malformed message is logged with its id and dropped; a transient failure is reported in
``batchItemFailures`` so only that message is retried.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from airlock.naming import INGEST_MAX_RECEIVE_COUNT
from airlock.worker.process import IGNORED_KEY_REASONS, Worker
from schemas.ledger import ObjectRef

# Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE (template.yaml).
logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Airlock"))
tracer = Tracer()
# A file is not started with less than this left: it goes back to the queue for a fresh invocation.
MIN_REMAINING_MS = 60_000
processor = BatchProcessor(event_type=EventType.SQS)
# The core logs through stdlib loggers ("airlock.*"): give them the same JSON shape and keys.
copy_config_to_registered_loggers(source_logger=logger, include={"airlock"})
_worker: Worker | None = None


def worker() -> Worker:
    global _worker  # noqa: PLW0603 - one worker per execution environment, reused across invocations
    if _worker is None:
        _worker = Worker()
    return _worker


def object_refs(body: str) -> list[ObjectRef]:
    """The objects a message names; [] for anything that is not an object-created event."""
    data = json.loads(body)
    if isinstance(data, dict) and "detail-type" in data:
        if data.get("detail-type") != "Object Created":
            return []
        ev = S3EventNotificationEventBridgeModel.model_validate(data)
        o = ev.detail.object
        return [ObjectRef(bucket=ev.detail.bucket.name, key=o.key, version_id=o.version_id, etag=o.etag, size=o.size,
                          request_id=ev.detail.request_id)]
    if isinstance(data, dict) and "Records" in data:
        s3 = S3Model.model_validate(data)
        return [
            ObjectRef(
                bucket=r.s3.bucket.name,
                key=unquote_plus(r.s3.object.key),  # S3 notifications URL-encode keys (+ for space)
                version_id=r.s3.object.versionId,
                etag=r.s3.object.eTag,
                size=r.s3.object.size,
                request_id=r.responseElements.x_amz_request_id,
            )
            for r in s3.Records
            if r.eventName.startswith("ObjectCreated:") and r.s3.object is not None
        ]
    if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
        return []
    raise ValueError("not an S3 event")


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < MIN_REMAINING_MS:
        raise TimeoutError("too little time left in this invocation; retried by the next one")
    logger.set_correlation_id(record.message_id)  # until the message names a file (its S3 request id)
    try:
        refs = object_refs(record.body)
    # A body that is not an event for us: pydantic's ValidationError (a ValueError) mostly, but
    # powertools' own S3 validators raise AttributeError/TypeError on some shapes (no "s3" section).
    # Retrying cannot fix a body, so every one of these is dropped rather than sent to the DLQ.
    except (ValueError, ValidationError, TypeError, AttributeError, KeyError) as err:
        logger.error("dropping malformed message", extra={"message_id": record.message_id, "error": str(err)[:500]})
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=1)
        return
    for ref in refs:
        logger.append_keys(message_id=record.message_id, bucket=ref.bucket, key=ref.key)
        logger.set_correlation_id(ref.request_id or record.message_id)
        try:
            result = worker().process(ref)  # TransientError propagates: this message is retried
        except Exception:
            if int(record.attributes.approximate_receive_count or 0) >= INGEST_MAX_RECEIVE_COUNT:
                metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)
                logger.error("message goes to the dead-letter queue",
                             extra={"receives": record.attributes.approximate_receive_count})
            raise
        finally:
            logger.remove_keys(["message_id", "bucket", "key"])
        logger.info("file handled", extra={"message_id": record.message_id, "key": ref.key, **result.__dict__})
        if result.tenant_id:
            tracer.put_annotation("tenant_id", result.tenant_id)
        if result.status == "processed" and result.verdict:
            tracer.put_annotation("verdict", result.verdict)
            metrics.add_metric(name=f"Files_{result.verdict}", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="RowsAccepted", unit=MetricUnit.Count, value=result.rows_accepted)
            metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=result.rows_rejected)
            if result.processing_s is not None:
                metrics.add_metric(name="ProcessingSeconds", unit=MetricUnit.Seconds, value=result.processing_s)
        elif result.status == "ignored" and result.reason and not result.reason.startswith(IGNORED_KEY_REASONS):
            metrics.add_metric(name="UploadsWithoutActiveTenant", unit=MetricUnit.Count, value=1)
        elif result.status == "duplicate":
            metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
