"""The login decision: every refusal has a stable reason, and every check fails closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import pytest
from botocore.exceptions import ClientError
from identity_fakes import (
    BUCKET,
    ROLE,
    SERVER,
    TENANT,
    FakeAttempts,
    FakeRegistry,
    FakeSecrets,
    ed25519_line,
    make_tenant,
    make_user,
    rsa_line,
)

from airlock.identity import decide as d
from airlock.identity import passwords
from airlock.identity.keys import parse_public_key
from airlock.identity.store import InvalidUserRecord
from schemas.identity import IdentityRequest
from schemas.tenant import TenantStatus

PW = "correct horse battery staple"
USER = "acme-ops"


@pytest.fixture(scope="module")
def pw_hash() -> str:
    return passwords.hash_password(PW)


def request(password: str | None = PW, **overrides: Any) -> IdentityRequest:
    data: dict[str, Any] = {
        "username": USER,
        "protocol": "SFTP",
        "serverId": SERVER,
        "sourceIp": "203.0.113.10",
    }
    if password is not None:
        data["password"] = password
    data.update(overrides)
    return IdentityRequest.model_validate(data)


def run(
    req: IdentityRequest,
    secrets: FakeSecrets,
    registry: FakeRegistry | None = None,
    attempts: FakeAttempts | None = None,
    **kwargs: Any,
) -> d.Decision:
    return d.decide(
        req,
        secrets=secrets,
        registry=registry or FakeRegistry({TENANT: make_tenant()}),
        allowed_server_ids={SERVER},
        attempts=attempts,
        region="us-east-1",
        **kwargs,
    )


def secrets_with(**user_overrides: Any) -> FakeSecrets:
    return FakeSecrets({(SERVER, USER): make_user(**user_overrides)})


def test_password_login_allowed(pw_hash: str) -> None:
    decision = run(request(), secrets_with(passwordHash=pw_hash))
    assert decision.allowed and decision.reason == d.OK and decision.tenant_id == TENANT
    assert decision.response is not None and decision.response.Role == ROLE
    assert decision.response.PublicKeys is None


def test_key_login_returns_usable_keys_only() -> None:
    good, expired = ed25519_line("good"), ed25519_line("old")
    weak = rsa_line(2048)
    past = datetime.now(UTC) - timedelta(days=1)
    secrets = secrets_with(
        publicKeys=[good, expired, weak, "junk"],
        publicKeyExpiry={parse_public_key(expired).fingerprint: past.isoformat()},
    )
    for password in (None, ""):  # Transfer Family sends no password, or an empty one, for key logins
        decision = run(request(password), secrets)
        assert decision.allowed and decision.request.method == "publickey"
        assert decision.response is not None and decision.response.PublicKeys == [good]


def test_key_login_with_only_expired_keys_is_denied() -> None:
    key = ed25519_line()
    future = datetime.now(UTC) + timedelta(days=1)
    secrets = secrets_with(publicKeys=[key], publicKeyExpiry={parse_public_key(key).fingerprint: future})
    assert run(request(None), secrets).allowed
    later = datetime.now(UTC) + timedelta(days=2)
    assert run(request(None), secrets, now=lambda: later).reason == d.NO_VALID_KEYS


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (request(serverId="s-00000000000000bad"), d.SERVER_NOT_ALLOWED),
        (request(protocol="FTP"), d.PROTOCOL_NOT_ALLOWED),
        (request(username="../etc"), d.BAD_USERNAME),
        (request(username="nobody"), d.UNKNOWN_USER),
        (request(password="wrong password"), d.BAD_PASSWORD),
        (request(sourceIp="198.51.100.1"), d.SOURCE_IP_NOT_ALLOWED),
        (request(sourceIp="not-an-ip"), d.SOURCE_IP_NOT_ALLOWED),
    ],
)
def test_refusals_have_stable_reasons(req: IdentityRequest, reason: str, pw_hash: str) -> None:
    decision = run(req, secrets_with(passwordHash=pw_hash))
    assert not decision.allowed and decision.reason == reason
    assert decision.event_response() == {}


def test_empty_server_allowlist_denies_everything(pw_hash: str) -> None:
    decision = d.decide(
        request(), secrets=secrets_with(passwordHash=pw_hash), registry=FakeRegistry(), allowed_server_ids=set()
    )
    assert decision.reason == d.SERVER_NOT_ALLOWED


def test_allowlist_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(d.SERVER_IDS_ENV, " s-1, s-2 ,,")
    assert d.allowed_server_ids_from_env() == {"s-1", "s-2"}
    monkeypatch.delenv(d.SERVER_IDS_ENV)
    assert d.allowed_server_ids_from_env() == frozenset()


def test_user_states(pw_hash: str) -> None:
    assert run(request(), secrets_with(passwordHash=pw_hash, disabled=True)).reason == d.USER_DISABLED
    assert run(request(), secrets_with()).reason == d.NO_PASSWORD_SET
    assert run(request(None), secrets_with(passwordHash=pw_hash)).reason == d.NO_VALID_KEYS
    assert run(request(), secrets_with(passwordHash=pw_hash, allowedCidrs=[])).reason == d.SOURCE_IP_NOT_ALLOWED


def test_any_source_ip_only_when_said_explicitly(pw_hash: str) -> None:
    assert run(request(sourceIp="192.0.2.99"), secrets_with(passwordHash=pw_hash, allowedCidrs=["0.0.0.0/0"])).allowed
    assert run(
        request(sourceIp="2001:db8::1"), secrets_with(passwordHash=pw_hash, allowedCidrs=["2001:db8::/32"])
    ).allowed


@pytest.mark.parametrize(
    ("tenant_overrides", "reason", "detail"),
    [
        ({"status": TenantStatus.SUSPENDED}, d.TENANT_NOT_ACTIVE, {"status": "SUSPENDED"}),
        ({"status": TenantStatus.PENDING}, d.TENANT_NOT_ACTIVE, {"status": "PENDING"}),
        ({"status": TenantStatus.OFFBOARDED}, d.TENANT_NOT_ACTIVE, {"status": "OFFBOARDED"}),
        ({"role_arn": ROLE + "-other"}, d.TENANT_MISMATCH, {"field": "roleArn"}),
        ({"bucket": BUCKET + "x"}, d.TENANT_MISMATCH, {"field": "s3Bucket"}),
    ],
)
def test_tenant_must_be_active_and_agree_with_the_secret(
    tenant_overrides: dict[str, Any], reason: str, detail: dict[str, str], pw_hash: str
) -> None:
    registry = FakeRegistry({TENANT: make_tenant(**tenant_overrides)})
    decision = run(request(), secrets_with(passwordHash=pw_hash), registry)
    assert decision.reason == reason and decision.details == detail


def test_secret_naming_another_tenant_is_refused(pw_hash: str) -> None:
    evil = make_tenant(tenant_id="evil", bucket="airlock-t-evil-123456789012-us-east-1", role_arn=ROLE + "-evil")
    registry = FakeRegistry({"evil": evil})
    assert run(request(), secrets_with(passwordHash=pw_hash, tenantId="evil"), registry).reason == d.TENANT_MISMATCH
    assert run(request(), secrets_with(passwordHash=pw_hash), FakeRegistry()).reason == d.TENANT_NOT_FOUND


def test_lookup_errors_fail_closed(pw_hash: str) -> None:
    boom = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetSecretValue")
    assert run(request(), FakeSecrets(fail=boom)).reason == d.LOOKUP_ERROR
    assert run(request(), FakeSecrets(fail=InvalidUserRecord("x"))).reason == d.INVALID_USER_RECORD

    class BrokenRegistry:
        def get(self, tenant_id: str) -> None:
            raise boom

    decision = d.decide(
        request(), secrets=secrets_with(passwordHash=pw_hash), registry=BrokenRegistry(), allowed_server_ids={SERVER}
    )
    assert decision.reason == d.LOOKUP_ERROR and decision.details == {"error": "ClientError"}


def test_legacy_hash_is_rehashed_to_argon2id_on_success() -> None:
    legacy = bcrypt.hashpw(PW.encode(), bcrypt.gensalt(rounds=4)).decode()
    secrets = secrets_with(passwordHash=legacy)
    decision = run(request(), secrets)
    assert decision.allowed and decision.rehashed
    stored = secrets.users[(SERVER, USER)].password_hash
    assert stored and stored.startswith("$argon2id$")
    again = run(request(), secrets)
    assert again.allowed and not again.rehashed


def test_failed_rehash_does_not_fail_the_login() -> None:
    legacy = bcrypt.hashpw(PW.encode(), bcrypt.gensalt(rounds=4)).decode()

    class ReadOnly(FakeSecrets):
        def replace_password_hash(self, *args: Any) -> bool:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutSecretValue")

    secrets = ReadOnly({(SERVER, USER): make_user(passwordHash=legacy)})
    decision = run(request(), secrets)
    assert decision.allowed and not decision.rehashed


def test_lockout_refuses_without_checking_credentials(pw_hash: str) -> None:
    attempts = FakeAttempts(locked=True)
    decision = run(request(), secrets_with(passwordHash=pw_hash), attempts=attempts)
    assert decision.reason == d.LOCKED_OUT and not attempts.failures


def test_failures_and_successes_are_counted(pw_hash: str) -> None:
    attempts = FakeAttempts()
    secrets = secrets_with(passwordHash=pw_hash)
    run(request(password="wrong password"), secrets, attempts=attempts)
    run(request(sourceIp="198.51.100.1"), secrets, attempts=attempts)
    run(request(serverId="s-00000000000000bad"), secrets, attempts=attempts)  # not about the user: not counted
    assert attempts.failures == [(SERVER, USER, "203.0.113.10"), (SERVER, USER, "198.51.100.1")]
    run(request(), secrets, attempts=attempts)
    assert attempts.successes == [(SERVER, USER, "203.0.113.10")]


def test_counter_outage_does_not_decide_the_login(pw_hash: str) -> None:
    boom = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": ""}}, "UpdateItem")

    class Flaky(FakeAttempts):
        def record_success(self, *args: str) -> None:
            raise boom

        def is_locked(self, *args: str) -> bool:
            return False

    assert run(request(), secrets_with(passwordHash=pw_hash), attempts=Flaky()).allowed

    class Down(FakeAttempts):
        def is_locked(self, *args: str) -> bool:
            raise boom

    assert run(request(), secrets_with(passwordHash=pw_hash), attempts=Down()).reason == d.LOOKUP_ERROR


def test_audit_record_never_carries_secrets(pw_hash: str) -> None:
    for req in (request(), request(password="wrong password"), request(username="nobody")):
        audit = run(req, secrets_with(passwordHash=pw_hash)).audit()
        text = repr(audit)
        assert PW not in text and "wrong password" not in text and "$argon2" not in text
        assert set(audit) >= {"user", "tenant", "server", "source_ip", "method", "result", "reason"}
    assert PW not in repr(request())  # the request model hides the password from repr too


def test_unknown_user_costs_a_hash_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str | None] = []
    monkeypatch.setattr(passwords, "burn_time", calls.append)
    run(request(username="nobody"), FakeSecrets())
    run(request(None, username="nobody"), FakeSecrets())  # key logins carry no password to burn
    assert calls == [PW]


def test_key_login_calls_do_not_reset_the_counters(pw_hash: str) -> None:
    attempts = FakeAttempts()
    secrets = secrets_with(passwordHash=pw_hash, publicKeys=[ed25519_line()])
    run(request(password="wrong password"), secrets, attempts=attempts)
    assert run(request(None), secrets, attempts=attempts).allowed
    assert attempts.successes == [] and len(attempts.failures) == 1
