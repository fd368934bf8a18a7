"""Every function in template.yaml logs with the Lambda context and a correlation id, and is traced.

Behavioural: each handler is invoked with a LocalLambdaContext and an event that makes it log one
line without reaching AWS; the JSON line is read from the powertools handler's stream, and a fake
X-Ray provider records the ``## <handler>`` subsegment. The onboarding steps are given their sample
event from ``events/`` and a ``_ctx`` that logs and raises, so the line comes from inside the step.
Then the state machines: every Lambda task with Parameters is passed the execution id.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airlock.invoke import load_template
from airlock.local import asl_onboarding
from airlock.local.context import LocalLambdaContext
from airlock.naming import LOCAL_SERVER_ID, Names
from airlock.onboarding import names as onames

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTIONS = {
    logical_id: str(res["Properties"]["Handler"])
    for logical_id, res in TEMPLATE["Resources"].items()
    if res["Type"] == "AWS::Serverless::Function"
}
# The steps the ASL hands the execution input verbatim (a strict schema: no room for execution_id).
ENTRY_STEPS = {"validate-request", "register-tenant", "suspend-tenant"}


class StopHere(Exception):
    """Raised from inside a step once it has logged: the rest of the step needs AWS."""


@dataclass
class Probe:
    """An event that makes the handler log without AWS; the ids its line must carry."""

    event: Any
    correlation_id: str | None  # None: the Lambda request id
    tenant_id: str | None = None
    raises: type[BaseException] | None = None


def _sqs_malformed(message_id: str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": message_id, "receiptHandle": "rh", "body": "not json", "md5OfBody": "",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:airlock-ingest",
    }]}


def _sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def probe_for(handler: str) -> Probe:
    module, attr = handler.rsplit(".", 1)
    if module == "handlers/ingest":
        return Probe(_sqs_malformed("msg-obs-1"), "msg-obs-1")
    if module == "handlers/identity_provider":
        return Probe({"username": "obs-user"}, None)  # Transfer Family's event has no id: the request id
    if module == "handlers/identity_provider_api":
        event = {"requestContext": {"requestId": "api-req-obs-1"}, "headers": {"PasswordBase64": "%%not-base64"},
                 "pathParameters": {"serverId": LOCAL_SERVER_ID, "username": "obs-user"}}
        return Probe(event, "api-req-obs-1")
    if module == "handlers/host_key_import":
        event = _sample("host_key_import_create.json")
        return Probe(event, event["RequestId"])
    if module in ("handlers/onboarding", "handlers/onboarding_offboard"):
        event = _sample(f"onboarding_{attr}.json")
        return Probe(event, event.get("execution_id"), tenant_id="acme", raises=StopHere)
    raise AssertionError(f"{handler}: no probe event; add one so its logging is checked")


class FakeSegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


class FakeProvider:
    """Stands in for aws_xray_sdk's recorder: the subsegments opened and the annotations put."""

    def __init__(self) -> None:
        self.segments: list[FakeSegment] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **_: Any) -> Iterator[FakeSegment]:
        segment = FakeSegment(name or "")
        self.segments.append(segment)
        yield segment

    def put_annotation(self, key: str, value: Any) -> None:
        self.segments[-1].put_annotation(key, value)


@contextlib.contextmanager
def captured_lines(logger: Any) -> Iterator[list[dict[str, Any]]]:
    """The JSON lines the powertools logger writes while inside the block."""
    stream = io.StringIO()
    handler = logger.registered_handler
    old = handler.setStream(stream)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        handler.setStream(old)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))


