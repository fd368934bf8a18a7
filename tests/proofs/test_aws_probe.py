"""The real-account probe (``aws_probe``, run by ``-m aws``) checked where it can be: here, on moto.

The real-account run cannot run here, so what can go wrong in it without AWS is held down in
``make test``: the call table covers every channel and action with the positive controls the matrix
defines; each call, as botocore sends it, names exactly the resource the static matrix evaluates
(``matrix.target``) and is signed by the channel's own session; every channel session is opened
from the worker's role with the session policy production uses; and the harness reports every cell
that a backend enforcing nothing lets through (moto in-process, no IAM enforcement).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.handlers import BUILTIN_HANDLERS

from airlock.identity.decide import build_response
from airlock.local.resources import create_platform_resources, create_worker_role
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.tenancy import policies
from airlock.tenancy.registry import Registry
from schemas.tenant import TenantStatus

from .aws_probe import ALLOWED, REFUSED, Victim, World, body_of, calls, calls_per_tenant, prepare, run_matrix
from .matrix import ACTIONS, CHANNELS, FILE_ID, OWN_ALLOWED, PAIRS, SOURCE_KEY, TENANTS, TenantDocs, target

# The IAM action each operation the probe sends is authorized as.
IAM_ACTION = {
    "GetObject": "s3:GetObject", "PutObject": "s3:PutObject", "ListObjectsV2": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject", "Decrypt": "kms:Decrypt", "GenerateDataKey": "kms:GenerateDataKey",
    "GetSecretValue": "secretsmanager:GetSecretValue",
}
VIA_S3 = {"kms:Decrypt": "s3:GetObject", "kms:GenerateDataKey": "s3:PutObject"}  # what S3 does with the key
DUMMY = Victim("iso-b", "bucket-b", "arn:aws:kms:us-east-1:123456789012:key/b", "sftp/s-0/iso-b-ops", b"blob")


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_action_has_calls_for_every_channel_and_the_controls_are_the_matrixs(channel: str) -> None:
    allowed_somehow = set()
    for action in ACTIONS:
        cs = calls(channel, action, DUMMY)
        assert cs, (channel, action)
        assert {c.action for c in cs} == {action}
        assert all(c.via_s3 == (channel == "sftp" and action.startswith("kms:") and c.service == "s3") for c in cs)
        if any(c.own_allowed for c in cs):
            allowed_somehow.add(action)
        if channel == "sftp" and action.startswith("kms:"):
            # KMS through S3 works for SFTP; the same key used directly must be refused
            assert [(c.service, c.own_allowed) for c in cs] == [("s3", True), ("kms", False)]
    assert allowed_somehow == OWN_ALLOWED[channel]
    with pytest.raises(ValueError, match="not in the matrix"):
        calls(channel, "s3:PutBucketPolicy", DUMMY)


# -- on moto -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    service: str
    operation: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def access_key(self) -> str:
        m = re.search(r"Credential=([A-Z0-9]+)/", self.headers.get("authorization", ""))
        return m.group(1) if m else ""

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body or b"{}"))

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def s3_resource(self) -> str:
        """The ARN an S3 request acts on: the object, or the bucket for a listing."""
        url = urlparse(self.url)
        host, path = url.hostname or "", unquote(url.path)
        if host.endswith(".amazonaws.com") and not host.startswith("s3."):  # virtual-hosted style
            bucket, key = host.split(".s3", 1)[0], path.lstrip("/")
        else:
            bucket, _, key = path.lstrip("/").partition("/")
        return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")


@pytest.fixture
def sent() -> Iterator[list[Sent]]:
    """Every request of every botocore session created from now on, as sent."""
    log: list[Sent] = []

    def record(request: Any, event_name: str = "", **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        service, operation = event_name.split(".")[1:3]  # before-send.<service id>.<operation>
        log.append(Sent(service.replace("-", ""), operation, request.url, headers, body))

    BUILTIN_HANDLERS.append(("before-send", record))
    try:
        yield log
    finally:
        BUILTIN_HANDLERS.remove(("before-send", record))


@pytest.fixture
def world(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch, sent: list[Sent]) -> World:
    # speed only: every session the probe opens would parse botocore's endpoint and service models again
    loader = botocore.loaders.create_loader()
    monkeypatch.setattr(botocore.session, "create_loader", lambda *_args, **_kwargs: loader)
    create_platform_resources(names)
    worker_arn = create_worker_role(names)
    monkeypatch.setenv("AIRLOCK_WORKER_ROLE_ARN", worker_arn)
    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_IDS", LOCAL_SERVER_ID)
    return prepare(names, server_id=LOCAL_SERVER_ID, worker_role_arn=worker_arn, runner="local")


def frozen_key(channel: Any) -> str:
    return str(channel.session.get_credentials().get_frozen_credentials().access_key)


def test_every_channel_is_opened_from_the_worker_role_as_production_opens_it(
    world: World, sent: list[Sent], names: Names
) -> None:
    assumes = [s for s in sent if s.operation == "AssumeRole"]
    to_worker = [s for s in assumes if s.form()["RoleArn"] == names.worker_role_arn]
    assert len(to_worker) == 1 and "Policy" not in to_worker[0].form()
    worker_key = to_worker[0].access_key  # the caller's; what it got back signs every tenant-role assumption
    tenant_assumes = [s for s in assumes if s not in to_worker]
    assert len(tenant_assumes) == len(TENANTS) * len(CHANNELS)
    assert all(s.access_key != worker_key and s.access_key.startswith("ASIA") for s in tenant_assumes)
    assert len({s.access_key for s in tenant_assumes}) == 1, "all tenant sessions come from the one worker session"
    for t, tenant in world.tenants.items():
        mine = {s.form()["RoleSessionName"]: s.form() for s in tenant_assumes if s.form()["RoleArn"] == tenant.role_arn}
        assert set(mine) == {f"probe-role-{t}", f"probe-sftp-{t}", f"ingest-{FILE_ID}"}
        assert "Policy" not in mine[f"probe-role-{t}"]
        sftp_policy = json.loads(build_response(tenant, region=names.region, public_keys=None).Policy)
        assert json.loads(mine[f"probe-sftp-{t}"]["Policy"]) == sftp_policy
        assert tenant.kms_key_arn
        worker_policy = policies.worker_session_policy(tenant.bucket, SOURCE_KEY, FILE_ID, tenant.kms_key_arn)
        assert json.loads(mine[f"ingest-{FILE_ID}"]["Policy"]) == worker_policy
        # SOURCE_KEY written with the tenant key; the deployed worker would ignore the suspended tenant
        head = boto3.client("s3").head_object(Bucket=tenant.bucket, Key=SOURCE_KEY)
        assert head["SSEKMSKeyId"] == tenant.kms_key_arn
        registered = Registry(names).get(t)
        assert registered is not None and registered.status is TenantStatus.SUSPENDED


def test_each_call_names_the_resource_the_static_matrix_evaluates(world: World, sent: list[Sent]) -> None:
    docs = {t: TenantDocs.build(t, world.names, world.tenants[t].kms_key_arn) for t in TENANTS}
    checked = 0
    for channel in CHANNELS:
        for a in TENANTS:
            ch = world.channels[(channel, a)]
            for b in TENANTS:
                victim = world.victims[b]
                for action in ACTIONS:
                    for call in calls(channel, action, victim):
                        sent.clear()
                        getattr(ch.client(call.service), call.method)(**call.params)
                        (req,) = [s for s in sent if s.service == call.service]
                        where = (channel, a, b, call.label)
                        assert req.access_key == frozen_key(ch), where  # signed by the channel's session
                        acts_as = VIA_S3[action] if call.via_s3 else action
                        assert IAM_ACTION[req.operation] == acts_as, where
                        want = target(acts_as, docs[b], channel)
                        if req.service == "s3":
                            assert req.s3_resource() == want, where
                        elif req.service == "kms":
                            assert req.json()["KeyId"] == want == victim.key_arn, where
                            if action == "kms:Decrypt":
                                assert base64.b64decode(req.json()["CiphertextBlob"]) == victim.ciphertext, where
                        else:
                            assert want.startswith(want.split(":secret:")[0] + f":secret:{req.json()['SecretId']}-")
                        if call.via_s3 and acts_as == "s3:PutObject":  # S3 will ask B's key for a data key
                            assert req.headers["x-amz-server-side-encryption-aws-kms-key-id"] == victim.key_arn
                        if call.via_s3 and acts_as == "s3:GetObject":  # S3 will decrypt with B's key
                            head = boto3.client("s3").head_object(Bucket=victim.bucket, Key=SOURCE_KEY)
                            assert head["SSEKMSKeyId"] == victim.key_arn, where
                        if call.method == "delete_object":
                            world.put_source(b)
                        checked += 1
    assert checked == len(TENANTS) ** 2 * calls_per_tenant()


def test_the_harness_reports_every_cell_a_backend_that_enforces_nothing_lets_through(world: World) -> None:
    cells = run_matrix(world)
    assert len(cells) == (len(TENANTS) + len(PAIRS)) * calls_per_tenant()
    assert {c.got for c in cells} == {ALLOWED}, [str(c) for c in cells if c.got != ALLOWED]
    wrong = [c for c in cells if not c.ok]
    assert wrong == [c for c in cells if c.expected == REFUSED]
    own = [c for c in cells if c.actor == c.victim]
    assert len(own) == len(TENANTS) * calls_per_tenant() and all(c.actor != c.victim for c in cells[len(own):])
    assert sum(c.expected == ALLOWED for c in cells) == len(TENANTS) * sum(
        c.own_allowed for ch in CHANNELS for action in ACTIONS for c in calls(ch, action, world.victims["iso-a"]))
    # every allowed delete was undone: the objects are as the probe wrote them
    assert {t: world.read_source(t) for t in TENANTS} == {t: body_of(t) for t in TENANTS}
