"""SFTP user secrets in Secrets Manager (``sftp/<server_id>/<username>``), typed.

The identity provider reads them on every login; onboarding and ``airlock users`` write them. The
store never logs secret values.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from botocore.exceptions import ClientError
from pydantic import ValidationError

from airlock import aws
from airlock.naming import Names
from schemas.sftp_user import SftpUserSecret

TENANT_TAG = "airlock:tenant"
SERVER_TAG = "airlock:sftp-server"


class InvalidUserRecord(Exception):
    """The secret exists but is not a valid user record (fail closed, fix the secret)."""


class SecretStore(Protocol):
    def get_user(self, server_id: str, username: str) -> SftpUserSecret | None: ...

    def replace_password_hash(self, server_id: str, username: str, old_hash: str, new_hash: str) -> bool: ...


class SecretsManagerStore:
    """The production store. ``client`` defaults to the platform's cached secretsmanager client."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("secretsmanager")

    def get_user(self, server_id: str, username: str) -> SftpUserSecret | None:
        name = Names.sftp_secret_name(server_id, username)
        try:
            value = self.client.get_secret_value(SecretId=name)["SecretString"]
        except ClientError as err:
            if err.response["Error"]["Code"] in ("ResourceNotFoundException", "InvalidRequestException"):
                return None  # missing, or scheduled for deletion (offboarded)
            raise
        try:
            return SftpUserSecret.model_validate(json.loads(value))
        except (ValueError, ValidationError) as err:
            raise InvalidUserRecord(name) from err

    def replace_password_hash(self, server_id: str, username: str, old_hash: str, new_hash: str) -> bool:
        """Store ``new_hash`` only if the secret still holds ``old_hash`` (a rotation in between wins)."""
        current = self.get_user(server_id, username)
        if current is None or current.password_hash != old_hash:
            return False
        updated = current.model_copy(update={"password_hash": new_hash})
        self.client.put_secret_value(
            SecretId=Names.sftp_secret_name(server_id, username), SecretString=updated.to_secret_string()
        )
        return True
