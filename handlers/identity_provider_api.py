"""Transfer Family custom identity provider, API Gateway face: ``GET /servers/{serverId}/users/{username}/config``.

Transfer Family sends the password twice for password logins: base64-encoded in ``PasswordBase64``
(the only form that carries characters outside US-ASCII intact) and plain in ``Password``; both are
absent for key logins. ``protocol`` and ``sourceIp`` come as query parameters. Same decision, same
audit as the Lambda face; the answer is always HTTP 200 with the response (or ``{}``, which denies)
as the JSON body.

Correlation id: API Gateway's request id (``requestContext.requestId``), which its access log and
execution log also carry.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.logging import correlation_paths

from handlers.identity_provider import audit_bad_event, logger, respond, tracer
from handlers.observability import accepts_no_context


class BadPasswordHeader(ValueError):
    """``PasswordBase64`` is not base64 of UTF-8 text: deny, never fall back to a key login."""

    def __init__(self, username: str) -> None:
        super().__init__("PasswordBase64 is not base64-encoded UTF-8")
        self.username = username


def _password(headers: dict[str, Any]) -> str | None:
    """The password, ``PasswordBase64`` first; raises binascii.Error or UnicodeDecodeError on a bad one."""
    encoded = headers.get("passwordbase64")
    if encoded:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8")
    plain = headers.get("password")
    return str(plain) if plain else None


def to_identity_event(event: dict[str, Any]) -> dict[str, Any]:
    """Map the API Gateway proxy event onto the Lambda face's event shape (raises BadPasswordHeader)."""
    path = event.get("pathParameters") or {}
    query = event.get("queryStringParameters") or {}
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    identity: dict[str, Any] = {
        "username": unquote(str(path.get("username", ""))),
        "serverId": path.get("serverId"),
        "protocol": query.get("protocol") or "SFTP",
        "sourceIp": query.get("sourceIp"),
    }
    try:
        password = _password(headers)
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadPasswordHeader(identity["username"]) from exc
    if password:
        identity["password"] = password
    return identity


@accepts_no_context
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    try:  # respond() denies and audits anything that is not a login event, a non-dict included
        body = respond(to_identity_event(event) if isinstance(event, dict) else event, "api")
    except BadPasswordHeader as bad:
        audit_bad_event({"username": bad.username}, "api")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
