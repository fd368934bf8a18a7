"""Where moto differs from AWS in ways that would break the local flow, bridged in one place.

moto 5.2 evaluates a bucket policy on every object request but ignores its ``Condition`` blocks:
a conditional Deny (``aws:SecureTransport`` false, wrong SSE key, principal not the tenant role)
is applied to *every* request, so a hardened tenant bucket accepts no upload at all. Locally we
skip conditional Deny statements (they cannot be evaluated without request context); the policy
documents themselves are held to their meaning by static tests in ``tests/unit/tenancy``.
Unconditional statements keep moto's behaviour.
"""

from __future__ import annotations

import json
from typing import Any

_MARK = "_airlock_bridged"


def install() -> None:
    """Patch moto in this process (idempotent). Affects both the threaded server and ``mock_aws``."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket.get_permission, _MARK, False):
        return

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
