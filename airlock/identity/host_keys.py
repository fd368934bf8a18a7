"""Import an existing SFTP server's host key into Transfer Family, once.

Counterparties migrating from an OpenSSH server have its host key pinned in ``known_hosts``; giving
the Transfer Family server the same key keeps their connections working without a warning.
CloudFormation cannot set a server's host key, so a custom resource calls ``ImportHostKey``; this
module is that call, idempotent by fingerprint (a re-deploy imports nothing twice).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

from airlock.identity.errors import IdentityInputError


@dataclass(frozen=True)
class HostKeyResult:
    host_key_id: str
    fingerprint: str
    imported: bool  # False: the server already had this key


def public_fingerprint(private_key_pem: str) -> tuple[str, str]:
    """(``SHA256:…`` fingerprint as ssh-keygen prints it, key type) of an OpenSSH or PEM private key."""
    data = private_key_pem.strip().encode() + b"\n"
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key: Any = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise IdentityInputError(
            f"the host key is not an unencrypted OpenSSH or PEM private key ({err}); "
            "remove a passphrase with `ssh-keygen -p -N '' -f KEY`"
        ) from err
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key_type, blob = line.decode().split()[:2]
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).decode().rstrip("=")
    return f"SHA256:{digest}", key_type


def import_host_key(transfer: Any, server_id: str, private_key_pem: str, description: str = "") -> HostKeyResult:
    """Give ``server_id`` this host key unless it already has it."""
    fingerprint, key_type = public_fingerprint(private_key_pem)
    paginator = transfer.get_paginator("list_host_keys") if transfer.can_paginate("list_host_keys") else None
    pages = paginator.paginate(ServerId=server_id) if paginator else [transfer.list_host_keys(ServerId=server_id)]
    for page in pages:
        for existing in page.get("HostKeys", []):
            if existing.get("Fingerprint") == fingerprint:
                return HostKeyResult(existing["HostKeyId"], fingerprint, imported=False)
    resp = transfer.import_host_key(
        ServerId=server_id,
        HostKeyBody=private_key_pem,
        Description=(description or f"imported {key_type} host key")[:200],
    )
    return HostKeyResult(resp["HostKeyId"], fingerprint, imported=True)
