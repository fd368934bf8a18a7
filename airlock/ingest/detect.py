"""Decide the kind of a file: forced, else the tenant's routing globs on the key, else the header."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from airlock.ingest.engine import compiled
from schemas.files import CONTRACTS
from schemas.files import rules as R
from schemas.files.base import Contract
from schemas.tenant import IngestPolicy


@dataclass(frozen=True)
class Detection:
    contract: type[Contract] | None
    how: str  # "forced", "routing", "header" or "" when none
    problem: tuple[R.Rule, dict[str, str]] | None = None


def route(source_key: str, policy: IngestPolicy) -> str | None:
    """The kind named by the first routing rule whose glob matches the key (relative to ``inbound/``)."""
    key = source_key.lstrip("/")
    relative = key[len("inbound/") :] if key.startswith("inbound/") else key
    for rule in policy.routing:
        if fnmatchcase(relative, rule.glob) or fnmatchcase(key, rule.glob):
            return rule.kind
    return None


def detect(names: list[str], *, kind: str | None, source_key: str, policy: IngestPolicy) -> Detection:
    if kind:
        contract = CONTRACTS.get(kind)
        if contract is None:
            detail = f"Kind '{kind}' is not one of: {', '.join(sorted(CONTRACTS))}."
            return Detection(None, "forced", (R.UNKNOWN_KIND, {"detail": detail}))
        return Detection(contract, "forced")
    routed = route(source_key, policy)
    if routed:
        contract = CONTRACTS.get(routed)
        if contract is None:
            detail = f"The routing rule names kind '{routed}', which is not one of: {', '.join(sorted(CONTRACTS))}."
            return Detection(None, "routing", (R.UNKNOWN_KIND, {"detail": detail}))
        return Detection(contract, "routing")
    scored = []
    for name, contract in CONTRACTS.items():
        fits, recognised = compiled(contract).score(names)
        scored.append((fits, recognised, name, contract))
    fitting = [s for s in scored if s[0]]
    if fitting:
        best = max(s[1] for s in fitting)
        top = [s for s in fitting if s[1] == best]
        if len(top) == 1:
            return Detection(top[0][3], "header")
        names_ = ", ".join(sorted(s[2] for s in top))
        return Detection(None, "header", (R.AMBIGUOUS_KIND, {"candidates": names_}))
    near = sorted(scored, key=lambda s: (-s[1], s[2]))[:3]
    parts = []
    for _fits, _rec, name, contract in near:
        missing = compiled(contract).bind(names).missing
        parts.append(f"{name} (missing {', '.join(missing) or 'its signature columns'})")
    detail = "Kinds considered: " + "; ".join(parts) + "."
    return Detection(None, "header", (R.UNKNOWN_KIND, {"detail": detail}))
