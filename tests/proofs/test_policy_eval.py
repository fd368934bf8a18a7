"""Known answers for the static IAM evaluator, so the isolation matrix built on it cannot be vacuous.

Each case is a rule from AWS's documented policy evaluation logic; the last test holds the evaluator
and the local SFTP server's own session-policy check to the same answers on the real scope-down.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.identity.policy import scope_down_policy
from airlock.local.sftp import SessionPolicy
from airlock.tenancy.policy_eval import Decision, Request, UnsupportedPolicy, authorize, condition_holds, evaluate

ACCT = "123456789012"
ROLE = f"arn:aws:iam::{ACCT}:role/path/app"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/app/s1"
OTHER = f"arn:aws:iam::{ACCT}:role/path/other"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/k1"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def req(action: str = "s3:GetObject", resource: str = "arn:aws:s3:::b/k", principal: str = ROLE, **kw: Any) -> Request:
    return Request(action=action, resource=resource, principal_arn=principal, session_arn=SESSION, **kw)


def test_allow_and_implicit_deny() -> None:
    assert evaluate(doc(allow("s3:GetObject")), req()).decision is Decision.ALLOW
    assert evaluate(doc(allow("s3:PutObject")), req()).decision is Decision.IMPLICIT_DENY
    assert evaluate(doc(), req()).decision is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_across_policies() -> None:
    bucket = doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"})
    out = authorize(req(), identity=[doc(allow("s3:*"))], resource=bucket)
    assert out.decision is Decision.EXPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards() -> None:
    policy = doc(allow("S3:Get*"))
    assert evaluate(policy, req("s3:GetObjectVersion")).allowed
    assert not evaluate(policy, req("s3:PutObject")).allowed
    assert evaluate(doc(allow("s3:?etObject")), req("s3:GetObject")).allowed


def test_resources_match_case_sensitively_and_star_spans_slashes() -> None:
    policy = doc(allow("s3:GetObject", "arn:aws:s3:::b/inbound/*"))
    assert evaluate(policy, req(resource="arn:aws:s3:::b/inbound/a/b/c.csv")).allowed
    assert not evaluate(policy, req(resource="arn:aws:s3:::b/Inbound/x")).allowed
    assert not evaluate(policy, req(resource="arn:aws:s3:::bb/inbound/x")).allowed


def test_escaped_wildcards_are_literals_and_unknown_variables_are_refused() -> None:
    policy = doc(allow("s3:GetObject", "arn:aws:s3:::b/inbound/${*}"))
    assert evaluate(policy, req(resource="arn:aws:s3:::b/inbound/*")).allowed
    assert not evaluate(policy, req(resource="arn:aws:s3:::b/inbound/x")).allowed
    with pytest.raises(UnsupportedPolicy):
        evaluate(doc(allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*")), req())


def test_not_action_and_not_resource() -> None:
    assert evaluate(doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), req()).allowed
    assert not evaluate(doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}), req()).allowed
    policy = doc(allow("s3:*"), {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/*"})
    assert evaluate(policy, req()).allowed
    assert evaluate(policy, req(resource="arn:aws:s3:::c/k")).decision is Decision.EXPLICIT_DENY


def test_unknown_elements_are_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(doc(allow("s3:*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}})), req())
    with pytest.raises(UnsupportedPolicy):
        evaluate(doc(allow("s3:*", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}})), req())
    with pytest.raises(UnsupportedPolicy):
        evaluate(doc({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "*", "Resource": "*"}), req(),
                 resource_policy=True)


@pytest.mark.parametrize(
    ("condition", "keys", "holds"),
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": "false"}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": "true"}, False),
        ({"Bool": {"aws:SecureTransport": False}}, {"aws:securetransport": "false"}, True),
        ({"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, {}, False),
        ({"StringEquals": {"kms:ViaService": ["a", "b"]}}, {"kms:viaservice": "b"}, True),
        ({"StringEquals": {"k": "AbC"}}, {"k": "abc"}, False),  # string values are case-sensitive
        ({"StringNotEquals": {"k": "v"}}, {}, True),  # negated operator, key absent: holds
        ({"StringNotEquals": {"k": ["v", "w"]}}, {"k": "w"}, False),
        # IfExists: absent key holds (AWS: "evaluate the condition element as true")
        ({"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}, {}, True),
        ({"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
         {"s3:x-amz-server-side-encryption": "aws:kms"}, False),
        ({"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
         {"s3:x-amz-server-side-encryption": "AES256"}, True),
        ({"StringEqualsIfExists": {"k": "v"}}, {}, True),
        ({"StringLike": {"s3:prefix": ["inbound/", "inbound/*"]}}, {"s3:prefix": "inbound/a"}, True),
        ({"StringLike": {"s3:prefix": ["inbound/", "inbound/*"]}}, {"s3:prefix": ""}, False),
        ({"ArnNotLike": {"aws:PrincipalArn": [ROLE, OTHER]}}, {"aws:principalarn": ROLE}, False),
        ({"ArnNotLike": {"aws:PrincipalArn": [ROLE]}}, {"aws:principalarn": OTHER}, True),
        ({"ArnNotLike": {"aws:PrincipalArn": [f"arn:aws:iam::{ACCT}:role/path/*"]}},
         {"aws:principalarn": OTHER}, False),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/r"}},
         {"aws:sourcearn": "arn:aws:events:us-east-1:123456789012:rule/r"}, True),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/r"}},
         {"aws:sourcearn": "arn:aws:events:us-east-1:999999999999:rule/r"}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:*"}}, {"aws:sourcearn": "not-an-arn"}, False),
        ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, True),
        ({"Null": {"s3:x-amz-server-side-encryption": "false"}}, {}, False),
        ({"Bool": {"a": "true"}, "StringEquals": {"b": "x"}}, {"a": "true", "b": "y"}, False),  # AND
    ],
)
def test_condition_operators(condition: dict[str, Any], keys: dict[str, str], holds: bool) -> None:
    assert condition_holds(condition, keys) is holds


def test_condition_key_names_are_case_insensitive() -> None:
    policy = doc(deny("s3:*", Condition={"Bool": {"AWS:SecureTransport": "false"}}), allow("s3:*"))
    assert evaluate(policy, req(secure_transport=False)).decision is Decision.EXPLICIT_DENY
    assert evaluate(policy, req(secure_transport=True)).allowed


def test_kms_needs_the_key_policy_directly_or_by_delegation() -> None:
    ident = [doc(allow("kms:Decrypt", KEY))]
    names_other = doc({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:*", "Resource": "*"})
    names_root = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*",
                      "Resource": "*"})
    names_me = doc({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"})
    r = req("kms:Decrypt", KEY)
    assert not authorize(r, identity=ident, resource=names_other, key_policy=True).allowed
    assert authorize(r, identity=ident, resource=names_root, key_policy=True).allowed
    assert not authorize(r, identity=[], resource=names_root, key_policy=True).allowed
    assert authorize(r, identity=[], resource=names_me, key_policy=True).allowed
    with pytest.raises(UnsupportedPolicy):
        authorize(r, identity=ident, key_policy=True)


def test_same_account_s3_either_side_may_allow() -> None:
    bucket_me = doc({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": "*"})
    bucket_root = doc({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "s3:GetObject", "Resource": "*"})
    assert authorize(req(), identity=[], resource=bucket_me).allowed
    assert authorize(req(), identity=[doc(allow("s3:GetObject"))]).allowed
    assert not authorize(req(), identity=[], resource=bucket_root).allowed  # the account delegates to IAM


def test_session_policies_cap_identity_and_role_named_resource_grants() -> None:
    ident = [doc(allow("s3:*"))]
    narrow = [doc(allow("s3:GetObject", "arn:aws:s3:::b/inbound/*"))]
    assert not authorize(req(), identity=ident, session=narrow).allowed
    assert authorize(req(resource="arn:aws:s3:::b/inbound/x"), identity=ident, session=narrow).allowed
    assert not authorize(req(resource="arn:aws:s3:::b/inbound/x"), identity=[], session=narrow).allowed
    to_role = doc({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:*", "Resource": "*"})
    to_session = doc({"Effect": "Allow", "Principal": {"AWS": SESSION}, "Action": "s3:*", "Resource": "*"})
    assert not authorize(req(), session=narrow, resource=to_role).allowed
    assert authorize(req(), session=narrow, resource=to_session).allowed


def test_cross_account_needs_both_sides() -> None:
    stranger = "arn:aws:iam::999999999999:role/x"
    bucket = doc({"Effect": "Allow", "Principal": {"AWS": stranger}, "Action": "s3:GetObject", "Resource": "*"})
    r = req(principal=stranger)
    assert not authorize(r, identity=[], resource=bucket, resource_account=ACCT).allowed
    assert authorize(r, identity=[doc(allow("s3:GetObject"))], resource=bucket, resource_account=ACCT).allowed
    assert not authorize(r, identity=[doc(allow("s3:GetObject"))], resource_account=ACCT).allowed


def test_service_principals_match_services_only() -> None:
    trust = doc({"Effect": "Allow", "Principal": {"Service": "transfer.amazonaws.com"}, "Action": "sts:AssumeRole",
                 "Resource": "*"})
    as_service = Request(action="sts:AssumeRole", resource=ROLE, service="transfer.amazonaws.com")
    assert evaluate(trust, as_service, resource_policy=True).allowed
    assert not evaluate(trust, req("sts:AssumeRole", ROLE), resource_policy=True).allowed


BUCKET = "airlock-t-acme-123456789012-us-east-1"
_segments = st.sampled_from(["inbound", "outbound", "processed", "reports", "archive", "x", "inbound-2", ""])


@settings(max_examples=300, deadline=None)
@given(
    action=st.sampled_from(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion",
                            "s3:DeleteObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"]),
    path=st.lists(_segments, min_size=0, max_size=3),
    bucket=st.sampled_from([BUCKET, "airlock-t-other-123456789012-us-east-1"]),
)
def test_the_local_sftp_bridge_and_the_evaluator_agree_on_the_scope_down(action: str, path: list[str],
                                                                         bucket: str) -> None:
    """The local SFTP server enforces the scope-down itself; it must give the same answers as AWS would."""
    policy = scope_down_policy(BUCKET, region="us-east-1", kms_key_arn=KEY)
    key = "/".join(path)
    if action in ("s3:ListBucket", "s3:GetBucketLocation"):
        resource, ctx = f"arn:aws:s3:::{bucket}", {"s3:prefix": key}
    else:
        resource, ctx = f"arn:aws:s3:::{bucket}/{key}", {}
    ours = evaluate(policy, req(action, resource, context=ctx)).allowed
    assert SessionPolicy(policy).allows(action, resource, ctx) is ours
