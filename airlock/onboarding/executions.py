"""Start an onboarding or offboarding execution and wait for it: on AWS, or locally from the same ASL.

``aws``: StartExecution on the deployed state machine, then poll its history for progress.
``local``: the same ASL file run in-process by :mod:`airlock.local.asl` (moto's Step Functions
cannot run our Lambda tasks). ``auto``: AWS when the state machine is deployed at the endpoint,
else local when the endpoint is not AWS itself.

Passwords are hashed here, before the execution starts: Step Functions records every state's input.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names
from airlock.onboarding import names as onames
from airlock.onboarding.steps import summarize_cause
from schemas.onboarding import OffboardRequest, OnboardExecution, OnboardRequest, SftpUserInput, TenantOffboarded
from schemas.tenant import Tenant

Progress = Callable[[str], None]
RUNNERS = ("auto", "local", "aws")
POLL_SECONDS = 2.0
TIMEOUT_SECONDS = 900.0


class ExecutionFailed(Exception):
    """The execution ended FAILED (or timed out); ``error`` is the Step Functions error name."""

    def __init__(self, which: str, tenant_id: str, error: str, cause: str, execution_id: str = "") -> None:
        self.which, self.tenant_id, self.execution_id = which, tenant_id, execution_id
        self.error, self.cause = error, cause
        super().__init__(f"{which} of {tenant_id} failed: {summarize_cause(error, cause)}")


class RunnerUnavailable(Exception):
    """No way to run the state machine here (not deployed, and not a local endpoint)."""


@dataclass(frozen=True)
class Outcome:
    execution_id: str
    output: Any


def prepare_onboarding(req: OnboardRequest, server_id: str) -> OnboardExecution:
    """The execution input: keys checked now (a person is waiting), passwords replaced by hashes."""
    from airlock.identity.keys import parse_public_key
    from airlock.identity.passwords import hash_password

    users = []
    for user in req.users:
        for key in user.public_keys:
            parse_public_key(key)  # IdentityInputError: the message says what is wrong
        users.append(
            SftpUserInput(
                username=user.username,
                public_keys=user.public_keys,
                password_hash=hash_password(user.password) if user.password else None,
                allowed_cidrs=user.allowed_cidrs,
            )
        )
    return OnboardExecution(
        tenant_id=req.tenant_id,
        display_name=req.display_name,
        server_id=server_id,
        users=tuple(users),
        policy=req.policy,
    )


def _endpoint_is_local() -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL"))


def _deployed(names: Names, which: str) -> bool:
    try:
        aws.client("stepfunctions").describe_state_machine(stateMachineArn=onames.state_machine_arn(names, which))
    except ClientError as err:
        if err.response["Error"]["Code"] in ("StateMachineDoesNotExist", "ResourceNotFoundException"):
            return False
        raise
    return True


def choose_runner(runner: str, names: Names, which: str) -> str:
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {', '.join(RUNNERS)}")
    if runner != "auto":
        return runner
    if _endpoint_is_local():
        return "aws" if _deployed(names, which) else "local"
    if _deployed(names, which):
        return "aws"
    raise RunnerUnavailable(
        f"state machine {onames.state_machine_name(names, which)} is not deployed in {names.region}: "
        "deploy with `sam deploy`, or run it from this machine with --runner local"
    )


def run(
    which: str,
    payload: dict[str, Any],
    names: Names,
    *,
    runner: str = "auto",
    progress: Progress | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Outcome:
    tenant_id = str(payload.get("tenant_id", ""))
    name = f"{tenant_id}-{uuid.uuid4().hex[:12]}"[:80]
    if choose_runner(runner, names, which) == "aws":
        return _run_aws(which, payload, names, name, progress=progress, sleep=sleep or time.sleep)
    return _run_local(which, payload, names, name, progress=progress, sleep=sleep)


def _run_local(
    which: str, payload: dict[str, Any], names: Names, name: str, *, progress: Progress | None,
    sleep: Callable[[float], None] | None,
) -> Outcome:
    from airlock.local import asl_onboarding
    from airlock.local.asl import HistoryEvent

    def on_event(event: HistoryEvent) -> None:
        if progress is None:
            return
        if event.type == "StateEntered":
            progress(f"  {event.state}")
        elif event.type == "TaskRetry":
            progress(f"  {event.state}: {event.detail['error']}, retry {event.detail['attempt']} "
                     f"in {event.detail['delay']:.1f}s")
        elif event.type == "TaskCaught":
            progress(f"  {event.state} failed ({event.detail['error']})")

    asl_onboarding.ensure_prerequisites(names)
    machine = asl_onboarding.state_machine(which, names, sleep=sleep, on_event=on_event)
    with asl_onboarding.lambda_environment(names):
        execution = machine.execute(payload, name=name)
    if not execution.succeeded:
        raise ExecutionFailed(which, str(payload.get("tenant_id")), execution.error or "", execution.cause or "",
                              execution.execution_id)
    return Outcome(execution.execution_id, execution.output)


_SHOWN = {"TaskStateEntered": "", "ChoiceStateEntered": "", "PassStateEntered": "", "FailStateEntered": ""}


def _run_aws(
    which: str, payload: dict[str, Any], names: Names, name: str, *, progress: Progress | None,
    sleep: Callable[[float], None],
) -> Outcome:
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=onames.state_machine_arn(names, which), name=name, input=json.dumps(payload)
    )["executionArn"]
    if progress:
        progress(f"  execution {arn}")
    seen = 0
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        events = _history(sfn, arn)
        for event in events[seen:]:
            if progress is None:
                continue
            if event["type"] in _SHOWN:
                progress(f"  {event['stateEnteredEventDetails']['name']}")
            elif event["type"] == "TaskFailed":
                progress(f"  task failed ({event.get('taskFailedEventDetails', {}).get('error', '?')}), "
                         "Retry/Catch decide")
        seen = len(events)
        desc = sfn.describe_execution(executionArn=arn)
        status = desc["status"]
        if status == "SUCCEEDED":
            return Outcome(arn, json.loads(desc.get("output") or "null"))
        if status != "RUNNING":
            raise ExecutionFailed(which, str(payload.get("tenant_id")), desc.get("error", status),
                                  desc.get("cause", ""), arn)
        if time.monotonic() > deadline:
            raise ExecutionFailed(which, str(payload.get("tenant_id")), "Timeout",
                                  f"still running after {TIMEOUT_SECONDS:.0f}s: see the console", arn)
        sleep(POLL_SECONDS)


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def onboard(
    req: OnboardRequest,
    *,
    server_id: str,
    names: Names | None = None,
    runner: str = "local",
    progress: Progress | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Tenant:
    """Onboard ``req``; the ACTIVE tenant, or :class:`ExecutionFailed` (tenant FAILED, alert out)."""
    names = names or Names.from_env()
    payload = prepare_onboarding(req, server_id).model_dump(mode="json")
    outcome = run(onames.ONBOARD, payload, names, runner=runner, progress=progress, sleep=sleep)
    return Tenant.model_validate(outcome.output)


def offboard(
    req: OffboardRequest,
    *,
    names: Names | None = None,
    runner: str = "local",
    progress: Progress | None = None,
    sleep: Callable[[float], None] | None = None,
) -> TenantOffboarded:
    """Offboard ``req.tenant_id``; the audit record, or :class:`ExecutionFailed`."""
    names = names or Names.from_env()
    outcome = run(onames.OFFBOARD, req.model_dump(mode="json"), names, runner=runner, progress=progress, sleep=sleep)
    return TenantOffboarded.model_validate(outcome.output)
