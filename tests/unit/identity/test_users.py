"""Creating and changing SFTP users: idempotent, clear refusals, nothing secret in listings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from identity_fakes import ed25519_line, rsa_line

from airlock import aws
from airlock.identity import users
from airlock.identity.errors import IdentityInputError
from airlock.identity.keys import KeyRejected, parse_public_key
from airlock.naming import LOCAL_SERVER_ID, Names
from schemas.sftp_user import LOOPBACK_CIDRS, SftpUserSecret
from schemas.tenant import Tenant

PW = "correct horse battery staple"


@pytest.fixture
def tenant(moto_aws: None, names: Names) -> Tenant:
    return Tenant(tenant_id="acme", bucket=names.tenant_bucket("acme"), role_arn=names.tenant_role_arn("acme"))


def stored(username: str = "acme-ops") -> SftpUserSecret:
    raw = aws.client("secretsmanager").get_secret_value(SecretId=Names.sftp_secret_name(LOCAL_SERVER_ID, username))
    return SftpUserSecret.model_validate(json.loads(raw["SecretString"]))


def versions(username: str = "acme-ops") -> int:
    sm = aws.client("secretsmanager")
    return len(sm.list_secret_version_ids(SecretId=Names.sftp_secret_name(LOCAL_SERVER_ID, username))["Versions"])


def add(tenant: Tenant, names: Names, **kwargs: object) -> str:
    args: dict[str, object] = {
        "names": names,
        "server_id": LOCAL_SERVER_ID,
        "tenant": tenant,
        "username": "acme-ops",
        "public_keys": None,
    }
    args.update(kwargs)
    return users.upsert_user(**args)  # type: ignore[arg-type]


def test_create_stores_the_reference_layout(tenant: Tenant, names: Names) -> None:
    key = ed25519_line()
    arn = add(tenant, names, public_keys=[key], password=PW)
    assert ":secret:sftp/" in arn
    raw = json.loads(
        aws.client("secretsmanager").get_secret_value(SecretId=f"sftp/{LOCAL_SERVER_ID}/acme-ops")["SecretString"]
    )
    assert raw["roleArn"] == tenant.role_arn and raw["s3Bucket"] == tenant.bucket and raw["tenantId"] == "acme"
    assert raw["publicKeys"] == [key] and raw["passwordHash"].startswith("$argon2id$")
    assert raw["allowedCidrs"] == list(LOOPBACK_CIDRS) and raw["disabled"] is False
    assert PW not in json.dumps(raw)


def test_upsert_is_idempotent(tenant: Tenant, names: Names) -> None:
    key = ed25519_line()
    first = add(tenant, names, public_keys=[key], password=PW, allowed_cidrs=["203.0.113.0/24"])
    again = add(tenant, names, public_keys=[key], password=PW, allowed_cidrs=["203.0.113.0/24"])
    assert first == again and versions() == 1  # same input, same hash kept, no new version


def test_update_keeps_what_is_not_given(tenant: Tenant, names: Names) -> None:
    key, new_key = ed25519_line(), ed25519_line()
    add(tenant, names, public_keys=[key], password=PW, allowed_cidrs=["203.0.113.0/24"])
    before = stored()
    add(tenant, names, public_keys=[new_key], allowed_cidrs=None)
    after = stored()
    assert after.public_keys == [new_key]
    assert after.password_hash == before.password_hash and after.allowed_cidrs == ["203.0.113.0/24"]


def test_key_expiry_is_kept_per_key(tenant: Tenant, names: Names) -> None:
    key = ed25519_line()
    at = datetime(2030, 1, 31, tzinfo=UTC)
    add(tenant, names, public_keys=[key], keys_expire_at=at)
    assert stored().public_key_expiry == {parse_public_key(key).fingerprint: at}
    other = ed25519_line()
    add(tenant, names, public_keys=[other])  # the old key's expiry goes with the old key
    assert stored().public_key_expiry == {}


def test_refusals_are_clear(tenant: Tenant, names: Names) -> None:
    with pytest.raises(KeyRejected, match="too weak"):
        add(tenant, names, public_keys=[rsa_line(2048)])
    with pytest.raises(IdentityInputError, match="username"):
        add(tenant, names, username="a/b", public_keys=[ed25519_line()])
    with pytest.raises(IdentityInputError, match="at least 12"):
        add(tenant, names, password="short")
    with pytest.raises(IdentityInputError, match="not an IP"):
        add(tenant, names, public_keys=[ed25519_line()], allowed_cidrs=["10.0.0.0/33"])
    with pytest.raises(IdentityInputError, match="needs a public key or a password"):
        add(tenant, names)


def test_disable_and_list(tenant: Tenant, names: Names) -> None:
    key = ed25519_line()
    add(tenant, names, public_keys=[key], password=PW)
    add(tenant, names, username="acme-bot", public_keys=[ed25519_line()])
    users.set_disabled(server_id=LOCAL_SERVER_ID, username="acme-bot")
    listed = users.list_users(tenant_id="acme")
    assert [(u.username, u.disabled, u.has_password) for u in listed] == [
        ("acme-bot", True, False),
        ("acme-ops", False, True),
    ]
    assert listed[1].key_fingerprints == (parse_public_key(key).fingerprint,)
    assert "argon2" not in repr(listed) and users.list_users(tenant_id="other") == []
    with pytest.raises(IdentityInputError, match="no SFTP user"):
        users.set_disabled(server_id=LOCAL_SERVER_ID, username="ghost")


def test_offboarded_user_can_be_restored(tenant: Tenant, names: Names) -> None:
    add(tenant, names, public_keys=[ed25519_line()])
    sm = aws.client("secretsmanager")
    sm.delete_secret(SecretId=f"sftp/{LOCAL_SERVER_ID}/acme-ops", RecoveryWindowInDays=7)
    key = ed25519_line()
    add(tenant, names, public_keys=[key])
    assert stored().public_keys == [key]
