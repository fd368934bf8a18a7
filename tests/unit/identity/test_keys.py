"""Public keys: accepted algorithms, clear refusals, fingerprints exactly as ssh-keygen prints them."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from identity_fakes import ecdsa_line, ed25519_line, rsa_line

from airlock.identity.errors import IdentityInputError
from airlock.identity.keys import KeyRejected, parse_public_key, same_key


def test_ed25519_and_ecdsa_are_accepted() -> None:
    for line in (ed25519_line("ops@acme"), ecdsa_line()):
        key = parse_public_key(line)
        assert line.startswith(key.key_type)


def test_rsa_3072_is_accepted_and_2048_refused_with_a_clear_message() -> None:
    assert parse_public_key(rsa_line(3072)).key_type == "ssh-rsa"
    with pytest.raises(KeyRejected, match="2048 bits is too weak"):
        parse_public_key(rsa_line(2048))


def test_refusals_are_input_errors_the_cli_can_print() -> None:
    dss = "ssh-dss " + base64.b64encode(b"\x00\x00\x00\x07ssh-dss" + b"\x00" * 20).decode()
    cases = {
        dss: "not accepted",
        "sk-ssh-ed25519@openssh.com AAAA": "not accepted",
        "ssh-ed25519": "expected 'TYPE BASE64",
        "ssh-ed25519 !!!notbase64": "base64",
        "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x07ssh-rsa").decode(): "says 'ssh-rsa'",
        "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\xffshort").decode(): "truncated",
    }
    for line, message in cases.items():
        with pytest.raises(IdentityInputError, match=message):
            parse_public_key(line)


def test_line_is_normalized_and_comment_kept() -> None:
    line = ed25519_line("ops@acme")
    key = parse_public_key("  " + line.replace(" ", "   ", 1) + "  \n")
    assert key.line == line
    assert same_key(line, line.rsplit(" ", 1)[0])
    assert not same_key(line, ed25519_line())
    assert not same_key(line, "garbage")


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    line = ed25519_line("fp@test")
    (tmp_path / "k.pub").write_text(line + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True)
    assert parse_public_key(line).fingerprint == out.stdout.split()[1]
