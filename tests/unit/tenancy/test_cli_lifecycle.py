"""``airlock tenants onboard|offboard|show|list`` through the state machine (locally, in-process)."""

from __future__ import annotations

import io
import json
import sys

import boto3
import pytest

from airlock.cli import main
from airlock.local.resources import create_platform_resources
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.tenancy.registry import Registry
from schemas.tenant import TenantStatus

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


@pytest.fixture
def cli_env(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> Names:
    create_platform_resources(names)
    monkeypatch.setenv("AIRLOCK_SFTP_SERVER_ID", LOCAL_SERVER_ID)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # moto in-process, not a local stack
    return names


def onboard_acme(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> int:
    key = tmp_path / "ops.pub"  # type: ignore[operator]
    key.write_text(PUBKEY + "\n")
    return main(["tenants", "onboard", "acme", "--user", "acme-ops", "--public-key", str(key), "--runner", "local",
                 "--json"])


def test_onboard_runs_the_state_machine_and_prints_progress(
    cli_env: Names, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onboard_acme(tmp_path, capsys) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "ACTIVE"
    for state in ("ValidateRequest", "CreateKey", "LockKeyPolicy", "ActivateTenant"):
        assert f"  {state}\n" in err
    assert main(["tenants", "list"]) == 0
    assert "acme" in capsys.readouterr().out


def test_onboard_with_a_password_from_stdin(
    cli_env: Names, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))
    rc = main(["tenants", "onboard", "acme", "--user", "acme-ops", "--password-stdin", "--runner", "local"])
    assert rc == 0, capsys.readouterr().err
    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=f"sftp/{LOCAL_SERVER_ID}/acme-ops")["SecretString"])
    assert secret["passwordHash"].startswith("$argon2id$")


def test_a_failed_onboarding_exits_1_with_the_cause_and_no_traceback(
    cli_env: Names, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import ClientError

    from airlock import aws

    def deny(**_kw: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "nope"}}, "CreateBucket")

    aws.client("s3").meta.events.register("before-call.s3.CreateBucket", deny)
    assert onboard_acme(tmp_path, capsys) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "AccessDenied" in err and "run the same command again" in err
    assert Registry(cli_env).get("acme").status is TenantStatus.FAILED  # type: ignore[union-attr]


def test_auto_runner_on_aws_without_the_state_machine_is_a_clear_error(
    cli_env: Names, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "ops.pub"  # type: ignore[operator]
    key.write_text(PUBKEY + "\n")
    assert main(["tenants", "onboard", "acme", "--user", "acme-ops", "--public-key", str(key)]) == 2
    assert "is not deployed" in capsys.readouterr().err


def test_offboard_asks_for_confirmation_unless_yes(
    cli_env: Names, tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert onboard_acme(tmp_path, capsys) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: no way to confirm
    assert main(["tenants", "offboard", "acme", "--runner", "local"]) == 2
    assert "not confirmed" in capsys.readouterr().err
    assert Registry(cli_env).get("acme").status is TenantStatus.ACTIVE  # type: ignore[union-attr]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty("acme\n"))
    assert main(["tenants", "offboard", "acme", "--runner", "local", "--key-deletion-days", "7"]) == 0
    assert "acme offboarded" in capsys.readouterr().out
    assert main(["tenants", "offboard", "acme", "--yes", "--runner", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tenant_id"] == "acme"
    assert Registry(cli_env).get("acme").status is TenantStatus.OFFBOARDED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tenants", "offboard", "ghost", "--yes"], "no tenant 'ghost'"),
        (["tenants", "onboard", "Bad Id"], "tenant_id"),
    ],
)
def test_user_mistakes_are_one_line_errors(
    cli_env: Names, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_offboard_refuses_an_out_of_range_deletion_window(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["tenants", "offboard", "acme", "--key-deletion-days", "3"])
    assert exit_.value.code == 2
    assert "7 to 30 days" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["onboard", "offboard", "check", "show", "list"])
def test_help_has_examples(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["tenants", action, "--help"])
    assert "example" in capsys.readouterr().out
