"""Which AWS the CLI talks to: ``AWS_ENDPOINT_URL`` if set, else a running local stack, else AWS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from airlock import aws
from airlock.local.stack import LOCAL_ENV, read_state
from airlock.naming import LOCAL_SERVER_ID, Names


@dataclass(frozen=True)
class Target:
    description: str
    server_id: str | None
    local: bool


def resolve(state_dir: Path | None = None) -> Target:
    """Point boto3 at the right endpoint for this process and say which one, for the user."""
    explicit = os.environ.get("AWS_ENDPOINT_URL")
    if explicit:
        return Target(f"endpoint {explicit} (AWS_ENDPOINT_URL)", _server_id(None), local=False)
    state = read_state(state_dir)
    if state:
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)
        os.environ["AWS_ENDPOINT_URL"] = state["aws_endpoint"]
        os.environ.setdefault("AIRLOCK_PREFIX", str(state["prefix"]))
        os.environ.setdefault("AIRLOCK_WORKER_ROLE_ARN", Names.from_env().worker_role_arn)
        aws.reset_clients()
        return Target(f"local stack at {state['aws_endpoint']} (pid {state['pid']})", _server_id(state), local=True)
    return Target("AWS (default credential chain)", _server_id(None), local=False)


def _server_id(state: dict[str, object] | None) -> str | None:
    env = os.environ.get("AIRLOCK_SFTP_SERVER_ID")
    if env:
        return env
    if state:
        return str(state.get("server_id") or LOCAL_SERVER_ID)
    ids = [s for s in os.environ.get("AIRLOCK_SFTP_SERVER_IDS", "").split(",") if s]
    return ids[0] if len(ids) == 1 else None
