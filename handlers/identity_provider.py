"""Transfer Family custom identity provider (Lambda face): event in, ``Role``/``Policy``/home or ``{}``.

Thin: parse, :func:`airlock.identity.service.authenticate`, audit, metric, shape. One structured
audit line per attempt; never a password, hash or key. Any unexpected error denies (``{}``).

Correlation id: the Lambda request id. Transfer Family's event carries no id of its own (only what
the client chose: user name, password or key, and the source IP), so nothing in it may name a line.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from airlock.identity.decide import Decision
from airlock.identity.service import authenticate, parse_request
from handlers.observability import accepts_no_context

SERVICE = "airlock-identity"
METRICS_NAMESPACE = "Airlock"

# The audit line is the point of this function's logging: INFO regardless of POWERTOOLS_LOG_LEVEL.
logger = Logger(service=SERVICE, level="INFO")
# Every login waits on this function's cold start: patch botocore only (Secrets Manager, DynamoDB), not
# patch_all's dozen libraries. Tracer imports aws_xray_sdk even when disabled: ~30 ms on Lambda; off
# Lambda (tests, the local stack) ~200 ms more, as X-Ray's recorder builds its sampling clients.
tracer = Tracer(patch_modules=["botocore"])


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


@accepts_no_context  # the local SFTP server and tests call us in-process, context or not
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # the session policy has no place in a trace
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(context.aws_request_id)
    return respond(event, "lambda")
