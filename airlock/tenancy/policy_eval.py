"""A small, honest IAM policy evaluator for the subset of policy language Airlock's documents use.

moto does not enforce KMS key policies, bucket-policy conditions or session policies, so the tenant
isolation those documents promise is proved by evaluating the documents themselves against request
contexts (principal, action, resource, TLS, SSE headers). Honest means: anything outside the subset
(an unknown condition operator, ``NotPrincipal``, a policy variable, ``ForAnyValue:``) raises
:class:`UnsupportedPolicy` instead of being guessed, so a new document cannot pass by being misread.

The subset: ``Allow``/``Deny``; ``Action``/``NotAction`` and ``Resource``/``NotResource`` with ``*``
and ``?`` wildcards (``${*}``, ``${?}``, ``${$}`` as literal escapes); ``Principal`` (``*``, AWS
account, role, role session, service); conditions ``Bool``, ``StringEquals``, ``StringNotEquals``,
``StringLike``, ``StringNotLike``, ``ArnEquals``, ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``
(each with ``IfExists``) and ``Null``. The combination follows AWS's documented evaluation logic for
one account: an explicit Deny anywhere wins; a KMS key policy must allow, directly or by delegating
to the account's IAM policies; for other services an identity policy or a resource policy may allow;
session policies cap what identity policies (and resource policies naming the role) grant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

Policy = Mapping[str, Any]


class UnsupportedPolicy(ValueError):
    """The document uses something this evaluator does not model: refuse rather than guess."""


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"


@dataclass(frozen=True)
class Request:
    """One API call as IAM sees it.

    ``principal_arn`` is the IAM identity (for a role session: the role's ARN with its path, which is
    what ``aws:PrincipalArn`` holds); ``session_arn`` is the ``assumed-role`` ARN for role sessions;
    ``service`` is set instead when an AWS service principal calls. ``context`` holds further
    condition keys (``s3:x-amz-server-side-encryption``, ``kms:ViaService``, ``s3:prefix``...).
    """

    action: str
    resource: str
    principal_arn: str = ""
    session_arn: str | None = None
    service: str | None = None
    secure_transport: bool = True
    context: Mapping[str, str] = field(default_factory=dict)

    @property
    def account(self) -> str:
        parts = self.principal_arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    def keys(self) -> dict[str, str]:
        """The request context, keys lower-cased (condition key names are case-insensitive)."""
        base = {"aws:securetransport": "true" if self.secure_transport else "false"}
        if self.principal_arn:
            base["aws:principalarn"] = self.principal_arn
            base["aws:principalaccount"] = self.account
        return {**base, **{k.lower(): v for k, v in self.context.items()}}


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    why: tuple[str, ...] = ()  # the statements (policy label / Sid) that decided

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


# -- matching ----------------------------------------------------------------------------------------

_ESCAPES = {"${*}": "*", "${?}": "?", "${$}": "$"}
_TOKEN = re.compile(r"\$\{[^}]*\}|\*|\?|[^$*?]+|\$")


@lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool = False, variables: bool = True) -> re.Pattern[str]:
    out: list[str] = []
    for tok in _TOKEN.findall(pattern):
        if tok == "*":
            out.append(".*")
        elif tok == "?":
            out.append(".")
        elif variables and tok.startswith("${"):
            if tok not in _ESCAPES:
                raise UnsupportedPolicy(f"policy variable {tok} in {pattern!r}")
            out.append(re.escape(_ESCAPES[tok]))
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out), re.S | (re.I if ignore_case else 0))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | bool | int):
        return [str(value).lower() if isinstance(value, bool) else str(value)]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]


def action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(_glob(p, ignore_case=True, variables=False).fullmatch(action) for p in patterns)


def resource_matches(patterns: Iterable[str], resource: str) -> bool:
    return any(p == "*" or _glob(p).fullmatch(resource) for p in patterns)


def arn_like(pattern: str, arn: str) -> bool:
    """ARN conditions compare the six colon-separated parts, each with wildcards."""
    p_parts, a_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return False
    return all(_glob(p, variables=False).fullmatch(a) for p, a in zip(p_parts, a_parts, strict=True))


# -- conditions ----------------------------------------------------------------------------------------

_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_POSITIVE = {"Bool", "StringEquals", "StringLike", "ArnEquals", "ArnLike"}


def _compare(base: str, wanted: list[str], actual: str) -> bool:
    """True when ``actual`` matches any of ``wanted`` under the positive form of ``base``."""
    if base == "Bool":
        return actual.lower() in {w.lower() for w in wanted}
    if base in ("StringEquals", "StringNotEquals"):
        return actual in wanted
    if base in ("StringLike", "StringNotLike"):
        return any(_glob(w, variables=False).fullmatch(actual) for w in wanted)
    return any(arn_like(w, actual) for w in wanted)  # Arn* (ArnEquals also takes wildcards)


def condition_holds(condition: Mapping[str, Any] | None, keys: Mapping[str, str]) -> bool:
    """Every operator and every key must hold (AND); several values for one key are an OR."""
    for operator, clauses in (condition or {}).items():
        if ":" in operator:
            raise UnsupportedPolicy(f"set operator {operator}")
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if not isinstance(clauses, Mapping):
            raise UnsupportedPolicy(f"condition {operator} is not a key map")
        for key, values in clauses.items():
            wanted = _as_list(values)
            actual = keys.get(key.lower())
            if base == "Null" and not if_exists:
                is_null = actual is None
                if not any((w.lower() == "true") == is_null for w in wanted):
                    return False
                continue
            if base not in _NEGATED and base not in _POSITIVE:
                raise UnsupportedPolicy(f"condition operator {operator}")
            if actual is None:
                if if_exists or base in _NEGATED:
                    continue  # absent key: IfExists holds, a negated operator holds
                return False
            matched = _compare(base, wanted, actual)
            if matched == (base in _NEGATED):
                return False
    return True


# -- statements and policies ---------------------------------------------------------------------------


def _statements(policy: Policy) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def principal_match(principal: Any, req: Request) -> str | None:
    """How a statement's ``Principal`` names the caller: "direct", "session", "account" or None."""
    if principal == "*":
        return "direct"
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"principal {principal!r}")
    unknown = set(principal) - {"AWS", "Service"}
    if unknown:
        raise UnsupportedPolicy(f"principal type {sorted(unknown)}")
    if req.service and req.service in _as_list(principal.get("Service")):
        return "direct"
    for value in _as_list(principal.get("AWS")):
        if value == "*":
            return "direct"
        if req.session_arn and value == req.session_arn:
            return "session"
        if req.principal_arn and value == req.principal_arn:
            return "direct"
        if req.principal_arn and value in (req.account, f"arn:aws:iam::{req.account}:root"):
            return "account"
    return None


