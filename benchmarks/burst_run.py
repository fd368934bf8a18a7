"""A burst through the real front door: many tenants upload over SFTP at once, several workers ingest.

Used by ``benchmarks/bench_burst.py`` (50 tenants, 1,000 files) and by ``tests/proofs/test_burst.py``
(a small burst in ``make test``). Every file goes up over SFTP (paramiko, key auth, host key pinned)
to the local SFTP server, lands in the tenant bucket, reaches the ingest queue through the S3 ->
EventBridge rule and is processed by the event pump's workers. A share of the files is invalid and a
share of the events is delivered twice. The run then proves: none lost (every file has a terminal
ledger entry with the verdict its sample earns), none processed twice (one claim, one report
version), none crossing tenants (ledger, manifests, Parquet lineage and archives all name the
uploader's tenant only), nothing in the DLQ; and measures files/s and upload-to-report latency.
"""

from __future__ import annotations

import base64
import io
import json
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paramiko
import pyarrow.parquet as pq
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from airlock import aws
from airlock.ingest.pipeline import IngestOptions, ingest
from airlock.local.stack import LocalStack
from airlock.onboarding.steps import onboard
from airlock.worker.ledger import Ledger, file_id_for
from schemas.ledger import FileRecord, ObjectRef
from schemas.onboarding import OnboardRequest, SftpUserSpec
from schemas.tenant import Tenant

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "samples"
VALID = [
    "strata/quotes-1.csv",
    "strata/fx-rates-1.csv",
    "strata/fixings-1.csv",
    "strata/curves-1.csv",
    "strata/example-quotes.csv",
    "crif/ore-crif.csv",
]
INVALID = [
    "strata/quotes-invalid-duplicate.csv",
    "strata/quotes-invalid-date.csv",
    "strata/fixings-invalid-date.csv",
    "strata/fx-rates-invalid-duplicate.csv",
    "strata/curves-invalid-duplicate-points.csv",
]


@dataclass(frozen=True)
class BurstConfig:
    tenants: int = 50
    files: int = 1000
    invalid_share: float = 0.05
    duplicate_share: float = 0.01
    upload_threads: int = 8
    prefix: str = "bu"  # tenant ids are <prefix>-<n>; pick a new prefix per burst on a shared stack
    timeout_s: float = 600.0
    seed: int = 7


@dataclass
class Upload:
    tenant: Tenant
    name: str
    sample: str
    expect: str
    done_at: float = 0.0
    ref: ObjectRef | None = None


@dataclass
class BurstResult:
    config: BurstConfig
    uploads: list[Upload]
    records: dict[str, FileRecord]  # file_id -> terminal record
    duplicates_sent: int
    upload_s: float
    total_s: float
    latencies_s: list[float]
    problems: list[str] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        return len(self.uploads) / self.total_s if self.total_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    def summary(self) -> dict[str, Any]:
        verdicts: dict[str, int] = {}
        for r in self.records.values():
            verdicts[r.verdict or r.state.value] = verdicts.get(r.verdict or r.state.value, 0) + 1
        return {
            "tenants": self.config.tenants,
            "files": len(self.uploads),
            "duplicate_events": self.duplicates_sent,
            "invalid_files": sum(u.expect == "rejected" for u in self.uploads),
            "terminal": len(self.records),
            "verdicts": verdicts,
            "upload_s": round(self.upload_s, 1),
            "total_s": round(self.total_s, 1),
            "files_per_s": round(self.files_per_s, 1),
            "p50_s": round(self.percentile(50), 2),
            "p95_s": round(self.percentile(95), 2),
            "max_s": round(max(self.latencies_s, default=float("nan")), 2),
            "problems": self.problems,
        }


