"""Fixtures for onboarding tests: the platform on moto in-process, fault injection, alert capture."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from bus_probe import forward_platform_bus

from airlock import aws
from airlock.local.resources import create_platform_resources
from airlock.naming import LOCAL_SERVER_ID, Names

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def platform(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> Names:
    create_platform_resources(names)
    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_IDS", LOCAL_SERVER_ID)
    return names


@pytest.fixture
def alerts(platform: Names) -> Callable[[], list[dict[str, Any]]]:
    """Messages published on the alerts topic (an SQS queue subscribed to it)."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="alerts-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = f"arn:aws:sns:{platform.region}:{platform.account_id}:{platform.alerts_topic}"
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict[str, Any]]:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in msgs]

    return read


@pytest.fixture
def audit_events(platform: Names) -> Callable[[], list[dict[str, Any]]]:
    """Events on the platform bus (a rule forwarding everything from onboarding to a queue)."""
    return forward_platform_bus(platform, "airlock.onboarding", "audit-probe")


class Fault:
    """Make ``service.operation`` raise a ClientError ``times`` times (the step code sees AWS failing)."""

    def __init__(self, service: str, operation: str, code: str, message: str, times: int) -> None:
        self.event = f"before-call.{service}.{operation}"
        self.service, self.operation, self.code, self.message = service, operation, code, message
        self.remaining = times
        self.raised = 0
        aws.client(service).meta.events.register(self.event, self)

    def __call__(self, **_kwargs: Any) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            self.raised += 1
            raise ClientError({"Error": {"Code": self.code, "Message": self.message}}, self.operation)

    def clear(self) -> None:
        self.remaining = 0


@pytest.fixture
def fault() -> Callable[..., Fault]:
    return Fault


@pytest.fixture
def sleeps() -> list[float]:
    return []
