"""Fuzzing the inputs a counterparty controls: file bytes, cell values, and login requests.

No input may make the CSV pipeline, a contract or the identity provider raise anything but a finding
(a report with a verdict), a pydantic ``ValidationError`` (a clean refusal of one row) or a denial
(``{}``). Inputs that once broke something are kept in ``tests/data/fuzz/`` and replayed on every run.
Example counts: ``AIRLOCK_FUZZ_EXAMPLES`` (default small for ``make test``; the assurance run uses more).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from airlock.identity import decide as D
from airlock.identity.service import parse_request
from airlock.ingest.pipeline import IngestOptions, IngestOutcome, ingest
from schemas.files import CONTRACTS
from schemas.identity import IdentityRequest
from schemas.report import Verdict
from schemas.sftp_user import SftpUserSecret
from schemas.tenant import IngestPolicy, Tenant, TenantStatus

CORPUS = Path(__file__).resolve().parents[1] / "data" / "fuzz"
EXAMPLES = int(os.environ.get("AIRLOCK_FUZZ_EXAMPLES", "60"))
RULE_ID = re.compile(r"^AIR-[EFW]\d{3}$")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


# -- the CSV pipeline --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="airlock-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_ingest(data: bytes, workdir: Path, policy: IngestPolicy | None = None, name: str = "in.csv") -> IngestOutcome:
    """One file through ``ingest``; checks what every outcome must satisfy, whatever the input."""
    case = Path(tempfile.mkdtemp(dir=workdir))
    src = case / "in.bin"
    src.write_bytes(data)
    out = ingest(src, options=IngestOptions(source_key=f"inbound/{name}", policy=policy or IngestPolicy()),
                 out_dir=case / "out")
    assert isinstance(out.verdict, Verdict)
    assert all(RULE_ID.match(f.rule) and f.message for f in out.findings)
    assert 0 <= out.rows_accepted <= out.rows_total and out.rows_rejected >= 0
    parquet = list((case / "out").rglob("*.parquet"))
    if out.verdict is Verdict.REJECTED:
        assert not parquet and out.rows_accepted == 0
        assert out.findings, "a rejection must say why"
    else:
        assert sum(pq.ParquetFile(p).metadata.num_rows for p in parquet) == out.rows_accepted
    out.report()  # the report model validates
    shutil.rmtree(case, ignore_errors=True)
    return out


def _headers() -> list[str]:
    names: set[str] = set()
    for contract in CONTRACTS.values():
        for spec, _t, _r in contract.specs().values():
            names.update(spec.headers)
    return sorted(names)


HEADERS = _headers()
NASTY = ["", " ", '"', '""', "'", ",", ";", "\t", "\r", "\n", "\x00", "\ufeff", "=1+1", "@SUM(A1)", "NaN", "-0",
         "1e400", "9" * 40, "2014-02-30", "é", "\u202e", "😀", "\\", "../..", "%s%n", "null"]
cells = st.one_of(st.sampled_from(NASTY), st.text(max_size=12), st.from_regex(r"-?\d{1,6}(\.\d{1,4})?", fullmatch=True),
                  st.dates().map(str))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Something shaped like one of our files: real headers, odd delimiters, quoting and cells."""
    contract = draw(st.sampled_from(sorted(CONTRACTS)))
    own = [h for spec, _t, _r in CONTRACTS[contract].specs().values() for h in spec.headers[:1]]
    header = draw(st.lists(st.sampled_from(own + HEADERS[:20]), min_size=1, max_size=len(own) + 2))
    delim = draw(st.sampled_from([",", ";", "|", "\t"]))
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 2), max_size=8))
    quote = draw(st.booleans())

    def fmt(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if quote or delim in v or '"' in v or "\n" in v else v

    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = eol.join(delim.join(fmt(c) for c in row) for row in [header, *rows])
    prefix = draw(st.sampled_from(["", "\ufeff", "# comment" + eol]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))
    return (prefix + text).encode(encoding, errors="replace")


@FUZZ
@given(data=st.binary(max_size=3000))
def test_any_bytes_get_a_verdict(data: bytes, workdir: Path) -> None:
    run_ingest(data, workdir)


@FUZZ
@given(data=csv_files(), partial=st.booleans(), order=st.sampled_from(["dmy", "mdy"]))
def test_any_csv_shaped_file_gets_a_verdict(data: bytes, partial: bool, order: str, workdir: Path) -> None:
    policy = IngestPolicy(allow_partial=partial, max_error_ratio=0.5 if partial else 0.0, date_order=order)  # type: ignore[arg-type]
    run_ingest(data, workdir, policy)


@FUZZ
@given(data=st.binary(max_size=400), compress=st.sampled_from(["gz", "zip"]))
def test_any_archive_gets_a_verdict(data: bytes, compress: str, workdir: Path) -> None:
    import gzip
    import io
    import zipfile

    if compress == "gz":
        blob = gzip.compress(data)
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("inner.csv", data)
        blob = buf.getvalue()
    run_ingest(blob, workdir, name=f"in.csv.{compress}")


def corpus(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*")) if (CORPUS / kind).is_dir() else []


@pytest.mark.parametrize("path", corpus("reader"), ids=lambda p: p.name)
def test_reader_corpus_replays(path: Path, workdir: Path) -> None:
    run_ingest(path.read_bytes(), workdir, name=path.name.split("__")[-1])


# -- the contracts -----------------------------------------------------------------------------------


@FUZZ
@given(kind=st.sampled_from(sorted(CONTRACTS)), data=st.data())
def test_a_contract_validates_or_refuses_any_row(kind: str, data: st.DataObject) -> None:
    contract = CONTRACTS[kind]
    row = {name: data.draw(st.one_of(st.none(), cells), label=name) for name in contract.specs()}
    row.update(data.draw(st.dictionaries(st.text(max_size=8), cells, max_size=3), label="extra"))
    try:
        model = contract.model_validate(row)
    except ValidationError as err:
        assert all(e["type"] and e["msg"] for e in err.errors())
    else:
        assert isinstance(model, contract)


# -- the identity provider ---------------------------------------------------------------------------

SERVER = "s-1234567890abcdef0"
TENANT = Tenant(tenant_id="acme", status=TenantStatus.ACTIVE, bucket="airlock-t-acme-123456789012-us-east-1",
                role_arn="arn:aws:iam::123456789012:role/airlock/tenants/airlock-tenant-acme",
                kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


class Secrets:
    def __init__(self) -> None:
        self.user = SftpUserSecret.model_validate({
            "tenantId": "acme", "roleArn": TENANT.role_arn, "s3Bucket": TENANT.bucket, "publicKeys": [KEY],
            "allowedCidrs": ["10.0.0.0/8"],
        })

    def get_user(self, server_id: str, username: str) -> SftpUserSecret | None:
        return self.user if (server_id, username) == (SERVER, "acme-ops") else None

    def replace_password_hash(self, *args: Any) -> bool:
        return False


class Registry:
    def get(self, tenant_id: str) -> Tenant | None:
        return TENANT if tenant_id == "acme" else None


usernames = st.one_of(st.just("acme-ops"), st.sampled_from(["ACME-OPS", "acme-ops ", "acme-ops\x00", "../acme-ops",
                                                            "acme-ops/../x", "*", "a" * 101]), st.text(max_size=20))
ips = st.one_of(st.just("10.1.2.3"), st.just("8.8.8.8"), st.ip_addresses().map(str),
                st.sampled_from(["", "10.0.0.1/8", "::ffff:10.1.2.3", "010.001.002.003", "localhost"]),
                st.text(max_size=10))
events = st.fixed_dictionaries(
    {"username": usernames, "serverId": st.sampled_from([SERVER, "s-0", ""]) | st.text(max_size=5), "sourceIp": ips},
    optional={"protocol": st.sampled_from(["SFTP", "FTPS", "FTP", "AS2", "sftp", ""]),
              # no password or an empty one: a key login, which needs no hashing (hashing is slow)
              "password": st.sampled_from(["", None]),
              "extra": st.text(max_size=5)},
)


@FUZZ
@given(event=events)
def test_the_login_decision_never_raises_and_allows_only_the_real_user(event: dict[str, Any]) -> None:
    request = parse_request(event)
    if request is None:
        return  # the handler denies (``{}``) and audits bad_request
    decision = D.decide(request, secrets=Secrets(), registry=Registry(),  # type: ignore[arg-type]
                        allowed_server_ids={SERVER}, region="us-east-1", now=lambda: datetime.now(UTC))
    audit = json.dumps(decision.audit(), default=str)
    assert "password" not in audit.lower() or '"method": "password"' in audit
    if decision.allowed:
        assert (request.username, request.server_id, request.protocol) == ("acme-ops", SERVER, "SFTP")
        assert D.ip_allowed(request.source_ip, ["10.0.0.0/8"])
        assert decision.event_response()["Role"] == TENANT.role_arn
    else:
        assert decision.event_response() == {}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=10)


@FUZZ
@given(event=st.one_of(json_values, st.dictionaries(st.sampled_from(["username", "serverId", "sourceIp", "protocol"]),
                                                     json_values, max_size=4)))
def test_the_identity_handler_denies_any_malformed_event(event: Any) -> None:
    """Anything that is not a login request is ``{}``, without touching AWS (no lookup is reached)."""
    from handlers.identity_provider import respond

    if isinstance(event, dict) and parse_request(event) is not None:
        return
    assert respond(event, "lambda") == {}


@pytest.mark.parametrize("path", corpus("identity"), ids=lambda p: p.name)
def test_identity_corpus_replays(path: Path) -> None:
    event = json.loads(path.read_text())
    request = parse_request(event) if isinstance(event, dict) else None
    if request is not None:
        decision = D.decide(request, secrets=Secrets(), registry=Registry(),  # type: ignore[arg-type]
                            allowed_server_ids={SERVER}, region="us-east-1")
        assert not decision.allowed or request.username == "acme-ops"


def test_the_corpus_is_there() -> None:
    """The replay tests above would pass vacuously on an empty corpus."""
    assert len(corpus("reader")) >= 10 and len(corpus("identity")) >= 5


def test_request_model_rejects_oversized_and_wrong_types() -> None:
    for bad in ({"username": "x" * 101, "serverId": SERVER, "sourceIp": "1.1.1.1"},
                {"username": 7, "serverId": SERVER, "sourceIp": "1.1.1.1"},
                {"username": "acme-ops", "serverId": SERVER}):
        with pytest.raises(ValidationError):
            IdentityRequest.model_validate(bad)
