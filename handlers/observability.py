"""What every Lambda entry point shares: the powertools context, a correlation id, a trace segment.

Each handler is wrapped, outermost first, by

1. :func:`accepts_no_context` - an in-process caller may pass ``context=None`` (tests, a local
   server calling the identity provider the way Transfer Family would); powertools reads
   ``function_name``, ``memory_limit_in_mb``, ``invoked_function_arn`` and ``aws_request_id`` from
   the context, so ``None`` gets an :class:`InProcessContext` with a fresh request id;
2. ``logger.inject_lambda_context`` - ``function_request_id``, ``function_name``, ``cold_start``...
   on every line, and the correlation id (a JMESPath into the event, or set by the handler);
3. ``tracer.capture_lambda_handler`` - the ``## <handler>`` X-Ray subsegment (a no-op off Lambda,
   or with ``POWERTOOLS_TRACE_DISABLED=true``).

No ``clear_state``: every invocation sets the same keys (``None`` removes a value from the output),
so the key set never changes size while another thread formats a line. The local SFTP server calls
the identity provider from several threads at once; Lambda runs one invocation per environment.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Tracer

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class InProcessContext:
    """The context fields powertools and our handlers read, for a caller that passed none."""

    function_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "in-process"))
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "in-process"


def accepts_no_context(handler: Handler) -> Handler:
    """Outermost decorator: ``context=None`` becomes an :class:`InProcessContext`."""

    @functools.wraps(handler)
    def call(event: Any, context: Any = None) -> Any:
        return handler(event, InProcessContext() if context is None else context)

    return cast(Handler, call)


def _execution_id(event: Any) -> str | None:
    value = event.get("execution_id") if isinstance(event, dict) else None
    return value if isinstance(value, str) and value else None


def _tenant_id(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    value = event.get("tenant_id")
    if value is None and isinstance(event.get("execution_input"), dict):  # MarkFailed: the execution's input
        value = event["execution_input"].get("tenant_id")
    return value if isinstance(value, str) and value else None


def step_handler(logger: Logger, tracer: Tracer) -> Callable[[Handler], Handler]:
    """The decorator for a Step Functions task (statemachines/*.asl.json).

    Correlation id: the execution id, which the ASL passes as ``execution_id`` (``$$.Execution.Id``)
    to every step with Parameters. The entry steps (ValidateRequest, RegisterTenant, SuspendTenant)
    receive the execution input verbatim, whose schema admits no extra key: they use the Lambda
    request id, and their ``tenant_id`` key ties them to the rest of the execution.
    ``tenant_id`` is a log key and a trace annotation whenever the step's input names one.
    The response is not put in the trace: Step Functions' history already holds it (with hashes).
    """

    def decorate(handler: Handler) -> Handler:
        @tracer.capture_lambda_handler(capture_response=False)
        @functools.wraps(handler)
        def with_ids(event: Any, context: Any) -> Any:
            tenant = _tenant_id(event)
            logger.set_correlation_id(_execution_id(event) or context.aws_request_id)
            logger.append_keys(tenant_id=tenant)
            if tenant:
                tracer.put_annotation("tenant_id", tenant)
            return handler(event, context)

        return accepts_no_context(logger.inject_lambda_context(with_ids))

    return decorate
