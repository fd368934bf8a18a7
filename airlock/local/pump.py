"""The local event pump: what Lambda's SQS event source mapping does, in-process.

Receives batches from the ingest queue, hands them to the handler as an SQS event, deletes the
messages the handler did not report in ``batchItemFailures`` and leaves the rest to reappear after
the visibility timeout; the queue's redrive policy moves a message to the dead-letter queue after
``maxReceiveCount`` receives, as on AWS. A handler that raises fails the whole batch, as on AWS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airlock import aws
from airlock.local.context import LocalLambdaContext

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]


@dataclass
class PumpStats:
    batches: int = 0
    delivered: int = 0
    deleted: int = 0
    failed: int = 0
    handler_errors: int = 0


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping shapes it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class EventPump:
    """Polls one queue with ``concurrency`` threads and feeds batches to ``handler``."""

    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        function_name: str = "IngestFunction",
        batch_size: int = 10,
        concurrency: int = 2,
        wait_time_s: int = 1,
        region: str = "us-east-1",
    ) -> None:
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.wait_time_s = wait_time_s
        self.region = region
        self.stats = PumpStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queue_arn = ""

    def start(self) -> None:
        self._stop.clear()
        sqs = aws.client("sqs")
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for i in range(self.concurrency):
            t = threading.Thread(target=self._run, name=f"event-pump-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)
        self._threads.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling: one broken batch must not stop the pump
                log.exception("event pump: polling failed")
                self._stop.wait(1.0)

    def poll_once(self) -> int:
        """Receive and dispatch one batch; returns how many messages were delivered."""
        sqs = aws.client("sqs")
        resp = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [to_lambda_record(m, self._queue_arn, self.region) for m in messages]}
        context = LocalLambdaContext(function_name=self.function_name)
        failed: set[str] = set()
        try:
            result = self.handler(event, context) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("event pump: handler raised; the whole batch will be retried")
            with self._lock:
                self.stats.handler_errors += 1
                self.stats.batches += 1
                self.stats.delivered += len(messages)
                self.stats.failed += len(messages)
            return len(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        for chunk_start in range(0, len(done), 10):
            chunk = done[chunk_start : chunk_start + 10]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        with self._lock:
            self.stats.batches += 1
            self.stats.delivered += len(messages)
            self.stats.deleted += len(done)
            self.stats.failed += len(failed)
        return len(messages)
