"""The local ASL interpreter follows the States Language specification (time made instant)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airlock.local.asl import (
    AslDefinitionError,
    StateMachine,
    StatesError,
    placeholders,
    read_path,
    retry_delay,
    substitute,
    write_path,
)


class Flaky:
    """A task that raises ``errors`` in order, then returns ``result`` (or echoes its input)."""

    def __init__(self, *errors: BaseException, result: Any = None) -> None:
        self.errors = list(errors)
        self.calls: list[Any] = []
        self.result = result

    def __call__(self, params: Any) -> Any:
        self.calls.append(params)
        if self.errors:
            raise self.errors.pop(0)
        return params if self.result is None else self.result


class Boom(Exception):
    pass


class Other(Exception):
    pass


def machine(states: dict[str, Any], tasks: dict[str, Callable[[Any], Any]], sleeps: list[float] | None = None,
            rand: float = 0.5, start: str = "T") -> StateMachine:
    return StateMachine({"StartAt": start, "States": states}, tasks,
                        sleep=(sleeps.append if sleeps is not None else lambda _s: None), rand=lambda: rand)


def task(**extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "fn", "End": True, **extra}


# -- Retry -----------------------------------------------------------------------------------------


def test_retry_waits_interval_times_backoff_rate_per_attempt_then_succeeds() -> None:
    fn = Flaky(Boom(), Boom(), Boom(), result={"ok": 1})
    sleeps: list[float] = []
    retry = [{"ErrorEquals": ["Boom"], "IntervalSeconds": 3, "MaxAttempts": 3, "BackoffRate": 2}]
    ex = machine({"T": task(Retry=retry)}, {"fn": fn}, sleeps).execute({"a": 1})
    assert ex.succeeded and ex.output == {"ok": 1}
    assert sleeps == [3.0, 6.0, 12.0]
    assert len(fn.calls) == 4 and all(c == {"a": 1} for c in fn.calls)


def test_retry_gives_up_after_max_attempts_and_the_execution_fails_with_the_error() -> None:
    fn = Flaky(Boom("1"), Boom("2"), Boom("3"))
    ex = machine({"T": task(Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 2}])}, {"fn": fn}).execute({})
    assert ex.status == "FAILED" and ex.error == "Boom"
    assert '"errorMessage": "3"' in (ex.cause or "")  # Lambda-shaped cause
    assert len(fn.calls) == 3


def test_max_attempts_zero_never_retries() -> None:
    fn = Flaky(Boom())
    ex = machine({"T": task(Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 0}])}, {"fn": fn}).execute({})
    assert ex.error == "Boom" and len(fn.calls) == 1


def test_defaults_are_interval_1_backoff_2_and_3_attempts() -> None:
    sleeps: list[float] = []
    fn = Flaky(Boom(), Boom(), Boom(), Boom())
    ex = machine({"T": task(Retry=[{"ErrorEquals": ["States.ALL"]}])}, {"fn": fn}, sleeps).execute({})
    assert sleeps == [1.0, 2.0, 4.0] and ex.status == "FAILED"


def test_max_delay_caps_and_full_jitter_scales_by_a_random_fraction() -> None:
    retrier = {"IntervalSeconds": 2, "BackoffRate": 3, "MaxDelaySeconds": 10, "JitterStrategy": "FULL"}
    assert [retry_delay(retrier, n, lambda: 1.0) for n in range(4)] == [2.0, 6.0, 10.0, 10.0]
    assert retry_delay(retrier, 1, lambda: 0.25) == 1.5
    assert retry_delay({**retrier, "JitterStrategy": "NONE"}, 1, lambda: 0.25) == 6.0


def test_only_the_first_matching_retrier_applies_and_each_has_its_own_counter() -> None:
    fn = Flaky(Boom(), Other(), Boom(), Other(), result={"done": True})
    sleeps: list[float] = []
    retry = [
        {"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1},
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 7, "MaxAttempts": 2, "BackoffRate": 1},
    ]
    ex = machine({"T": task(Retry=retry)}, {"fn": fn}, sleeps).execute({})
    assert ex.succeeded and sleeps == [1.0, 7.0, 1.0, 7.0]


def test_retry_counters_reset_when_the_state_is_entered_again() -> None:
    calls: list[int] = []

    def fn(_params: Any) -> Any:  # fails on the first try of each entry
        calls.append(1)
        if len(calls) % 2:
            raise Boom()
        return {"n": len(calls)}

    states = {
        "T": {"Type": "Task", "Resource": "fn", "ResultPath": "$.r",
              "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 1}], "Next": "Again"},
        "Again": {"Type": "Choice", "Choices": [{"Variable": "$.loop", "IsPresent": False, "Next": "Mark"}],
                  "Default": "Done"},
        "Mark": {"Type": "Pass", "Result": True, "ResultPath": "$.loop", "Next": "T"},
        "Done": {"Type": "Succeed"},
    }
    ex = machine(states, {"fn": fn}).execute({})
    assert ex.succeeded, ex.cause  # one retry allowed on each entry: both Booms absorbed
    assert len(calls) == 4


# -- Catch -----------------------------------------------------------------------------------------


def test_catch_puts_error_and_cause_at_result_path_and_goes_to_next() -> None:
    states = {
        "T": task(Catch=[{"ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "Handled"}]),
        "Handled": {"Type": "Pass", "End": True},
    }
    ex = machine(states, {"fn": Flaky(Boom("bad"))}).execute({"keep": 1})
    assert ex.succeeded
    assert ex.output["keep"] == 1 and ex.output["error"]["Error"] == "Boom"
    assert "bad" in ex.output["error"]["Cause"]


def test_catch_without_result_path_replaces_the_input_with_the_error() -> None:
    states = {"T": task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "H"}]), "H": {"Type": "Succeed"}}
    ex = machine(states, {"fn": Flaky(Boom())}).execute({"keep": 1})
    assert set(ex.output) == {"Error", "Cause"}


def test_retries_are_exhausted_before_catch_applies() -> None:
    fn = Flaky(Boom(), Boom(), Boom())
    states = {
        "T": task(Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 2}],
                  Catch=[{"ErrorEquals": ["Boom"], "ResultPath": "$.e", "Next": "H"}]),
        "H": {"Type": "Succeed"},
    }
    ex = machine(states, {"fn": fn}).execute({})
    assert ex.succeeded and len(fn.calls) == 3


def test_catchers_are_tried_in_order_and_unmatched_errors_fail_the_execution() -> None:
    states = {
        "T": task(Catch=[{"ErrorEquals": ["Other"], "Next": "A"}, {"ErrorEquals": ["Boom"], "Next": "B"}]),
        "A": {"Type": "Fail", "Error": "WentA"},
        "B": {"Type": "Fail", "Error": "WentB"},
    }
    assert machine(states, {"fn": Flaky(Boom())}).execute({}).error == "WentB"
    lone = {"T": task(Catch=[{"ErrorEquals": ["Other"], "Next": "A"}]), "A": {"Type": "Succeed"}}
    assert machine(lone, {"fn": Flaky(Boom())}).execute({}).error == "Boom"


def test_states_all_does_not_catch_runtime_errors_but_task_failed_catches_task_errors() -> None:
    states = {"T": task(OutputPath="$.missing", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "H"}]),
              "H": {"Type": "Succeed"}}
    assert machine(states, {"fn": Flaky(result={"x": 1})}).execute({}).error == "States.Runtime"
    caught = {"T": task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.e", "Next": "H"}]),
              "H": {"Type": "Succeed"}}
    assert machine(caught, {"fn": Flaky(Boom())}).execute({}).succeeded
    timeout = {"T": task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}]), "H": {"Type": "Succeed"}}
    assert machine(timeout, {"fn": Flaky(StatesError("States.Timeout"))}).execute({}).error == "States.Timeout"


def test_a_named_states_error_from_a_service_task_keeps_its_name() -> None:
    ex = machine({"T": task()}, {"fn": Flaky(StatesError("SNS.NotFound", "no topic"))}).execute({})
    assert (ex.error, ex.cause) == ("SNS.NotFound", "no topic")


# -- data flow -------------------------------------------------------------------------------------


def test_input_path_parameters_result_selector_result_path_output_path() -> None:
    seen: list[Any] = []

    def fn(params: Any) -> Any:
        seen.append(params)
        return {"Payload": {"arn": "k1"}, "Noise": 1}

    state = task(
        InputPath="$.request",
        Parameters={"id.$": "$.id", "fixed": "x", "exec.$": "$$.Execution.Name",
                    "msg.$": "States.Format('tenant {} ready', $.id)", "nested": {"ids.$": "$.ids[1]"}},
        ResultSelector={"key_arn.$": "$.Payload.arn"},
        ResultPath="$.steps.key",
        OutputPath="$.steps",
    )
    ex = machine({"T": state}, {"fn": fn}).execute({"request": {"id": "acme", "ids": [1, 2]}, "other": 1}, name="e1")
    assert seen == [{"id": "acme", "fixed": "x", "exec": "e1", "msg": "tenant acme ready", "nested": {"ids": 2}}]
    assert ex.output == {"key": {"key_arn": "k1"}}


def test_result_path_null_keeps_the_input_and_missing_parameter_path_is_a_failure() -> None:
    ex = machine({"T": task(ResultPath=None)}, {"fn": Flaky(result={"r": 1})}).execute({"a": 1})
    assert ex.output == {"a": 1}
    bad = machine({"T": task(Parameters={"x.$": "$.nope"})}, {"fn": Flaky()}).execute({})
    assert bad.error == "States.ParameterPathFailure"


def test_choice_pass_succeed_and_fail_with_paths() -> None:
    states = {
        "C": {"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Variable": "$.s", "StringEquals": "go"}],
             "Next": "P"},
            {"Variable": "$.flag", "BooleanEquals": True, "Next": "F"},
        ], "Default": "S"},
        "P": {"Type": "Pass", "Result": {"v": 1}, "ResultPath": "$.p", "Next": "S"},
        "F": {"Type": "Fail", "ErrorPath": "$.err", "CausePath": "$.why"},
        "S": {"Type": "Succeed"},
    }
    m = machine(states, {}, start="C")
    assert m.execute({"n": 2, "s": "go"}).output == {"n": 2, "s": "go", "p": {"v": 1}}
    failed = m.execute({"n": 0, "s": "", "flag": True, "err": "Nope", "why": "because"})
    assert (failed.status, failed.error, failed.cause) == ("FAILED", "Nope", "because")
    assert m.execute({"n": 0, "s": "", "flag": False}).succeeded
    no_default = machine({"C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "S"}]},
                          "S": {"Type": "Succeed"}}, {}, start="C")
    assert no_default.execute({"n": 2}).error == "States.NoChoiceMatched"


def test_paths() -> None:
    data = {"a": {"b": [10, {"c": "x"}]}, "d-e": 1}
    assert read_path("$.a.b[1].c", data) == "x"
    assert read_path("$['d-e']", data) == 1
    assert read_path("$$.Execution.Id", {}, {"Execution": {"Id": "i"}}) == "i"
    with pytest.raises(StatesError):
        read_path("$.a.zz", data)
    assert write_path("$.x.y", {"x": {"k": 1}}, 2) == {"x": {"k": 1, "y": 2}}
    with pytest.raises(StatesError, match="ResultPathMatchFailure"):
        write_path("$.a.b.c", data, 1)


# -- definitions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "message"),
    [
        ({"T": {"Type": "Map", "End": True}}, "not supported"),
        ({"T": task(Next="Nowhere", End=None)}, "unknown state"),
        ({"T": task(Retry=[{"ErrorEquals": ["States.ALL", "Boom"]}])}, "States.ALL"),
        ({"T": task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "T"}, {"ErrorEquals": ["B"], "Next": "T"}])},
         "States.ALL"),
        ({"T": task(Retry=[{"ErrorEquals": ["B"], "BackoffRate": 0.5}])}, "BackoffRate"),
        ({"T": task(Retry=[{"ErrorEquals": ["B"], "JitterStrategy": "SOME"}])}, "JitterStrategy"),
    ],
)
def test_definitions_the_spec_forbids_are_refused_at_load(states: dict[str, Any], message: str) -> None:
    for s in states.values():
        if s.get("End") is None:
            s.pop("End", None)
    with pytest.raises(AslDefinitionError, match=message):
        StateMachine({"StartAt": "T", "States": states}, {"fn": Flaky()})


def test_unbound_task_resources_are_refused() -> None:
    with pytest.raises(AslDefinitionError, match="no local implementation"):
        StateMachine({"StartAt": "T", "States": {"T": task()}}, {})


def test_definition_substitutions() -> None:
    text = '{"Resource": "${FnArn}", "Other": "${Topic}"}'
    assert placeholders(text) == {"FnArn", "Topic"}
    assert substitute(text, {"FnArn": "arn:1", "Topic": "arn:2"}) == '{"Resource": "arn:1", "Other": "arn:2"}'
    with pytest.raises(AslDefinitionError, match="Topic"):
        substitute(text, {"FnArn": "arn:1"})
