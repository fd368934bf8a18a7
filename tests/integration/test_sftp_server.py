"""The local SFTP server end to end: moto over HTTP, the real identity handler, real SFTP clients.

Fixtures live here (not in conftest) so this module needs nothing but moto: a tenant with its own
KMS key, SSE-KMS bucket, IAM role and ACTIVE registry record, and one user with a key and a password.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from airlock import aws
from airlock.identity import decide
from airlock.identity.users import upsert_user
from airlock.local.resources import create_platform_resources
from airlock.local.sftp import LocalSftpServer
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.tenancy.registry import Registry
from handlers.identity_provider import lambda_handler
from schemas.tenant import Tenant, TenantStatus

pytestmark = pytest.mark.integration

TENANT = "sftpco"
USER = "sftpco-ops"
PASSWORD = "correct horse battery staple"


@dataclass
class Env:
    names: Names
    tenant: Tenant
    server: LocalSftpServer
    key: Path
    known_hosts: Path
    state_dir: Path

    @property
    def bucket(self) -> str:
        return self.tenant.bucket

    def objects(self) -> list[str]:
        resp = aws.client("s3").list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in resp.get("Contents", []))


def _create_tenant(names: Names) -> Tenant:
    kms, s3, iam = aws.client("kms"), aws.client("s3"), aws.client("iam")
    key_arn = kms.create_key(Description=f"tenant {TENANT}")["KeyMetadata"]["Arn"]
    bucket = names.tenant_bucket(TENANT)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "transfer.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(
        RoleName=names.tenant_role_name(TENANT), Path=names.tenant_role_path, AssumeRolePolicyDocument=json.dumps(trust)
    )
    iam.put_role_policy(
        RoleName=names.tenant_role_name(TENANT),
        PolicyName="tenant-bucket",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    },
                    {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key_arn},
                ],
            }
        ),
    )
    tenant = Tenant(
        tenant_id=TENANT,
        status=TenantStatus.ACTIVE,
        bucket=bucket,
        role_arn=names.tenant_role_arn(TENANT),
        kms_key_arn=key_arn,
        sftp_users=[USER],
    )
    return Registry(names).put(tenant)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    patch = pytest.MonkeyPatch()
    for k, v in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRLOCK_SFTP_SERVER_IDS": LOCAL_SERVER_ID,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        patch.setenv(k, v)
    aws.reset_clients()
    tmp = tmp_path_factory.mktemp("sftp")
    server: LocalSftpServer | None = None
    try:
        names = Names()
        create_platform_resources(names)
        tenant = _create_tenant(names)
        key = tmp / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        upsert_user(
            names=names,
            server_id=LOCAL_SERVER_ID,
            tenant=tenant,
            username=USER,
            public_keys=[key.with_suffix(".pub").read_text()],
            password=PASSWORD,
        )
        state_dir = tmp / "state"
        server = LocalSftpServer(
            port=0, state_dir=state_dir, identity=lambda event: lambda_handler(event, None), idle_timeout_s=60
        ).start()
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(server.known_hosts_line() + "\n")
        yield Env(names, tenant, server, key, known_hosts, state_dir)
    finally:
        if server is not None:
            server.stop()
        patch.undo()
        aws.reset_clients()
        moto.stop()


def _sftp(env: Env, batch: str, *, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("sftp") is None:
        pytest.skip("OpenSSH sftp client not installed")
    return subprocess.run(
        [
            "sftp", "-b", "-", "-i", str(key or env.key), "-P", str(env.server.port),
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={env.known_hosts}",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no",
            "-o", "ConnectTimeout=5", f"{USER}@127.0.0.1",
        ],
        input=batch, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def _paramiko(env: Env, password: str = PASSWORD) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.load_host_keys(str(env.known_hosts))
    client.connect(
        "127.0.0.1", port=env.server.port, username=USER, password=password,
        allow_agent=False, look_for_keys=False, timeout=5, banner_timeout=5, auth_timeout=5,
    )  # fmt: skip
    return client, client.open_sftp()


def test_openssh_key_upload_lands_in_inbound_encrypted(env: Env, tmp_path: Path) -> None:
    local = tmp_path / "trades.csv"
    local.write_text("Trade Id,Notional\nT1,100\n")
    result = _sftp(env, f"put {local} /inbound/trades.csv\nls -l /inbound\n")
    assert result.returncode == 0, result.stderr
    assert "trades.csv" in result.stdout
    s3 = aws.client("s3")
    obj = s3.get_object(Bucket=env.bucket, Key="inbound/trades.csv")
    assert obj["Body"].read() == local.read_bytes()
    assert obj["ServerSideEncryption"] == "aws:kms"
    assert env.tenant.kms_key_arn and obj["SSEKMSKeyId"].endswith(env.tenant.kms_key_arn.split("/")[-1])


def test_openssh_upload_into_outbound_is_refused(env: Env, tmp_path: Path) -> None:
    local = tmp_path / "evil.csv"
    local.write_text("x\n")
    result = _sftp(env, f"put {local} /outbound/evil.csv\n")
    assert result.returncode != 0
    assert "denied" in result.stderr.lower() or "permission" in result.stderr.lower()
    assert "outbound/evil.csv" not in env.objects()


def test_openssh_unknown_key_is_refused(env: Env, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    result = _sftp(env, "ls /\n", key=other)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


def test_host_key_matches_ssh_keygen_and_persists(env: Env) -> None:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(env.state_dir / "ssh_host_ed25519_key.pub")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert env.server.host_key_fingerprint in out.stdout
    again = LocalSftpServer(port=0, state_dir=env.state_dir, identity=lambda e: {})
    assert again.host_key_fingerprint == env.server.host_key_fingerprint


def test_password_login_sees_only_logical_home(env: Env) -> None:
    client, sftp = _paramiko(env)
    try:
        assert sorted(sftp.listdir("/")) == ["inbound", "outbound"]
        assert sftp.normalize(".") == "/"
        assert sorted(sftp.listdir("/../..")) == ["inbound", "outbound"]
        with pytest.raises(FileNotFoundError):
            sftp.stat("/etc/passwd")
        with pytest.raises(OSError):
            sftp.listdir("/processed")
    finally:
        client.close()


def test_password_login_file_operations(env: Env) -> None:
    client, sftp = _paramiko(env)
    try:
        with sftp.open("/inbound/ops/a.csv", "w") as fh:
            fh.write(b"a,b\n1,2\n")
        assert "inbound/ops/a.csv" in env.objects()
        assert sftp.stat("/inbound/ops").st_mode is not None
        assert sftp.listdir("/inbound/ops") == ["a.csv"]
        with sftp.open("/inbound/ops/a.csv", "r") as fh:
            assert fh.read() == b"a,b\n1,2\n"
        sftp.rename("/inbound/ops/a.csv", "/inbound/ops/b.csv")
        assert "inbound/ops/b.csv" in env.objects() and "inbound/ops/a.csv" not in env.objects()
        sftp.mkdir("/inbound/newdir")
        assert "inbound/newdir/" in env.objects()
        assert "newdir" in sftp.listdir("/inbound")
        sftp.rmdir("/inbound/newdir")
        sftp.remove("/inbound/ops/b.csv")
        assert not [k for k in env.objects() if k.startswith("inbound/ops/") or k.startswith("inbound/newdir")]
        with pytest.raises(PermissionError):
            sftp.mkdir("/outbound/x")
        with pytest.raises(PermissionError):
            sftp.mkdir("/toplevel")
    finally:
        client.close()


def test_outbound_is_readable_not_writable(env: Env) -> None:
    aws.client("s3").put_object(Bucket=env.bucket, Key="outbound/reports/r1.json", Body=b"{}")
    client, sftp = _paramiko(env)
    try:
        assert sftp.listdir("/outbound/reports") == ["r1.json"]
        with sftp.open("/outbound/reports/r1.json") as fh:
            assert fh.read() == b"{}"
        with pytest.raises(PermissionError):
            sftp.remove("/outbound/reports/r1.json")
        with pytest.raises(PermissionError):
            sftp.rename("/outbound/reports/r1.json", "/inbound/stolen.json")
        with pytest.raises(PermissionError):
            sftp.open("/outbound/reports/new.json", "w")
    finally:
        client.close()
    assert "outbound/reports/r1.json" in env.objects()


def _sftp_password(env: Env, batch: str, password: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The stock OpenSSH client logging in with a password, typed by SSH_ASKPASS (no sshpass here)."""
    if shutil.which("sftp") is None:
        pytest.skip("OpenSSH sftp client not installed")
    askpass = tmp_path / "askpass.sh"
    secret = tmp_path / "password"
    secret.write_text(password)
    askpass.write_text(f"#!/bin/sh\ncat '{secret}'\n")
    askpass.chmod(0o700)
    env_vars = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    return subprocess.run(
        [
            # -b implies BatchMode=yes (no password prompt at all); ssh keeps an option's first value.
            "sftp", "-o", "BatchMode=no", "-b", "-", "-P", str(env.server.port),
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={env.known_hosts}",
            "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
            "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=5", f"{USER}@127.0.0.1",
        ],
        input=batch, capture_output=True, text=True, timeout=30, check=False, env=env_vars,
        start_new_session=True,  # no controlling terminal: ssh asks SSH_ASKPASS, as a scheduler's job would
    )  # fmt: skip


