"""boto3 clients for the platform's own credentials.

boto3 honours ``AWS_ENDPOINT_URL`` by itself, so the same code talks to AWS, the embedded local
stack or LocalStack; nothing here special-cases the local stack.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@lru_cache(maxsize=32)
def client(service: str, region: str | None = None) -> Any:
    """A cached client for the platform role. Call ``client.cache_clear()`` when the endpoint changes."""
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests and the local stack switch endpoints and credentials)."""
    client.cache_clear()
