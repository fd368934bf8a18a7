"""OpenSSH public key lines: parse, fingerprint and enforce the accepted algorithms.

Pure standard library (the identity Lambda ships neither asyncssh nor paramiko). Accepted: ed25519,
ECDSA on the NIST curves, RSA of at least 3072 bits: what Transfer Family accepts, minus weak RSA.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from airlock.identity.errors import IdentityInputError

MIN_RSA_BITS = 3072
ACCEPTED_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


class KeyRejected(IdentityInputError):
    """A public key we will not store; ``str(err)`` is a sentence the CLI can print as is."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """``SHA256:<base64, unpadded>``, exactly as ``ssh-keygen -l`` prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    @property
    def line(self) -> str:
        """The normalized line Transfer Family compares: ``type base64 [comment]``."""
        body = f"{self.key_type} {base64.b64encode(self.blob).decode()}"
        return f"{body} {self.comment}" if self.comment else body

    def same_key(self, other: PublicKey) -> bool:
        return self.blob == other.blob


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise KeyRejected("the key data is truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise KeyRejected("the key data is truncated")
    return blob[offset + 4 : end], end


def _rsa_bits(blob: bytes) -> int:
    _, off = _read_string(blob, 0)
    _e, off = _read_string(blob, off)
    n, _ = _read_string(blob, off)
    return int.from_bytes(n, "big").bit_length()


def parse_public_key(line: str) -> PublicKey:
    """Parse one OpenSSH public key line; raise :class:`KeyRejected` saying what is wrong."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise KeyRejected("not an OpenSSH public key line (expected 'TYPE BASE64 [COMMENT]')")
    key_type, data = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) > 2 else ""
    if key_type not in ACCEPTED_TYPES:
        raise KeyRejected(
            f"key type {key_type!r} is not accepted; use ssh-ed25519 (recommended), "
            f"ECDSA (nistp256/384/521) or RSA of at least {MIN_RSA_BITS} bits"
        )
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise KeyRejected("the key's base64 data is not valid") from err
    inner, _ = _read_string(blob, 0)
    if inner.decode(errors="replace") != key_type:
        raise KeyRejected(f"the key data says {inner.decode(errors='replace')!r} but the line says {key_type!r}")
    if key_type == "ssh-rsa":
        bits = _rsa_bits(blob)
        if bits < MIN_RSA_BITS:
            raise KeyRejected(
                f"RSA key of {bits} bits is too weak; use ssh-ed25519 or RSA of at least {MIN_RSA_BITS} bits"
            )
    return PublicKey(key_type=key_type, blob=blob, comment=comment)


def same_key(line_a: str, line_b: str) -> bool:
    """True when two lines carry the same key material (comments and spacing ignored)."""
    try:
        return parse_public_key(line_a).same_key(parse_public_key(line_b))
    except KeyRejected:
        return False
