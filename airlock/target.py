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
    return Target(f"AWS (default credential chain{_account_from_sts()})", _server_id(None), local=False)


def _account_from_sts() -> str:
    """Names need the account id (bucket and role ARNs embed it): ask STS when AIRLOCK_ACCOUNT_ID is unset.

    Without this every name would carry the local stack's account id and point at nothing on AWS.
    """
    if os.environ.get("AIRLOCK_ACCOUNT_ID"):
        return f", account {os.environ['AIRLOCK_ACCOUNT_ID']} from AIRLOCK_ACCOUNT_ID"
    try:
        account = str(aws.client("sts").get_caller_identity()["Account"])
    except Exception as err:  # no credentials: the command itself reports that when it calls AWS
        return f"; account unknown ({type(err).__name__}): set AIRLOCK_ACCOUNT_ID"
    os.environ["AIRLOCK_ACCOUNT_ID"] = account
    os.environ.setdefault("AIRLOCK_WORKER_ROLE_ARN", Names.from_env().worker_role_arn)
    return f", account {account} from STS"


def _server_id(state: dict[str, object] | None) -> str | None:
    env = os.environ.get("AIRLOCK_SFTP_SERVER_ID")
    if env:
        return env
    if state:
        return str(state.get("server_id") or LOCAL_SERVER_ID)
    ids = [s for s in os.environ.get("AIRLOCK_SFTP_SERVER_IDS", "").split(",") if s]
    return ids[0] if len(ids) == 1 else None
