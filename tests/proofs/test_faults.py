"""Fault injection on the worker: every step x every fault kind, then the faults clear.

Runs on the local stack with its own platform (prefix ``flt``: tables, queue with a 2 s visibility
timeout, DLQ with the real redrive policy) and its own event pump feeding the real ingest handler.
The scenarios are generated: every AWS call the worker makes for a file (``STEPS``) crossed with
throttling, 5xx and timeouts, plus KMS throttling and 5xx at the steps where S3 does KMS work
(SSE-KMS: S3 reports those, there is no KMS call of ours to time out). Each fault outlasts
botocore's retries, so it reaches the worker; a few absorbed faults show that retries botocore
absorbs leave no trace. Files are uploaded with the pump stopped, one file per scenario with its
fault armed (matched on the file's name or id), then the pump runs. Afterwards every file must have
exactly one terminal state, whole outputs, no message left in the queue or the DLQ, and a ledger
whose ``attempts``/``error`` explain each retry.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
import moto.backends
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
from airlock.worker import ledger as ledger_module
from airlock.worker.ledger import DEFAULT_LEASE_S, Ledger, file_id_for
from airlock.worker.process import MAX_ATTEMPTS, Worker
from schemas.ledger import FileRecord, FileState, ObjectRef
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "strata" / "quotes-1.csv"
EXHAUST = 6  # retries={"max_attempts": 5} is five *retries* (six tries): the sixth fault reaches the worker
KINDS = ("throttle", "5xx", "timeout")
KMS_KINDS = ("kms-throttle", "kms-5xx")  # what S3 answers when its SSE-KMS call to KMS fails


@dataclass(frozen=True)
class Target:
    """What a fault can match for one file: its name (``<scenario>.csv``), its id, the platform names."""

    name: str
    ref: ObjectRef
    file_id: str
    names: Names


@dataclass(frozen=True)
class Step:
    """One AWS call the worker makes for a file, and what an unrecovered fault there must lead to.

    ``retried``: the worker gives the file back and the next delivery retries it, counted in the
    ledger (``attempts`` + 1, ``error`` naming the fault). Steps before the claim are retried by SQS
    redelivery too, but cannot be in the ledger (no claim yet); a lost domain event is logged, not
    retried, by design. ``kms``: S3 does KMS work in this call (SSE-KMS), so KMS faults apply.
    """

    name: str
    service: str
    operation: str
    match: Callable[[Target], tuple[str, ...]]
    retried: bool
    kms: bool = False


STEPS = (
    # The registry's GSI query and its base-table read name only the bucket, which every file here
    # shares: the fault fires on whichever file asks first (no file is claimed yet, so none is hurt).
    Step("registry-query", "dynamodb", "Query", lambda t: (t.ref.bucket, "KeyConditionExpression"), retried=False),
    Step("registry-get", "dynamodb", "GetItem", lambda t: (t.names.tenants_table,), retried=False),
    Step("claim", "dynamodb", "UpdateItem", lambda t: (f"{t.name}.csv", "attribute_not_exists"), retried=False),
    Step("assume-role", "sts", "AssumeRole", lambda t: (f"ingest-{t.file_id}",), retried=True),
    Step("get-source", "s3", "GetObject", lambda t: (f"{t.name}.csv",), retried=True, kms=True),
    # Regression, fixed in 6bdfe89 (airlock/worker/process.py is_transient): boto3's upload_file wraps the
    # ClientError of a failed PutObject in S3UploadFailedError, so a KMS 5xx/throttle or SlowDown on the Parquet
    # upload that outlasted botocore's retries marked the file FAILED for good: the put-parquet cells.
    Step("put-parquet", "s3", "PutObject", lambda t: (t.file_id, ".parquet"), retried=True, kms=True),
    Step("put-report", "s3", "PutObject", lambda t: (f"/reports/{t.file_id}.json",), retried=True, kms=True),
    Step("put-outbound", "s3", "PutObject", lambda t: (f"outbound/reports/{t.name}.csv.report.csv",),
         retried=True, kms=True),
    Step("copy-archive", "s3", "CopyObject", lambda t: (f"archive/{t.file_id}/",), retried=True, kms=True),
    # Regression, fixed in 6bdfe89 (airlock/worker/process.py Worker._run): a DeleteObject of the original that
    # failed past botocore's retries after ledger.finish left the retry seeing a terminal state ('duplicate'): the
    # original stayed in inbound/ for good and no FileAccepted was sent: the delete-source cells.
    Step("delete-source", "s3", "DeleteObject", lambda t: (f"{t.name}.csv",), retried=True),
    Step("finish", "dynamodb", "UpdateItem", lambda t: (t.file_id, "verdict"), retried=True),
    Step("publish", "eventbridge", "PutEvents", lambda t: (f"{t.name}.csv",), retried=False),
    # ledger.release() runs only after a transient failure: each release scenario also fails its GetObject.
    Step("release", "dynamodb", "UpdateItem", lambda t: (t.file_id, ":zero"), retried=True),
)
STEP = {s.name: s for s in STEPS}


@dataclass(frozen=True)
class Scenario:
    """One file and the fault armed for it."""

    step: Step
    kind: str
    times: int = EXHAUST

    @property
    def name(self) -> str:
        return f"{self.step.name}--{self.kind}" + ("" if self.times >= EXHAUST else "--absorbed")

    @property
    def retries(self) -> int:
        """Worker-level retries the fault must cause (and the ledger must count)."""
        return int(self.step.retried and self.times >= EXHAUST)

    @property
    def code(self) -> str | None:
        """What the ledger's ``error`` must name after the retry; None: no error may be recorded."""
        if not self.retries or self.step.name == "release":
            # A release that fails is exactly the write that would have recorded the error: the retry
            # shows as attempts=2 (the lease ran out) and in the logs, not as an error.
            return None
        if self.kind == "timeout":
            return "ReadTimeoutError"
        if self.kind in KMS_KINDS:
            return {"kms-throttle": "SlowDown", "kms-5xx": "InternalError"}[self.kind]
        return {
            ("s3", "throttle"): "SlowDown", ("s3", "5xx"): "InternalError",
            ("sts", "throttle"): "Throttling", ("sts", "5xx"): "InternalFailure",
            ("dynamodb", "throttle"): "ThrottlingException", ("dynamodb", "5xx"): "InternalServerError",
        }[(self.step.service, self.kind)]


