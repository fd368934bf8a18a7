"""``airlock users``: one command per job, clear one-line errors, passwords never on the command line."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from identity_fakes import ed25519_line, rsa_line

from airlock import target
from airlock.identity import cli
from airlock.identity.store import SecretsManagerStore
from airlock.local.resources import create_platform_resources
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.tenancy.registry import Registry
from schemas.tenant import Tenant, TenantStatus


def run(*argv: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airlock")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["users", *argv])
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return int(args.func(args))


@pytest.fixture
def acme(moto_aws: None, names: Names, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    monkeypatch.setattr(target, "resolve", lambda: target.Target("moto", LOCAL_SERVER_ID, local=True))
    create_platform_resources(names)
    return Registry(names).put(
        Tenant(
            tenant_id="acme",
            status=TenantStatus.ACTIVE,
            bucket=names.tenant_bucket("acme"),
            role_arn=names.tenant_role_arn("acme"),
        )
    )


@pytest.fixture
def pub(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(ed25519_line("ops@acme") + "\n")
    return path


def test_add_with_key_and_list(acme: Tenant, pub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("add", "acme", "acme-ops", "--public-key", str(pub), "--allow-cidr", "203.0.113.0/24") == 0
    assert ":secret:sftp/" in capsys.readouterr().out
    registry = Registry(Names())
    tenant = registry.get("acme")
    assert tenant is not None and tenant.sftp_users == ["acme-ops"]
    assert run("list", "acme", "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["username"] == "acme-ops" and listed["allowed_cidrs"] == ["203.0.113.0/24"]
    assert listed["keys"][0].startswith("SHA256:") and listed["has_password"] is False


def test_generated_password_is_printed_once_and_works(
    acme: Tenant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("add", "acme", "acme-bot", "--generate-password") == 0
    captured = capsys.readouterr()
    password = captured.out.splitlines()[0]
    assert len(password) >= 20 and "shown once" in captured.err and "loopback only" in captured.err
    from airlock.identity.passwords import verify_password

    user = SecretsManagerStore().get_user(LOCAL_SERVER_ID, "acme-bot")
    assert user is not None and user.password_hash and verify_password(password, user.password_hash).ok


def test_rotate_password_from_stdin_keeps_keys(
    acme: Tenant, pub: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("add", "acme", "acme-ops", "--public-key", str(pub)) == 0
    before = SecretsManagerStore().get_user(LOCAL_SERVER_ID, "acme-ops")
    code = run(
        "rotate", "acme", "acme-ops", "--password-stdin", stdin="a brand new passphrase\n", monkeypatch=monkeypatch
    )
    assert code == 0
    after = SecretsManagerStore().get_user(LOCAL_SERVER_ID, "acme-ops")
    assert before and after and after.public_keys == before.public_keys and after.password_hash
    assert "a brand new passphrase" not in capsys.readouterr().out


def test_disable_and_enable(acme: Tenant, pub: Path) -> None:
    run("add", "acme", "acme-ops", "--public-key", str(pub))
    assert run("disable", "acme", "acme-ops") == 0
    user = SecretsManagerStore().get_user(LOCAL_SERVER_ID, "acme-ops")
    assert user is not None and user.disabled
    assert run("disable", "acme", "acme-ops", "--enable") == 0
    user = SecretsManagerStore().get_user(LOCAL_SERVER_ID, "acme-ops")
    assert user is not None and not user.disabled


def test_user_mistakes_are_one_line_errors(
    acme: Tenant, pub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    weak = tmp_path / "weak.pub"
    weak.write_text(rsa_line(2048))
    private = tmp_path / "id"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxxx\n-----END OPENSSH PRIVATE KEY-----\n")
    cases = [
        (["add", "ghost", "u-1", "--public-key", str(pub)], "no tenant 'ghost'"),
        (["add", "acme", "acme-ops"], "needs --public-key"),
        (["add", "acme", "acme-ops", "--public-key", str(weak)], "too weak"),
        (["add", "acme", "acme-ops", "--public-key", str(tmp_path / "missing.pub")], "cannot read public key"),
        (["add", "acme", "acme-ops", "--public-key", str(private)], "private key"),
        (["add", "acme", "a/b", "--public-key", str(pub)], "username"),
        (["add", "acme", "acme-ops", "--public-key", str(pub), "--allow-cidr", "300.1.1.1"], "not an IP"),
        (["add", "acme", "acme-ops", "--public-key", str(pub), "--key-expires", "2001-01-01"], "in the past"),
        (["rotate", "acme", "nobody", "--public-key", str(pub)], "no SFTP user 'nobody'"),
        (["rotate", "acme", "nobody"], "nothing to rotate"),
        (["disable", "acme", "nobody"], "no SFTP user"),
    ]
    for argv, message in cases:
        assert run(*argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, (argv, err)
    assert run("add", "acme", "acme-ops", "--public-key", str(pub)) == 0
    assert run("add", "acme", "acme-ops", "--public-key", str(pub)) == 2
    assert "use 'airlock users rotate'" in capsys.readouterr().err
    assert run("add", "acme", "x-y-z", "--password-stdin", stdin="\n", monkeypatch=monkeypatch) == 2
    assert "empty line" in capsys.readouterr().err


def test_other_tenants_users_are_out_of_reach(acme: Tenant, pub: Path, names: Names) -> None:
    Registry(names).put(
        Tenant(tenant_id="globex", status=TenantStatus.ACTIVE, bucket=names.tenant_bucket("globex"),
               role_arn=names.tenant_role_arn("globex"))
    )  # fmt: skip
    run("add", "acme", "acme-ops", "--public-key", str(pub))
    assert run("disable", "globex", "acme-ops") == 2
    assert run("rotate", "globex", "acme-ops", "--public-key", str(pub)) == 2
