"""Offboarding step functions (one Lambda function each; statemachines/offboard_tenant.asl.json)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from airlock.naming import Names
from airlock.onboarding import offboard
from airlock.onboarding.steps import parse_step
from airlock.tenancy.registry import Registry
from handlers.observability import step_handler
from schemas.onboarding import DisableUsersStep, OffboardedStep, ScheduleDeletionStep, TenantStep

logger = Logger(service="offboarding")
tracer = Tracer()
# Logger context, correlation id = the execution id, tenant_id key, trace: see handlers/observability.py.
task = step_handler(logger, tracer)


def _ctx() -> tuple[Names, Registry]:
    names = Names.from_env()
    return names, Registry(names)


@task
def suspend_tenant(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _, registry = _ctx()
    req, tenant = offboard.suspend(event, registry)
    logger.info("tenant suspended for offboarding", extra={"tenant_id": tenant.tenant_id})
    return {**req.model_dump(mode="json"), "status": tenant.status.value}


@task
def disable_sftp_users(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _, registry = _ctx()
    step = parse_step(DisableUsersStep, event)
    users = offboard.disable_users(step.tenant_id, step.server_id, registry)
    logger.info("sftp users disabled", extra={"tenant_id": step.tenant_id, "users": users})
    return {"disabled_users": users}


@task
def deny_tenant_role(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, _ = _ctx()
    step = parse_step(TenantStep, event)
    result = offboard.deny_role(names, step.tenant_id)
    logger.info("tenant role denied", extra={"tenant_id": step.tenant_id, **result})
    return result


@task
def schedule_key_deletion(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, _ = _ctx()
    step = parse_step(ScheduleDeletionStep, event)
    result = offboard.schedule_key_deletion(names, step.tenant_id, step.key_deletion_window_days)
    logger.info("tenant key scheduled for deletion", extra={"tenant_id": step.tenant_id, **result})
    return result


@task
def mark_offboarded(event: dict[str, Any], context: Any) -> dict[str, Any]:
    names, registry = _ctx()
    step = parse_step(OffboardedStep, event)
    record = offboard.mark_offboarded(names, step, registry)
    logger.info("tenant offboarded", extra=record.model_dump(mode="json"))
    return record.model_dump(mode="json")
