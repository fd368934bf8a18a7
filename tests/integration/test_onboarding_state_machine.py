"""The CLI on the local stack (over HTTP): onboard and offboard run the ASL locally, check finds no drift."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from airlock.cli import main
from airlock.local.stack import LocalStack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "tenancy"))

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


def test_onboard_check_offboard_through_the_cli(
    local_stack: LocalStack, ls_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = tmp_path / "ops.pub"
    key.write_text(PUBKEY + "\n")

    assert main(["tenants", "onboard", "itest", "--user", "itest-ops", "--public-key", str(key), "--json"]) == 0
    out, err = capsys.readouterr()
    tenant = json.loads(out)
    assert tenant["status"] == "ACTIVE" and "  LockKeyPolicy" in err

    assert main(["tenants", "check", "itest"]) == 0, capsys.readouterr().out
    capsys.readouterr()

    assert main(["tenants", "offboard", "itest", "--yes", "--key-deletion-days", "7"]) == 0
    capsys.readouterr()
    kms = ls_session.client("kms")
    assert kms.describe_key(KeyId=tenant["kms_key_arn"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    secret = json.loads(ls_session.client("secretsmanager").get_secret_value(
        SecretId=f"sftp/{local_stack.config.server_id}/itest-ops")["SecretString"])
    assert secret["disabled"] is True
    assert main(["tenants", "check", "itest"]) == 0
