"""Wires :func:`decide` to its production ports (Secrets Manager, the registry, the attempt counters).

Both handler faces (Lambda and API Gateway) call :func:`authenticate`; tests call ``decide`` with fakes.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from airlock.identity.decide import AttemptTracker, Decision, allowed_server_ids_from_env, decide
from airlock.identity.store import SecretsManagerStore
from airlock.naming import Names
from airlock.tenancy.registry import Registry
from schemas.identity import IdentityRequest

LOCKOUT_ENV = "AIRLOCK_LOGIN_LOCKOUT"  # "off" disables the counters (e.g. a load test)


def parse_request(event: dict[str, Any]) -> IdentityRequest | None:
    """The request, or None when the event is not a Transfer Family login (deny, audit as bad_request)."""
    try:
        return IdentityRequest.model_validate(event)
    except ValidationError:
        return None


def _attempts(names: Names) -> AttemptTracker | None:
    if os.environ.get(LOCKOUT_ENV, "on").lower() in ("off", "0", "false"):
        return None
    from airlock.identity.lockout import DynamoAttemptTracker

    return DynamoAttemptTracker(names)


def authenticate(request: IdentityRequest) -> Decision:
    names = Names.from_env()
    return decide(
        request,
        secrets=SecretsManagerStore(),
        registry=Registry(names),
        allowed_server_ids=allowed_server_ids_from_env(),
        attempts=_attempts(names),
        region=names.region,
    )
