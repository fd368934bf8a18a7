"""Benchmark: the identity provider's cold import and its warm login decision, each against a baseline.

    .venv/bin/python benchmarks/bench_identity.py                    # print the report
    .venv/bin/python benchmarks/bench_identity.py --write-docs       # and the "Identity provider" section
                                                                     # of docs/benchmarks.md

Why these two numbers: Transfer Family calls the identity provider on every login, with a timeout, so
a cold start (dominated by imports; the function must not drag in pyarrow) and the warm decision are
what a counterparty waits for.

* Cold import: ``python -c 'import handlers.identity_provider'`` in ``--imports`` fresh interpreters,
  minus ``python -c pass`` measured interleaved in the same run (the interpreter's own start-up is
  not ours to spend). Median of N; one ``-X importtime`` run names the heaviest direct imports.
* Warm decision, on moto in-process with the real stores (Secrets Manager, the tenant registry and the
  lockout counters in DynamoDB): a key login (no hashing) and an argon2id password login, through
  ``airlock.identity.service.authenticate`` (the decision with its production ports) and through
  the Lambda handler (plus parsing, the audit line and the response shape). Baselines in the same
  process, interleaved call by call: a bare ``get_secret_value`` of the same secret on moto (one
  store round trip) and a bare argon2 verify of the same hash (the hashing floor). p50/p95 of N.

Nothing here asserts a timing. ``--write-docs`` replaces (or appends) only the block between the
``bench-identity`` markers in docs/benchmarks.md; the validation benchmark's sections stay as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench-identity:begin -->", "<!-- bench-identity:end -->"
HANDLER_MODULE = "handlers.identity_provider"
SERVER_ID = "s-1234567890abcdef0"
TENANT = "benchco"
USERNAME = "benchco-ops"
PASSWORD = "correct horse battery staple"  # a benchmark fixture, on moto
SOURCE_IP = "203.0.113.10"

NOTES = """\
- Cold import is what a new Lambda sandbox pays before the first login is decided; the interpreter's
  own start-up is subtracted because Lambda pays it for any function. The per-package line above says
  where it goes: botocore/urllib3/s3transfer (boto3's clients), pydantic (the request and secret
  models) and, when the handler builds a powertools `Tracer`, `aws_xray_sdk` (imported even with
  tracing off). pyarrow, asyncssh and moto are not loaded (`tests/unit/identity/test_import_cost.py`).
  Wall times of fresh interpreters swing with the load of a shared 2-core machine; the medians of
  interleaved runs are comparable within one run, less so across runs.
- A key login is three store round trips and no hashing: one `BatchGetItem` for both lockout
  counters, the user secret (`GetSecretValue`) and the tenant record (`GetItem`), plus building the
  session policy, so it is a small multiple of one bare `get_secret_value`. On moto in-process a
  round trip costs moto's request handling; on AWS it is a network round trip, so the multiple is
  the figure that carries over, not the milliseconds.
