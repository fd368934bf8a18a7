"""The ingest worker on the local stack: one outcome per upload, whatever the delivery does."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from airlock.local.stack import LocalStack
from airlock.onboarding.steps import onboard
from airlock.worker import process
from airlock.worker.ledger import Ledger, file_id_for
from airlock.worker.process import TransientError, Worker
from schemas.ledger import FileRecord, FileState, ObjectRef
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenants(local_stack: LocalStack) -> dict[str, Tenant]:
    return {
        t: onboard(OnboardRequest(tenant_id=t), server_id=local_stack.config.server_id, names=local_stack.names)
        for t in ("wk-alpha", "wk-bravo")
    }


def upload(ls_session: Any, tenant: Tenant, key: str, body: bytes) -> ObjectRef:
    """Upload as the counterparty's SFTP session would: the bucket's default encryption applies."""
    resp = ls_session.client("s3").put_object(Bucket=tenant.bucket, Key=key, Body=body)
    return ObjectRef(bucket=tenant.bucket, key=key, version_id=resp.get("VersionId"), etag=resp["ETag"])


def wait_terminal(stack: LocalStack, ref: ObjectRef, timeout_s: float = 20) -> FileRecord:
    ledger = Ledger(stack.names)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = ledger.get(file_id_for(ref))
        if record and record.state.terminal:
            return record
        time.sleep(0.1)
    raise AssertionError(f"no terminal state for {ref.key} within {timeout_s}s")


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s`` rather than sleep a guessed time."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s}s")
        time.sleep(0.1)


def queue_drained(ls_session: Any, queue_url: str) -> bool:
    """No message waiting and none in flight: every delivery was handled and acknowledged."""
    attrs = ls_session.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


@contextmanager
def pump_paused(stack: LocalStack) -> Iterator[None]:
    """Hold the event pump, so the test alone decides who handles an upload, and when."""
    if stack.pump:
        stack.pump.stop()
    try:
        yield
    finally:
        if stack.pump:
            stack.pump.start()


def versions(ls_session: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """Every stored version of exactly ``key`` (the bucket is versioned: a rewrite adds one)."""
    resp = ls_session.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in resp.get("Versions", []) if v["Key"] == key]


def objects(ls_session: Any, bucket: str) -> dict[str, str]:
    """Every current object key with a digest of its bytes (Parquet) or of its stable JSON fields."""
    s3 = ls_session.client("s3")
    out: dict[str, str] = {}
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        if item["Key"].endswith(".json"):
            doc = json.loads(body)
            for volatile in ("duration_s", "processing_s"):
                doc.pop(volatile, None)
            body = json.dumps(doc, sort_keys=True).encode()
        out[item["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def eventbridge_body(ref: ObjectRef) -> str:
    return json.dumps({
        "version": "0", "id": "00000000-0000-0000-0000-000000000000", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-23T00:00:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{ref.bucket}"],
        "detail": {"version": "0", "bucket": {"name": ref.bucket},
                   "object": {"key": ref.key, "size": 1, "etag": ref.etag, "version-id": ref.version_id},
                   "reason": "PutObject"},
    })


def test_every_output_is_encrypted_with_the_tenant_key_and_stays_in_its_bucket(
    local_stack: LocalStack, ls_session: Any, tenants: dict[str, Tenant], samples: Path
) -> None:
    alpha, bravo = tenants["wk-alpha"], tenants["wk-bravo"]
    before_bravo = objects(ls_session, bravo.bucket)
    ref = upload(ls_session, alpha, "inbound/fx.csv", (samples / "strata" / "fx-rates-1.csv").read_bytes())
    record = wait_terminal(local_stack, ref)

    assert record.verdict == "accepted" and record.tenant_id == "wk-alpha"
    s3 = ls_session.client("s3")
    written = [*record.output_keys, record.report_key, "outbound/reports/fx.csv.report.csv",
               "outbound/reports/fx.csv.report.json"]
    for key in written:
        head = s3.head_object(Bucket=alpha.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == alpha.kms_key_arn, key
    assert objects(ls_session, bravo.bucket) == before_bravo  # nothing landed in the other tenant's bucket


WRITES = ("PutObject", "CreateMultipartUpload", "CopyObject")


def test_every_write_names_the_tenant_key_explicitly_whatever_the_bucket_default(
    local_stack: LocalStack, ls_session: Any, tenants: dict[str, Tenant], samples: Path,
    tenant_requests: list[Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The requests as sent, not the stored objects: the bucket default is the tenant key already,
    so head_object alone would pass with no SSE arguments at all. Outputs go up in parts here
    (threshold 1 byte) so the CreateMultipartUpload path is on the wire too."""
    alpha = tenants["wk-alpha"]
    monkeypatch.setattr(process, "UPLOAD_CONFIG", TransferConfig(multipart_threshold=1))
    accepted = upload(ls_session, alpha, "inbound/sse/fx.csv", (samples / "strata" / "fx-rates-1.csv").read_bytes())
    rejected = upload(ls_session, alpha, "inbound/sse/bad-quotes.csv",
                      (samples / "strata" / "quotes-invalid-date.csv").read_bytes())
    assert wait_terminal(local_stack, accepted).verdict == "accepted"
    assert wait_terminal(local_stack, rejected).verdict == "rejected"

    sent = [r for r in tenant_requests if r.tenant_id == alpha.tenant_id]
    assert sent and all(r.bucket == alpha.bucket for r in sent)  # a tenant session stays in its bucket
    writes = [r for r in sent if r.operation in WRITES]
    for r in writes:
        assert r.headers.get("x-amz-server-side-encryption") == "aws:kms", (r.operation, r.key)
        assert r.headers.get("x-amz-server-side-encryption-aws-kms-key-id") == alpha.kms_key_arn, (r.operation, r.key)
    written = {(r.operation, r.key.split("/", 1)[0] + "/") for r in writes}
    assert {op for op, _ in written} == set(WRITES)
    assert {prefix for _, prefix in written} >= {"processed/", "reports/", "outbound/", "archive/", "rejected/"}
    assert any(r.key.startswith("outbound/reports/") for r in writes)


