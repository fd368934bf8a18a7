"""Both handler faces over moto in-process, fed the sample events in ``events/``, with the real stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from identity_fakes import ed25519_line

from airlock.identity.users import upsert_user
from airlock.local.resources import create_platform_resources
from airlock.naming import Names
from airlock.tenancy.registry import Registry
from schemas.tenant import Tenant, TenantStatus

EVENTS = Path(__file__).resolve().parents[3] / "events"
PASSWORD = "correct horse battery staple"  # the one in events/identity_provider_password.json


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def stack(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    event = load("identity_provider_password.json")
    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_IDS", event["serverId"])
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Airlock")
    create_platform_resources(names)
    tenant = Registry(names).put(
        Tenant(
            tenant_id="acme",
            status=TenantStatus.ACTIVE,
            bucket=names.tenant_bucket("acme"),
            role_arn=names.tenant_role_arn("acme"),
        )
    )
    key = ed25519_line()
    upsert_user(
        names=names,
        server_id=event["serverId"],
        tenant=tenant,
        username=event["username"],
        public_keys=[key],
        password=PASSWORD,
        allowed_cidrs=["203.0.113.0/24"],
    )
    yield {"tenant": tenant, "key": key}


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The audit records (powertools binds stdout at import, so read them as log records)."""
    return [r.__dict__ for r in caplog.records if r.__dict__.get("event") == "sftp_login"]


