"""Onboarding step functions (one Lambda function each; statemachines/onboard_tenant.asl.json).

Thin: parse the state's Parameters, call the step in :mod:`airlock.onboarding.steps`, return JSON.
Errors propagate: Step Functions names them by exception class, and the ASL retries or catches.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from airlock.naming import Names
from airlock.onboarding import steps
from airlock.tenancy.registry import Registry
from handlers.observability import step_handler
from schemas.onboarding import ActivateStep, BucketStep, FailureStep, LockKeyStep, RoleStep, TenantStep, UsersStep

logger = Logger(service="onboarding")
tracer = Tracer()
# Logger context, correlation id = the execution id, tenant_id key, trace: see handlers/observability.py.
task = step_handler(logger, tracer)
METRICS_NAMESPACE = "Airlock"


def _ctx() -> tuple[Names, Registry]:
    names = Names.from_env()
    return names, Registry(names)


@task
def validate_request(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, registry = _ctx()
    req = steps.validate_request(event, names, registry)
    logger.info("onboarding request valid", extra={"tenant_id": req.tenant_id, "users": len(req.users)})
    return req.model_dump(mode="json")


@task
def register_tenant(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, registry = _ctx()
    req = steps.validate_request(event, names, registry)
    tenant = steps.register_pending(names, req, registry)
    logger.info("tenant registered", extra={"tenant_id": tenant.tenant_id, "status": tenant.status.value})
    return {"tenant_id": tenant.tenant_id, "bucket": tenant.bucket, "status": tenant.status.value}


@task
def create_key(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, _ = _ctx()
    step = steps.parse_step(TenantStep, event)
    key_arn = steps.ensure_key(names, step.tenant_id)
    logger.info("tenant key ready", extra={"tenant_id": step.tenant_id, "key_arn": key_arn})
    return {"key_arn": key_arn, "alias": names.tenant_key_alias(step.tenant_id)}


@task
def create_role(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, _ = _ctx()
    step = steps.parse_step(RoleStep, event)
    role_arn = steps.ensure_role(names, step.tenant_id, step.bucket, step.key_arn)
    logger.info("tenant role ready", extra={"tenant_id": step.tenant_id, "role_arn": role_arn})
    return {"role_arn": role_arn}


@task
def create_bucket(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, _ = _ctx()
    step = steps.parse_step(BucketStep, event)
    steps.ensure_bucket(names, step.bucket, step.key_arn, step.role_arn)
    logger.info("tenant bucket ready", extra={"tenant_id": step.tenant_id, "bucket": step.bucket})
    return {"bucket": step.bucket, "bucket_arn": f"arn:aws:s3:::{step.bucket}"}


@task
def lock_key_policy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, _ = _ctx()
    step = steps.parse_step(LockKeyStep, event)
    steps.lock_key_policy(names, step.key_arn, step.role_arn)
    logger.info("key policy locked to the tenant role", extra={"tenant_id": step.tenant_id})
    return {"key_arn": step.key_arn, "role_arn": step.role_arn}


@task
def create_sftp_users(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, registry = _ctx()
    step = steps.parse_step(UsersStep, event)
    users = steps.create_users(names, step, registry)
    logger.info("sftp users ready", extra={"tenant_id": step.tenant_id, "users": users})
    return {"sftp_users": users}


@task
def activate_tenant(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, registry = _ctx()
    step = steps.parse_step(ActivateStep, event)
    tenant = steps.activate(names, step, registry)
    logger.info("tenant active", extra={"tenant_id": tenant.tenant_id})
    return tenant.model_dump(mode="json")


@task
def mark_failed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _, registry = _ctx()
    step = steps.parse_step(FailureStep, event)
    alert = steps.mark_failed(step, registry)
    # template.yaml's OnboardingFailedAlarm counts this metric (namespace Airlock, service=onboarding).
    with single_metric(name="OnboardingFailures", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as m:
        m.add_dimension(name="service", value="onboarding")
    logger.error("tenant %sing failed", step.phase, extra={"tenant_id": alert["tenant_id"],
                                                          "failure": alert["failure"]})
    return alert
