"""The Transfer Family custom identity provider contract (Lambda and API Gateway faces).

Transfer Family invokes the provider with ``username``, ``password``, ``protocol``, ``serverId`` and
``sourceIp``. For a public-key login there is no password (absent or empty): the provider answers
with the user's ``PublicKeys`` and Transfer Family checks the offered key itself. A response without
``Role`` (we send ``{}``) denies the login.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IdentityRequest(BaseModel):
    """What Transfer Family sends for one login attempt."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    username: str = Field(min_length=1, max_length=100)
    password: str | None = Field(default=None, repr=False)
    protocol: Literal["SFTP", "FTPS", "FTP", "AS2"] = "SFTP"
    server_id: str = Field(alias="serverId", min_length=1, max_length=64)
    source_ip: str = Field(alias="sourceIp", min_length=1, max_length=64)

    @property
    def is_key_login(self) -> bool:
        """No password means Transfer Family wants the user's public keys to check the offered one."""
        return not self.password

    @property
    def method(self) -> Literal["password", "publickey"]:
        return "publickey" if self.is_key_login else "password"


class HomeDirectoryEntry(BaseModel):
    """One logical directory: what the client sees (``Entry``) and where it lives (``/bucket/prefix``)."""

    model_config = ConfigDict(frozen=True)

    Entry: str
    Target: str


class IdentityResponse(BaseModel):
    """A successful login. ``Policy`` and ``HomeDirectoryDetails`` are JSON *strings*, as AWS expects."""

    model_config = ConfigDict(frozen=True)

    Role: str
    Policy: str
    HomeDirectoryType: Literal["LOGICAL"] = "LOGICAL"
    HomeDirectoryDetails: str
    PublicKeys: list[str] | None = None

    def home_entries(self) -> list[HomeDirectoryEntry]:
        return [HomeDirectoryEntry.model_validate(e) for e in json.loads(self.HomeDirectoryDetails)]

    def to_event_response(self) -> dict[str, object]:
        """The dict the Lambda returns; ``PublicKeys`` only for key logins."""
        return self.model_dump(exclude_none=True)
