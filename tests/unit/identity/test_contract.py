"""The Transfer Family response contract, field by field, and what the session policy really allows.

The policy is evaluated with the same evaluator the local SFTP server enforces it with, so "inbound
read-write, outbound read-only, nothing else" is checked as behaviour, not as text.
"""

from __future__ import annotations

import json

import pytest
from identity_fakes import (
    BUCKET,
    KEY_ARN,
    ROLE,
    SERVER,
    TENANT,
    FakeRegistry,
    FakeSecrets,
    ed25519_line,
    make_tenant,
    make_user,
)

from airlock.identity import passwords
from airlock.identity.decide import build_response, decide
from airlock.identity.policy import MAX_POLICY_CHARS
from schemas.identity import IdentityRequest

PW = "correct horse battery staple"


@pytest.fixture(scope="module")
def responses() -> dict[str, dict[str, object]]:
    key = ed25519_line()
    secrets = FakeSecrets({(SERVER, "acme-ops"): make_user(passwordHash=passwords.hash_password(PW), publicKeys=[key])})
    registry = FakeRegistry({TENANT: make_tenant()})
    out = {}
    for name, password in (("password", PW), ("key", None), ("bad", "wrong password")):
        event = {"username": "acme-ops", "protocol": "SFTP", "serverId": SERVER, "sourceIp": "203.0.113.9"}
        if password:
            event["password"] = password
        decision = decide(
            IdentityRequest.model_validate(event), secrets=secrets, registry=registry, allowed_server_ids={SERVER}
        )
        out[name] = decision.event_response()
    out["key_line"] = {"line": key}
    return out


def test_password_response_fields(responses: dict[str, dict[str, object]]) -> None:
    resp = responses["password"]
    assert set(resp) == {"Role", "Policy", "HomeDirectoryType", "HomeDirectoryDetails"}
    assert resp["Role"] == ROLE
    assert resp["HomeDirectoryType"] == "LOGICAL"
    assert isinstance(resp["Policy"], str) and isinstance(resp["HomeDirectoryDetails"], str)
    assert json.loads(str(resp["HomeDirectoryDetails"])) == [
        {"Entry": "/inbound", "Target": f"/{BUCKET}/inbound"},
        {"Entry": "/outbound", "Target": f"/{BUCKET}/outbound"},
    ]
    assert len(str(resp["Policy"])) <= MAX_POLICY_CHARS


def test_key_response_adds_public_keys_only(responses: dict[str, dict[str, object]]) -> None:
    resp = responses["key"]
    assert set(resp) == {"Role", "Policy", "HomeDirectoryType", "HomeDirectoryDetails", "PublicKeys"}
    assert resp["PublicKeys"] == [responses["key_line"]["line"]]
    assert {k: v for k, v in resp.items() if k != "PublicKeys"} == responses["password"]


def test_failure_is_an_empty_dict(responses: dict[str, dict[str, object]]) -> None:
    assert responses["bad"] == {}


def test_policy_is_json_without_transfer_variables(responses: dict[str, dict[str, object]]) -> None:
    policy = json.loads(str(responses["password"]["Policy"]))
    assert policy["Version"] == "2012-10-17"
    assert "${" not in json.dumps(policy)  # literal bucket: correct with LOGICAL homes, no variable surprises
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


@pytest.fixture(scope="module")
def gate() -> object:
    from airlock.local.sftp import SessionPolicy

    response = build_response(make_tenant(), region="us-east-1", public_keys=None)
    return SessionPolicy(response.Policy)


@pytest.mark.parametrize(
    ("action", "key", "allowed"),
    [
        ("s3:PutObject", "inbound/a.csv", True),
        ("s3:PutObject", "inbound/deep/er/a.csv", True),
        ("s3:GetObject", "inbound/a.csv", True),
        ("s3:DeleteObject", "inbound/a.csv", True),
        ("s3:GetObject", "outbound/reports/r.json", True),
        ("s3:PutObject", "outbound/reports/r.json", False),
        ("s3:DeleteObject", "outbound/reports/r.json", False),
        ("s3:GetObject", "processed/trades/part-0.parquet", False),
        ("s3:PutObject", "processed/x", False),
        ("s3:GetObject", "archive/a.csv", False),
        ("s3:PutObject", "inboundx/a.csv", False),
        ("s3:PutBucketPolicy", "", False),
    ],
)
def test_scope_down_policy_allows_only_the_home(gate: object, action: str, key: str, allowed: bool) -> None:
    resource = f"arn:aws:s3:::{BUCKET}/{key}" if key else f"arn:aws:s3:::{BUCKET}"
    assert gate.allows(action, resource) is allowed  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [("inbound/", True), ("inbound/sub/", True), ("outbound/reports/", True), ("", False), ("processed/", False)],
)
def test_listing_is_limited_to_the_home(gate: object, prefix: str, allowed: bool) -> None:
    ok = gate.allows("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": prefix})  # type: ignore[attr-defined]
    assert ok is allowed


def test_other_buckets_and_keys_are_out_of_reach(gate: object) -> None:
    assert not gate.allows("s3:GetObject", "arn:aws:s3:::airlock-t-other-123456789012-us-east-1/inbound/a")  # type: ignore[attr-defined]
    assert gate.allows("kms:GenerateDataKey", KEY_ARN, {"kms:ViaService": "s3.us-east-1.amazonaws.com"})  # type: ignore[attr-defined]
    assert not gate.allows("kms:Decrypt", KEY_ARN, {})  # type: ignore[attr-defined]  # only through S3
    assert not gate.allows(
        "kms:Decrypt", KEY_ARN.replace("1111", "9999"), {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    )  # type: ignore[attr-defined]
