"""The ingest handler fed with SQS batches: what it processes, ignores and drops, and what it tells.

The sample events in events/ name a bucket no tenant owns; the tests further down onboard a real
tenant, so an ignore rule cannot pass only because the registry does not know the bucket.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from bus_probe import forward_platform_bus

from airlock.local.context import LocalLambdaContext
from airlock.local.resources import create_platform_resources, create_worker_role
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding.steps import onboard
from airlock.tenancy.registry import Registry
from airlock.worker.ledger import file_id_for
from handlers import ingest as ingest_handler
from schemas.ledger import ObjectRef
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant, TenantStatus

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


# -- a known tenant's bucket: what reaches processing and what the platform sees ------------------

SAMPLE = "quotes-1.csv"  # four quotes rows on two valuation dates: accepted


@pytest.fixture
def tenant(platform: Names, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """An ACTIVE tenant, onboarded as in production (its bucket is versioned, its key is its own)."""
    monkeypatch.setenv("AIRLOCK_WORKER_ROLE_ARN", create_worker_role(platform))
    return onboard(OnboardRequest(tenant_id="acme"), server_id=LOCAL_SERVER_ID, names=platform)


@pytest.fixture
def bus(platform: Names) -> Callable[[], list[dict[str, Any]]]:
    """Everything the worker publishes on the platform bus (a rule forwarding it to a queue)."""
    return forward_platform_bus(platform, "airlock.ingest", "ingest-bus-probe")


def sqs_event(*bodies: str) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it; message ids ``m0``, ``m1``, ..."""
    return {"Records": [{
        "messageId": f"m{i}", "receiptHandle": f"rh{i}", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763889243000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:airlock-ingest", "awsRegion": "us-east-1",
    } for i, body in enumerate(bodies)]}


def eventbridge(bucket: str, key: str, version_id: str | None, detail_type: str = "Object Created") -> str:
    return json.dumps({
        "version": "0", "id": "e0", "detail-type": detail_type, "source": "aws.s3", "account": "123456789012",
        "time": "2026-11-23T09:14:03Z", "region": "us-east-1", "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 1, "etag": "e", "version-id": version_id},
                   "request-id": "R", "requester": "123456789012", "source-ip-address": "203.0.113.15",
                   "reason": "PutObject"},
    })


def s3_notification(bucket: str, key: str, version_id: str | None, event_name: str = "ObjectCreated:Put") -> str:
    """An S3 notification record; the key URL-encoded as S3 sends it (``quote_plus``)."""
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T09:14:03.000Z", "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:transfer"},
        "requestParameters": {"sourceIPAddress": "203.0.113.15"},
        "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "airlock-ingest",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key), "size": 1, "eTag": "e", "versionId": version_id or "null",
                          "sequencer": "0A"}},
    }]})


def put(tenant: Tenant, key: str, body: bytes) -> str | None:
    """Upload as the counterparty's SFTP session would; returns the version id."""
    return boto3.client("s3").put_object(Bucket=tenant.bucket, Key=key, Body=body).get("VersionId")


def bucket_state(tenant: Tenant) -> set[tuple[str, str, bool]]:
    """Every version and delete marker in the tenant's bucket: any write or move shows up here."""
    resp = boto3.client("s3").list_object_versions(Bucket=tenant.bucket)
    return {(v["Key"], v["VersionId"], False) for v in resp.get("Versions", [])} | {
        (m["Key"], m["VersionId"], True) for m in resp.get("DeleteMarkers", [])
    }


def ledger_entries(names: Names) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=names.files_table)["Items"]


def handle(event: dict[str, Any]) -> dict[str, Any]:
    return ingest_handler.lambda_handler(event, LocalLambdaContext(function_name="IngestFunction"))


