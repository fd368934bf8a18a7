"""The isolation matrix against a real AWS account, where every policy is enforced (``pytest -m aws``).

Skipped unless ``AIRLOCK_AWS_TESTS=1`` and real credentials are configured (the suite otherwise
forces fake ones). Onboards the three matrix tenants in the account named by ``AIRLOCK_ACCOUNT_ID``
(run against a deployed stack: ``AIRLOCK_WORKER_ROLE_ARN`` must be the deployed worker role and the
caller must be allowed to assume it), then, as the worker, checks each channel of A against B for
S3, KMS (key policies enforced here) and Secrets Manager. Offboard the ``iso-*`` tenants afterwards.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airlock.naming import Names
from airlock.onboarding.steps import onboard
from airlock.tenancy.session import file_session, s3_client
from schemas.onboarding import OnboardRequest
from schemas.tenant import Tenant

from .matrix import PAIRS, SOURCE_KEY, TENANTS, put_key

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(os.environ.get("AIRLOCK_AWS_TESTS") != "1" or os.environ.get("AWS_ACCESS_KEY_ID") == "testing",
                       reason="needs a real AWS account: set AIRLOCK_AWS_TESTS=1 and real credentials"),
]


def refused(fn: Any) -> bool:
    try:
        fn()
    except ClientError as err:
        return err.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "403", "Forbidden")
    return False


def attempts(session: Any, names: Names, server: str, victim: Tenant) -> dict[str, Any]:
    s3, kms, sm = s3_client(session), session.client("kms"), session.client("secretsmanager")
    return {
        "s3:GetObject": lambda: s3.get_object(Bucket=victim.bucket, Key=SOURCE_KEY),
        "s3:PutObject": lambda: s3.put_object(Bucket=victim.bucket, Key=put_key("worker"), Body=b"x",
                                              ServerSideEncryption="aws:kms", SSEKMSKeyId=victim.kms_key_arn),
        "s3:ListBucket": lambda: s3.list_objects_v2(Bucket=victim.bucket),
        "s3:DeleteObject": lambda: s3.delete_object(Bucket=victim.bucket, Key=SOURCE_KEY),
        "kms:GenerateDataKey": lambda: kms.generate_data_key(KeyId=victim.kms_key_arn, KeySpec="AES_256"),
        "secretsmanager:GetSecretValue": lambda: sm.get_secret_value(
            SecretId=names.sftp_secret_name(server, f"{victim.tenant_id}-ops")),
    }


def test_the_matrix_holds_on_a_real_account() -> None:
    names = Names.from_env()
    server = os.environ.get("AIRLOCK_SFTP_SERVER_ID", "s-00000000000000000")
    tenants = {t: onboard(OnboardRequest(tenant_id=t), server_id=server, names=names) for t in TENANTS}
    failures = []
    for a, b in PAIRS:
        session = file_session(tenants[a], source_key=SOURCE_KEY, file_id="f0123456789abcdef0123456")
        for action, fn in attempts(session, names, server, tenants[b]).items():
            if not refused(fn):
                failures.append((a, b, action))
    assert failures == []