def statement_applies(
    st: Mapping[str, Any], req: Request, keys: Mapping[str, str], *, resource_policy: bool
) -> str | None:
    """None when the statement does not apply; else how the principal matched ("identity" if none)."""
    if st.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"effect {st.get('Effect')!r}")
    if "NotPrincipal" in st:
        raise UnsupportedPolicy("NotPrincipal")
    how = "identity"
    if resource_policy:
        if "Principal" not in st:
            raise UnsupportedPolicy("resource policy statement without Principal")
        found = principal_match(st["Principal"], req)
        if found is None:
            return None
        how = found
    elif "Principal" in st:
        raise UnsupportedPolicy("identity policy statement with a Principal")
    if "Action" in st:
        if not action_matches(_as_list(st["Action"]), req.action):
            return None
    elif "NotAction" in st:
        if action_matches(_as_list(st["NotAction"]), req.action):
            return None
    else:
        raise UnsupportedPolicy("statement without Action or NotAction")
    if "Resource" in st:
        if not resource_matches(_as_list(st["Resource"]), req.resource):
            return None
    elif "NotResource" in st:
        if resource_matches(_as_list(st["NotResource"]), req.resource):
            return None
    elif not resource_policy:  # a role trust policy names no Resource: it is about the role itself
        raise UnsupportedPolicy("identity statement without Resource or NotResource")
    if not condition_holds(st.get("Condition"), keys):
        return None
    return how


