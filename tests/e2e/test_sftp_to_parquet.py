"""End to end with the stock OpenSSH client: key login, upload, validated Parquet in the tenant's bucket."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from airlock.local.demo import DemoError, known_hosts, make_key, sftp, wait_for
from airlock.local.stack import LocalStack
from airlock.onboarding.steps import onboard
from airlock.worker.ledger import Ledger
from schemas.onboarding import OnboardRequest, SftpUserSpec

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def counterparty(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("counterparty")
    key = make_key(home)
    user = SftpUserSpec(username="e2e-ops", public_keys=(key.with_suffix(".pub").read_text().strip(),))
    tenant = onboard(OnboardRequest(tenant_id="e2e", users=(user,)), server_id=local_stack.config.server_id,
                     names=local_stack.names)
    kh = known_hosts(home, local_stack.sftp_port, local_stack.state()["host_key_fingerprint"])
    return {"key": key, "kh": kh, "tenant": tenant, "port": local_stack.sftp_port}


def test_upload_over_sftp_becomes_parquet_and_a_report_the_sender_can_read(
    local_stack: LocalStack, ls_session: Any, counterparty: dict[str, Any], samples: Path, tmp_path: Path
) -> None:
    src = samples / "strata" / "quotes-1.csv"
    sftp(f'put "{src}" /inbound/quotes-1.csv\n', key=counterparty["key"], port=counterparty["port"],
         kh=counterparty["kh"], user="e2e-ops")

    records = wait_for(Ledger(local_stack.names), "e2e", 1, timeout_s=30)
    assert [(r.key, r.verdict) for r in records] == [("inbound/quotes-1.csv", "accepted")]
    record = records[0]

    tenant = counterparty["tenant"]
    s3 = ls_session.client("s3")
    parquet_keys = [k for k in record.output_keys if k.endswith(".parquet")]
    assert parquet_keys and all(k.startswith("processed/quotes/valuation_date=") for k in parquet_keys)
    rows = 0
    for key in parquet_keys:
        obj = s3.get_object(Bucket=tenant.bucket, Key=key)
        assert obj["ServerSideEncryption"] == "aws:kms"
        assert obj["SSEKMSKeyId"] == tenant.kms_key_arn
        table = pq.read_table(io.BytesIO(obj["Body"].read()))
        assert {"tenant_id", "file_id", "source_key", "source_line"} <= set(table.column_names)
        assert set(table.column("tenant_id").to_pylist()) == {"e2e"}
        rows += table.num_rows
    assert rows == record.rows_accepted > 0

    manifest = json.loads(s3.get_object(Bucket=tenant.bucket, Key=record.report_key)["Body"].read())
    assert manifest["verdict"] == "accepted"
    assert manifest["tenant_id"] == "e2e"
    # the original left inbound/ only after the outputs were durable, and sits in archive/
    listing = s3.list_objects_v2(Bucket=tenant.bucket, Prefix="inbound/").get("KeyCount", 0)
    assert listing == 0
    assert s3.list_objects_v2(Bucket=tenant.bucket, Prefix="archive/")["KeyCount"] == 1

    got = tmp_path / "got.csv"
    sftp(f'get /outbound/reports/quotes-1.csv.report.csv "{got}"\n', key=counterparty["key"],
         port=counterparty["port"], kh=counterparty["kh"], user="e2e-ops")
    assert "accepted" in got.read_text()


def test_the_sender_cannot_write_into_outbound(counterparty: dict[str, Any], samples: Path) -> None:
    with pytest.raises(DemoError, match="sftp failed"):
        sftp(f'put "{samples / "strata" / "quotes-1.csv"}" /outbound/x.csv\n', key=counterparty["key"],
             port=counterparty["port"], kh=counterparty["kh"], user="e2e-ops")


def test_an_unknown_key_cannot_log_in(local_stack: LocalStack, counterparty: dict[str, Any], tmp_path: Path) -> None:
    stranger = make_key(tmp_path)
    with pytest.raises(DemoError, match="sftp failed"):
        sftp("ls /inbound\n", key=stranger, port=counterparty["port"], kh=counterparty["kh"], user="e2e-ops")
