"""The isolation matrix as real API calls: the sessions, the call table and the harness of ``-m aws``.

``test_isolation_aws.py`` runs this against a deployed stack, where every policy is enforced.
``test_aws_probe.py`` runs the same code on moto in-process (``make test``): the call table covers
every channel and action and each call names the resource the static matrix means, and the harness
reports every cell a backend that enforces nothing lets through.

Sessions are built exactly as production builds them, all from the ingest worker's role (the only
principal, besides Transfer Family, that tenant roles trust):

* ``worker``: :func:`airlock.tenancy.session.file_session`, under the worker's credentials;
* ``role``: the tenant role assumed from the worker session with no session policy;
* ``sftp``: the tenant role assumed with the session policy the identity provider returns
  (:func:`airlock.identity.decide.build_response`, i.e. ``scope_down_policy``). On AWS Transfer
  Family assumes it; the role and the session policy are the same, and no tenant policy conditions
  on who assumed the role.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airlock import aws
from airlock.identity.decide import build_response
from airlock.local.environ import scoped_environ
from airlock.naming import Names
from airlock.onboarding.executions import onboard
from airlock.tenancy.registry import Registry
from airlock.tenancy.session import file_session, s3_client
from schemas.onboarding import OnboardRequest, SftpUserSpec
from schemas.tenant import Tenant, TenantStatus

from .matrix import ACTIONS, CHANNELS, FILE_ID, OWN_ALLOWED, PAIRS, S3_ACTIONS, SOURCE_KEY, TENANTS, put_key

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"
REFUSAL_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})
ALLOWED, REFUSED = "allowed", "refused"


def user(tenant_id: str) -> str:
    return f"{tenant_id}-ops"


def body_of(tenant_id: str) -> bytes:
    return f"{tenant_id} secret\n".encode()


# -- the call table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Victim:
    """Tenant B's resources as the calls name them."""

    tenant_id: str
    bucket: str
    key_arn: str
    secret_name: str
    ciphertext: bytes  # made with B's key, by B's role session (key administrators cannot use the key)


@dataclass(frozen=True)
class Call:
    """One API call that exercises ``action`` on the victim's resource."""

    action: str
    service: str  # s3 | kms | secretsmanager
    method: str  # boto3 client method
    params: dict[str, Any]
    own_allowed: bool  # what must happen when the victim is the channel's own tenant
    via_s3: bool = False  # a KMS action as SFTP sessions use KMS: S3 does it for SSE-KMS (kms:ViaService)

    @property
    def label(self) -> str:
        return f"{self.action} ({self.method}{' via S3' if self.via_s3 else ''})"


def _s3_call(action: str, channel: str, v: Victim) -> tuple[str, dict[str, Any]]:
    if action == "s3:GetObject":
        return "get_object", {"Bucket": v.bucket, "Key": SOURCE_KEY}
    if action == "s3:PutObject":
        return "put_object", {"Bucket": v.bucket, "Key": put_key(channel), "Body": b"isolation probe",
                              "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": v.key_arn}
    if action == "s3:ListBucket":
        return "list_objects_v2", {"Bucket": v.bucket, "Prefix": "inbound/"}
    if action == "s3:DeleteObject":
        return "delete_object", {"Bucket": v.bucket, "Key": SOURCE_KEY}
    raise ValueError(action)


def calls(channel: str, action: str, victim: Victim) -> list[Call]:
    """The calls that exercise ``action`` through ``channel`` on ``victim``'s resource.

    Against another tenant every call must be refused. In the channel's own tenant a call must
    succeed exactly when ``own_allowed``, and for each action some call has ``own_allowed`` exactly
    when the action is in ``OWN_ALLOWED[channel]`` (the positive controls).
    """
    if channel not in CHANNELS or action not in ACTIONS:
        raise ValueError(f"{channel}/{action} is not in the matrix")
    own = action in OWN_ALLOWED[channel]
    if action in S3_ACTIONS:
        method, params = _s3_call(action, channel, victim)
        return [Call(action, "s3", method, params, own)]
    if action == "secretsmanager:GetSecretValue":
        return [Call(action, "secretsmanager", "get_secret_value", {"SecretId": victim.secret_name}, own)]
    if action == "kms:Decrypt":
        direct = {"CiphertextBlob": victim.ciphertext, "KeyId": victim.key_arn}
        method, via = "decrypt", "s3:GetObject"  # S3 decrypts the SSE-KMS object it returns
    elif action == "kms:GenerateDataKey":
        direct = {"KeyId": victim.key_arn, "KeySpec": "AES_256"}
        method, via = "generate_data_key", "s3:PutObject"  # S3 asks for a data key to encrypt the upload
    else:
        raise ValueError(action)
    if channel != "sftp":
        return [Call(action, "kms", method, direct, own)]
    # SFTP sessions may use the key only through S3: direct use is refused even in the own tenant.
    s3_method, s3_params = _s3_call(via, channel, victim)
    return [Call(action, "s3", s3_method, s3_params, own, via_s3=True), Call(action, "kms", method, direct, False)]


