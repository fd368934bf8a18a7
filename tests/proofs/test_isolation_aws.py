"""The isolation matrix against a real AWS account, where every policy is enforced (``pytest -m aws``).

Skipped unless ``AIRLOCK_AWS_TESTS=1`` and real credentials are in the environment (the suite
otherwise forces fake ones; export a profile's with ``aws configure export-credentials --format env``).
Runs against a deployed stack (``AIRLOCK_PREFIX``, ``AWS_REGION``; ``AIRLOCK_ACCOUNT_ID`` defaults to
the caller's account), deployed with ``IsolationProbePrincipalArn`` set to the caller's role or user:
tenant roles trust only the worker role (and Transfer Family) and the worker role trusts only
Lambda, plus that principal when the parameter is set. Test accounts only.

As the caller (an administrator) it onboards the matrix tenants through the deployed onboarding
state machine (``AIRLOCK_ISOLATION_RUNNER=local`` runs it in-process instead), with one SFTP user
each on ``AIRLOCK_SFTP_SERVER_ID``, and marks them SUSPENDED so the deployed ingest worker leaves
the probe's uploads alone. It assumes the worker role (``AIRLOCK_WORKER_ROLE_ARN``, default the
stack's ``<prefix>-ingest-worker``) and from it opens each channel of each tenant exactly as
production does (``aws_probe``); the tenant role writes SOURCE_KEY with the tenant key and makes a
ciphertext for the ``kms:Decrypt`` cells. Then every channel of every tenant: its own-tenant
positive controls (allowed exactly for ``OWN_ALLOWED``) and every ordered pair (all refused), for
S3, KMS (key policies and ``kms:ViaService`` enforced here) and Secrets Manager.

The tenants stay SUSPENDED afterwards, ready for the next run (offboarding retires a tenant id for
good, so a later run could not onboard ``iso-*`` again).
"""

from __future__ import annotations

import os

import pytest

from airlock import aws
from airlock.naming import LOCAL_SERVER_ID, Names

from .aws_probe import body_of, calls_per_tenant, prepare, run_matrix
from .matrix import PAIRS, TENANTS

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(os.environ.get("AIRLOCK_AWS_TESTS") != "1" or os.environ.get("AWS_ACCESS_KEY_ID") == "testing",
                       reason="needs a real AWS account: set AIRLOCK_AWS_TESTS=1 and real credentials"),
]

SETTLE_S = 60  # how long set-up and positive controls wait for IAM to propagate (never the refusals)


def test_the_matrix_holds_on_a_real_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    if not os.environ.get("AIRLOCK_ACCOUNT_ID"):
        monkeypatch.setenv("AIRLOCK_ACCOUNT_ID", aws.client("sts").get_caller_identity()["Account"])
    names = Names.from_env()
    world = prepare(
        names,
        server_id=os.environ.get("AIRLOCK_SFTP_SERVER_ID", LOCAL_SERVER_ID),
        worker_role_arn=os.environ.get("AIRLOCK_WORKER_ROLE_ARN") or names.worker_role_arn,
        runner=os.environ.get("AIRLOCK_ISOLATION_RUNNER", "auto"),
        settle_s=SETTLE_S,
    )
    cells = run_matrix(world, settle_s=SETTLE_S)
    assert len(cells) == (len(TENANTS) + len(PAIRS)) * calls_per_tenant()
    wrong = [str(c) for c in cells if not c.ok]
    assert not wrong, "\n".join(wrong)
    # the refused deletes and puts did nothing to anyone's SOURCE_KEY
    assert {t: world.read_source(t) for t in TENANTS} == {t: body_of(t) for t in TENANTS}