def test_openssh_password_login_uploads(env: Env, tmp_path: Path) -> None:
    src = tmp_path / "pw.csv"
    src.write_text("a,b\n1,2\n")
    result = _sftp_password(env, f"put {src} /inbound/pw.csv\n", PASSWORD, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "inbound/pw.csv" in env.objects()


def test_openssh_wrong_password_is_refused(env: Env, tmp_path: Path) -> None:
    result = _sftp_password(env, "ls /inbound\n", "a wrong password entirely", tmp_path)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


def test_wrong_password_is_refused(env: Env) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(env.known_hosts))
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.connect(
                "127.0.0.1", port=env.server.port, username=USER, password="not the password at all",
                allow_agent=False, look_for_keys=False, timeout=5,
            )  # fmt: skip
    finally:
        client.close()


def test_random_access_write_is_refused_and_nothing_stored(env: Env) -> None:
    client, sftp = _paramiko(env)
    try:
        fh = sftp.open("/inbound/seek.csv", "w")
        fh.write(b"abc")
        fh.flush()
        fh.seek(100)
        with pytest.raises(OSError):
            fh.write(b"xyz")
            fh.flush()
        fh.close()
    except OSError:
        pass
    finally:
        client.close()
    time.sleep(0.2)
    assert "inbound/seek.csv" not in env.objects()


