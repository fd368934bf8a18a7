"""Importing a migrated server's host key: the fingerprint ssh-keygen prints, imported once."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from airlock.identity.errors import IdentityInputError
from airlock.identity.host_keys import import_host_key, public_fingerprint
from airlock.local.context import LocalLambdaContext

SERVER = "s-0123456789abcdef0"


@pytest.fixture
def host_key(tmp_path: Path) -> tuple[str, str]:
    """An OpenSSH server's host key and the fingerprint ssh-keygen reports for it."""
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True)
    return key.read_text(), listed.stdout.split()[1]


def transfer() -> Any:
    return boto3.client("transfer", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_fingerprint_matches_ssh_keygen(host_key: tuple[str, str]) -> None:
    pem, expected = host_key
    assert public_fingerprint(pem) == (expected, "ssh-ed25519")


def test_a_new_key_is_imported(host_key: tuple[str, str]) -> None:
    pem, fingerprint = host_key
    client = transfer()
    with Stubber(client) as stub:
        stub.add_response("list_host_keys", {"ServerId": SERVER, "HostKeys": [
            {"Arn": "arn:aws:transfer:us-east-1:123456789012:host-key/s-0123456789abcdef0/hostkey-0123456789abcdef0",
             "HostKeyId": "hostkey-0123456789abcdef0", "Fingerprint": "SHA256:someothervalue", "Type": "ssh-rsa"}]},
                          {"ServerId": SERVER})
        stub.add_response("import_host_key", {"ServerId": SERVER, "HostKeyId": "hostkey-0123456789abcdef1"},
                          {"ServerId": SERVER, "HostKeyBody": pem, "Description": "migration"})
        result = import_host_key(client, SERVER, pem, "migration")
    assert (result.host_key_id, result.fingerprint, result.imported) == ("hostkey-0123456789abcdef1", fingerprint, True)


def test_a_key_the_server_already_has_is_not_imported_again(host_key: tuple[str, str]) -> None:
    pem, fingerprint = host_key
    client = transfer()
    with Stubber(client) as stub:  # no import_host_key expected: the stubber fails on any other call
        stub.add_response("list_host_keys", {"ServerId": SERVER, "HostKeys": [
            {"Arn": "arn:aws:transfer:us-east-1:123456789012:host-key/s-0123456789abcdef0/hostkey-0123456789abcdef0",
             "HostKeyId": "hostkey-0123456789abcdef0", "Fingerprint": fingerprint, "Type": "ssh-ed25519"}]},
                          {"ServerId": SERVER})
        result = import_host_key(client, SERVER, pem)
        stub.assert_no_pending_responses()
    assert (result.host_key_id, result.imported) == ("hostkey-0123456789abcdef0", False)


def test_a_passphrase_protected_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret phrase", "-f", str(key)], check=True)
    with pytest.raises(IdentityInputError, match="ssh-keygen -p"):
        public_fingerprint(key.read_text())


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        _Recorder.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cloudformation() -> Iterator[str]:
    """Where CloudFormation's pre-signed response URL points: a local server that records the PUT."""
    _Recorder.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response"
    server.shutdown()


HK_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hk"
STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/a/1"


def event(kind: str, url: str, secret_arn: str = HK_SECRET) -> dict[str, Any]:
    return {"RequestType": kind, "ResponseURL": url, "StackId": STACK,
            "RequestId": "r1", "LogicalResourceId": "SftpHostKey", "PhysicalResourceId": "hostkey-0123456789abcdef0",
            "ResourceProperties": {"ServerId": SERVER, "SecretArn": secret_arn}}


def test_the_custom_resource_always_answers_cloudformation(moto_aws: None, cloudformation: str) -> None:
    from handlers.host_key_import import lambda_handler

    ctx = LocalLambdaContext(function_name="HostKeyImportFunction")
    lambda_handler(event("Delete", cloudformation), ctx)
    lambda_handler(event("Create", cloudformation, secret_arn="no-such-secret"), ctx)
    deleted, failed = _Recorder.bodies
    assert deleted["Status"] == "SUCCESS" and deleted["PhysicalResourceId"] == "hostkey-0123456789abcdef0"
    assert failed["Status"] == "FAILED" and "ResourceNotFoundException" in failed["Reason"]


def test_the_sample_event_imports_the_key_from_its_secret(
    moto_aws: None, cloudformation: str, host_key: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """events/host_key_import_create.json, as CloudFormation sends it: the key is read from the secret it
    names, imported into the server it names, and the fingerprint returned as SftpHostKey.Fingerprint.
    moto has no Transfer host keys, so the Transfer client is a botocore Stubber; Secrets Manager is moto."""
    import handlers.host_key_import as handler

    pem, fingerprint = host_key
    sample = json.loads((Path(__file__).resolve().parents[3] / "events" / "host_key_import_create.json").read_text())
    props = sample["ResourceProperties"]
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="airlock/sftp-host-key", SecretString=pem)["ARN"]
    sample = {**sample, "ResponseURL": cloudformation, "ResourceProperties": {**props, "SecretArn": arn}}
    client = transfer()
    real_client = boto3.client
    monkeypatch.setattr(handler.boto3, "client",
                        lambda name, *a, **kw: client if name == "transfer" else real_client(name, *a, **kw))
    with Stubber(client) as stub:
        stub.add_response("list_host_keys", {"ServerId": props["ServerId"], "HostKeys": []},
                          {"ServerId": props["ServerId"]})
        expected = {"ServerId": props["ServerId"], "HostKeyBody": pem, "Description": "imported by Airlock deploy"}
        stub.add_response("import_host_key", {"ServerId": props["ServerId"], "HostKeyId": "hostkey-0123456789abcdef2"},
                          expected)
        handler.lambda_handler(sample, LocalLambdaContext(function_name="HostKeyImportFunction"))
        stub.assert_no_pending_responses()
    (answer,) = _Recorder.bodies
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == "hostkey-0123456789abcdef2"
    assert answer["Data"] == {"HostKeyId": "hostkey-0123456789abcdef2", "Fingerprint": fingerprint}
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (
        sample["StackId"], sample["RequestId"], "SftpHostKey")
