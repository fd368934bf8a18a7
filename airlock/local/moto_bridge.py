"""Where moto differs from AWS in ways that would break the local flow, bridged in one place.

moto 5.2 evaluates a bucket policy on every object request but ignores its ``Condition`` blocks:
a conditional Deny (``aws:SecureTransport`` false, wrong SSE key, principal not the tenant role)
is applied to *every* request, so a hardened tenant bucket accepts no upload at all. Locally we
skip conditional Deny statements (they cannot be evaluated without request context); the policy
documents themselves are held to their meaning by static tests in ``tests/unit/tenancy``.
Unconditional statements keep moto's behaviour.

With IAM enforcement on, moto 5.2 also crashes (TypeError) evaluating a trust policy that has a
statement whose principal is only a ``Service`` (our tenant roles trust transfer.amazonaws.com):
such a statement simply does not match an AWS principal. And it compares a trust policy's role
ARN with the caller's *session* ARN verbatim, so a role trusted by ARN (our tenant roles trust the
ingest worker's role) can never be assumed from a session of that role, as it can on AWS. Finally,
a trust statement whose principal does not match the caller makes moto *deny* the call outright,
where AWS just finds that statement not applicable and goes on to the next one.

moto's DynamoDB checks a ``ConditionExpression`` and then writes, without a lock: two threads can
both pass the same condition (two workers both "win" one file's claim). DynamoDB makes a
conditional write atomic; locally every write is serialized so the file ledger keeps that promise.

moto stores a bucket's ``EventBridgeConfiguration`` (and delivers the events) but leaves it out of
``GetBucketNotificationConfiguration``, so ``airlock tenants check`` would report drift that is not
there; the GET answer gets the element back.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

_MARK = "_airlock_bridged"


def _role_of_session(principal: str) -> tuple[str, str] | None:
    """``arn:aws:sts::ACCT:assumed-role/NAME/SESSION`` -> (ACCT, NAME)."""
    parts = principal.split(":", 5)
    if len(parts) != 6 or parts[2] != "sts" or not parts[5].startswith("assumed-role/"):
        return None
    return parts[4], parts[5].split("/")[1]


def _same_role(role_arn: str, role: tuple[str, str]) -> bool:
    parts = role_arn.split(":", 5)
    return len(parts) == 6 and parts[4] == role[0] and parts[5].startswith("role/") and (
        parts[5].rsplit("/", 1)[-1] == role[1]
    )


_DDB_WRITE_LOCK = threading.RLock()


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _DDB_WRITE_LOCK:
            return method(*args, **kwargs)

    return locked


def install() -> None:
    """Patch moto in this process (idempotent). Affects both the threaded server and ``mock_aws``."""
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket.get_permission, _MARK, False):
        return

    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.responses import S3Response

    original_get_notification = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        status, headers, body = original_get_notification(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return status, headers, body
        text = body.decode() if isinstance(body, bytes) else str(body)
        element = "<EventBridgeConfiguration></EventBridgeConfiguration>"
        if "<EventBridgeConfiguration" not in text:
            empty = r"<NotificationConfiguration\1></NotificationConfiguration>"
            text = re.sub(r"<NotificationConfiguration([^>]*)/>", empty, text)
            text = text.replace("</NotificationConfiguration>", f"{element}</NotificationConfiguration>", 1)
        return status, headers, text

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))

    original_check_principal = IAMPolicyStatement._check_principal

    def check_principal(self: Any, principal: str) -> bool:
        expected = self._statement.get("Principal")
        if isinstance(expected, dict) and "AWS" not in expected:
            return False
        if original_check_principal(self, principal):
            return True
        role = _role_of_session(principal)
        if role is None or not isinstance(expected, dict):
            return False
        wanted = expected["AWS"] if isinstance(expected["AWS"], list) else [expected["AWS"]]
        return any(_same_role(w, role) for w in wanted)

    IAMPolicyStatement._check_principal = check_principal  # type: ignore[method-assign]
    original_is_action_permitted = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(
        self: Any, action: str, resource: str = "*", principal: str | None = None, incoming: Any = None
    ) -> Any:
        expected = self._statement.get("Principal")
        if principal and expected and not self.is_unknown_principal(expected) and not check_principal(self, principal):
            return PermissionResult.NEUTRAL  # this statement is about someone else
        return original_is_action_permitted(self, action, resource, principal, incoming)

    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign,assignment]

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        raw = self.policy.decode() if isinstance(self.policy, bytes) else self.policy
        doc = json.loads(raw)
        statements = doc.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        kept = [s for s in statements if not (s.get("Effect") == "Deny" and s.get("Condition"))]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**doc, "Statement": kept})).is_action_permitted(action, resource)

    setattr(get_permission, _MARK, True)
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
