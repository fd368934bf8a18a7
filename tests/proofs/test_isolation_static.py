"""Isolation on paper: the policy documents, evaluated for every ordered pair of tenants and every action.

moto does not enforce KMS key policies, bucket-policy conditions or session policies, so this is
where they are proved: each channel of tenant A (role session, SFTP session, worker for A's file)
against each resource of tenant B, under every request context an attacker could pick, with the
channel's legitimate requests in its own tenant as positive controls. The documents are also linted
with parliament. ``test_the_documents_onboarding_installs_hold_the_same_matrix`` repeats the matrix
on the documents onboarding actually puts on buckets, keys and roles (moto in-process).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from parliament import analyze_policy_string

from airlock.identity.policy import scope_down_policy
from airlock.local.resources import create_platform_resources, create_worker_role
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding.steps import onboard
from airlock.tenancy import policies
from airlock.tenancy.policy_eval import Request, authorize
from schemas.onboarding import OnboardRequest

from .matrix import (
    ACTIONS,
    CHANNELS,
    OWN_ALLOWED,
    PAIRS,
    SOURCE_KEY,
    TENANTS,
    TenantDocs,
    contexts,
    decide_cell,
    own_context,
    request,
    resource_policy,
    target,
)

NAMES = Names()
DOCS = {t: TenantDocs.build(t, NAMES) for t in TENANTS}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_no_channel_of_a_tenant_reaches_another_tenants_resource(a: str, b: str, channel: str, action: str) -> None:
    actor, victim = DOCS[a], DOCS[b]
    for ctx in contexts(action, actor, victim, channel):
        assert not decide_cell(actor, victim, channel, action, ctx), (channel, action, ctx)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("tenant", TENANTS)
def test_each_channel_can_do_its_own_job_in_its_own_tenant(tenant: str, channel: str, action: str) -> None:
    """Positive controls: without them a matrix of denials could be an evaluator that denies everything."""
    me = DOCS[tenant]
    allowed = decide_cell(me, me, channel, action, own_context(action, me, channel))
    assert allowed is (action in OWN_ALLOWED[channel])


@pytest.mark.parametrize("action", ACTIONS)
def test_the_worker_role_itself_reaches_no_tenant_data(action: str) -> None:
    worker = Request(action=action, resource="", principal_arn=NAMES.worker_role_arn,
                     session_arn=f"arn:aws:sts::{NAMES.account_id}:assumed-role/{NAMES.worker_role_name}/ingest")
    for victim in DOCS.values():
        res, is_key = resource_policy(action, victim)
        for ctx in contexts(action, victim, victim, "worker"):
            req = Request(**{**worker.__dict__, "resource": target(action, victim, "role"), "context": ctx})
            out = authorize(req, identity=[policies.worker_role_permissions(NAMES)], resource=res, key_policy=is_key)
            assert not out.allowed, (victim.tenant_id, ctx)


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_a_tenant_session_cannot_assume_another_tenants_role(a: str, b: str) -> None:
    actor, victim = DOCS[a], DOCS[b]
    trust = policies.tenant_role_trust(NAMES, NAMES.worker_role_arn)
    req = request(actor, "sts:AssumeRole", victim.role_arn, {})
    assert not authorize(req, identity=[actor.identity()], resource=trust).allowed
    worker = Request(action="sts:AssumeRole", resource=victim.role_arn, principal_arn=NAMES.worker_role_arn)
    assert authorize(worker, identity=[policies.worker_role_permissions(NAMES)], resource=trust).allowed  # control


def test_the_bucket_policy_refuses_plain_http_and_wrong_keys_even_to_the_tenant() -> None:
    me, other = DOCS["iso-a"], DOCS["iso-b"]
    obj = f"arn:aws:s3:::{me.bucket}/inbound/x.csv"
    good = {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": me.key_arn}

    def put(ctx: dict[str, str], *, tls: bool = True) -> bool:
        req = Request(action="s3:PutObject", resource=obj, principal_arn=me.role_arn, session_arn=me.session_arn,
                      secure_transport=tls, context=ctx)
        return authorize(req, identity=[me.identity()], resource=me.bucket_policy()).allowed

    assert put(good)
    assert not put(good, tls=False)
    assert not put({**good, "s3:x-amz-server-side-encryption": "AES256"})
    assert not put({**good, "s3:x-amz-server-side-encryption-aws-kms-key-id": other.key_arn})


def test_key_administrators_cannot_use_a_tenant_key_for_data() -> None:
    me = DOCS["iso-a"]
    admin = f"arn:aws:iam::{NAMES.account_id}:role/platform-admin"
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom"):
        for principal in (admin, f"arn:aws:iam::{NAMES.account_id}:root"):
            req = Request(action=action, resource=me.key_arn, principal_arn=principal)
            allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            out = authorize(req, identity=[allow_all], resource=me.key_policy(admin), key_policy=True)
            assert not out.allowed, (action, principal)


# Regression test, fixed in 6bdfe89; it was a bug (airlock/tenancy/policies.py tenant_bucket_policy):
# DenyWrongEncryption/DenyWrongKey use StringNotEqualsIfExists, which holds when the SSE header is absent; S3
# applies bucket policies before default encryption, so every PutObject that relies on the bucket default (all
# Transfer Family SFTP uploads, the local SFTP server's upload_fileobj, mkdir markers) is denied on a real account
def test_an_sftp_upload_relying_on_default_encryption_is_allowed() -> None:
    me = DOCS["iso-a"]
    req = Request(action="s3:PutObject", resource=f"arn:aws:s3:::{me.bucket}/inbound/x.csv",
                  principal_arn=me.role_arn, session_arn=me.session_arn, context={})
    out = authorize(req, identity=[me.identity()], session=me.session_policies("sftp"), resource=me.bucket_policy())
    assert out.allowed, out.why


# Regression test, fixed in 6bdfe89; it was a bug (airlock/tenancy/policies.py worker_session_policy): the source
# key is pasted into the Resource unescaped, so an upload named inbound/* (legal in S3 and SFTP) scopes the worker's
# session to every inbound object of the tenant; IAM wildcards and ${...} variables in keys must be escaped as ${*}
# ${?} ${$}
def test_the_worker_scope_down_for_a_file_names_only_that_file() -> None:
    me = DOCS["iso-a"]
    policy = policies.worker_session_policy(me.bucket, "inbound/*", "f1", me.key_arn)
    req = Request(action="s3:DeleteObject", resource=f"arn:aws:s3:::{me.bucket}/{SOURCE_KEY}",
                  principal_arn=me.role_arn, session_arn=me.session_arn)
    assert not authorize(req, identity=[me.identity()], session=[policy]).allowed


# -- parliament ------------------------------------------------------------------------------------

# Findings we accept, with the reason; anything else parliament reports fails the test.
ACCEPTED_FINDINGS: dict[str, dict[str, str]] = {
    "bucket policy": {"MISMATCHED_TYPE_BUT_USABLE": "S3 compares the SSE key-id header as a string; ARN is its value"},
    "key policy": {
        "RESOURCE_STAR": "in a key policy Resource * means this key",
        "PERMISSIONS_MANAGEMENT_ACTIONS": "the account administers the key (never uses it: see the key-admin test)",
    },
    "worker role": {"CREDENTIALS_EXPOSURE": "sts:AssumeRole on tenant roles is the worker's whole job"},
    "tenant role trust": {"MALFORMED": "parliament reads trust policies as identity policies (no Resource)"},
}


def _documents() -> dict[str, dict[str, Any]]:
    me = DOCS["iso-a"]
    return {
        "tenant role": me.identity(),
        "bucket policy": me.bucket_policy(),
        "key policy": me.key_policy(),
        "sftp scope-down": scope_down_policy(me.bucket, region=NAMES.region, kms_key_arn=me.key_arn),
        "worker scope-down": policies.worker_session_policy(me.bucket, SOURCE_KEY, "f1", me.key_arn),
        "worker role": policies.worker_role_permissions(NAMES),
        "tenant role trust": policies.tenant_role_trust(NAMES, NAMES.worker_role_arn),
    }


def lint(document: dict[str, Any]) -> set[str]:
    policy = analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return {f.issue for f in policy.findings}


@pytest.mark.parametrize("name", list(_documents()))
def test_parliament_finds_nothing_unexplained(name: str) -> None:
    unexplained = lint(_documents()[name]) - set(ACCEPTED_FINDINGS.get(name, {}))
    assert not unexplained, unexplained


def test_parliament_is_live() -> None:
    """The linter must flag a broken document, or the test above proves nothing."""
    broken = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"}]}
    assert "UNKNOWN_ACTION" in lint(broken)


# -- the installed documents -------------------------------------------------------------------------


def test_the_documents_onboarding_installs_hold_the_same_matrix(
    moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_platform_resources(names)
    monkeypatch.setenv("AIRLOCK_WORKER_ROLE_ARN", create_worker_role(names))
    installed: dict[str, dict[str, Any]] = {}
    docs: dict[str, TenantDocs] = {}
    s3, kms, iam = boto3.client("s3"), boto3.client("kms"), boto3.client("iam")
    for t in TENANTS:
        tenant = onboard(OnboardRequest(tenant_id=t), server_id=LOCAL_SERVER_ID, names=names)
        assert tenant.kms_key_arn
        docs[t] = TenantDocs.build(t, names, tenant.kms_key_arn)
        role_policies = iam.list_role_policies(RoleName=names.tenant_role_name(t))["PolicyNames"]
        installed[t] = {
            "bucket": json.loads(s3.get_bucket_policy(Bucket=tenant.bucket)["Policy"]),
            "key": json.loads(kms.get_key_policy(KeyId=tenant.kms_key_arn, PolicyName="default")["Policy"]),
            "identity": {
                "Version": "2012-10-17",
                "Statement": [
                    s
                    for p in role_policies
                    for s in iam.get_role_policy(RoleName=names.tenant_role_name(t), PolicyName=p)["PolicyDocument"][
                        "Statement"
                    ]
                ],
            },
        }
    violations, cells = [], 0
    for a, b in [*PAIRS, *((t, t) for t in TENANTS)]:
        for channel in CHANNELS:
            for action in ACTIONS:
                own = a == b
                ctxs = [own_context(action, docs[a], channel)] if own else contexts(action, docs[a], docs[b], channel)
                for ctx in ctxs:
                    cells += 1
                    allowed = decide_cell(docs[a], docs[b], channel, action, ctx, identity=installed[a]["identity"],
                                          bucket_policy=installed[b]["bucket"], key_policy=installed[b]["key"])
                    if allowed is not (own and action in OWN_ALLOWED[channel]):
                        violations.append((a, b, channel, action, ctx, allowed))
    assert not violations
    assert cells == 6 * 3 * (1 + 3 + 3 + 1 + 2 + 2 + 1) + 3 * 3 * 7  # contexts per action, plus controls
