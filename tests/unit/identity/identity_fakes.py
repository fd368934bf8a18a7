"""Fakes for the identity tests: a secret store, a registry, attempt counters, key factories."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from schemas.sftp_user import SftpUserSecret
from schemas.tenant import Tenant, TenantStatus

SERVER = "s-1234567890abcdef0"
TENANT = "acme"
BUCKET = "airlock-t-acme-123456789012-us-east-1"
ROLE = "arn:aws:iam::123456789012:role/airlock/tenants/airlock-tenant-acme"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def openssh_public(private: object) -> str:
    return (
        private.public_key()  # type: ignore[attr-defined]
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def ed25519_line(comment: str = "ops@acme") -> str:
    return f"{openssh_public(ed25519.Ed25519PrivateKey.generate())} {comment}"


def ecdsa_line() -> str:
    return openssh_public(ec.generate_private_key(ec.SECP256R1()))


def rsa_line(bits: int) -> str:
    return openssh_public(rsa.generate_private_key(public_exponent=65537, key_size=bits))


@dataclass
class FakeSecrets:
    users: dict[tuple[str, str], SftpUserSecret] = field(default_factory=dict)
    fail: Exception | None = None

    def get_user(self, server_id: str, username: str) -> SftpUserSecret | None:
        if self.fail:
            raise self.fail
        return self.users.get((server_id, username))

    def replace_password_hash(self, server_id: str, username: str, old_hash: str, new_hash: str) -> bool:
        user = self.users[(server_id, username)]
        if user.password_hash != old_hash:
            return False
        self.users[(server_id, username)] = user.model_copy(update={"password_hash": new_hash})
        return True


@dataclass
class FakeRegistry:
    tenants: dict[str, Tenant] = field(default_factory=dict)

    def get(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id)


@dataclass
class FakeAttempts:
    locked: bool = False
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    successes: list[tuple[str, str, str]] = field(default_factory=list)

    def is_locked(self, server_id: str, username: str, source_ip: str) -> bool:
        return self.locked

    def record_failure(self, server_id: str, username: str, source_ip: str) -> None:
        self.failures.append((server_id, username, source_ip))

    def record_success(self, server_id: str, username: str, source_ip: str) -> None:
        self.successes.append((server_id, username, source_ip))


def make_tenant(**overrides: object) -> Tenant:
    data: dict[str, object] = {
        "tenant_id": TENANT,
        "status": TenantStatus.ACTIVE,
        "bucket": BUCKET,
        "role_arn": ROLE,
        "kms_key_arn": KEY_ARN,
    }
    data.update(overrides)
    return Tenant.model_validate(data)


def make_user(**overrides: object) -> SftpUserSecret:
    data: dict[str, object] = {
        "roleArn": ROLE,
        "s3Bucket": BUCKET,
        "tenantId": TENANT,
        "allowedCidrs": ["203.0.113.0/24"],
    }
    data.update(overrides)
    return SftpUserSecret.model_validate(data)
