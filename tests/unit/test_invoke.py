"""``airlock invoke``: template-driven environment (as sam local invoke), and every event in events/."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.invoke import apply_env_vars_file, function_spec, invoke, load_template
from airlock.local.stack import LocalStack
from airlock.naming import Names

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
ENV_VARS = json.loads((EVENTS / "env.json").read_text())
SERVER_ID = "s-1234567890abcdef0"  # the server id in the identity events
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_environment_comes_from_globals_and_the_function(template: dict[str, Any]) -> None:
    spec = function_spec(template, "IngestFunction")
    assert spec.handler == "handlers/ingest.lambda_handler"
    assert spec.function_name == "airlock-ingest" and spec.timeout_s == 300 and spec.memory_mb == 1769
    env = spec.environment
    assert env["AIRLOCK_PREFIX"] == "airlock" and env["POWERTOOLS_SERVICE_NAME"] == "ingest"
    assert env["AIRLOCK_SFTP_SERVER_IDS"] == "" and env["AWS_ENDPOINT_URL"] == ""


def test_parameter_overrides_reach_the_environment(template: dict[str, Any]) -> None:
    spec = function_spec(template, "IdentityProviderFunction", {"Prefix": "airdev", "SftpServerIds": SERVER_ID})
    assert spec.function_name == "airdev-identity-provider"
    assert spec.environment["AIRLOCK_PREFIX"] == "airdev"
    assert spec.environment["AIRLOCK_SFTP_SERVER_IDS"] == SERVER_ID


def test_env_vars_file_overrides_declared_variables_only(template: dict[str, Any]) -> None:
    spec = function_spec(template, "IdentityProviderFunction")
    env, ignored = apply_env_vars_file(spec, {"Parameters": {"LOG_LEVEL": "DEBUG", "NOT_DECLARED": "x"},
                                              "IdentityProviderFunction": {"AIRLOCK_SFTP_SERVER_IDS": SERVER_ID,
                                                                           "ALSO_NOT": "y"}})
    assert env["LOG_LEVEL"] == "DEBUG" and env["AIRLOCK_SFTP_SERVER_IDS"] == SERVER_ID
    assert "NOT_DECLARED" not in env and ignored == ["ALSO_NOT"]


def test_env_json_names_only_template_functions_and_variables(template: dict[str, Any]) -> None:
    for section, values in ENV_VARS.items():
        if section == "Parameters":
            continue
        declared = function_spec(template, section).environment
        assert set(values) <= set(declared), f"{section}: {set(values) - set(declared)} are not declared"


def test_unknown_function_is_a_clear_error(template: dict[str, Any]) -> None:
    from airlock.invoke import InvokeError

    with pytest.raises(InvokeError, match="IngestFunction"):
        function_spec(template, "NoSuchFunction")


# -- every event, against the local stack ----------------------------------------------------------

# event file -> (function id, check of the result, template parameter overrides). Events of functions
# another block owns are checked once their function is in the template (see test_every_event_is_covered).
def _login_allowed(result: Any) -> None:
    assert result.get("Role", "").endswith(":role/airlock/tenants/airlock-tenant-acme"), result
    assert result.get("HomeDirectoryType") == "LOGICAL" and result.get("Policy")


def _key_login_answered(result: Any) -> None:
    assert result.get("Role") and result.get("PublicKeys"), result


def _api_login_allowed(result: Any) -> None:
    """The API Gateway face: always HTTP 200, the Transfer Family answer as the JSON body."""
    assert result.get("statusCode") == 200, result
    assert result.get("headers") == {"Content-Type": "application/json"}, result
    _login_allowed(json.loads(result["body"]))


Check = Callable[[Any], None]
# The API face exists with IdentityProviderMode=API_GATEWAY; events/env.json names the events' server for
# IdentityProviderFunction only, so the API face gets it as SftpServerIds (as `sam local invoke` would).
API_MODE = {"IdentityProviderMode": "API_GATEWAY", "SftpServerIds": SERVER_ID}
EXPECTED: dict[str, tuple[str, Check, dict[str, str]]] = {
    "identity_provider_password.json": ("IdentityProviderFunction", _login_allowed, {}),
    "identity_provider_key.json": ("IdentityProviderFunction", _key_login_answered, {}),
    "identity_provider_api.json": ("IdentityProviderApiFunction", _api_login_allowed, API_MODE),
}


# Events fed to their function by another test: the ingest events need the files they name uploaded
# first; the host key import calls an API moto lacks.
ELSEWHERE: dict[str, tuple[str, str]] = {  # event file -> (function id, the test that feeds it)
    "ingest_eventbridge.json": ("IngestFunction", "test_ingest_events_process_the_uploads_they_name"),
    "ingest_s3_notification.json": ("IngestFunction", "test_ingest_events_process_the_uploads_they_name"),
    "host_key_import_create.json": ("HostKeyImportFunction", "tests/unit/identity/test_host_keys.py::"
                                    "test_the_sample_event_imports_the_key_from_its_secret (moto has no host keys)"),
}


def test_every_event_is_covered() -> None:
    events = {p.name for p in EVENTS.glob("*.json") if p.name != "env.json"}
    mine = {e for e in events if not e.startswith("onboarding_")}
    covered = set(EXPECTED) | set(ELSEWHERE)
    assert mine <= covered, f"events without an expected outcome: {mine - covered}"


def test_api_event_is_shaped_as_the_api_transfer_family_calls(template: dict[str, Any]) -> None:
    """events/identity_provider_api.json is a REST proxy event of the template's one API method."""
    event = json.loads((EVENTS / "identity_provider_api.json").read_text())
    body = template["Resources"]["IdentityProviderApi"]["Properties"]["DefinitionBody"]
    ((path, ops),) = body["paths"].items()
    assert event["resource"] == event["requestContext"]["resourcePath"] == path
    assert event["httpMethod"] == "GET" and set(ops) == {"get"}
    declared = {(p["in"], p["name"]) for p in ops["get"]["parameters"]}
    assert {("path", k) for k in event["pathParameters"]} <= declared
    assert {("query", k) for k in event["queryStringParameters"]} <= declared
    assert ("header", "Password") in declared and "Password" in event["headers"]
    spec = function_spec(template, "IdentityProviderApiFunction", API_MODE)
    assert spec.handler == "handlers/identity_provider_api.lambda_handler"
    assert spec.environment["AIRLOCK_SFTP_SERVER_IDS"] == SERVER_ID