def test_killed_upload_leaves_nothing(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airlock.local.sftp")
    before = set(env.server._connections)
    client, sftp = _paramiko(env)
    ours = set(env.server._connections) - before
    assert len(ours) == 1
    fh = sftp.open("/inbound/partial.csv", "w")
    fh.write(b"x" * 200_000)
    fh.flush()
    # Kill the TCP connection under the client: no SFTP close, no SSH disconnect.
    transport = client.get_transport()
    assert transport is not None
    sock: Any = transport.sock
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    # asyncssh reports the lost connection first and closes the session's open files after it: wait
    # for both (bounded), then check that the close discarded the upload rather than storing it.
    discarded = "discarding incomplete upload of /inbound/partial.csv"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (ours & env.server._connections or discarded not in caplog.text):
        time.sleep(0.05)
    assert not ours & env.server._connections
    assert discarded in caplog.text
    assert "inbound/partial.csv" not in env.objects()
    # Nothing half-written either: no multipart upload left open in the tenant bucket (Transfer Family's S3
    # semantics; an open one would be billed and could later be completed into a partial object).
    uploads = aws.client("s3").list_multipart_uploads(Bucket=env.bucket)
    assert not uploads.get("Uploads"), uploads.get("Uploads")
    client.close()


def test_disabled_identity_response_denies(env: Env, tmp_path: Path) -> None:
    """A server whose identity provider says ``{}`` lets nobody in (Transfer Family's contract)."""
    server = LocalSftpServer(port=0, state_dir=tmp_path, identity=lambda e: {}).start()
    try:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        with pytest.raises(paramiko.AuthenticationException):
            client.connect(
                "127.0.0.1", port=server.port, username=USER, password=PASSWORD,
                allow_agent=False, look_for_keys=False, timeout=5,
            )  # fmt: skip
        client.close()
    finally:
        server.stop()


def test_idle_session_is_closed(env: Env, tmp_path: Path) -> None:
    server = LocalSftpServer(
        port=0, state_dir=env.state_dir, identity=lambda event: lambda_handler(event, None), idle_timeout_s=0.5
    ).start()
    try:
        client = paramiko.SSHClient()
        client.load_host_keys(str(env.known_hosts.parent / "known_hosts"))
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            "127.0.0.1", port=server.port, username=USER, password=PASSWORD,
            allow_agent=False, look_for_keys=False, timeout=5,
        )  # fmt: skip
        sftp = client.open_sftp()
        assert sftp.listdir("/")
        deadline = time.monotonic() + 8
        transport = client.get_transport()
        while time.monotonic() < deadline and transport is not None and transport.is_active():
            time.sleep(0.1)
        assert transport is not None and not transport.is_active()
        client.close()
    finally:
        server.stop()


