"""The generated tenant policies pass parliament (and our trust check); the lint notices mistakes."""

from __future__ import annotations

import pytest

from airlock.tenancy.policy_lint import ACCEPTED, lint, lint_all, sample_policies

ASSUME = {"Effect": "Allow", "Action": "sts:AssumeRole"}


def test_every_generated_policy_is_clean() -> None:
    assert not [str(f) for f in lint_all()]


def test_every_generator_is_covered() -> None:
    kinds = {kind for kind, _ in sample_policies().values()}
    assert kinds == {"identity", "resource", "trust"}
    assert {name for name, _ in ACCEPTED} <= set(sample_policies())


@pytest.mark.parametrize(
    ("statement", "issue"),
    [
        ({"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "arn:aws:s3:::b/*"}, "UNKNOWN_ACTION"),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "RESOURCE_STAR"),
        (
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"s3:no-such-key": "x"}},
            },
            "UNKNOWN_CONDITION_FOR_ACTION",
        ),
    ],
)
def test_a_broken_identity_statement_is_caught(statement: dict[str, object], issue: str) -> None:
    doc = {"Version": "2012-10-17", "Statement": [statement]}
    assert issue in {f.issue for f in lint("tenant_role_permissions", "identity", doc)}


def test_a_wildcard_or_unconditioned_trust_is_caught() -> None:
    wildcard = {"Version": "2012-10-17", "Statement": [{**ASSUME, "Principal": "*"}]}
    service = {"Version": "2012-10-17", "Statement": [{**ASSUME, "Principal": {"Service": "transfer.amazonaws.com"}}]}
    assert {f.issue for f in lint("t", "trust", wildcard)} == {"WILDCARD_PRINCIPAL"}
    assert {f.issue for f in lint("t", "trust", service)} == {"CONFUSED_DEPUTY"}
