"""Transfer Family custom identity provider, API Gateway face: ``GET /servers/{serverId}/users/{username}/config``.

Transfer Family sends the password in the ``Password`` header (absent for key logins) and
``protocol`` and ``sourceIp`` as query parameters. Same decision, same audit as the Lambda face; the
answer is always HTTP 200 with the response (or ``{}``, which denies) as the JSON body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from handlers.identity_provider import respond


def to_identity_event(event: dict[str, Any]) -> dict[str, Any]:
    """Map the API Gateway proxy event onto the Lambda face's event shape."""
    path = event.get("pathParameters") or {}
    query = event.get("queryStringParameters") or {}
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    identity: dict[str, Any] = {
        "username": unquote(str(path.get("username", ""))),
        "serverId": path.get("serverId"),
        "protocol": query.get("protocol") or "SFTP",
        "sourceIp": query.get("sourceIp"),
    }
    if headers.get("password"):
        identity["password"] = headers["password"]
    return identity


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = respond(to_identity_event(event) if isinstance(event, dict) else {}, "api")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