- A password login adds one argon2id verification (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
  and, on success, clearing the lockout counters; its ratio to a bare verify of the same hash shows
  that hashing dominates. Refusals before the hash is checked still spend one verification (see
  docs/identity.md), so a refused password login costs about the same.
- The handler rows add request parsing, the audit line (written to /dev/null here) and the response
  shape, the whole of what Transfer Family waits for once the function is warm."""


@dataclass(frozen=True)
class Spread:
    """A sample of wall times in seconds, summarised the way the report needs it."""

    samples: tuple[float, ...]

    def pct(self, p: float) -> float:
        """Nearest-rank percentile: a value that was measured, not an interpolation."""
        ordered = sorted(self.samples)
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


# -- cold import ---------------------------------------------------------------------------------


def _run_python(code: str, env: dict[str, str]) -> float:
    """Wall time of one fresh interpreter running ``code`` (fails loudly if the import breaks)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _child_env() -> dict[str, str]:
    """What a Lambda sandbox would have: region and credentials set, no endpoint override, no tracing.

    LAMBDA_TASK_ROOT makes the X-Ray SDK start as it does on Lambda; off Lambda it also builds two
    botocore clients for sampling (about 0.25 s more) that a real cold start never pays.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "PYTHON"))}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("LAMBDA_TASK_ROOT", str(ROOT))
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    return env


def cold_imports(rounds: int, modules: list[str]) -> dict[str, Spread]:
    """Interleave the bare interpreter and each import, so load on a shared machine hits them alike."""
    env = _child_env()
    codes = {"python -c pass": "pass", **{m: f"import {m}" for m in modules}}
    for code in codes.values():  # warm the page cache and write .pyc files; not counted
        _run_python(code, env)
    samples: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(rounds):
        for name, code in codes.items():
            samples[name].append(_run_python(code, env))
    return {name: Spread(tuple(values)) for name, values in samples.items()}


def module_count(module: str) -> tuple[int, int]:
    """Modules loaded by a bare interpreter, and after importing ``module``."""
    code = f"import sys; n = len(sys.modules); import {module}; print(n, len(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_child_env(), check=True, capture_output=True, text=True
    )
    bare, loaded = out.stdout.split()
    return int(bare), int(loaded)


IMPORTTIME_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def heaviest_imports(module: str, top: int = 6) -> list[tuple[str, float]]:
    """Where the import time goes: ``-X importtime`` self times summed per top-level package (one run).

    Self times add up to the whole without double counting, so the shares are exact for that run;
    the interpreter's own start-up modules (``site``, ``encodings``...) are left out.
    """
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT, env=_child_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = [m for m in (IMPORTTIME_RE.match(line) for line in out.stderr.splitlines()) if m]
    # -X importtime prints children before their parent; the start-up imports end with ``site``.
    site = max((i for i, m in enumerate(lines) if m.group(4) == "site" and not m.group(3)), default=-1)
    per_package: dict[str, float] = {}
    for m in lines[site + 1 :]:
        package = m.group(4).split(".")[0]
        per_package[package] = per_package.get(package, 0.0) + int(m.group(1)) / 1000
    return sorted(per_package.items(), key=lambda x: -x[1])[:top]


# -- warm decision -------------------------------------------------------------------------------


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Silence the audit lines at the file-descriptor level (powertools holds its own stdout handle)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def warm_decisions(key_calls: int, password_calls: int) -> dict[str, Spread]:
    """Set up one tenant and user on moto in-process, then time logins and baselines call by call."""
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRLOCK_SFTP_SERVER_IDS": SERVER_ID,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        os.environ[k] = v
    os.environ.pop("AWS_ENDPOINT_URL", None)

    from argon2 import PasswordHasher
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from moto import mock_aws

    from airlock import aws
    from airlock.identity.service import authenticate
    from airlock.identity.users import upsert_user
    from airlock.local import moto_bridge
    from airlock.local.resources import create_platform_resources
    from airlock.naming import Names
    from airlock.tenancy.registry import Registry
    from handlers.identity_provider import lambda_handler
    from schemas.identity import IdentityRequest
    from schemas.tenant import Tenant, TenantStatus

    moto_bridge.install()  # the same moto the local stack and the tests run on
    aws.reset_clients()
    with mock_aws():
        names = Names()
        create_platform_resources(names)
        key_arn = aws.client("kms").create_key(Description=f"tenant {TENANT}")["KeyMetadata"]["Arn"]
        tenant = Registry(names).put(
            Tenant(
                tenant_id=TENANT,
                status=TenantStatus.ACTIVE,
                bucket=names.tenant_bucket(TENANT),
                role_arn=names.tenant_role_arn(TENANT),
                kms_key_arn=key_arn,
            )
        )
        public_key = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        upsert_user(
            names=names, server_id=SERVER_ID, tenant=tenant, username=USERNAME,
            public_keys=[public_key], password=PASSWORD, allowed_cidrs=["203.0.113.0/24"],
        )  # fmt: skip
        secret_name = Names.sftp_secret_name(SERVER_ID, USERNAME)
        sm = aws.client("secretsmanager")
        stored_hash = json.loads(sm.get_secret_value(SecretId=secret_name)["SecretString"])["passwordHash"]
        hasher = PasswordHasher()

        base = {"username": USERNAME, "protocol": "SFTP", "serverId": SERVER_ID, "sourceIp": SOURCE_IP}
        key_event = {**base, "password": ""}
        password_event = {**base, "password": PASSWORD}
        key_request = IdentityRequest.model_validate(key_event)
        password_request = IdentityRequest.model_validate(password_event)

        def check(resp: dict[str, Any], with_keys: bool) -> None:
            """A benchmark of a refusal would measure the wrong thing: every timed login must succeed."""
            if not resp.get("Role") or ("PublicKeys" in resp) is not with_keys:
                raise SystemExit(f"benchmark login did not succeed as expected: {sorted(resp)}")

        def key_decide() -> None:
            decision = authenticate(key_request)
            check(decision.event_response(), True)

        def key_handler() -> None:
            check(lambda_handler(dict(key_event), None), True)

        def password_decide() -> None:
            decision = authenticate(password_request)
            check(decision.event_response(), False)

        def password_handler() -> None:
            check(lambda_handler(dict(password_event), None), False)

        def bare_secret() -> None:
            sm.get_secret_value(SecretId=secret_name)

        def bare_argon2() -> None:
            hasher.verify(stored_hash, PASSWORD)

        groups: list[tuple[int, dict[str, Callable[[], None]]]] = [
            (key_calls, {"key login: decide": key_decide, "key login: handler": key_handler,
                         "baseline: get_secret_value": bare_secret}),
            (password_calls, {"password login: decide": password_decide, "password login: handler": password_handler,
                              "baseline: argon2 verify": bare_argon2}),
        ]  # fmt: skip
        samples: dict[str, list[float]] = {}
        with stdout_to_devnull():
            for calls, fns in groups:
                for fn in fns.values():  # warm clients, caches and moto's backends; not counted
                    for _ in range(3):
                        fn()
                for name in fns:
                    samples[name] = []
                for _ in range(calls):  # interleaved call by call, so load bursts hit every row alike
                    for name, fn in fns.items():
                        samples[name].append(_timed(fn))
    aws.reset_clients()
    return {name: Spread(tuple(values)) for name, values in samples.items()}


# -- report --------------------------------------------------------------------------------------


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("boto3", "moto", "pydantic", "aws-lambda-powertools", "argon2-cffi"):
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{name} {version(name)}")
    return ", ".join(out)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def render(
    imports: dict[str, Spread], counts: tuple[int, int], heavy: list[tuple[str, float]],
    warm: dict[str, Spread], args: argparse.Namespace,
) -> str:  # fmt: skip
    bare = imports["python -c pass"]
    lines = [
        f"- cold import: {args.imports} fresh interpreters per row, interleaved; import cost = median minus the "
        "median of `python -c pass` from the same run",
        "",
        "| cold start | median ms | min ms | max ms | import cost ms |",
        "|---|---|---|---|---|",
    ]
    for name, spread in imports.items():
        cost = "" if spread is bare else ms(spread.median - bare.median)
        label = f"`{name}`" if spread is bare else f"`import {name}`"
        lines.append(
            f"| {label} | {ms(spread.median)} | {ms(min(spread.samples))} | {ms(max(spread.samples))} | {cost} |"
        )
    lines += [
        "",
        f"- modules loaded: {counts[0]} by a bare interpreter, {counts[1]} after `import {HANDLER_MODULE}`",
        "- where the import time goes (one `-X importtime` run, self ms summed per top-level package): "
        + ", ".join(f"`{name}` {cost:.0f}" for name, cost in heavy),
        "",
        f"- warm decision: moto in-process, real stores, lockout on; {args.calls} calls per no-hash row and "
        f"{args.password_calls} per hashing row, interleaved call by call after 3 warm-up calls",
        "",
        "| warm call | p50 ms | p95 ms | p50 / baseline p50 |",
        "|---|---|---|---|",
    ]
    secret = warm["baseline: get_secret_value"].median
    argon = warm["baseline: argon2 verify"].median
    for name, spread in warm.items():
        if name.startswith("baseline"):
            ratio = "1.00"
        else:
            ratio = f"{spread.median / (secret if name.startswith('key') else argon):.2f}"
            ratio += " (get_secret_value)" if name.startswith("key") else " (argon2 verify)"
        lines.append(f"| {name} | {ms(spread.median)} | {ms(spread.pct(95))} | {ratio} |")
    pw = warm["password login: decide"].median
    lines += [
        "",
        f"- password login beyond its hash: {ms(pw - argon)} ms at p50 (decide minus a bare argon2 verify); "
        f"argon2 is {argon / pw:.0%} of the password decision",
    ]
    return "\n".join(lines)


def write_docs(report: str) -> None:
    """Replace the marked section of docs/benchmarks.md, or append it; everything else is left as is."""
    section = "\n".join(
        [
            BEGIN,
            "## Identity provider",
            "",
            f"Generated by `benchmarks/bench_identity.py` on {datetime.now(UTC):%Y-%m-%d}.",
            "",
            f"- machine: {machine()}",
            f"- load average at the end of the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (shared machine)",
            f"- libraries: {versions()}",
            report,
            "",
            "Reading the numbers:",
            "",
            NOTES,
            END,
        ]
    )
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imports", type=int, default=15, help="fresh interpreters per cold-import row")
    ap.add_argument("--calls", type=int, default=200, help="calls per no-hash row (key login, get_secret_value)")
    ap.add_argument("--password-calls", type=int, default=40, help="calls per hashing row (password, argon2)")
    ap.add_argument(
        "--write-docs", action="store_true", help="write the Identity provider section of docs/benchmarks.md"
    )
    args = ap.parse_args()

    print("cold imports ...", file=sys.stderr)
    imports = cold_imports(args.imports, [HANDLER_MODULE, "handlers.identity_provider_api"])
    counts = module_count(HANDLER_MODULE)
    heavy = heaviest_imports(HANDLER_MODULE)
    print("warm decisions ...", file=sys.stderr)
    warm = warm_decisions(args.calls, args.password_calls)
    report = render(imports, counts, heavy, warm, args)
    print(report)
    if args.write_docs:
        write_docs(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