def test_password_event(stack: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from handlers.identity_provider import lambda_handler

    resp = lambda_handler(load("identity_provider_password.json"), None)
    assert resp["Role"] == stack["tenant"].role_arn and "PublicKeys" not in resp
    (audit,) = audit_lines(caplog)
    assert audit["result"] == "allowed" and audit["tenant"] == "acme" and audit["method"] == "password"
    assert audit["source_ip"] == "203.0.113.10" and audit["server"] == "s-1234567890abcdef0"


def test_key_event(stack: dict[str, Any]) -> None:
    from handlers.identity_provider import lambda_handler

    resp = lambda_handler(load("identity_provider_key.json"), None)
    assert resp["PublicKeys"] == [stack["key"]]


def test_denied_login_is_audited_and_counted_as_a_metric(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from handlers.identity_provider import lambda_handler

    event = {**load("identity_provider_password.json"), "password": "not it at all"}
    assert lambda_handler(event, None) == {}
    out = capsys.readouterr().out
    (audit,) = audit_lines(caplog)
    assert audit["result"] == "denied" and audit["reason"] == "bad_password"
    logged = out + caplog.text + repr([r.__dict__ for r in caplog.records])
    assert "not it at all" not in logged and PASSWORD not in logged and "$argon2" not in logged
    (metric,) = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert metric["RejectedLogins"] in (1, 1.0, [1.0]) and metric["reason"] == "bad_password"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Airlock"


def test_garbage_event_is_denied(stack: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from handlers.identity_provider import lambda_handler

    assert lambda_handler({"username": "x"}, None) == {}
    assert lambda_handler([], None) == {}  # type: ignore[arg-type]
    assert [a["reason"] for a in audit_lines(caplog)] == ["bad_request", "bad_request"]


def test_unexpected_errors_deny(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import handlers.identity_provider as face

    def explode(_request: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(face, "authenticate", explode)
    assert face.lambda_handler(load("identity_provider_password.json"), None) == {}


def test_lockout_after_repeated_failures(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.identity_provider import lambda_handler

    monkeypatch.setenv("AIRLOCK_LOCKOUT_MAX_PER_USER_IP", "3")
    bad = {**load("identity_provider_password.json"), "password": "wrong password"}
    for _ in range(3):
        assert lambda_handler(bad, None) == {}
    good = load("identity_provider_password.json")
    assert lambda_handler(good, None) == {}  # locked, even with the right password
    other_ip = {**good, "sourceIp": "203.0.113.11"}
    assert lambda_handler(other_ip, None)["Role"]  # the per-user+IP lock does not lock other desks


def test_api_gateway_face(stack: dict[str, Any]) -> None:
    from handlers.identity_provider_api import lambda_handler, to_identity_event

    event = load("identity_provider_api.json")
    assert to_identity_event(event)["sourceIp"] == "203.0.113.10"  # Transfer Family's, not the caller's
    resp = lambda_handler(event, None)
    assert resp["statusCode"] == 200
    body = json.loads(resp["body"])
    assert body["Role"] == stack["tenant"].role_arn and "PublicKeys" not in body
    key_event = _api_event({})  # no password header at all: a key login
    assert json.loads(lambda_handler(key_event, None)["body"])["PublicKeys"] == [stack["key"]]
    wrong = _api_event({"Password": "nope nope nope"})
    assert json.loads(lambda_handler(wrong, None)["body"]) == {}


def _api_event(password_headers: dict[str, str]) -> dict[str, Any]:
    event = load("identity_provider_api.json")
    headers = {k: v for k, v in event["headers"].items() if k not in ("Password", "PasswordBase64")}
    return {**event, "headers": {**headers, **password_headers}}


def test_api_face_reads_password_base64_first(
    stack: dict[str, Any], names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    """Transfer Family sends PasswordBase64 as well as Password: the base64 one carries non-ASCII intact."""
    import base64

    from handlers.identity_provider_api import lambda_handler

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    server_id = load("identity_provider_api.json")["pathParameters"]["serverId"]
    unicode_password = "Grüße, 東京 — très sûr"
    upsert_user(
        names=names,
        server_id=server_id,
        tenant=stack["tenant"],
        username="zurich-ops",
        public_keys=None,
        password=unicode_password,
        allowed_cidrs=["203.0.113.0/24"],
    )
    event = _api_event({"PasswordBase64": b64(unicode_password), "Password": "Gr??e, ?? ? tr?s s?r"})
    event["pathParameters"] = {**event["pathParameters"], "username": "zurich-ops"}
    body = json.loads(lambda_handler(event, None)["body"])
    assert body["Role"] == stack["tenant"].role_arn, "the base64 password decides, not the mangled plain one"

    only_b64 = _api_event({"PasswordBase64": b64(PASSWORD)})
    assert json.loads(lambda_handler(only_b64, None)["body"])["Role"] == stack["tenant"].role_arn

    wrong_b64 = _api_event({"PasswordBase64": b64("nope nope nope"), "Password": PASSWORD})
    assert json.loads(lambda_handler(wrong_b64, None)["body"]) == {}, "a wrong base64 password is not rescued"


def test_api_face_denies_an_undecodable_password_base64(
    stack: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage in PasswordBase64 denies as a bad request; it never turns into a key login (PublicKeys)."""
    from handlers.identity_provider_api import lambda_handler

    for garbage in ("not base64 at all!", "//79/g=="):  # invalid alphabet; valid base64 of invalid UTF-8
        resp = lambda_handler(_api_event({"PasswordBase64": garbage}), None)
        assert resp["statusCode"] == 200 and json.loads(resp["body"]) == {}
    reasons = [line["reason"] for line in audit_lines(caplog)]
    assert reasons[-2:] == ["bad_request", "bad_request"]


BASE_KEYS = {"Role", "Policy", "HomeDirectoryType", "HomeDirectoryDetails"}
# Every sample event, the face that takes it, and the exact keys Transfer Family must get back.
EVENT_CONTRACT = {
    "identity_provider_password.json": ("lambda", BASE_KEYS),
    "identity_provider_key.json": ("lambda", BASE_KEYS | {"PublicKeys"}),
    "identity_provider_api.json": ("api", BASE_KEYS),
}


def test_every_sample_event_has_a_contract_case() -> None:
    """A new events/identity_provider_*.json must be added here, or its shape goes untested."""
    assert {p.name for p in EVENTS.glob("identity_provider_*.json")} == set(EVENT_CONTRACT)


def _answer(face: str, event: dict[str, Any]) -> dict[str, Any]:
    """What Transfer Family reads: the Lambda face's return value, or the API face's JSON body."""
    if face == "lambda":
        from handlers.identity_provider import lambda_handler

        return lambda_handler(event, None)
    from handlers.identity_provider_api import lambda_handler as api_handler

    resp = api_handler(event, None)
    assert resp["statusCode"] == 200 and resp["headers"] == {"Content-Type": "application/json"}
    assert isinstance(resp["body"], str)
    body: dict[str, Any] = json.loads(resp["body"])
    return body


@pytest.mark.parametrize("name", sorted(EVENT_CONTRACT))
def test_sample_event_response_matches_the_contract(stack: dict[str, Any], name: str) -> None:
    """Field by field: exact keys, JSON-string Policy and HomeDirectoryDetails, LOGICAL, keys only for keys."""
    face, keys = EVENT_CONTRACT[name]
    tenant = stack["tenant"]
    resp = _answer(face, load(name))
    assert set(resp) == keys
    assert resp["Role"] == tenant.role_arn
    assert resp["HomeDirectoryType"] == "LOGICAL"
    assert isinstance(resp["Policy"], str) and isinstance(resp["HomeDirectoryDetails"], str)
    policy = json.loads(resp["Policy"])
    assert policy["Version"] == "2012-10-17" and policy["Statement"]
    assert tenant.bucket in resp["Policy"]
    assert json.loads(resp["HomeDirectoryDetails"]) == [
        {"Entry": "/inbound", "Target": f"/{tenant.bucket}/inbound"},
        {"Entry": "/outbound", "Target": f"/{tenant.bucket}/outbound"},
    ]
    if "PublicKeys" in keys:
        assert resp["PublicKeys"] == [stack["key"]]


def test_both_faces_answer_a_password_login_identically(stack: dict[str, Any]) -> None:
    """The API face is the same decision: a counterparty cannot tell which face its server uses."""
    api = _answer("api", load("identity_provider_api.json"))
    assert api == _answer("lambda", load("identity_provider_password.json"))


@pytest.mark.parametrize(
    ("encoded", "username"),
    [
        ("acme%2Dops", "acme-ops"),
        ("ops%40acme.example", "ops@acme.example"),
        ("ops%40acme%2Eexample", "ops@acme.example"),
    ],
)
def test_api_face_url_decodes_the_username(
    stack: dict[str, Any], names: Names, caplog: pytest.LogCaptureFixture, encoded: str, username: str
) -> None:
    """API Gateway hands the path parameter over still percent-encoded; the user it names must log in."""
    event = load("identity_provider_api.json")
    if username != event["pathParameters"]["username"]:
        upsert_user(names=names, server_id=event["pathParameters"]["serverId"], tenant=stack["tenant"],
                    username=username, public_keys=None, password=PASSWORD, allowed_cidrs=["203.0.113.0/24"])
    event["pathParameters"] = {**event["pathParameters"], "username": encoded}
    body = _answer("api", event)
    assert body["Role"] == stack["tenant"].role_arn
    (audit,) = audit_lines(caplog)
    assert audit["user"] == username and audit["result"] == "allowed"
