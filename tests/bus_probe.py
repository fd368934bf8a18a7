"""Read what reaches the platform bus: a rule forwarding one source to a queue (moto in-process)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from airlock.naming import Names


def forward_platform_bus(names: Names, source: str, name: str) -> Callable[[], list[dict[str, Any]]]:
    """A reader of every event ``source`` puts on the platform bus from now on (each returned once)."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events")
    events.put_rule(Name=name, EventBusName=names.platform_bus, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=name, EventBusName=names.platform_bus, Targets=[{"Id": "q", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            out.extend(json.loads(m["Body"]) for m in msgs)
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        return out

    return read
