"""Fault injection for the local stack: throttling, 5xx, timeouts and lost responses at chosen AWS calls.

A botocore ``before-send`` hook, registered on every botocore session created after ``install()``
(boto3 sessions, the platform's cached clients once reset, per-file tenant sessions) or on a given
client with ``attach()``. It sits below botocore's retry logic, so injected faults are retried by
botocore exactly as real ones would be; only faults that outlast those retries reach the caller.
The core never knows about it: nothing in ``airlock`` outside ``airlock/local`` imports this module.

Kinds: ``throttle`` and ``5xx`` answer with the service's own error shape (S3 XML, STS query XML,
JSON for DynamoDB, KMS, EventBridge...); ``timeout`` raises botocore's ``ReadTimeoutError`` without
sending; ``lost-response`` sends the request for real and then raises ``ReadTimeoutError`` (the call
took effect, the caller cannot know). KMS work that S3 does server-side (SSE-KMS) fails as S3 reports
it: ``kms-throttle`` is S3's 503 SlowDown "reduce your request rate for operations involving AWS KMS".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.handlers import BUILTIN_HANDLERS
from botocore.httpsession import URLLib3Session

KINDS = ("throttle", "5xx", "timeout", "lost-response", "kms-throttle", "kms-5xx")

# (status, code, message) per service for the error kinds; "*" is every other JSON-protocol service.
_THROTTLE = {
    "s3": (503, "SlowDown", "Please reduce your request rate."),
    "sts": (400, "Throttling", "Rate exceeded"),
    "dynamodb": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "*": (400, "ThrottlingException", "Rate exceeded"),
}
_SERVER_ERROR = {
    "s3": (500, "InternalError", "We encountered an internal error. Please try again."),
    "sts": (500, "InternalFailure", "An internal error occurred."),
    "dynamodb": (500, "InternalServerError", "Internal server error"),
    "kms": (500, "KMSInternalException", "An internal error occurred."),
    "*": (503, "ServiceUnavailable", "Service unavailable"),
}
_KMS_VIA_S3 = {
    "kms-throttle": (503, "SlowDown", "Please reduce your request rate for operations involving AWS KMS."),
    "kms-5xx": (500, "InternalError", "AWS KMS encountered an internal error. Please try again."),
}
_QUERY_XML = {"sts", "iam"}


@dataclass
class Fault:
    """Fail the next ``times`` calls of ``service``/``operation`` whose URL, headers or body hold every ``match``."""

    service: str  # botocore service id, hyphenized: s3, dynamodb, sts, kms, eventbridge, sqs...
    operation: str  # "PutObject", or "*" for every operation of the service
    kind: str
    times: int = 1
    match: str | tuple[str, ...] = ""
    fired: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.match, str):
            self.match = (self.match,) if self.match else ()
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind.startswith("kms-") and self.service != "s3":
            raise ValueError("kms-* faults are what S3 returns when SSE-KMS fails: service must be s3")

    @property
    def exhausted(self) -> bool:
        return self.fired >= self.times


@dataclass(frozen=True)
class Injected:
    """One fault as it fired, for the test to hold the ledger's story against."""

    at: float
    service: str
    operation: str
    kind: str
    match: tuple[str, ...]
    code: str


def _text(request: AWSPreparedRequest) -> str:
    body = request.body
    if hasattr(body, "read"):  # streaming bodies (uploads): match on URL and headers only
        body = b""
    raw = body if isinstance(body, bytes) else str(body or "").encode()
    headers = " ".join(f"{k}:{v!s}" for k, v in request.headers.items())
    return f"{request.url} {headers} {raw.decode('utf-8', 'replace')}"


def error_response(service: str, kind: str, request: AWSPreparedRequest) -> tuple[AWSResponse, str]:
    if kind in _KMS_VIA_S3:
        status, code, message = _KMS_VIA_S3[kind]
    else:
        table = _THROTTLE if kind == "throttle" else _SERVER_ERROR
        status, code, message = table.get(service, table["*"])
    if service == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>FAULT</RequestId></Error>")
        headers = {"Content-Type": "application/xml"}
    elif service in _QUERY_XML:
        body = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>FAULT</RequestId></ErrorResponse>")
        headers = {"Content-Type": "text/xml"}
    else:
        body = f'{{"__type":"{code}","message":"{message}"}}'
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Raw(body.encode())), code


class _Raw:
    """The minimal raw-response object ``AWSResponse.content`` reads from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *_args: Any, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class FaultInjector:
    """Holds the active faults and a log of every fault that fired; thread-safe."""

    faults: list[Fault] = field(default_factory=list)
    log: list[Injected] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _installed: bool = False

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def fired(self, **where: str) -> list[Injected]:
        with self._lock:
            return [i for i in self.log if all(getattr(i, k) == v for k, v in where.items())]

    # -- wiring ---------------------------------------------------------------------------------------
    def install(self) -> None:
        """Hook every botocore session created from now on (reset cached clients after this)."""
        if not self._installed:
            BUILTIN_HANDLERS.insert(0, ("before-send", self.before_send))
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            BUILTIN_HANDLERS.remove(("before-send", self.before_send))
            self._installed = False

    def attach(self, client: Any) -> None:
        """Hook one existing client."""
        client.meta.events.register_first("before-send", self.before_send)

    # -- the hook -------------------------------------------------------------------------------------
    def _take(self, service: str, operation: str, request: AWSPreparedRequest) -> Fault | None:
        with self._lock:
            candidates = [f for f in self.faults if not f.exhausted and f.service == service
                          and f.operation in ("*", operation)]
            if not candidates:
                return None
            text = _text(request) if any(f.match for f in candidates) else ""
            for fault in candidates:
                if all(m in text for m in fault.match):
                    fault.fired += 1
                    return fault
        return None

    def before_send(self, request: AWSPreparedRequest, event_name: str = "", **_: Any) -> AWSResponse | None:
        parts = event_name.split(".")
        if len(parts) < 3:
            return None
        service, operation = parts[1], parts[2]
        fault = self._take(service, operation, request)
        if fault is None:
            return None
        if fault.kind in ("timeout", "lost-response"):
            self._record(fault, operation, "ReadTimeoutError")
            if fault.kind == "lost-response":
                URLLib3Session().send(request)  # the call takes effect; its answer never arrives
            raise ReadTimeoutError(endpoint_url=request.url)
        response, code = error_response(service, fault.kind, request)
        self._record(fault, operation, code)
        return response

    def _record(self, fault: Fault, operation: str, code: str) -> None:
        with self._lock:
            self.log.append(Injected(time.time(), fault.service, operation, fault.kind, tuple(fault.match), code))


@contextmanager
def injecting(*faults: Fault) -> Iterator[FaultInjector]:
    """``with injecting(Fault(...)) as inj:`` installs a fresh injector and removes it afterwards."""
    injector = FaultInjector()
    for fault in faults:
        injector.add(fault)
    injector.install()
    try:
        yield injector
    finally:
        injector.uninstall()