def expected_verdicts() -> dict[str, str]:
    """What each sample earns, from the offline pipeline: the burst checks the platform, not the rules."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, rel in enumerate(VALID + INVALID):
            outcome = ingest(
                SAMPLES / rel, options=IngestOptions(source_key=f"inbound/{Path(rel).name}"), out_dir=Path(tmp) / str(i)
            )
            out[rel] = outcome.verdict.value
    return out


def _keypair() -> tuple[paramiko.PKey, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem)), public.decode()


def _event_body(ref: ObjectRef) -> str:
    """The EventBridge "Object Created" event S3 sends, as a second delivery of the same upload."""
    return json.dumps(
        {
            "version": "0",
            "id": "duplicate",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{ref.bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": ref.bucket},
                "object": {"key": ref.key, "size": 1, "etag": ref.etag, "version-id": ref.version_id},
                "reason": "PutObject",
            },
        }
    )


def _ref_of(s3: Any, bucket: str, key: str) -> ObjectRef:
    versions = [v for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []) if v["Key"] == key]
    if len(versions) != 1:
        raise AssertionError(f"{bucket}/{key}: {len(versions)} versions, expected exactly one upload")
    v = versions[0]
    return ObjectRef(bucket=bucket, key=key, version_id=v["VersionId"], etag=v["ETag"])


def run_burst(stack: LocalStack, config: BurstConfig, log: Any = None) -> BurstResult:
    def say(text: str) -> None:
        if log is not None:
            print(text, file=log, flush=True)

    rng = random.Random(config.seed)
    verdict_of = expected_verdicts()
    names = stack.names
    server_id = stack.config.server_id

    keys = {i: _keypair() for i in range(config.tenants)}

    def onboard_one(i: int) -> Tenant:
        tid = f"{config.prefix}-{i:03d}"
        user = SftpUserSpec(username=f"{tid}-ops", public_keys=(keys[i][1],))
        return onboard(OnboardRequest(tenant_id=tid, users=(user,)), server_id=server_id, names=names)

    started = time.monotonic()
    # the first alone: the local onboarding creates shared prerequisites get-then-create (racy in parallel)
    first = onboard_one(0)
    with ThreadPoolExecutor(4) as pool:
        tenants = [first, *pool.map(onboard_one, range(1, config.tenants))]
    say(f"onboarded {len(tenants)} tenants in {time.monotonic() - started:.1f} s")

    n_invalid = round(config.files * config.invalid_share)
    kinds = [rng.choice(INVALID) for _ in range(n_invalid)] + [
        rng.choice(VALID) for _ in range(config.files - n_invalid)
    ]
    rng.shuffle(kinds)
    uploads = [
        Upload(tenants[i % config.tenants], f"{i:05d}-{Path(k).name}", k, verdict_of[k]) for i, k in enumerate(kinds)
    ]
    dup_names = {u.name for u in rng.sample(uploads, round(config.files * config.duplicate_share))}
    by_tenant: dict[str, list[Upload]] = {}
    for u in uploads:
        by_tenant.setdefault(u.tenant.tenant_id, []).append(u)
    index = {t.tenant_id: i for i, t in enumerate(tenants)}
    host_type, host_blob = stack.sftp.host_public_key.split()[:2]  # pinned: a client that checks the host key
    s3 = aws.client("s3")
    sqs = aws.client("sqs")
    queue = stack.resources.ingest_queue_url if stack.resources else ""
    dup_lock = threading.Lock()
    duplicates = 0

    def upload_tenant(tenant_id: str) -> None:
        nonlocal duplicates
        pkey = keys[index[tenant_id]][0]
        transport = paramiko.Transport(("127.0.0.1", stack.sftp_port))
        try:
            expected = paramiko.PKey.from_type_string(host_type, base64.b64decode(host_blob))
            transport.connect(hostkey=expected, username=f"{tenant_id}-ops", pkey=pkey)
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            for u in by_tenant[tenant_id]:
                sftp.put(str(SAMPLES / u.sample), f"/inbound/{u.name}")
                u.done_at = time.time()
                if u.name in dup_names:
                    ref = _ref_of(s3, u.tenant.bucket, f"inbound/{u.name}")
                    sqs.send_message(QueueUrl=queue, MessageBody=_event_body(ref))
                    with dup_lock:
                        duplicates += 1
            sftp.close()
        finally:
            transport.close()

    t0 = time.monotonic()
    wall0 = time.time()
    with ThreadPoolExecutor(config.upload_threads) as pool:
        list(pool.map(upload_tenant, list(by_tenant)))
    upload_s = time.monotonic() - t0
    say(f"uploaded {len(uploads)} files over SFTP in {upload_s:.1f} s")

    ledger = Ledger(names)
    wanted = {f"inbound/{u.name}": u for u in uploads}
    records: dict[str, FileRecord] = {}
    deadline = time.monotonic() + config.timeout_s
    while time.monotonic() < deadline:
        for t in tenants:
            for rec in ledger.list_for_tenant(t.tenant_id):
                if rec.state.terminal and rec.key in wanted:
                    records[rec.key] = rec
        if len(records) >= len(wanted):
            break
        time.sleep(0.5)
    total_s = max((_ts(r.updated_at) for r in records.values()), default=time.time()) - wall0
    say(f"{len(records)}/{len(wanted)} files terminal after {time.monotonic() - t0:.1f} s")

    problems: list[str] = []
    latencies: list[float] = []
    for key, u in wanted.items():
        rec = records.get(key)
        if rec is None:
            problems.append(f"lost: {u.tenant.tenant_id} {key}")
            continue
        latencies.append(_ts(rec.updated_at) - u.done_at)
        u.ref = _ref_of(s3, u.tenant.bucket, key)
        if rec.file_id != file_id_for(u.ref):
            problems.append(f"ledger names another upload for {key}")
        if rec.tenant_id != u.tenant.tenant_id or rec.bucket != u.tenant.bucket:
            problems.append(f"crossed tenants: {key} of {u.tenant.tenant_id} recorded for {rec.tenant_id}")
        if rec.verdict != u.expect:
            problems.append(f"verdict {rec.verdict} for {key} ({u.sample}), expected {u.expect}")
        if rec.attempts != 1:
            problems.append(f"processed {rec.attempts} times: {key}")
    problems += _check_buckets(s3, tenants, by_tenant, records)
    dlq = stack.resources.ingest_dlq_url if stack.resources else ""
    for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        if f"{names.tenant_bucket_prefix}{config.prefix}-" in m["Body"]:
            problems.append(f"dead-lettered: {m['Body'][:200]}")
    by_id = {r.file_id: r for r in records.values()}
    return BurstResult(config, uploads, by_id, duplicates, upload_s, total_s, latencies, problems)


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _check_buckets(
    s3: Any, tenants: list[Tenant], by_tenant: dict[str, list[Upload]], records: dict[str, FileRecord]
) -> list[str]:
    """Each bucket holds exactly its own uploads' outputs, once, with its own tenant in the lineage."""
    problems: list[str] = []
    for t in tenants:
        mine = {u.name for u in by_tenant.get(t.tenant_id, [])}
        archived = {o["Key"].rsplit("/", 1)[-1] for o in _list(s3, t.bucket, "archive/")}
        if archived != mine:
            problems.append(f"{t.tenant_id}: archive holds {sorted(archived ^ mine)[:5]} it should not (or lacks)")
        for u_name in mine:
            rec = records.get(f"inbound/{u_name}")
            if rec is None or rec.report_key is None:
                continue
            versions = [
                v
                for v in s3.list_object_versions(Bucket=t.bucket, Prefix=rec.report_key).get("Versions", [])
                if v["Key"] == rec.report_key
            ]
            if len(versions) != 1:
                problems.append(f"{t.tenant_id}: report {rec.report_key} written {len(versions)} times")
            manifest = json.loads(s3.get_object(Bucket=t.bucket, Key=rec.report_key)["Body"].read())
            if manifest.get("tenant_id") != t.tenant_id:
                problems.append(f"{t.tenant_id}: manifest {rec.report_key} names {manifest.get('tenant_id')}")
            for key in rec.output_keys:
                if key.endswith(".parquet"):
                    body = s3.get_object(Bucket=t.bucket, Key=key)["Body"].read()
                    lineage = set(pq.read_table(io.BytesIO(body), columns=["tenant_id"]).column(0).to_pylist())
                    if lineage != {t.tenant_id}:
                        problems.append(f"{t.tenant_id}: {key} carries rows of {sorted(lineage)}")
        leftovers = [o["Key"] for o in _list(s3, t.bucket, "inbound/")]
        if leftovers:
            problems.append(f"{t.tenant_id}: {len(leftovers)} originals still in inbound/")
    return problems


def _list(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += page.get("Contents", [])
    return out
