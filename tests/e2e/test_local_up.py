"""`airlock local up` in its own process, driven the way the README tells a person to drive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.local.demo import known_hosts, make_key, sftp

pytestmark = pytest.mark.e2e


def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airlock.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def stack_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], Path]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRLOCK_"))}
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlock.cli", "local", "up", "--aws-port", "0", "--sftp-port", "0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield proc, env, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def wait_ready(proc: subprocess.Popen[str], state_file: Path, timeout_s: float = 60) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Ctrl-C to stop"):
            assert state_file.is_file()
            return lines
    raise AssertionError(f"local up did not get ready: {lines} {proc.stderr.read() if proc.stderr else ''}")


def test_local_up_serves_a_person_and_stops_cleanly_on_sigterm(
    stack_process: tuple[subprocess.Popen[str], dict[str, str], Path], samples: Path
) -> None:
    proc, env, cwd = stack_process
    state_file = cwd / ".airlock" / "local.json"
    banner = "\n".join(wait_ready(proc, state_file))
    state = json.loads(state_file.read_text())
    assert state["aws_endpoint"] in banner
    assert f"{state['sftp_host']}:{state['sftp_port']}" in banner
    assert state["host_key_fingerprint"].startswith("SHA256:") and state["host_key_fingerprint"] in banner

    # another shell: onboard against the running stack (found through .airlock/local.json)
    key = make_key(cwd)
    onboarded = run_cli("tenants", "onboard", "walkin", "--user", "walkin-ops", "--public-key",
                        str(key.with_suffix(".pub")), cwd=cwd, env=env)
    assert onboarded.returncode == 0, onboarded.stderr
    assert "local stack at" in onboarded.stderr and "ACTIVE" in onboarded.stdout

    kh = known_hosts(cwd, state["sftp_port"], state["host_key_fingerprint"])
    sftp(f'put "{samples / "strata" / "fx-rates-1.csv"}" /inbound/fx.csv\n', key=key, port=state["sftp_port"],
         kh=kh, user="walkin-ops")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = run_cli("files", "list", "walkin", "--json", cwd=cwd, env=env)
        records = json.loads(listed.stdout) if listed.returncode == 0 else []
        if records and records[0]["state"] == "ACCEPTED":
            break
        time.sleep(0.5)
    assert [(r["key"], r["verdict"]) for r in records] == [("inbound/fx.csv", "accepted")]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not state_file.exists()  # nobody will mistake a stopped stack for a running one
    assert (cwd / ".airlock").is_dir()  # host keys stay for the next run


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("local", "up", "--aws-port", str(port), cwd=tmp_path, env=dict(os.environ))
    assert result.returncode == 2
    assert f"port 127.0.0.1:{port} is in use" in result.stderr and "--aws-port" in result.stderr
    assert "Traceback" not in result.stderr