# -- sessions --------------------------------------------------------------------------------------


@dataclass
class Channel:
    """One channel of one tenant: a session and its clients (S3 with the platform's client config)."""

    name: str
    tenant_id: str
    session: boto3.session.Session
    region: str
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = (
                s3_client(self.session) if service == "s3"
                else self.session.client(service, region_name=self.region)  # type: ignore[call-overload]
            )
        return self._clients[service]


def session_of(creds: Mapping[str, Any], region: str) -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"], region_name=region)


def until_allowed(fn: Callable[[], Any], settle_s: float) -> Any:
    """``fn()``, retried on a refusal for up to ``settle_s`` (IAM changes take seconds to propagate).

    Only for what must be allowed (set-up, positive controls): a refusal is never retried into a pass.
    """
    deadline = time.monotonic() + settle_s
    while True:
        try:
            return fn()
        except ClientError as err:
            if err.response["Error"]["Code"] not in REFUSAL_CODES or time.monotonic() >= deadline:
                raise
        time.sleep(2)


def assume(sts: Any, role_arn: str, session_name: str, *, policy: str | None = None, settle_s: float = 0) -> Any:
    kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name[:64]}
    if policy is not None:
        kwargs["Policy"] = policy
    return until_allowed(lambda: sts.assume_role(**kwargs)["Credentials"], settle_s)


@contextmanager
def acting_as(creds: Mapping[str, Any]) -> Iterator[None]:
    """The platform's clients (``airlock.aws``) under ``creds``, as on Lambda: environment credentials."""
    wanted = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
              "AWS_SESSION_TOKEN": creds["SessionToken"]}
    with scoped_environ(wanted):
        aws.reset_clients()
        try:
            yield
        finally:
            aws.reset_clients()


@dataclass
class World:
    names: Names
    tenants: dict[str, Tenant]
    victims: dict[str, Victim]
    channels: dict[tuple[str, str], Channel]  # (channel, tenant) -> channel

    def put_source(self, tenant_id: str) -> None:
        """SOURCE_KEY with the tenant key, written by the tenant's role session."""
        t = self.tenants[tenant_id]
        self.channels[("role", tenant_id)].client("s3").put_object(
            Bucket=t.bucket, Key=SOURCE_KEY, Body=body_of(tenant_id), ServerSideEncryption="aws:kms",
            SSEKMSKeyId=t.kms_key_arn)

    def read_source(self, tenant_id: str) -> bytes:
        resp = self.channels[("role", tenant_id)].client("s3").get_object(
            Bucket=self.tenants[tenant_id].bucket, Key=SOURCE_KEY)
        return bytes(resp["Body"].read())