SCENARIOS = [
    *(Scenario(step, kind) for step in STEPS for kind in (*KINDS, *(KMS_KINDS if step.kms else ()))),
    # absorbed by botocore's retries: no worker retry, no trace in the ledger (one per kind)
    Scenario(STEP["assume-role"], "5xx", times=2),
    Scenario(STEP["put-parquet"], "throttle", times=3),
    Scenario(STEP["finish"], "timeout", times=2),
]
TRIGGER = "5xx"  # the GetObject failure that makes each release scenario release its claim


@dataclass
class Platform:
    stack: LocalStack
    names: Names
    resources: PlatformResources
    tenant: Tenant
    worker: Worker
    injector: FaultInjector
    pump: EventPump
    lease_ran_out: dict[str, Fault]  # file id -> its release fault; see LeaseClock


class LeaseClock:
    """The clock the ledger reads, one lease ahead while it claims a file whose release failed.

    On AWS the next delivery of a message comes VisibilityTimeout (1810 s) later, long after the
    360 s lease a failed release leaves behind has run out. Here deliveries come 2 s apart, so for
    those files (and only while their claim runs) the ledger sees the lease as run out.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def time(self) -> float:
        return time.time() + getattr(self._local, "offset", 0)

    def __getattr__(self, name: str) -> Any:  # the rest of the time module, unchanged
        return getattr(time, name)

    def wrap(self, claim: Callable[..., Any], lease_ran_out: dict[str, Fault]) -> Callable[..., Any]:
        def clocked_claim(ref: ObjectRef, tenant_id: str, owner: str) -> Any:
            fault = lease_ran_out.get(file_id_for(ref))
            self._local.offset = DEFAULT_LEASE_S + 1 if fault is not None and fault.exhausted else 0
            try:
                return claim(ref, tenant_id, owner)
            finally:
                self._local.offset = 0

        return clocked_claim


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
    lease_ran_out: dict[str, Fault] = {}
    clock = LeaseClock()
    mp = pytest.MonkeyPatch()
    if local_stack.pump:
        local_stack.pump.stop()  # its handler would now be ours; it resumes below
    mp.setattr(handlers.ingest, "worker", lambda: worker)
    mp.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.01)  # retry at once, as often
    mp.setattr(ledger_module, "time", clock)  # the ledger's time.time(); the rest of time unchanged
    mp.setattr(worker.ledger, "claim", clock.wrap(worker.ledger.claim, lease_ran_out))
    # Speed only: the worker builds a boto3 session per file, and each new botocore session parses the
    # endpoint and service models again (~0.3 s of CPU). One shared loader; every request is unchanged.
    shared_loader = botocore.loaders.create_loader()
    mp.setattr(botocore.session, "create_loader", lambda *_args, **_kwargs: shared_loader)
    # Speed only: moto's server lists its own package directory (a stat per service) on every request,
    # under its application lock. The listing cannot change while the process runs.
    moto_modules = tuple(moto.backends.list_of_moto_modules())
    mp.setattr(moto.backends, "list_of_moto_modules", lambda: moto_modules)
    injector.install()
    aws.reset_clients()
    try:
        yield Platform(local_stack, names, resources, tenant, worker, injector, pump, lease_ran_out)
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
    target = Target(s.name, ref, file_id_for(ref), p.names)
    if s.step.name == "release":
        p.injector.add(Fault("s3", "GetObject", TRIGGER, times=EXHAUST, match=f"{s.name}.csv"))
    fault = p.injector.add(Fault(s.step.service, s.step.operation, s.kind, times=s.times, match=s.step.match(target)))
    if s.step.name == "release":
        p.lease_ran_out[target.file_id] = fault
    return fault


def queue_depth(p: Platform, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def settle(p: Platform, refs: list[ObjectRef], timeout_s: float = 90) -> dict[str, FileRecord | None]:
    """Until every file is terminal and both queues are empty (or the time is up).

    The ledger is read only once the queue is empty: polling 50 records while the workers run would
    cost them a good part of the (shared, in-process) local stack.
    """
    ledger = Ledger(p.names)
    deadline = time.monotonic() + timeout_s
    while True:
        if queue_depth(p, p.resources.ingest_queue_url) == 0 or time.monotonic() > deadline:
            records = {r.key: ledger.get(file_id_for(r)) for r in refs}
            done = all(rec is not None and rec.state.terminal for rec in records.values())
            if done or time.monotonic() > deadline:
                return records
        time.sleep(0.25)


def whole(ls_session: Any, tenant: Tenant, ref: ObjectRef, record: FileRecord, keys: set[str]) -> list[str]:
    """What is missing or inconsistent among report, Parquet, outbound reports, archive and inbound/.

    ``keys`` is every key in the bucket (one listing for all files).
    """
    s3 = ls_session.client("s3")
    problems: list[str] = []
    manifest = json.loads(s3.get_object(Bucket=tenant.bucket, Key=record.report_key)["Body"].read())
    if manifest["file_id"] != record.file_id or manifest["verdict"] != record.verdict:
        problems.append("manifest does not match the ledger")
    if manifest["outputs"] != record.output_keys:
        problems.append(f"manifest outputs {manifest['outputs']} != ledger {record.output_keys}")
    rows = 0
    for key in record.output_keys:
        if key.endswith(".parquet"):
            rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=tenant.bucket, Key=key)["Body"].read())).num_rows
    if not rows == (record.rows_accepted or 0) > 0:
        problems.append(f"parquet rows {rows} != accepted {record.rows_accepted}")
    name = ref.key.rsplit("/", 1)[-1]
    for key in (f"outbound/reports/{name}.report.csv", f"outbound/reports/{name}.report.json",
                f"archive/{record.file_id}/{name}"):
        if key not in keys:
            problems.append(f"{key} missing")
    mine = sorted(k for k in keys if k.startswith("processed/") and record.file_id in k)
    if mine != sorted(k for k in record.output_keys if k.startswith("processed/")):
        problems.append(f"processed/ holds {mine}")
    if ref.key in keys:
        problems.append("the original is still in inbound/")
    return problems


def bucket_keys(ls_session: Any, bucket: str) -> set[str]:
    pages = ls_session.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def check(s: Scenario, fault: Fault, record: FileRecord | None) -> list[str]:
    """What is wrong with one scenario's fault and ledger record (empty: it held)."""
    if not fault.exhausted:
        return [f"the fault never fired ({fault.fired}/{s.times})"]
    if record is None or record.state is not FileState.ACCEPTED:
        return [f"not ACCEPTED: {record}"]
    problems = []
    # the ledger explains every retry: one claim per worker-level attempt, the last error kept
    if record.attempts != 1 + s.retries:
        problems.append(f"attempts {record.attempts} != {1 + s.retries} (error {record.error!r})")
    if s.code is None and record.error is not None:
        problems.append(f"error {record.error!r} recorded where none may be")
    if s.code is not None and (not record.error or s.code.lower() not in record.error.lower()):
        problems.append(f"error {record.error!r} does not name {s.code}")
    return problems