def test_three_deliveries_and_four_racing_workers_give_one_outcome(
    local_stack: LocalStack, ls_session: Any, tenants: dict[str, Tenant], samples: Path
) -> None:
    alpha = tenants["wk-alpha"]
    queue = local_stack.resources.ingest_queue_url if local_stack.resources else ""
    results: list[str] = []
    barrier = threading.Barrier(4)

    def race() -> None:
        barrier.wait()  # all four claim at once
        try:
            results.append(Worker(local_stack.names).process(ref).status)
        except TransientError:
            results.append("busy")

    with pump_paused(local_stack):  # the upload's own event waits in the queue: only the racers can win
        ref = upload(ls_session, alpha, "inbound/race/quotes.csv", (samples / "strata" / "quotes-1.csv").read_bytes())
        threads = [threading.Thread(target=race) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        record = wait_terminal(local_stack, ref)
        sqs = ls_session.client("sqs")
        for _ in range(3):
            sqs.send_message(QueueUrl=queue, MessageBody=eventbridge_body(ref))
    # The pump now delivers the upload's own event and the three duplicates.
    wait_for(lambda: queue_drained(ls_session, queue), "every delivery handled and acknowledged")

    assert len(results) == 4 and results.count("processed") == 1
    assert set(results) <= {"processed", "busy", "duplicate"}
    again = Ledger(local_stack.names).get(record.file_id)
    assert again is not None and again.state is FileState.ACCEPTED and again.attempts == 1
    parquet = [k for k in again.output_keys if k.endswith(".parquet")]
    assert len(parquet) == 2  # quotes-1.csv has two valuation dates
    for key in [again.report_key or "", *parquet, "outbound/reports/quotes.csv.report.json",
                "outbound/reports/quotes.csv.report.csv", f"archive/{record.file_id}/quotes.csv"]:
        assert len(versions(ls_session, alpha.bucket, key)) == 1, key  # written once, never rewritten
    dlq = local_stack.resources.ingest_dlq_url if local_stack.resources else ""
    assert sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_crash_before_the_ledger_update_reruns_to_identical_outputs(
    local_stack: LocalStack, ls_session: Any, tenants: dict[str, Tenant], samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bravo = tenants["wk-bravo"]
    local_stack.pump.stop() if local_stack.pump else None  # drive this one by hand
    try:
        ref = upload(ls_session, bravo, "inbound/crash/curves.csv",
                     (samples / "strata" / "curves-1.csv").read_bytes())
        crashing = Worker(local_stack.names)
        real_finish = crashing.ledger.finish

        def crash(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("worker lost its network after writing the outputs")

        monkeypatch.setattr(crashing.ledger, "finish", crash)
        crashing.ledger.lease_s = -1  # its lease is over as soon as it crashes
        with pytest.raises(TransientError):
            crashing.process(ref)
        first = objects(ls_session, bravo.bucket)
        monkeypatch.setattr(crashing.ledger, "finish", real_finish)

        result = Worker(local_stack.names).process(ref)
        assert result.status == "processed" and result.verdict == "accepted"
        second = objects(ls_session, bravo.bucket)
        outputs = [k for k in second if k.startswith(("processed/", "reports/", "outbound/"))]
        assert outputs and {k: second[k] for k in outputs} == {k: first[k] for k in outputs}
        record = Ledger(local_stack.names).get(result.file_id or "")
        assert record is not None and record.attempts == 2
    finally:
        if local_stack.pump:
            local_stack.pump.start()


def test_a_burst_across_ten_tenants_ends_with_one_terminal_entry_each(
    local_stack: LocalStack, ls_session: Any, samples: Path
) -> None:
    files = [samples / "strata" / n for n in ("quotes-1.csv", "fx-rates-1.csv", "quotes-invalid-date.csv",
                                               "fixings-1.csv", "groups.csv")]
    burst = [onboard(OnboardRequest(tenant_id=f"burst-{i:02d}"), server_id=local_stack.config.server_id,
                     names=local_stack.names) for i in range(10)]
    refs = [upload(ls_session, t, f"inbound/{n:02d}-{f.name}", f.read_bytes())
            for t in burst for n, f in enumerate(files * 2)]
    assert len(refs) == 100

    records = [wait_terminal(local_stack, r, timeout_s=90) for r in refs]
    assert len({r.file_id for r in records}) == 100
    assert all(r.tenant_id == t.tenant_id for r, t in zip(records, [t for t in burst for _ in range(10)], strict=True))
    verdicts = {r.key.split("-", 1)[1]: r.verdict for r in records}
    assert verdicts["quotes-invalid-date.csv"] == "rejected"
    assert verdicts["quotes-1.csv"] == "accepted"
    dlq = local_stack.resources.ingest_dlq_url if local_stack.resources else ""
    assert ls_session.client("sqs").receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", []) == []
