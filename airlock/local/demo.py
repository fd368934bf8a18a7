"""``airlock demo``: the whole flow on the embedded local AWS, driven by the stock OpenSSH client."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from airlock.local.stack import LocalStack, LocalStackConfig
from airlock.worker.ledger import Ledger
from schemas.ledger import FileRecord
from schemas.onboarding import OnboardRequest, SftpUserSpec

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "samples"
DEMO_TENANT = "demo"
DEMO_USER = "demo-ops"


@dataclass(frozen=True)
class DemoFile:
    path: Path
    expect: str  # the verdict SOURCES.md gives it


DEMO_FILES = (
    DemoFile(SAMPLES / "strata" / "quotes-1.csv", "accepted"),
    DemoFile(SAMPLES / "crif" / "ore-crif.csv", "accepted"),
    DemoFile(SAMPLES / "strata" / "quotes-invalid-duplicate.csv", "rejected"),
)


class DemoError(RuntimeError):
    pass


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise DemoError(f"the OpenSSH `{tool}` command is not installed (Debian: apt-get install openssh-client)")
    return path


def make_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    for p in (key, key.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        [_need("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", f"{DEMO_USER}@airlock-demo", "-f", str(key)],
        check=True,
    )
    return key


def known_hosts(directory: Path, port: int, expected_fingerprint: str | None) -> Path:
    """Scan the server's host key and check it against the fingerprint the server itself reports."""
    scan = subprocess.run(
        [_need("ssh-keyscan"), "-p", str(port), "-t", "ed25519,ecdsa,rsa", "127.0.0.1"],
        capture_output=True, text=True, check=False, timeout=20,
    )
    lines = [ln for ln in scan.stdout.splitlines() if ln and not ln.startswith("#")]
    if not lines:
        raise DemoError(f"ssh-keyscan found no host key on port {port}: {scan.stderr.strip()}")
    path = directory / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    if expected_fingerprint:
        fp = subprocess.run([_need("ssh-keygen"), "-l", "-f", str(path)], capture_output=True, text=True, check=True)
        if expected_fingerprint not in fp.stdout:
            raise DemoError(f"host key mismatch: scanned {fp.stdout.strip()}, server says {expected_fingerprint}")
    return path


def sftp(batch: str, *, key: Path, port: int, kh: Path, user: str = DEMO_USER) -> str:
    """Run the stock OpenSSH client in batch mode; return its output, raise with its errors."""
    proc = subprocess.run(
        [
            _need("sftp"), "-b", "-", "-i", str(key), "-P", str(port),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={kh}", "-o", "LogLevel=ERROR",
            f"{user}@127.0.0.1",
        ],
        input=batch, capture_output=True, text=True, timeout=60, check=False,
    )
    if proc.returncode != 0:
        raise DemoError(f"sftp failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def wait_for(ledger: Ledger, tenant_id: str, count: int, timeout_s: float) -> list[FileRecord]:
    deadline = time.monotonic() + timeout_s
    while True:
        done = [r for r in ledger.list_for_tenant(tenant_id) if r.state.terminal]
        if len(done) >= count or time.monotonic() > deadline:
            return done
        time.sleep(0.25)


def print_table(records: list[FileRecord], out: TextIO = sys.stdout) -> None:
    headers = ("FILE", "KIND", "VERDICT", "ROWS OK", "ROWS BAD", "OUTPUTS")
    rows = []
    for r in sorted(records, key=lambda r: r.key):
        outputs = [k for k in r.output_keys if k.endswith(".parquet")] or list(r.output_keys[:1])
        rows.append((
            r.key.removeprefix("inbound/"), r.kind or "-", (r.verdict or r.state.value).lower(),
            str(r.rows_accepted or 0), str(r.rows_rejected or 0),
            "\n".join([*outputs, r.report_key or ""]).strip(),
        ))
    widths = [max(len(h), *(max(len(x) for x in row[i].split("\n")) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip(), file=out)
    print(line.format(*("-" * w for w in widths)).rstrip(), file=out)
    for row in rows:
        first, *rest = row[5].split("\n")
        print(line.format(*row[:5], first).rstrip(), file=out)
        for extra in rest:
            print(line.format("", "", "", "", "", extra).rstrip(), file=out)


def run_demo(state_dir: Path, timeout_s: float = 60.0, verbose: bool = False) -> int:
    """Run the flow; the handlers' JSON logs go to ``state_dir/handlers.log`` unless ``verbose``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    missing = [f.path for f in DEMO_FILES if not f.path.is_file()]
    if missing:
        print(f"airlock: demo sample files are missing: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    out = sys.stdout
    log_path = state_dir / "handlers.log"
    with contextlib.ExitStack() as stack:
        if not verbose:
            # Lambda handlers log to stdout (CloudWatch on AWS); here they would drown the table.
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(log_path.open("w"))))
        return _run(state_dir, timeout_s, out, None if verbose else log_path)


def _run(state_dir: Path, timeout_s: float, out: TextIO, log_path: Path | None) -> int:
    started = time.monotonic()

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    config = LocalStackConfig(aws_port=0, sftp_port=0, state_dir=state_dir)
    try:
        with LocalStack(config) as stack:
            say(f"local AWS at {stack.endpoint}; SFTP on 127.0.0.1:{stack.sftp_port} "
                f"(host key {stack.state()['host_key_fingerprint']})")
            key = make_key(state_dir)
            from airlock.onboarding.steps import onboard

            user = SftpUserSpec(username=DEMO_USER, public_keys=(key.with_suffix(".pub").read_text().strip(),))
            tenant = onboard(
                OnboardRequest(tenant_id=DEMO_TENANT, display_name="Demo counterparty", users=(user,)),
                server_id=config.server_id,
                names=stack.names,
            )
            say(f"onboarded tenant {tenant.tenant_id}: bucket {tenant.bucket}, key {tenant.kms_alias}")
            kh = known_hosts(state_dir, stack.sftp_port, stack.state()["host_key_fingerprint"])
            batch = "".join(f'put "{f.path}" /inbound/{f.path.name}\n' for f in DEMO_FILES)
            sftp(batch, key=key, port=stack.sftp_port, kh=kh)
            say(f"uploaded {len(DEMO_FILES)} files with sftp as {DEMO_USER}; waiting for verdicts...")
            records = wait_for(Ledger(stack.names), DEMO_TENANT, len(DEMO_FILES), timeout_s)
            say()
            print_table(records, out)
            say()
            listing = sftp("ls -1 /outbound/reports\n", key=key, port=stack.sftp_port, kh=kh)
            reports = [ln.strip() for ln in listing.splitlines() if ln.strip() and not ln.startswith("sftp>")]
            say(f"the counterparty sees {len(reports)} reports in /outbound/reports over SFTP:")
            for name in reports:
                say(f"  {name}")
    except DemoError as err:
        print(f"airlock demo: {err}", file=sys.stderr)
        return 1
    verdicts = {r.key.rsplit("/", 1)[-1]: r.verdict for r in records}
    wrong = [
        f"{f.path.name}: expected {f.expect}, got {verdicts.get(f.path.name) or 'no verdict'}"
        for f in DEMO_FILES
        if verdicts.get(f.path.name) != f.expect
    ]
    say()
    if log_path:
        say(f"handler logs: {log_path}")
    say(f"done in {time.monotonic() - started:.1f} s")
    if wrong:
        print("airlock demo: unexpected outcome: " + "; ".join(wrong), file=sys.stderr)
        return 1
    return 0