@pytest.fixture(scope="module")
def acme(local_stack: LocalStack) -> Iterator[None]:
    """Tenant acme, user acme-ops (the identity events' user) with the events' password and a key."""
    import asyncssh

    from airlock.onboarding.steps import onboard
    from schemas.onboarding import OnboardRequest, SftpUserSpec

    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    user = SftpUserSpec(username="acme-ops", password=PASSWORD, public_keys=(key,), allowed_cidrs=("203.0.113.0/24",))
    with pytest.MonkeyPatch.context() as mp:  # the events' server must be one of this deployment's
        mp.setenv("AIRLOCK_SFTP_SERVER_IDS", f"{local_stack.config.server_id},{SERVER_ID}")
        onboard(OnboardRequest(tenant_id="acme", users=(user,)), server_id=SERVER_ID, names=Names())
    yield


@pytest.mark.integration
@pytest.mark.parametrize("event_file", sorted(EXPECTED))
def test_event_runs_with_the_expected_outcome(
    event_file: str, local_stack: LocalStack, acme: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    function_id, check, overrides = EXPECTED[event_file]
    monkeypatch.setenv("AIRLOCK_STATE_DIR", str(local_stack.config.state_dir))  # found as "the running stack"
    event = json.loads((EVENTS / event_file).read_text())
    result = invoke(function_id, event, template=TEMPLATE, env_vars=ENV_VARS, parameter_overrides=overrides)
    check(result)


# The onboarding block's events, through `airlock invoke` (template-driven environment) in state-machine
# order, for a tenant of their own; tests/unit/onboarding/test_events.py drives the same files through
# the handlers directly.
ONBOARD = ["validate_request", "register_tenant", "create_key", "create_role", "create_bucket", "lock_key_policy",
           "create_sftp_users", "activate_tenant"]
OFFBOARD = ["suspend_tenant", "disable_sftp_users", "deny_tenant_role", "schedule_key_deletion", "mark_offboarded"]
SAMPLE_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _function_of(template: dict[str, Any], step: str) -> str:
    wanted = "".join(part.capitalize() for part in step.split("_")) + "Function"
    assert wanted in template["Resources"], f"events/onboarding_{step}.json: no {wanted} in template.yaml"
    return wanted


@pytest.mark.integration
def test_onboarding_events_run_in_order(
    template: dict[str, Any], local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (EVENTS / "onboarding_validate_request.json").exists():
        pytest.skip("no onboarding events yet")
    from airlock.local import asl_onboarding

    asl_onboarding.ensure_prerequisites(Names())
    monkeypatch.setenv("AIRLOCK_STATE_DIR", str(local_stack.config.state_dir))
    key_arn = SAMPLE_KEY
    out: Any = None
    for step in ONBOARD + OFFBOARD:
        text = (EVENTS / f"onboarding_{step}.json").read_text().replace('"acme"', '"omega"')
        out = invoke(_function_of(template, step), json.loads(text.replace(SAMPLE_KEY, key_arn)),
                     template=TEMPLATE, env_vars=ENV_VARS)
        if step == "create_key":
            key_arn = out["key_arn"]
        if step == "activate_tenant":
            assert out["status"] == "ACTIVE" and out["tenant_id"] == "omega"
    assert out["tenant_id"] == "omega"


# The ingest events' files: the sample each names, at the key it names (the S3 notification's key is
# URL-encoded: "fx+rates%2F2026-11-23.csv" is "fx rates/2026-11-23.csv").
INGEST_FILES = {
    "inbound/quotes-1.csv": ROOT / "tests/data/samples/strata/quotes-1.csv",
    "inbound/fx rates/2026-11-23.csv": ROOT / "tests/data/samples/strata/fx-rates-1.csv",
}
EVENT_VERSIONS = {"3HL4kqtJlcpXroDTDmjVBH40Nrjfkd", "096fKKXTRTtl3on89fVO.nfljtsv6qko"}


@pytest.mark.integration
def test_ingest_events_process_the_uploads_they_name(
    local_stack: LocalStack, ls_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """events/ingest_*.json through `airlock invoke`: the files they name become verdicts and Parquet;
    the folder marker and the malformed message are dropped without failing the batch.

    The pump is paused while the files are uploaded, so the invoke is what processes them; the events
    get the real version ids (the samples' are made up)."""
    from airlock.onboarding.steps import onboard
    from airlock.worker.ledger import Ledger
    from schemas.onboarding import OnboardRequest

    monkeypatch.setenv("AIRLOCK_STATE_DIR", str(local_stack.config.state_dir))
    tenant = onboard(OnboardRequest(tenant_id="demo"), server_id=local_stack.config.server_id, names=Names())
    s3 = ls_session.client("s3")
    assert local_stack.pump is not None
    local_stack.pump.stop()
    try:
        versions = {key: s3.put_object(Bucket=tenant.bucket, Key=key, Body=path.read_bytes())["VersionId"]
                    for key, path in INGEST_FILES.items()}
        for event_file, key in (("ingest_eventbridge.json", "inbound/quotes-1.csv"),
                                ("ingest_s3_notification.json", "inbound/fx rates/2026-11-23.csv")):
            text = (EVENTS / event_file).read_text()
            for made_up in EVENT_VERSIONS:
                text = text.replace(made_up, versions[key])
            result = invoke("IngestFunction", json.loads(text), template=TEMPLATE, env_vars=ENV_VARS)
            assert result == {"batchItemFailures": []}, event_file
    finally:
        local_stack.pump.start()
    records = {r.key: r for r in Ledger(Names()).list_for_tenant("demo")}
    assert set(records) == set(INGEST_FILES), "one ledger entry per file; nothing for the folder marker"
    for key, kind in (("inbound/quotes-1.csv", "quotes"), ("inbound/fx rates/2026-11-23.csv", "fx_rates")):
        record = records[key]
        assert (record.state.value, record.kind, record.verdict) == ("ACCEPTED", kind, "accepted"), record
        assert record.version_id == versions[key] and record.attempts == 1
        parquet = [k for k in record.output_keys if k.endswith(".parquet")]
        assert parquet and all(k.startswith(f"processed/{kind}/") for k in parquet)
        for out_key in parquet:
            assert s3.head_object(Bucket=tenant.bucket, Key=out_key)["SSEKMSKeyId"] == tenant.kms_key_arn


def test_every_template_function_has_an_event(template: dict[str, Any]) -> None:
    """The other direction of test_every_event_is_covered: no function without a sample event."""
    functions = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    with_event = {function_id for function_id, _check, _overrides in EXPECTED.values()}
    with_event |= {function_id for function_id, _test in ELSEWHERE.values()}
    with_event |= {_function_of(template, p.stem.removeprefix("onboarding_"))
                   for p in EVENTS.glob("onboarding_*.json")}
    assert functions == with_event, f"without an event: {sorted(functions - with_event)}"