@dataclass(frozen=True)
class _Scan:
    denies: tuple[str, ...]
    allows: dict[str, tuple[str, ...]]  # principal match kind -> labels


def _scan(policy: Policy, label: str, req: Request, keys: Mapping[str, str], *, resource_policy: bool) -> _Scan:
    denies: list[str] = []
    allows: dict[str, list[str]] = {}
    for i, st in enumerate(_statements(policy)):
        how = statement_applies(st, req, keys, resource_policy=resource_policy)
        if how is None:
            continue
        name = f"{label}:{st.get('Sid', i)}"
        if st["Effect"] == "Deny":
            denies.append(name)
        else:
            allows.setdefault(how, []).append(name)
    return _Scan(tuple(denies), {k: tuple(v) for k, v in allows.items()})


def evaluate(policy: Policy, req: Request, *, resource_policy: bool = False) -> Outcome:
    """One policy on its own: explicit deny, allow, or implicit deny."""
    scan = _scan(policy, "policy", req, req.keys(), resource_policy=resource_policy)
    if scan.denies:
        return Outcome(Decision.EXPLICIT_DENY, scan.denies)
    allows = tuple(a for v in scan.allows.values() for a in v)
    return Outcome(Decision.ALLOW, allows) if allows else Outcome(Decision.IMPLICIT_DENY)


def authorize(
    req: Request,
    *,
    identity: Sequence[Policy] = (),
    session: Sequence[Policy] = (),
    resource: Policy | None = None,
    key_policy: bool = False,
    resource_account: str | None = None,
) -> Outcome:
    """Identity, session and resource (bucket or key) policies together, as AWS combines them.

    ``key_policy`` marks ``resource`` as a KMS key policy: without an allow there (direct, or to the
    account so that IAM policies count) nothing is allowed. ``resource_account`` defaults to the
    caller's account; across accounts both the identity and the resource side must allow.
    """
    keys = req.keys()
    scans = [_scan(p, f"identity{i}", req, keys, resource_policy=False) for i, p in enumerate(identity)]
    sess = [_scan(p, f"session{i}", req, keys, resource_policy=False) for i, p in enumerate(session)]
    res = _scan(resource, "resource", req, keys, resource_policy=True) if resource is not None else None
    denies = tuple(d for s in [*scans, *sess, *([res] if res else [])] for d in s.denies)
    if denies:
        return Outcome(Decision.EXPLICIT_DENY, denies)

    id_allows = tuple(a for s in scans for v in s.allows.values() for a in v)
    sess_ok = all(any(s.allows.values()) for s in sess)  # every session policy must allow
    sess_allows = tuple(a for s in sess for v in s.allows.values() for a in v)
    res_direct = (res.allows.get("direct", ()) if res else ())
    res_session = (res.allows.get("session", ()) if res else ())
    res_account = (res.allows.get("account", ()) if res else ())
    same_account = (resource_account or req.account) == req.account

    via_identity = bool(id_allows) and sess_ok
    if key_policy:
        if res is None:
            raise UnsupportedPolicy("a KMS request needs the key policy")
        if res_session:
            return Outcome(Decision.ALLOW, res_session)
        if res_direct and sess_ok and (same_account or via_identity):
            return Outcome(Decision.ALLOW, res_direct + sess_allows)
        if res_account and via_identity:
            return Outcome(Decision.ALLOW, res_account + id_allows + sess_allows)
        return Outcome(Decision.IMPLICIT_DENY)

    if not same_account:
        if via_identity and (res_direct or res_session or res_account):
            return Outcome(Decision.ALLOW, id_allows + res_direct + res_session + res_account)
        return Outcome(Decision.IMPLICIT_DENY)
    if res_session:
        return Outcome(Decision.ALLOW, res_session)
    if res_direct and sess_ok:
        return Outcome(Decision.ALLOW, res_direct + sess_allows)
    if via_identity:
        return Outcome(Decision.ALLOW, id_allows + sess_allows)
    return Outcome(Decision.IMPLICIT_DENY)
