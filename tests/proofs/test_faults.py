"""Fault injection on the worker: throttling, 5xx and timeouts at each step, then the faults clear.

Runs on the local stack with its own platform (prefix ``flt``: tables, queue with a 2 s visibility
timeout, DLQ with the real redrive policy) and its own event pump feeding the real ingest handler.
Files are uploaded with the pump stopped, faults are armed per file (matched on its name or file id),
then the pump runs. Afterwards every file must have exactly one terminal state, whole outputs, no
message left in the queue or the DLQ, and a ledger whose ``attempts``/``error`` explain each retry.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.retries.standard import ExponentialBackoff

import handlers.ingest
from airlock import aws
from airlock.local.context import LocalLambdaContext
from airlock.local.faults import Fault, FaultInjector
from airlock.local.pump import EventPump
from airlock.local.resources import PlatformResources, create_platform_resources
from airlock.local.stack import LocalStack
from airlock.naming import Names
from airlock.onboarding.steps import onboard
from airlock.worker.ledger import Ledger, file_id_for
from airlock.worker.process import MAX_ATTEMPTS, Worker
from schemas.ledger import FileRecord, FileState, ObjectRef
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "strata" / "quotes-1.csv"
EXHAUST = 6  # retries={"max_attempts": 5} is five *retries* (six tries): the sixth fault reaches the worker


@dataclass(frozen=True)
class Scenario:
    """One file and the fault armed for it; ``retries`` is how many worker-level retries it must cause."""

    name: str
    service: str
    operation: str
    kind: str
    times: int
    by: str  # what the fault matches: "name" (source key), "file_id", "finish" (ledger verdict write)
    retries: int
    code: str  # what the ledger's error must name when retries > 0


SCENARIOS = [
    Scenario("registry-5xx", "dynamodb", "Query", "5xx", EXHAUST, "bucket", 0, ""),
    Scenario("claim-throttle", "dynamodb", "UpdateItem", "throttle", EXHAUST, "claim", 0, ""),
    Scenario("sts-throttle", "sts", "AssumeRole", "throttle", EXHAUST, "name", 1, "Throttling"),
    Scenario("sts-5xx-absorbed", "sts", "AssumeRole", "5xx", 2, "name", 0, ""),
    Scenario("get-timeout", "s3", "GetObject", "timeout", EXHAUST, "name", 1, "timeout"),
    Scenario("get-kms-throttle", "s3", "GetObject", "kms-throttle", EXHAUST, "name", 1, "SlowDown"),
    Scenario("put-throttle-absorbed", "s3", "PutObject", "throttle", 3, "file_id", 0, ""),
    Scenario("copy-5xx", "s3", "CopyObject", "5xx", EXHAUST, "name", 1, "InternalError"),
    Scenario("finish-throttle", "dynamodb", "UpdateItem", "throttle", EXHAUST, "finish", 1, "ThrottlingException"),
    Scenario("finish-timeout", "dynamodb", "UpdateItem", "timeout", EXHAUST, "finish", 1, "timeout"),
    Scenario("events-5xx", "eventbridge", "PutEvents", "5xx", EXHAUST, "name", 0, ""),
]


@dataclass
class Platform:
    stack: LocalStack
    names: Names
    resources: PlatformResources
    tenant: Tenant
    injector: FaultInjector
    pump: EventPump


@pytest.fixture(scope="module")
def flt(local_stack: LocalStack) -> Iterator[Platform]:
    names = Names(prefix="flt")
    resources = create_platform_resources(names, visibility_timeout_s=2)
    tenant = onboard(OnboardRequest(tenant_id="faulty"), server_id=local_stack.config.server_id, names=names)
    worker = Worker(names)

    def handler(event: dict[str, Any], _context: Any = None) -> Any:
        return handlers.ingest.lambda_handler(event, LocalLambdaContext(function_name="IngestFunction"))

    # one message per invocation: a batch outliving the short visibility timeout would be redelivered meanwhile
    pump = EventPump(resources.ingest_queue_url, handler, batch_size=1, concurrency=4, wait_time_s=1)
    injector = FaultInjector()
    mp = pytest.MonkeyPatch()
    if local_stack.pump:
        local_stack.pump.stop()  # its handler would now be ours; it resumes below
    mp.setattr(handlers.ingest, "worker", lambda: worker)
    mp.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.01)  # retry at once, as often
    injector.install()
    aws.reset_clients()
    try:
        yield Platform(local_stack, names, resources, tenant, injector, pump)
    finally:
        pump.stop()
        injector.uninstall()
        mp.undo()
        aws.reset_clients()
        if local_stack.pump:
            local_stack.pump.start()


def upload(ls_session: Any, tenant: Tenant, key: str) -> ObjectRef:
    resp = ls_session.client("s3").put_object(Bucket=tenant.bucket, Key=key, Body=SAMPLE.read_bytes())
    return ObjectRef(bucket=tenant.bucket, key=key, version_id=resp.get("VersionId"), etag=resp["ETag"])


def arm(p: Platform, s: Scenario, ref: ObjectRef) -> Fault:
    fid = file_id_for(ref)
    match: tuple[str, ...] = {
        "name": (s.name + ".csv",),
        "file_id": (fid,),
        "finish": (fid, "verdict"),  # the verdict write, not the claim or the release
        "claim": (s.name + ".csv", "attribute_not_exists"),
        "bucket": (ref.bucket, "KeyConditionExpression"),
    }[s.by]
    return p.injector.add(Fault(s.service, s.operation, s.kind, times=s.times, match=match))


def queue_depth(p: Platform, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def settle(p: Platform, refs: list[ObjectRef], timeout_s: float = 60) -> dict[str, FileRecord | None]:
    """Until every file is terminal and both queues are empty (or the time is up)."""
    ledger = Ledger(p.names)
    deadline = time.monotonic() + timeout_s
    while True:
        records = {r.key: ledger.get(file_id_for(r)) for r in refs}
        done = all(rec is not None and rec.state.terminal for rec in records.values())
        if (done and queue_depth(p, p.resources.ingest_queue_url) == 0) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def assert_whole(ls_session: Any, tenant: Tenant, ref: ObjectRef, record: FileRecord) -> None:
    """Report, Parquet, outbound reports and archive all there and consistent with the ledger."""
    s3 = ls_session.client("s3")
    manifest = json.loads(s3.get_object(Bucket=tenant.bucket, Key=record.report_key)["Body"].read())
    assert manifest["file_id"] == record.file_id and manifest["verdict"] == record.verdict
    assert manifest["outputs"] == record.output_keys
    rows = 0
    for key in record.output_keys:
        if key.endswith(".parquet"):
            rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=tenant.bucket, Key=key)["Body"].read())).num_rows
    assert rows == record.rows_accepted > 0
    name = ref.key.rsplit("/", 1)[-1]
    for key in (f"outbound/reports/{name}.report.csv", f"outbound/reports/{name}.report.json",
                f"archive/{record.file_id}/{name}"):
        s3.head_object(Bucket=tenant.bucket, Key=key)
    processed = s3.list_objects_v2(Bucket=tenant.bucket, Prefix="processed/").get("Contents", [])
    mine = sorted(o["Key"] for o in processed if record.file_id in o["Key"])
    assert mine == sorted(k for k in record.output_keys if k.startswith("processed/"))


def test_every_step_survives_throttling_5xx_and_timeouts(flt: Platform, ls_session: Any) -> None:
    refs = {s.name: upload(ls_session, flt.tenant, f"inbound/{s.name}.csv") for s in SCENARIOS}
    faults = {s.name: arm(flt, s, refs[s.name]) for s in SCENARIOS}
    # and one fault that never clears: it must end FAILED with its cause, not in the DLQ
    stuck = upload(ls_session, flt.tenant, "inbound/never-clears.csv")
    flt.injector.add(Fault("s3", "GetObject", "5xx", times=EXHAUST * MAX_ATTEMPTS, match="never-clears.csv"))
    flt.pump.start()
    records = settle(flt, [*refs.values(), stuck])
    flt.pump.stop()

    assert queue_depth(flt, flt.resources.ingest_dlq_url) == 0, "a message reached the dead-letter queue"
    assert queue_depth(flt, flt.resources.ingest_queue_url) == 0
    s3 = ls_session.client("s3")
    for s in SCENARIOS:
        ref = refs[s.name]
        record = records[ref.key]
        assert faults[s.name].exhausted, f"{s.name}: the fault never fired ({faults[s.name].fired}/{s.times})"
        assert record is not None and record.state is FileState.ACCEPTED, (s.name, record)
        assert_whole(ls_session, flt.tenant, ref, record)
        assert s3.list_objects_v2(Bucket=flt.tenant.bucket, Prefix=ref.key).get("KeyCount", 0) == 0, s.name
        # the ledger explains every retry: one claim per worker-level attempt, the last error kept
        assert record.attempts == 1 + s.retries, (s.name, record.attempts, record.error)
        if s.retries:
            assert record.error and s.code.lower() in record.error.lower(), (s.name, record.error)
        else:
            assert record.error is None, (s.name, record.error)
    failed = records[stuck.key]
    assert failed is not None and failed.state is FileState.FAILED
    assert failed.attempts == MAX_ATTEMPTS and failed.error and "InternalError" in failed.error
    # the original stays in inbound/ for an operator to re-drive
    assert s3.list_objects_v2(Bucket=flt.tenant.bucket, Prefix=stuck.key)["KeyCount"] == 1
    assert len(flt.injector.log) == sum(s.times for s in SCENARIOS) + EXHAUST * MAX_ATTEMPTS


# Regression test, fixed in 6bdfe89; it was a bug (airlock/worker/process.py is_transient): boto3's upload_file
# wraps the ClientError of a failed PutObject in boto3.exceptions.S3UploadFailedError, which is neither ClientError
# nor BotoCoreError, so a KMS 5xx/throttle or S3 SlowDown on the Parquet or quarantine upload that outlasts
# botocore's retries marks the file FAILED for good instead of retrying it
@pytest.mark.parametrize("kind", ["kms-5xx", "kms-throttle"])
def test_a_transient_failure_of_the_parquet_upload_is_retried(flt: Platform, ls_session: Any, kind: str) -> None:
    ref = upload(ls_session, flt.tenant, f"inbound/put-{kind}.csv")
    fault = flt.injector.add(Fault("s3", "PutObject", kind, times=EXHAUST, match=(file_id_for(ref), ".parquet")))
    flt.pump.start()
    record = settle(flt, [ref])[ref.key]
    flt.pump.stop()
    assert fault.exhausted and record is not None
    assert record.state is FileState.ACCEPTED, record.error


# Regression test, fixed in 6bdfe89; it was a bug (airlock/worker/process.py Worker._run): DeleteObject of the
# original runs after ledger.finish; when it fails past botocore's retries the handler releases and retries, but the
# next delivery sees a terminal state and returns 'duplicate', so the original stays in inbound/ for good and the
# FileAccepted event is never published
def test_a_failed_delete_of_the_original_is_retried(flt: Platform, ls_session: Any) -> None:
    ref = upload(ls_session, flt.tenant, "inbound/delete-5xx.csv")
    fault = flt.injector.add(Fault("s3", "DeleteObject", "5xx", times=EXHAUST, match="delete-5xx.csv"))
    flt.pump.start()
    record = settle(flt, [ref])[ref.key]
    flt.pump.stop()
    assert fault.exhausted and record is not None and record.state is FileState.ACCEPTED
    assert ls_session.client("s3").list_objects_v2(Bucket=flt.tenant.bucket, Prefix=ref.key)["KeyCount"] == 0


# Regression test, fixed in 6bdfe89; it was a bug (airlock/worker/ledger.py Ledger.claim): a claim whose response is
# lost (timeout after DynamoDB applied it) is retried by botocore, fails its condition against the worker's *own*
# live lease and is reported BUSY; every delivery then stays BUSY until the 360 s lease expires (locally: the
# message is dead-lettered first). claim() should treat lease_owner == owner as its own claim
def test_a_claim_whose_response_was_lost_still_processes_the_file(flt: Platform, ls_session: Any) -> None:
    ref = upload(ls_session, flt.tenant, "inbound/claim-lost.csv")
    fault = flt.injector.add(Fault("dynamodb", "UpdateItem", "lost-response", times=1,
                                   match=("claim-lost.csv", "attribute_not_exists")))
    flt.pump.start()
    try:
        record = settle(flt, [ref], timeout_s=5)[ref.key]  # a working claim finishes this in about 1 s
    finally:
        flt.pump.stop()
        for url in (flt.resources.ingest_queue_url, flt.resources.ingest_dlq_url):
            aws.client("sqs").purge_queue(QueueUrl=url)
    assert fault.exhausted
    assert record is not None and record.state.terminal, record
