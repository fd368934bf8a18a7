"""The local event pump behaves like Lambda's SQS event source mapping, against the moto server."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from airlock.local.pump import EventPump
from airlock.local.stack import LocalStack

pytestmark = pytest.mark.integration


def make_queue(ls_session: Any, max_receives: int = 2) -> tuple[Any, str, str]:
    sqs = ls_session.client("sqs")
    name = f"pump-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}),
        },
    )["QueueUrl"]
    return sqs, queue, dlq


def drain(pump: EventPump, rounds: int, pause_s: float = 0.0) -> None:
    for _ in range(rounds):
        pump.poll_once()
        time.sleep(pause_s)


def test_partial_batch_failure_retries_only_the_failed_message(local_stack: LocalStack, ls_session: Any) -> None:
    sqs, queue, _ = make_queue(ls_session, max_receives=5)
    for body in ("good-1", "bad", "good-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert context.get_remaining_time_in_millis() > 0
        records = event["Records"]
        assert all(r["eventSource"] == "aws:sqs" and r["eventSourceARN"].endswith(queue.rsplit("/", 1)[1])
                   for r in records)
        seen.extend(r["body"] for r in records)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "bad"]}

    pump = EventPump(queue, handler, wait_time_s=0)
    pump.start()
    pump.stop()  # start() resolves the queue ARN; drive polls by hand for a deterministic test
    drain(pump, 2)
    assert sorted(seen) == ["bad", "good-1", "good-2"]
    time.sleep(1.2)  # the visibility timeout brings the failed one back
    drain(pump, 2)
    assert sorted(seen) == ["bad", "bad", "good-1", "good-2"]
    assert pump.stats.deleted == 2


def test_a_message_that_keeps_failing_reaches_the_dead_letter_queue(local_stack: LocalStack, ls_session: Any) -> None:
    sqs, queue, dlq = make_queue(ls_session, max_receives=2)
    sqs.send_message(QueueUrl=queue, MessageBody="poison")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("handler crashed")  # a raising handler fails the whole batch, as on Lambda

    pump = EventPump(queue, handler, wait_time_s=0)
    pump.start()
    pump.stop()
    for _ in range(4):
        pump.poll_once()
        time.sleep(1.1)
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]
    assert pump.stats.handler_errors == 2