def prepare(names: Names, *, server_id: str, worker_role_arn: str, runner: str, settle_s: float = 0) -> World:
    """Onboard the matrix tenants as the caller, then open every channel from the worker's role."""
    tenants = {
        t: onboard(OnboardRequest(tenant_id=t, users=(SftpUserSpec(username=user(t), public_keys=(PUBKEY,)),)),
                   server_id=server_id, names=names, runner=runner)
        for t in TENANTS
    }
    # The deployed ingest worker ignores uploads of a tenant that is not ACTIVE: SOURCE_KEY (and the
    # controls' uploads to inbound/) stay where the probe put them. Roles and policies are unchanged.
    registry = Registry(names)
    for t in TENANTS:
        registry.set_status(t, TenantStatus.SUSPENDED)
    worker_creds = assume(aws.client("sts"), worker_role_arn, "isolation-probe", settle_s=settle_s)
    worker_sts = session_of(worker_creds, names.region).client("sts")
    channels: dict[tuple[str, str], Channel] = {}
    for t, tenant in tenants.items():
        role = assume(worker_sts, tenant.role_arn, f"probe-role-{t}", settle_s=settle_s)
        channels[("role", t)] = Channel("role", t, session_of(role, names.region), names.region)
        policy = build_response(tenant, region=names.region, public_keys=None).Policy
        sftp = assume(worker_sts, tenant.role_arn, f"probe-sftp-{t}", policy=policy, settle_s=settle_s)
        channels[("sftp", t)] = Channel("sftp", t, session_of(sftp, names.region), names.region)
        with acting_as(worker_creds):
            session = file_session(tenant, source_key=SOURCE_KEY, file_id=FILE_ID)
        channels[("worker", t)] = Channel("worker", t, session, names.region)
    world = World(names, tenants, {}, channels)
    for t, tenant in tenants.items():
        key_arn = tenant.kms_key_arn
        assert key_arn, f"{t} has no key"
        until_allowed(functools.partial(world.put_source, t), settle_s)
        encrypt = functools.partial(channels[("role", t)].client("kms").encrypt, KeyId=key_arn, Plaintext=body_of(t))
        blob = until_allowed(encrypt, settle_s)["CiphertextBlob"]
        world.victims[t] = Victim(t, tenant.bucket, key_arn, Names.sftp_secret_name(server_id, user(t)), bytes(blob))
    return world


# -- the harness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    channel: str
    actor: str
    victim: str
    call: Call
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.got == self.expected

    def __str__(self) -> str:
        return f"{self.channel} of {self.actor} -> {self.victim}: {self.call.label} {self.got}, want {self.expected}"


def invoke(channel: Channel, call: Call) -> str:
    """``allowed``, ``refused`` or ``error:<code>`` (which is neither: e.g. a missing object)."""
    try:
        result = getattr(channel.client(call.service), call.method)(**call.params)
    except ClientError as err:
        code = err.response["Error"]["Code"]
        return REFUSED if code in REFUSAL_CODES else f"error:{code}"
    body = result.get("Body")
    if body is not None:  # GetObject: the read is where S3 has decrypted with the key
        body.read()
        body.close()
    return ALLOWED


def run_matrix(world: World, *, settle_s: float = 0) -> list[Cell]:
    """Every cell: the own-tenant controls first, then every ordered pair of tenants.

    The controls go first so that the refusals that follow cannot be IAM not having caught up yet:
    a control that must be allowed is retried for up to ``settle_s`` while policies propagate; a
    refusal is taken as it comes. An allowed delete of SOURCE_KEY is undone at once, so every cell
    meets the same objects.
    """
    cells: list[Cell] = []

    def run(channel: str, actor: str, victim: str, call: Call, expected: str) -> None:
        ch = world.channels[(channel, actor)]
        got = invoke(ch, call)
        deadline = time.monotonic() + settle_s
        while expected == ALLOWED and got == REFUSED and time.monotonic() < deadline:
            time.sleep(2)
            got = invoke(ch, call)
        if got == ALLOWED and call.method == "delete_object":
            world.put_source(victim)
        cells.append(Cell(channel, actor, victim, call, expected, got))

    for channel in CHANNELS:
        for t in TENANTS:
            for action in ACTIONS:
                for call in calls(channel, action, world.victims[t]):
                    run(channel, t, t, call, ALLOWED if call.own_allowed else REFUSED)
    for channel in CHANNELS:
        for a, b in PAIRS:
            for action in ACTIONS:
                for call in calls(channel, action, world.victims[b]):
                    run(channel, a, b, call, REFUSED)
    return cells


def calls_per_tenant() -> int:
    """How many calls one channel-set makes against one tenant (the size of the matrix)."""
    dummy = Victim("x", "b", "k", "s", b"c")
    return sum(len(calls(ch, action, dummy)) for ch in CHANNELS for action in ACTIONS)
