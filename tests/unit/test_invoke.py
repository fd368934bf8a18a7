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
def _batch_ok(result: Any) -> None:
    assert result == {"batchItemFailures": []}


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
    "ingest_eventbridge.json": ("IngestFunction", _batch_ok, {}),
    "ingest_s3_notification.json": ("IngestFunction", _batch_ok, {}),
    "identity_provider_password.json": ("IdentityProviderFunction", _login_allowed, {}),
    "identity_provider_key.json": ("IdentityProviderFunction", _key_login_answered, {}),
    "identity_provider_api.json": ("IdentityProviderApiFunction", _api_login_allowed, API_MODE),
}


# Events whose function calls an API moto lacks: fed to the handler by the named test instead.
ELSEWHERE = {
    "host_key_import_create.json": "tests/unit/identity/test_host_keys.py::"
    "test_the_sample_event_imports_the_key_from_its_secret (moto has no Transfer host keys)",
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