def test_every_step_survives_every_kind_of_fault(flt: Platform, ls_session: Any) -> None:
    names = [s.name for s in SCENARIOS]
    assert len(set(names)) == len(names)
    assert len(SCENARIOS) == len(STEPS) * len(KINDS) + sum(s.kms for s in STEPS) * len(KMS_KINDS) + 3
    refs = {s.name: upload(ls_session, flt.tenant, f"inbound/{s.name}.csv") for s in SCENARIOS}
    faults = {s.name: arm(flt, s, refs[s.name]) for s in SCENARIOS}
    # and one fault that never clears: it must end FAILED with its cause, not in the DLQ
    stuck = upload(ls_session, flt.tenant, "inbound/never-clears.csv")
    flt.injector.add(Fault("s3", "GetObject", "5xx", times=EXHAUST * MAX_ATTEMPTS, match="never-clears.csv"))
    flt.pump.start()
    try:
        records = settle(flt, [*refs.values(), stuck])
    finally:
        flt.pump.stop()

    assert queue_depth(flt, flt.resources.ingest_dlq_url) == 0, "a message reached the dead-letter queue"
    assert queue_depth(flt, flt.resources.ingest_queue_url) == 0
    keys = bucket_keys(ls_session, flt.tenant.bucket)
    failures = {}
    for s in SCENARIOS:
        ref = refs[s.name]
        record = records[ref.key]
        problems = check(s, faults[s.name], record)
        if record is not None and record.state is FileState.ACCEPTED:
            problems += whole(ls_session, flt.tenant, ref, record, keys)
        if problems:
            failures[s.name] = problems
    assert not failures, json.dumps(failures, indent=1)
    failed = records[stuck.key]
    assert failed is not None and failed.state is FileState.FAILED
    assert failed.attempts == MAX_ATTEMPTS and failed.error and "InternalError" in failed.error
    # the original stays in inbound/ for an operator to re-drive
    assert stuck.key in keys
    releases = sum(s.step.name == "release" for s in SCENARIOS)
    assert len(flt.injector.log) == sum(s.times for s in SCENARIOS) + EXHAUST * releases + EXHAUST * MAX_ATTEMPTS


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