def test_env_left_clean() -> None:
    assert os.environ.get("AWS_ENDPOINT_URL") is None or "127.0.0.1" in os.environ["AWS_ENDPOINT_URL"]


def _password_user(env: Env, username: str, password: str) -> None:
    upsert_user(names=env.names, server_id=LOCAL_SERVER_ID, tenant=env.tenant, username=username,
                public_keys=None, password=password)


def _login(env: Env, username: str, password: str) -> bool:
    return _try_password_login(env.server.port, username, password, env.known_hosts)


def _audits(caplog: pytest.LogCaptureFixture, username: str) -> list[dict[str, Any]]:
    """The identity provider's audit records (``event=sftp_login``) for ``username``, oldest first.

    The handler logs through powertools from the SFTP server's executor threads; the records still reach
    the root logger, so caplog sees exactly what CloudWatch would.
    """
    return [
        r.__dict__
        for r in caplog.records
        if r.__dict__.get("event") == "sftp_login" and r.__dict__.get("user") == username
    ]


def _try_password_login(port: int, username: str, password: str, known_hosts: Path | None) -> bool:
    """One paramiko password login on ``port``: True if it authenticated and could list ``/``."""
    client = paramiko.SSHClient()
    if known_hosts is None:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        client.load_host_keys(str(known_hosts))
    try:
        client.connect("127.0.0.1", port=port, username=username, password=password,
                       allow_agent=False, look_for_keys=False, timeout=5, banner_timeout=5, auth_timeout=5)
        client.open_sftp().listdir("/")
        return True
    except paramiko.AuthenticationException:
        return False
    finally:
        client.close()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown_user", decide.UNKNOWN_USER),
        ("wrong_source_address", decide.SOURCE_IP_NOT_ALLOWED),
        ("suspended_tenant", decide.TENANT_NOT_ACTIVE),
        ("server_not_allowed", decide.SERVER_NOT_ALLOWED),
    ],
)
def test_refused_logins_fail_with_the_right_audit_reason(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, reason: str
) -> None:
    """Each fail-closed rule refuses a real SFTP login and says which rule it was in the audit line.

    Every case uses the right password, so only the rule under test can be what refuses it; and after the
    case, the same user logs in again (the refusal came from that state, not from a broken server).
    """
    caplog.set_level(logging.INFO)
    registry = Registry(env.names)
    username, port, known_hosts = USER, env.server.port, env.known_hosts
    other: LocalSftpServer | None = None
    restore = None
    if case == "unknown_user":
        username = "sftpco-nobody"
    elif case == "wrong_source_address":
        username = "sftpco-faraway"
        upsert_user(names=env.names, server_id=LOCAL_SERVER_ID, tenant=env.tenant, username=username,
                    public_keys=None, password=PASSWORD, allowed_cidrs=["203.0.113.0/24"])
    elif case == "suspended_tenant":
        registry.set_status(TENANT, TenantStatus.SUSPENDED)
        restore = TenantStatus.ACTIVE
    elif case == "server_not_allowed":
        assert "s-0000000000000000f" not in os.environ["AIRLOCK_SFTP_SERVER_IDS"]
        other = LocalSftpServer(port=0, state_dir=tmp_path, identity=lambda event: lambda_handler(event, None),
                                server_id="s-0000000000000000f").start()
        port, known_hosts = other.port, None
    try:
        assert not _try_password_login(port, username, PASSWORD, known_hosts)
        audits = _audits(caplog, username)
        assert [(a["result"], a["reason"]) for a in audits] == [("denied", reason)]
        assert audits[0]["method"] == "password" and audits[0]["source_ip"] == "127.0.0.1"
        assert PASSWORD not in caplog.text
    finally:
        if restore is not None:
            registry.set_status(TENANT, restore)
        if other is not None:
            other.stop()
    if case in ("suspended_tenant", "server_not_allowed"):
        assert _try_password_login(env.server.port, USER, PASSWORD, env.known_hosts)  # restored / unaffected


