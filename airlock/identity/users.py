"""Create, update, disable and list SFTP users (secrets ``sftp/<server_id>/<username>``).

``upsert_user`` is what onboarding and ``airlock users add|rotate`` call. It is idempotent: the same
input again writes no new secret version (a password that already matches keeps its hash).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.identity import passwords
from airlock.identity.decide import USERNAME_RE
from airlock.identity.errors import IdentityInputError
from airlock.identity.keys import parse_public_key
from airlock.identity.store import SERVER_TAG, TENANT_TAG, InvalidUserRecord, SecretsManagerStore
from airlock.naming import Names
from schemas.sftp_user import LOOPBACK_CIDRS, SftpUserSecret
from schemas.tenant import Tenant

MIN_PASSWORD_CHARS = 12


def _validate_username(username: str) -> None:
    if not USERNAME_RE.fullmatch(username):
        raise IdentityInputError(
            f"username {username!r} is not valid: 3-100 characters, letters, digits, '_', '-', '.', '@', "
            "not starting with '-', '.' or '@'"
        )


def _validate_cidrs(cidrs: Sequence[str]) -> list[str]:
    out = []
    for cidr in cidrs:
        try:
            out.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError as err:
            raise IdentityInputError(f"{cidr!r} is not an IP address or CIDR block") from err
    return out


def _validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise IdentityInputError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > passwords.MAX_PASSWORD_BYTES:
        raise IdentityInputError(f"password must be at most {passwords.MAX_PASSWORD_BYTES} bytes")


def upsert_user(
    *,
    names: Names,
    server_id: str,
    tenant: Tenant,
    username: str,
    public_keys: Sequence[str] | None,
    password: str | None = None,
    allowed_cidrs: Sequence[str] | None = LOOPBACK_CIDRS,
    keys_expire_at: datetime | None = None,
    disabled: bool = False,
    client: Any = None,
) -> str:
    """Create or update one SFTP user of ``tenant``; return the secret ARN.

    ``public_keys`` replaces the user's keys (``None`` keeps them); ``password`` sets a new password
    (``None`` keeps the current hash); ``allowed_cidrs`` ``None`` keeps the current allowlist. The
    default allowlist is loopback only (the local stack): pass the counterparty's CIDRs on AWS.
    Raises :class:`IdentityInputError` (incl. ``KeyRejected``) for input a person must fix.
    """
    _validate_username(username)
    sm = client or aws.client("secretsmanager")
    store = SecretsManagerStore(sm)
    name = Names.sftp_secret_name(server_id, username)
    try:
        existing = store.get_user(server_id, username)
    except InvalidUserRecord:
        existing = None  # overwrite a broken record with a valid one

    keys = [parse_public_key(k) for k in public_keys] if public_keys is not None else None
    if password is not None:
        _validate_password(password)
    if keys is None and password is None and existing is None:
        raise IdentityInputError(f"user {username!r} needs a public key or a password")

    key_lines = [k.line for k in keys] if keys is not None else (existing.public_keys if existing else [])
    expiry = dict(existing.public_key_expiry) if existing else {}
    if keys is not None:
        fingerprints = {k.fingerprint for k in keys}
        expiry = {fp: at for fp, at in expiry.items() if fp in fingerprints}
        if keys_expire_at is not None:
            at = keys_expire_at if keys_expire_at.tzinfo else keys_expire_at.replace(tzinfo=UTC)
            expiry.update({k.fingerprint: at for k in keys})

    password_hash = existing.password_hash if existing else None
    if password is not None:
        current = passwords.verify_password(password, password_hash) if password_hash else None
        if current is None or not current.ok or current.needs_rehash:
            password_hash = passwords.hash_password(password)

    cidrs = (
        _validate_cidrs(allowed_cidrs) if allowed_cidrs is not None else (existing.allowed_cidrs if existing else [])
    )
    record = SftpUserSecret(
        role_arn=tenant.role_arn,
        s3_bucket=tenant.bucket,
        tenant_id=tenant.tenant_id,
        password_hash=password_hash,
        public_keys=key_lines,
        public_key_expiry=expiry,
        allowed_cidrs=cidrs,
        disabled=disabled,
    )
    return _write(sm, name, record, existing, server_id=server_id, names=names)


def _write(
    sm: Any, name: str, record: SftpUserSecret, existing: SftpUserSecret | None, *, server_id: str, names: Names
) -> str:
    value = record.to_secret_string()
    tags = [
        {"Key": TENANT_TAG, "Value": record.tenant_id},
        {"Key": SERVER_TAG, "Value": server_id},
        {"Key": "airlock:prefix", "Value": names.prefix},
    ]
    try:
        return str(
            sm.create_secret(
                Name=name,
                SecretString=value,
                Description=f"Airlock SFTP user of tenant {record.tenant_id}",
                Tags=tags,
            )["ARN"]
        )
    except ClientError as err:
        if err.response["Error"]["Code"] not in ("ResourceExistsException", "InvalidRequestException"):
            raise
    if sm.describe_secret(SecretId=name).get("DeletedDate"):
        sm.restore_secret(SecretId=name)  # scheduled for deletion by an offboarding: bring it back
    if existing is None or existing != record:
        sm.put_secret_value(SecretId=name, SecretString=value)
    sm.tag_resource(SecretId=name, Tags=tags)
    return str(sm.describe_secret(SecretId=name)["ARN"])


def set_disabled(*, server_id: str, username: str, disabled: bool = True, client: Any = None) -> str:
    """Disable (or re-enable) a user without touching keys or password; returns the secret ARN."""
    sm = client or aws.client("secretsmanager")
    store = SecretsManagerStore(sm)
    current = store.get_user(server_id, username)
    if current is None:
        raise IdentityInputError(f"no SFTP user {username!r} on server {server_id}")
    name = Names.sftp_secret_name(server_id, username)
    if current.disabled != disabled:
        updated = current.model_copy(update={"disabled": disabled})
        sm.put_secret_value(SecretId=name, SecretString=updated.to_secret_string())
    return str(sm.describe_secret(SecretId=name)["ARN"])


@dataclass(frozen=True)
class UserSummary:
    """What ``airlock users list`` shows: never a hash, only whether there is one."""

    username: str
    server_id: str
    tenant_id: str
    disabled: bool
    has_password: bool
    key_fingerprints: tuple[str, ...]
    allowed_cidrs: tuple[str, ...]
    key_expiry: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "server_id": self.server_id,
            "tenant_id": self.tenant_id,
            "disabled": self.disabled,
            "has_password": self.has_password,
            "keys": list(self.key_fingerprints),
            "allowed_cidrs": list(self.allowed_cidrs),
            "key_expiry": self.key_expiry,
        }


def list_users(*, tenant_id: str, server_id: str | None = None, client: Any = None) -> list[UserSummary]:
    """Users of ``tenant_id`` (by tag, confirmed against the secret body), sorted by name."""
    sm = client or aws.client("secretsmanager")
    found: list[UserSummary] = []
    paginator = sm.get_paginator("list_secrets")
    prefix = f"sftp/{server_id}/" if server_id else "sftp/"
    for page in paginator.paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
        for entry in page.get("SecretList", []):
            tags = {t["Key"]: t["Value"] for t in entry.get("Tags", [])}
            if tags.get(TENANT_TAG) != tenant_id or entry.get("DeletedDate"):
                continue
            _, sid, username = entry["Name"].split("/", 2)
            try:
                record = SftpUserSecret.model_validate(
                    json.loads(sm.get_secret_value(SecretId=entry["ARN"])["SecretString"])
                )
            except (ClientError, ValueError):
                continue
            if record.tenant_id != tenant_id:
                continue
            fps = []
            for line in record.public_keys:
                try:
                    fps.append(parse_public_key(line).fingerprint)
                except IdentityInputError:
                    fps.append("(invalid key)")
            found.append(
                UserSummary(
                    username=username,
                    server_id=sid,
                    tenant_id=tenant_id,
                    disabled=record.disabled,
                    has_password=bool(record.password_hash),
                    key_fingerprints=tuple(fps),
                    allowed_cidrs=tuple(record.allowed_cidrs),
                    key_expiry={fp: at.isoformat() for fp, at in record.public_key_expiry.items()},
                )
            )
    return sorted(found, key=lambda u: (u.server_id, u.username))
