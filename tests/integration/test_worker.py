"""The ingest worker on the local stack: one outcome per upload, whatever the delivery does."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.local.stack import LocalStack
from airlock.onboarding.steps import onboard
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


def test_three_deliveries_and_four_racing_workers_give_one_outcome(
    local_stack: LocalStack, ls_session: Any, tenants: dict[str, Tenant], samples: Path
) -> None:
    alpha = tenants["wk-alpha"]
    ref = upload(ls_session, alpha, "inbound/race/quotes.csv", (samples / "strata" / "quotes-1.csv").read_bytes())
    results: list[str] = []

    def race() -> None:
        try:
            results.append(Worker(local_stack.names).process(ref).status)
        except TransientError:
            results.append("busy")

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = wait_terminal(local_stack, ref)
    sqs = ls_session.client("sqs")
    queue = local_stack.resources.ingest_queue_url if local_stack.resources else ""
    for _ in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=eventbridge_body(ref))
    time.sleep(2)  # let the pump deliver the duplicates

    assert results.count("processed") <= 1  # the pump's own delivery may have won the race
    again = Ledger(local_stack.names).get(record.file_id)
    assert again is not None and again.state is FileState.ACCEPTED and again.attempts == record.attempts
    parquet = [k for k in objects(ls_session, alpha.bucket) if k.startswith("processed/") and record.file_id in k]
    assert sorted(parquet) == sorted(k for k in record.output_keys if k.endswith(".parquet"))


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