def invoke(
    logical_id: str, monkeypatch: pytest.MonkeyPatch, context: Any
) -> tuple[Probe, list[dict[str, Any]], FakeProvider]:
    handler_path = FUNCTIONS[logical_id]
    module_path, attr = handler_path.rsplit(".", 1)
    module = importlib.import_module(module_path.replace("/", "."))
    probe = probe_for(handler_path)
    provider = FakeProvider()
    monkeypatch.setattr(module.tracer, "provider", provider)
    monkeypatch.setattr(module.tracer, "disabled", False)  # annotations are dropped when disabled
    if hasattr(module, "_ctx"):  # a step: log from inside it, then stop before AWS

        def ctx() -> Any:
            module.logger.warning("probe from inside the step")
            raise StopHere

        monkeypatch.setattr(module, "_ctx", ctx)
    if module_path == "handlers/host_key_import":
        def no_aws(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("no AWS in this test")

        monkeypatch.setattr(module.boto3, "client", no_aws)
        monkeypatch.setattr(module.urllib.request, "urlopen", lambda *_a, **_k: contextlib.nullcontext(io.BytesIO()))
    with captured_lines(module.logger) as lines:
        if probe.raises:
            with pytest.raises(probe.raises):
                getattr(module, attr)(probe.event, context)
        else:
            getattr(module, attr)(probe.event, context)
    assert lines, f"{logical_id}: the probe event logged nothing"
    return probe, lines, provider


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_logs_the_lambda_context_and_a_correlation_id(
    logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = LocalLambdaContext(function_name=f"airlock-{logical_id}")
    probe, lines, provider = invoke(logical_id, monkeypatch, context)
    for line in lines:
        assert line["function_request_id"] == context.aws_request_id, line
        assert line["function_name"] == context.function_name and isinstance(line["cold_start"], bool), line
        assert line["correlation_id"] == (probe.correlation_id or context.aws_request_id), line
        if probe.tenant_id:
            assert line["tenant_id"] == probe.tenant_id, line
    attr = FUNCTIONS[logical_id].rsplit(".", 1)[1]
    assert provider.segments[0].name == f"## {attr}", "traced by tracer.capture_lambda_handler"
    if probe.tenant_id:
        assert provider.segments[0].annotations["tenant_id"] == probe.tenant_id


def test_a_second_invocation_carries_its_own_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key survives from the previous invocation (no clear_state: every key is set each time)."""
    first = LocalLambdaContext(function_name="airlock-CreateKeyFunction")
    invoke("CreateKeyFunction", monkeypatch, first)
    second = LocalLambdaContext(function_name="airlock-ValidateRequestFunction")
    _, lines, _ = invoke("ValidateRequestFunction", monkeypatch, second)
    (line,) = lines
    assert line["function_request_id"] == line["correlation_id"] == second.aws_request_id


def test_the_identity_provider_accepts_no_context_and_keeps_its_audit_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local SFTP server and tests call the Lambda face in-process, possibly with context=None."""
    from handlers import identity_provider

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "airlock-identity-provider")
    with captured_lines(identity_provider.logger) as lines:
        assert identity_provider.lambda_handler({"username": "obs-user"}, None) == {}
    (line,) = lines
    assert line["function_request_id"] and line["correlation_id"] == line["function_request_id"]
    assert line["function_name"] == "airlock-identity-provider"
    assert {k: line[k] for k in ("event", "result", "reason", "user", "face")} == {
        "event": "sftp_login", "result": "denied", "reason": "bad_request", "user": "obs-user", "face": "lambda"}
    assert line["service"] == identity_provider.SERVICE and line["message"] == "sftp login denied"


# -- the state machines pass the execution id ------------------------------------------------------


def _lambda_tasks(which: str) -> dict[str, dict[str, Any]]:
    definition = json.loads(asl_onboarding.ASL_FILES[which].read_text())
    return {name: s for name, s in definition["States"].items()
            if s["Type"] == "Task" and s["Resource"].endswith("FunctionArn}")}


@pytest.mark.parametrize("which", [onames.ONBOARD, onames.OFFBOARD])
def test_every_step_with_parameters_is_passed_the_execution_id(which: str) -> None:
    steps = {key: step for key, (step, _) in asl_onboarding.STEP_FUNCTIONS.items()}
    without = set()
    for name, state in _lambda_tasks(which).items():
        if "Parameters" in state:
            assert state["Parameters"].get("execution_id.$") == "$$.Execution.Id", name
        else:
            without.add(steps[state["Resource"][2:-1]])
    assert without <= ENTRY_STEPS, "a step without Parameters logs the Lambda request id as its correlation id"


FAKE_OUTPUTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "validate-request": lambda e: e,
    "register-tenant": lambda e: {"tenant_id": e["tenant_id"], "bucket": "b", "status": "PENDING"},
    "create-key": lambda e: {"key_arn": "k", "alias": "a"},
    "create-role": lambda e: {"role_arn": "r"},
    "create-bucket": lambda e: {"bucket": "b", "bucket_arn": "arn:aws:s3:::b"},
    "lock-key-policy": lambda e: {},
    "create-sftp-users": lambda e: {"sftp_users": [u["username"] for u in e["users"]]},
    "activate-tenant": lambda e: {"status": "ACTIVE"},
    "suspend-tenant": lambda e: {**e, "status": "SUSPENDED"},
    "disable-sftp-users": lambda e: {"disabled_users": ["acme-ops"]},
    "deny-tenant-role": lambda e: {},
    "schedule-key-deletion": lambda e: {"key_deletion_date": "2026-12-08T00:00:00+00:00"},
    "mark-offboarded": lambda e: {},
}
INPUTS = {
    onames.ONBOARD: {"tenant_id": "acme", "server_id": LOCAL_SERVER_ID, "users": [{"username": "acme-ops"}]},
    onames.OFFBOARD: {"tenant_id": "acme", "server_id": LOCAL_SERVER_ID, "key_deletion_window_days": 7,
                      "requested_by": "ops@example.com", "reason": "test"},
}


@pytest.mark.parametrize("which", [onames.ONBOARD, onames.OFFBOARD])
def test_the_local_runner_passes_the_execution_id_from_the_context_object(which: str) -> None:
    names = Names()
    seen: dict[str, dict[str, Any]] = {}

    def fake(step: str) -> Callable[[Any], Any]:
        def run(event: Any) -> Any:
            seen[step] = event
            return FAKE_OUTPUTS[step](event)

        return run

    tasks = {onames.function_arn(names, step): fake(step) for step, _ in asl_onboarding.STEP_FUNCTIONS.values()
             if step in FAKE_OUTPUTS}
    execution = asl_onboarding.state_machine(which, names, tasks=tasks, sleep=lambda _s: None).execute(INPUTS[which])
    assert execution.succeeded, (execution.error, execution.cause)
    steps = {key: step for key, (step, _) in asl_onboarding.STEP_FUNCTIONS.items()}
    expected = {steps[s["Resource"][2:-1]] for s in _lambda_tasks(which).values()} - {"mark-failed"}
    assert set(seen) == expected
    for step, event in seen.items():
        assert event.get("execution_id") == (None if step in ENTRY_STEPS else execution.execution_id), step
