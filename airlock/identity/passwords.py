"""Password hashing: argon2id for new hashes; legacy bcrypt and SHA-512 crypt verified for migration.

Every comparison is constant-time (argon2-cffi, bcrypt and ``hmac.compare_digest``). A verified
legacy or outdated hash reports ``needs_rehash`` so the caller can store a fresh argon2id hash on the
next successful login. Nothing here logs or returns a password or a hash in an error.
"""

from __future__ import annotations

import contextlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from airlock.identity import sha512_crypt

# argon2-cffi's RFC 9106 "low memory" profile: argon2id, t=3, m=64 MiB, p=4 (about 50 ms on Lambda).
_HASHER = PasswordHasher()

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
SHA512_CRYPT_PREFIX = "$6$"
ARGON2ID_PREFIX = "$argon2id$"
# bcrypt ignores (bcrypt>=5 refuses) bytes past 72; cap what we feed any hash so a huge input is cheap.
MAX_PASSWORD_BYTES = 1024


@dataclass(frozen=True)
class Verification:
    ok: bool
    needs_rehash: bool = False
    scheme: str = "unknown"


def hash_password(password: str) -> str:
    """A fresh argon2id hash (salted, encoded with its parameters)."""
    if not password:
        raise ValueError("password must not be empty")
    return _HASHER.hash(password)


def scheme_of(stored_hash: str) -> str:
    if stored_hash.startswith(ARGON2ID_PREFIX):
        return "argon2id"
    if stored_hash.startswith(BCRYPT_PREFIXES):
        return "bcrypt"
    if stored_hash.startswith(SHA512_CRYPT_PREFIX):
        return "sha512-crypt"
    return "unknown"


def verify_password(password: str, stored_hash: str) -> Verification:
    """Check ``password`` against an argon2id, bcrypt or SHA-512 crypt hash. Unknown schemes fail."""
    scheme = scheme_of(stored_hash)
    if not password or len(password.encode()) > MAX_PASSWORD_BYTES:
        _burn(password)
        return Verification(ok=False, scheme=scheme)
    if scheme == "argon2id":
        try:
            _HASHER.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(ok=False, scheme=scheme)
        return Verification(ok=True, needs_rehash=_HASHER.check_needs_rehash(stored_hash), scheme=scheme)
    if scheme == "bcrypt":
        try:
            ok = bcrypt.checkpw(password.encode(), stored_hash.encode())
        except ValueError:  # malformed hash, or a >72-byte password that bcrypt>=5 refuses
            ok = False
        return Verification(ok=ok, needs_rehash=ok, scheme=scheme)
    if scheme == "sha512-crypt":
        try:
            computed = sha512_crypt.crypt(password, stored_hash)
        except ValueError:
            return Verification(ok=False, scheme=scheme)
        ok = hmac.compare_digest(computed.encode(), stored_hash.encode())
        return Verification(ok=ok, needs_rehash=ok, scheme=scheme)
    _burn(password)
    return Verification(ok=False, scheme=scheme)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("airlock-dummy-password-for-timing")


def _burn(password: str | None) -> None:
    """Spend the same time as a real check, so a missing user or hash is not told apart by timing."""
    with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
        _HASHER.verify(_dummy_hash(), (password or "x")[:MAX_PASSWORD_BYTES])


def burn_time(password: str | None) -> None:
    """Public form of :func:`_burn` for callers that reject before any hash is known."""
    _burn(password)
