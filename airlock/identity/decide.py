"""The one login decision, shared by the Lambda face, the API Gateway face and the local SFTP server.

Fail closed at every step: an unknown server, a disabled user, a tenant that is not ACTIVE, a secret
whose role or bucket disagrees with the registry, a source IP outside the allowlist, a locked-out
user or a lookup error all deny. The result carries a stable ``reason`` for the audit log; it never
carries the password or a hash.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from airlock.identity import passwords
from airlock.identity.keys import KeyRejected, parse_public_key
from airlock.identity.policy import home_directory_details, policy_json, scope_down_policy
from airlock.identity.store import InvalidUserRecord, SecretStore
from airlock.naming import DEFAULT_REGION
from schemas.identity import IdentityRequest, IdentityResponse
from schemas.sftp_user import SftpUserSecret
from schemas.tenant import Tenant

SERVER_IDS_ENV = "AIRLOCK_SFTP_SERVER_IDS"
# Transfer Family's own username rule; also keeps the secret name free of path tricks.
USERNAME_RE = re.compile(r"^[\w][\w@.-]{2,99}$", re.ASCII)

logger = logging.getLogger(__name__)

# Stable reasons (the audit log and the metric dimension use them; do not rename casually).
OK = "ok"
SERVER_NOT_ALLOWED = "server_not_allowed"
PROTOCOL_NOT_ALLOWED = "protocol_not_allowed"
BAD_USERNAME = "bad_username"
LOCKED_OUT = "locked_out"
UNKNOWN_USER = "unknown_user"
INVALID_USER_RECORD = "invalid_user_record"
USER_DISABLED = "user_disabled"
SOURCE_IP_NOT_ALLOWED = "source_ip_not_allowed"
TENANT_NOT_FOUND = "tenant_not_found"
TENANT_NOT_ACTIVE = "tenant_not_active"
TENANT_MISMATCH = "tenant_mismatch"
NO_PASSWORD_SET = "no_password_set"  # noqa: S105 - a reason code
BAD_PASSWORD = "bad_password"  # noqa: S105 - a reason code
NO_VALID_KEYS = "no_valid_keys"
LOOKUP_ERROR = "lookup_error"

# Rejections that say something about the user (counted towards lockout); the rest are
# configuration or infrastructure problems that an attacker cannot drive.
COUNTED_FAILURES = frozenset({UNKNOWN_USER, USER_DISABLED, SOURCE_IP_NOT_ALLOWED, BAD_PASSWORD, NO_PASSWORD_SET})


class TenantLookup(Protocol):
    def get(self, tenant_id: str) -> Tenant | None: ...


class AttemptTracker(Protocol):
    """Failed-login counters (see :mod:`airlock.identity.lockout`)."""

    def is_locked(self, server_id: str, username: str, source_ip: str) -> bool: ...

    def record_failure(self, server_id: str, username: str, source_ip: str) -> None: ...

    def record_success(self, server_id: str, username: str, source_ip: str) -> None: ...


@dataclass(frozen=True)
class Decision:
    """The verdict for one attempt: a response to return, or ``{}`` and a reason to audit."""

    request: IdentityRequest
    reason: str
    response: IdentityResponse | None = None
    tenant_id: str | None = None
    rehashed: bool = False
    details: dict[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.response is not None

    def event_response(self) -> dict[str, Any]:
        """What the Lambda returns: the response, or ``{}`` (Transfer Family's "denied")."""
        return self.response.to_event_response() if self.response else {}

    def audit(self) -> dict[str, Any]:
        """One structured audit record; safe to log (no password, no hash, no key material)."""
        return {
            "event": "sftp_login",
            "result": "allowed" if self.allowed else "denied",
            "reason": self.reason,
            "user": self.request.username,
            "tenant": self.tenant_id,
            "server": self.request.server_id,
            "source_ip": self.request.source_ip,
            "protocol": self.request.protocol,
            "method": self.request.method,
            "rehashed": self.rehashed,
            **self.details,
        }


def allowed_server_ids_from_env() -> frozenset[str]:
    """``AIRLOCK_SFTP_SERVER_IDS`` as a set; unset or empty means no server is allowed."""
    raw = os.environ.get(SERVER_IDS_ENV, "")
    return frozenset(s.strip() for s in raw.split(",") if s.strip())


def ip_allowed(source_ip: str, cidrs: Collection[str]) -> bool:
    try:
        ip = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def usable_public_keys(user: SftpUserSecret, now: datetime) -> list[str]:
    """The user's keys that parse, are accepted and have not expired, as normalized lines."""
    lines: list[str] = []
    for line in user.public_keys:
        try:
            key = parse_public_key(line)
        except KeyRejected:
            continue
        expiry = user.public_key_expiry.get(key.fingerprint)
        if expiry is not None and _aware(expiry) <= now:
            continue
        lines.append(key.line)
    return lines


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def tenant_mismatch(user: SftpUserSecret, tenant: Tenant) -> str | None:
    """Which binding disagrees between the secret and the registry, if any."""
    if user.tenant_id != tenant.tenant_id:
        return "tenantId"
    if user.role_arn != tenant.role_arn:
        return "roleArn"
    if user.s3_bucket != tenant.bucket:
        return "s3Bucket"
    return None


def build_response(tenant: Tenant, *, region: str, public_keys: list[str] | None) -> IdentityResponse:
    policy = scope_down_policy(tenant.bucket, region=region, kms_key_arn=tenant.kms_key_arn)
    return IdentityResponse(
        Role=tenant.role_arn,
        Policy=policy_json(policy),
        HomeDirectoryType="LOGICAL",
        HomeDirectoryDetails=json.dumps(home_directory_details(tenant.bucket), separators=(",", ":")),
        PublicKeys=public_keys,
    )


def decide(
    request: IdentityRequest,
    *,
    secrets: SecretStore,
    registry: TenantLookup,
    allowed_server_ids: Collection[str],
    attempts: AttemptTracker | None = None,
    region: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Decision:
    """Decide one login attempt. Never raises for bad input or lookup errors: it denies."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    is_password = not request.is_key_login
    verified = False

    def deny(reason: str, tenant_id: str | None = None, **details: str) -> Decision:
        if is_password and not verified:
            passwords.burn_time(request.password)  # a missing user costs as much as a wrong password
        if attempts is not None and reason in COUNTED_FAILURES:
            _safely(attempts.record_failure, request)
        return Decision(request=request, reason=reason, tenant_id=tenant_id, details=details)

    if request.server_id not in allowed_server_ids:
        return deny(SERVER_NOT_ALLOWED)
    if request.protocol != "SFTP":
        return deny(PROTOCOL_NOT_ALLOWED)
    if not USERNAME_RE.fullmatch(request.username):
        return deny(BAD_USERNAME)
    try:
        if attempts is not None and attempts.is_locked(request.server_id, request.username, request.source_ip):
            return deny(LOCKED_OUT)
        user = secrets.get_user(request.server_id, request.username)
    except InvalidUserRecord:
        return deny(INVALID_USER_RECORD)
    except (ClientError, BotoCoreError) as err:
        return deny(LOOKUP_ERROR, error=type(err).__name__)
    if user is None:
        return deny(UNKNOWN_USER)
    if user.disabled:
        return deny(USER_DISABLED, user.tenant_id)
    if not ip_allowed(request.source_ip, user.allowed_cidrs):
        return deny(SOURCE_IP_NOT_ALLOWED, user.tenant_id)
    try:
        tenant = registry.get(user.tenant_id)
    except (ClientError, BotoCoreError) as err:
        return deny(LOOKUP_ERROR, user.tenant_id, error=type(err).__name__)
    if tenant is None:
        return deny(TENANT_NOT_FOUND, user.tenant_id)
    if not tenant.is_active:
        return deny(TENANT_NOT_ACTIVE, user.tenant_id, status=str(tenant.status))
    mismatch = tenant_mismatch(user, tenant)
    if mismatch:
        return deny(TENANT_MISMATCH, user.tenant_id, field=mismatch)

    rehashed = False
    public_keys: list[str] | None = None
    if is_password:
        if not user.password_hash:
            return deny(NO_PASSWORD_SET, user.tenant_id)
        result = passwords.verify_password(request.password or "", user.password_hash)
        verified = True
        if not result.ok:
            return deny(BAD_PASSWORD, user.tenant_id)
        if result.needs_rehash:
            rehashed = _rehash(secrets, request, user.password_hash)
    else:
        public_keys = usable_public_keys(user, now())
        if not public_keys:
            return deny(NO_VALID_KEYS, user.tenant_id)

    # Only a verified password clears the counters: a key-login call proves nothing (Transfer Family
    # checks the key after we answer), and letting it clear them would let a guesser reset its count.
    if attempts is not None and is_password:
        _safely(attempts.record_success, request)
    try:
        response = build_response(tenant, region=region, public_keys=public_keys)
    except ValueError as err:  # policy too long: a platform bug, deny rather than send a broken policy
        return deny(LOOKUP_ERROR, user.tenant_id, error=str(err))
    return Decision(request=request, reason=OK, response=response, tenant_id=tenant.tenant_id, rehashed=rehashed)


def _rehash(secrets: SecretStore, request: IdentityRequest, old_hash: str) -> bool:
    """Best effort: a failed re-hash must not fail a good login; it is retried on the next one."""
    try:
        new_hash = passwords.hash_password(request.password or "")
        return secrets.replace_password_hash(request.server_id, request.username, old_hash, new_hash)
    except (ClientError, BotoCoreError, InvalidUserRecord, ValueError) as err:
        logger.warning("password re-hash failed for %s: %s", request.username, type(err).__name__)
        return False


def _safely(op: Callable[[str, str, str], None], request: IdentityRequest) -> None:
    """Counter updates are best effort; a DynamoDB hiccup must not turn into a login outcome."""
    try:
        op(request.server_id, request.username, request.source_ip)
    except (ClientError, BotoCoreError) as err:
        logger.warning("login-attempt counter update failed: %s", type(err).__name__)
