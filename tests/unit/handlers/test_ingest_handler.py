"""The ingest handler fed with the sample events in events/: what it processes, ignores and drops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from airlock.local.context import LocalLambdaContext
from airlock.local.resources import create_platform_resources
from airlock.naming import Names
from handlers import ingest as ingest_handler

EVENTS = Path(__file__).resolve().parents[3] / "events"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def platform(moto_aws: None, names: Names) -> Names:
    create_platform_resources(names)
    ingest_handler._worker = None  # a fresh worker bound to this test's moto
    return names


def test_eventbridge_message_names_the_object_and_folder_markers_are_skipped() -> None:
    event = load("ingest_eventbridge.json")
    refs = [ingest_handler.object_refs(r["body"]) for r in event["Records"]]
    assert refs[0][0].bucket == "airlock-t-demo-123456789012-us-east-1"
    assert refs[0][0].key == "inbound/quotes-1.csv"
    assert refs[0][0].version_id == "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
    assert refs[1][0].key == "inbound/"  # the worker ignores folder markers, see below


def test_s3_notification_keys_are_url_decoded() -> None:
    event = load("ingest_s3_notification.json")
    (ref,) = ingest_handler.object_refs(event["Records"][0]["body"])
    assert ref.key == "inbound/fx rates/2026-11-23.csv"


def test_non_create_events_name_no_object() -> None:
    body = json.dumps({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}})
    assert ingest_handler.object_refs(body) == []


@pytest.mark.parametrize("name", ["ingest_eventbridge.json", "ingest_s3_notification.json"])
def test_events_for_a_bucket_no_tenant_owns_are_dropped_without_retry(platform: Names, name: str) -> None:
    response = ingest_handler.lambda_handler(load(name), LocalLambdaContext(function_name="IngestFunction"))
    assert response == {"batchItemFailures": []}
    ledger_items = boto3.client("dynamodb").scan(TableName=platform.files_table)["Items"]
    assert ledger_items == []  # nothing was claimed for a bucket the registry does not know