def dropped_as_malformed(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Message ids the handler logged as malformed: an ignore test must not pass by a parse failure."""
    return [getattr(r, "message_id", "") for r in caplog.records if r.getMessage() == "dropping malformed message"]


def emitted_metrics(out: str) -> dict[str, float]:
    """The metric values in the EMF documents powertools printed on flush."""
    values: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = doc[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_a_file_in_inbound_is_processed_and_announced_on_the_bus(
    tenant: Tenant, bus: Callable[[], list[dict[str, Any]]], samples: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The control for the ignore rules below: the same set-up does reach processing for a real file."""
    good = put(tenant, "inbound/quotes-1.csv", (samples / "strata" / SAMPLE).read_bytes())
    bad = put(tenant, "inbound/bad.csv", (samples / "strata" / "quotes-invalid-date.csv").read_bytes())

    response = handle(sqs_event(eventbridge(tenant.bucket, "inbound/quotes-1.csv", good),
                                s3_notification(tenant.bucket, "inbound/bad.csv", bad)))

    assert response == {"batchItemFailures": []}
    assert dropped_as_malformed(caplog) == []
    good_id = file_id_for(ObjectRef(bucket=tenant.bucket, key="inbound/quotes-1.csv", version_id=good))
    bad_id = file_id_for(ObjectRef(bucket=tenant.bucket, key="inbound/bad.csv", version_id=bad))
    events = {e["detail"]["file_id"]: e for e in bus()}
    assert set(events) == {good_id, bad_id}
    accepted, rejected = events[good_id], events[bad_id]
    assert accepted["detail-type"] == "FileAccepted" and accepted["source"] == "airlock.ingest"
    assert accepted["detail"] | {"report_key": None} == {
        "tenant_id": "acme", "file_id": good_id, "source_key": "inbound/quotes-1.csv", "kind": "quotes",
        "verdict": "accepted", "rows_total": 4, "rows_accepted": 4, "rows_rejected": 0, "report_key": None,
    }
    assert accepted["detail"]["report_key"] == f"reports/{good_id}.json"
    assert rejected["detail-type"] == "FileRejected"
    assert rejected["detail"] | {"report_key": None} == {
        "tenant_id": "acme", "file_id": bad_id, "source_key": "inbound/bad.csv", "kind": "quotes",
        "verdict": "rejected", "rows_total": 1, "rows_accepted": 0, "rows_rejected": 1, "report_key": None,
    }


@pytest.mark.parametrize(
    "key",
    [
        "elsewhere/quotes-1.csv",  # outside inbound/
        "quotes-1.csv",  # the bucket root
        "processed/quotes/valuation_date=2014-01-22/f0.parquet",  # our own outputs: never fed back in
        "reports/f0.json",
        "archive/f0/quotes-1.csv",
        "rejected/f0/quotes-1.csv",
        "outbound/reports/quotes-1.csv.report.csv",
        "inbound/x/",  # folder markers (the SFTP client's mkdir)
        "inbound/",
        "inbound/../processed/quotes-1.csv",  # traversal out of inbound/
        "inbound/a/../../reports/quotes-1.csv",
        "inbound/./quotes-1.csv",
        "inbound//quotes-1.csv",  # an empty segment
    ],
)
def test_keys_that_are_not_uploads_for_us_reach_no_processing(
    platform: Names, tenant: Tenant, bus: Callable[[], list[dict[str, Any]]], samples: Path, key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A known, ACTIVE tenant's bucket, a real file at the key, both event shapes: nothing happens."""
    version = put(tenant, key, b"" if key.endswith("/") else (samples / "strata" / SAMPLE).read_bytes())
    before = bucket_state(tenant)

    response = handle(sqs_event(eventbridge(tenant.bucket, key, version), s3_notification(tenant.bucket, key, version)))

    assert response == {"batchItemFailures": []}  # acknowledged: never retried
    assert dropped_as_malformed(caplog) == []
    assert ledger_entries(platform) == []  # not even claimed
    assert bucket_state(tenant) == before  # no outputs, nothing archived or deleted
    assert bus() == []


@pytest.mark.parametrize(
    "body",
    [
        lambda b, k, v: eventbridge(b, k, v, detail_type="Object Deleted"),
        lambda b, k, v: eventbridge(b, k, v, detail_type="Object Restore Completed"),
        lambda b, k, v: s3_notification(b, k, v, event_name="ObjectRemoved:Delete"),
        lambda b, k, v: s3_notification(b, k, v, event_name="ObjectTagging:Put"),
    ],
    ids=["eb-deleted", "eb-restored", "s3-removed", "s3-tagging"],
)
def test_non_create_events_for_a_real_upload_reach_no_processing(
    platform: Names, tenant: Tenant, bus: Callable[[], list[dict[str, Any]]], samples: Path, body: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = put(tenant, "inbound/quotes-1.csv", (samples / "strata" / SAMPLE).read_bytes())
    before = bucket_state(tenant)

    response = handle(sqs_event(body(tenant.bucket, "inbound/quotes-1.csv", version)))

    assert response == {"batchItemFailures": []}
    assert dropped_as_malformed(caplog) == []
    assert ledger_entries(platform) == []
    assert bucket_state(tenant) == before
    assert bus() == []


@pytest.mark.parametrize("status", [TenantStatus.SUSPENDED, TenantStatus.OFFBOARDED])
def test_an_upload_for_a_tenant_that_is_not_active_is_not_processed_nor_retried(
    platform: Names, tenant: Tenant, bus: Callable[[], list[dict[str, Any]]], samples: Path, status: TenantStatus,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = put(tenant, "inbound/quotes-1.csv", (samples / "strata" / SAMPLE).read_bytes())
    Registry(platform).set_status(tenant.tenant_id, status)
    before = bucket_state(tenant)
    capsys.readouterr()

    response = handle(sqs_event(eventbridge(tenant.bucket, "inbound/quotes-1.csv", version)))

    assert response == {"batchItemFailures": []}  # no retry: the message is acknowledged
    assert dropped_as_malformed(caplog) == []
    assert ledger_entries(platform) == []
    assert bucket_state(tenant) == before  # the upload stays where it is, untouched
    (event,) = bus()
    assert event["detail-type"] == "UnknownBucket"
    assert event["detail"] == {"bucket": tenant.bucket, "key": "inbound/quotes-1.csv",
                               "reason": f"tenant {status.value.lower()}"}
    assert emitted_metrics(capsys.readouterr().out).get("UploadsWithoutActiveTenant") == 1


def test_malformed_messages_are_dropped_with_their_id_logged_and_the_rest_of_the_batch_runs(
    platform: Names, tenant: Tenant, samples: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = put(tenant, "inbound/quotes-1.csv", (samples / "strata" / SAMPLE).read_bytes())
    event = sqs_event(
        "this is not json",  # m0
        json.dumps({"detail-type": "Object Created", "source": "aws.s3"}),  # m1: no detail
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),  # m2: no s3 section
        json.dumps(["not", "an", "event"]),  # m3
        eventbridge(tenant.bucket, "inbound/quotes-1.csv", version),  # m4: a real upload
    )

    with caplog.at_level(logging.ERROR):
        response = handle(event)

    assert response == {"batchItemFailures": []}  # dropped, not retried, and the batch did not fail
    assert sorted(dropped_as_malformed(caplog)) == ["m0", "m1", "m2", "m3"]
    (entry,) = ledger_entries(platform)  # the good message in the same batch was processed
    assert entry["key"]["S"] == "inbound/quotes-1.csv" and entry["state"]["S"] == "ACCEPTED"


@pytest.mark.parametrize("packing", ["plain", "gzip"])
def test_the_manifest_carries_the_sha256_of_the_bytes_as_uploaded_read_once(
    tenant: Tenant, samples: Path, packing: str, tenant_requests: list[Any]
) -> None:
    plain = (samples / "strata" / SAMPLE).read_bytes()
    uploaded = gzip.compress(plain, mtime=0) if packing == "gzip" else plain
    key = "inbound/quotes-1.csv" + (".gz" if packing == "gzip" else "")
    version = put(tenant, key, uploaded)

    assert handle(sqs_event(eventbridge(tenant.bucket, key, version))) == {"batchItemFailures": []}

    file_id = file_id_for(ObjectRef(bucket=tenant.bucket, key=key, version_id=version))
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=tenant.bucket, Key=f"reports/{file_id}.json")["Body"].read())
    assert manifest["verdict"] == "accepted"
    assert manifest["source_sha256"] == hashlib.sha256(uploaded).hexdigest()  # the upload, not its expansion
    outbound_key = f"outbound/reports/{key.rsplit('/', 1)[1]}.report.json"
    outbound = json.loads(s3.get_object(Bucket=tenant.bucket, Key=outbound_key)["Body"].read())
    assert outbound["source_sha256"] == manifest["source_sha256"]  # the counterparty can check it too
    reads = [r for r in tenant_requests if r.operation in ("GetObject", "HeadObject")]
    assert [(r.operation, r.key) for r in reads] == [("GetObject", key)]  # hashed in passing: one read
