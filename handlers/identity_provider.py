"""Transfer Family custom identity provider (Lambda face): event in, ``Role``/``Policy``/home or ``{}``.

Thin: parse, :func:`airlock.identity.service.authenticate`, audit, metric, shape. One structured
audit line per attempt; never a password, hash or key. Any unexpected error denies (``{}``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from airlock.identity.decide import Decision
from airlock.identity.service import authenticate, parse_request

SERVICE = "airlock-identity"
METRICS_NAMESPACE = "Airlock"

# The audit line is the point of this function's logging: INFO regardless of POWERTOOLS_LOG_LEVEL.
logger = Logger(service=SERVICE, level="INFO")


def audit(decision: Decision) -> None:
    """The audit line (security operations alarm on ``result=denied``) and the rejected-login metric."""
    record = decision.audit()
    if decision.allowed:
        logger.info("sftp login allowed", extra=record)
        return
    logger.warning("sftp login denied", extra=record)
    # single_metric flushes at once: safe when the local SFTP server calls us from several threads.
    with single_metric(name="RejectedLogins", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        metric.add_dimension(name="reason", value=decision.reason)


def audit_bad_event(event: Any, face: str) -> None:
    user = event.get("username") if isinstance(event, dict) else None
    logger.warning(
        "sftp login denied",
        extra={
            "event": "sftp_login",
            "result": "denied",
            "reason": "bad_request",
            "user": user if isinstance(user, str) else None,
            "face": face,
        },
    )


def respond(event: Any, face: str) -> dict[str, Any]:
    """Parse, decide, audit; the Transfer Family response dict (``{}`` denies). Shared by both faces."""
    request = parse_request(event) if isinstance(event, dict) else None
    if request is None:
        audit_bad_event(event, face)
        return {}
    try:
        decision = authenticate(request)
    except Exception:  # fail closed on anything unforeseen; the traceback goes to the log, not the client
        logger.exception("identity provider error", extra={"user": request.username, "server": request.server_id})
        return {}
    audit(decision)
    return decision.event_response()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return respond(event, "lambda")
