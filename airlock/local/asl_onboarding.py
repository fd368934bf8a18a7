"""The onboarding state machines on the local stack: the same ASL files, tasks bound in-process.

On AWS, ``template.yaml`` substitutes each ``${...FunctionArn}`` with a Lambda function whose
Handler is named below; here the same substitution yields an ARN that the local interpreter binds
to that very handler, invoked in-process with a Lambda-like context and environment.
``tests/unit/onboarding/test_template_wiring.py`` holds this table and the template together.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.local.asl import HistoryEvent, StateMachine, StatesError, Task
from airlock.local.context import LocalLambdaContext
from airlock.local.environ import scoped_environ
from airlock.naming import Names
from airlock.onboarding import names as onames
from airlock.onboarding.policies import tenant_boundary

STATEMACHINES = Path(__file__).resolve().parents[2] / "statemachines"
ASL_FILES = {onames.ONBOARD: STATEMACHINES / "onboard_tenant.asl.json",
             onames.OFFBOARD: STATEMACHINES / "offboard_tenant.asl.json"}
SNS_PUBLISH = "arn:aws:states:::sns:publish"

# DefinitionSubstitutions key -> (function step name, handler), as template.yaml wires them.
STEP_FUNCTIONS: dict[str, tuple[str, str]] = {
    "ValidateRequestFunctionArn": ("validate-request", "handlers.onboarding.validate_request"),
    "RegisterTenantFunctionArn": ("register-tenant", "handlers.onboarding.register_tenant"),
    "CreateKeyFunctionArn": ("create-key", "handlers.onboarding.create_key"),
    "CreateRoleFunctionArn": ("create-role", "handlers.onboarding.create_role"),
    "CreateBucketFunctionArn": ("create-bucket", "handlers.onboarding.create_bucket"),
    "LockKeyPolicyFunctionArn": ("lock-key-policy", "handlers.onboarding.lock_key_policy"),
    "CreateSftpUsersFunctionArn": ("create-sftp-users", "handlers.onboarding.create_sftp_users"),
    "ActivateTenantFunctionArn": ("activate-tenant", "handlers.onboarding.activate_tenant"),
    "MarkFailedFunctionArn": ("mark-failed", "handlers.onboarding.mark_failed"),
    "SuspendTenantFunctionArn": ("suspend-tenant", "handlers.onboarding_offboard.suspend_tenant"),
    "DisableSftpUsersFunctionArn": ("disable-sftp-users", "handlers.onboarding_offboard.disable_sftp_users"),
    "DenyTenantRoleFunctionArn": ("deny-tenant-role", "handlers.onboarding_offboard.deny_tenant_role"),
    "ScheduleKeyDeletionFunctionArn": ("schedule-key-deletion", "handlers.onboarding_offboard.schedule_key_deletion"),
    "MarkOffboardedFunctionArn": ("mark-offboarded", "handlers.onboarding_offboard.mark_offboarded"),
}


def substitutions(names: Names) -> dict[str, str]:
    subs = {key: onames.function_arn(names, step) for key, (step, _) in STEP_FUNCTIONS.items()}
    subs["AlertsTopicArn"] = f"arn:aws:sns:{names.region}:{names.account_id}:{names.alerts_topic}"
    return subs


@contextlib.contextmanager
def lambda_environment(names: Names) -> Iterator[None]:
    """The naming variables template.yaml gives every function, for the in-process handlers."""
    wanted = {"AIRLOCK_PREFIX": names.prefix, "AIRLOCK_ACCOUNT_ID": names.account_id}
    # Lambda sends logs and EMF metrics to CloudWatch; in-process they would mix into a CLI's stdout.
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    wanted |= {k: v for k, v in quiet.items() if k not in os.environ}
    with scoped_environ(wanted):
        yield


def _handler(path: str, function_name: str) -> Task:
    module_name, attr = path.rsplit(".", 1)

    def invoke(event: Any) -> Any:
        handler = getattr(importlib.import_module(module_name), attr)
        # A JSON round trip, as Lambda's: the handler sees what Step Functions would serialize.
        result = handler(json.loads(json.dumps(event)), LocalLambdaContext(function_name=function_name))
        return json.loads(json.dumps(result))

    return invoke


def sns_publish(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sns:publish`` service integration; errors are named ``SNS.<code>`` as on AWS."""
    kwargs = {"TopicArn": params["TopicArn"], "Message": params["Message"]}
    if params.get("Subject"):
        kwargs["Subject"] = params["Subject"]
    try:
        return {"MessageId": aws.client("sns").publish(**kwargs)["MessageId"]}
    except ClientError as err:
        raise StatesError(f"SNS.{err.response['Error']['Code']}", str(err)) from err


def local_tasks(names: Names) -> dict[str, Task]:
    tasks: dict[str, Task] = {
        onames.function_arn(names, step): _handler(handler, onames.function_name(names, step))
        for step, handler in STEP_FUNCTIONS.values()
    }
    tasks[SNS_PUBLISH] = sns_publish
    return tasks


def ensure_prerequisites(names: Names) -> None:
    """What template.yaml declares for onboarding and the local platform does not create (yet)."""
    iam = aws.client("iam")
    try:  # create-or-tolerate, not check-then-create: tenants may be onboarded in parallel
        iam.create_policy(
            PolicyName=onames.tenant_boundary_policy_name(names),
            Path=f"/{names.prefix}/",
            PolicyDocument=json.dumps(tenant_boundary(names)),
            Description="Airlock: the most any tenant role may do",
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    aws.client("sns").create_topic(Name=names.alerts_topic)  # idempotent


def state_machine(
    which: str,
    names: Names,
    *,
    tasks: Mapping[str, Task] | None = None,
    sleep: Callable[[float], None] | None = None,
    rand: Callable[[], float] | None = None,
    on_event: Callable[[HistoryEvent], None] | None = None,
) -> StateMachine:
    """``which`` is ``onboard-tenant`` or ``offboard-tenant``; ``tasks`` overrides bindings (tests)."""
    kwargs: dict[str, Any] = {"name": onames.state_machine_name(names, which), "on_event": on_event}
    if sleep is not None:
        kwargs["sleep"] = sleep
    if rand is not None:
        kwargs["rand"] = rand
    return StateMachine.from_file(ASL_FILES[which], substitutions(names), {**local_tasks(names), **(tasks or {})},
                                  **kwargs)