def test_fifty_wrong_passwords_lock_the_user_out_and_others_still_log_in(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _password_user(env, "sftpco-target", "the right password for the target")
    _password_user(env, "sftpco-bystander", "the bystander's own password")

    caplog.set_level(logging.INFO)
    assert [_login(env, "sftpco-target", f"guess number {i}") for i in range(50)] == [False] * 50
    reasons = [a["reason"] for a in _audits(caplog, "sftpco-target")]
    assert len(reasons) == 50 and reasons[0] == decide.BAD_PASSWORD
    assert decide.LOCKED_OUT in reasons  # the lockout is what refuses the later guesses, and it is audited
    caplog.clear()
    assert not _login(env, "sftpco-target", "the right password for the target")  # locked out, even when right
    assert [a["reason"] for a in _audits(caplog, "sftpco-target")] == [decide.LOCKED_OUT]
    assert _login(env, "sftpco-bystander", "the bystander's own password")  # the server is healthy
    assert _sftp(env, "ls /inbound\n").returncode == 0  # key logins too


def test_a_bcrypt_user_from_the_old_server_logs_in_and_is_rehashed(env: Env) -> None:
    import bcrypt

    from airlock.identity.store import SecretsManagerStore

    _password_user(env, "sftpco-legacy", "placeholder password, replaced below")
    sm = aws.client("secretsmanager")
    name = Names.sftp_secret_name(LOCAL_SERVER_ID, "sftpco-legacy")
    secret = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    secret["passwordHash"] = bcrypt.hashpw(b"migrated from openssh", bcrypt.gensalt(rounds=10)).decode()
    sm.put_secret_value(SecretId=name, SecretString=json.dumps(secret))

    assert _login(env, "sftpco-legacy", "migrated from openssh")
    stored = SecretsManagerStore(sm).get_user(LOCAL_SERVER_ID, "sftpco-legacy")
    assert stored is not None and stored.password_hash and stored.password_hash.startswith("$argon2id$")
    assert _login(env, "sftpco-legacy", "migrated from openssh")  # and the new hash works
