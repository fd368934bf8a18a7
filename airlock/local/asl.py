"""A local interpreter for the Amazon States Language subset our state machines use.

moto executes ASL but its Lambda tasks only echo their input, so locally the very same ASL file
runs here, with each Task resource bound to an in-process callable. Supported: Task, Choice, Pass,
Succeed, Fail; InputPath, Parameters (``.$`` keys, ``$``/``$$`` paths, ``States.Format`` and
``States.JsonToString``), ResultSelector, ResultPath, OutputPath; Retry (IntervalSeconds,
MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy) and Catch, with the error-matching
rules of the specification (``States.ALL``, ``States.TaskFailed``). Anything else is refused when
the definition is loaded, so a state machine that would behave differently on AWS never runs.

A task that raises reports the exception's class name as the error, as Lambda's Python runtime
does (``errorType``), and a Lambda-shaped JSON ``Cause``. Time is injectable (``sleep``, ``rand``),
so retry waits are instant in tests.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Task = Callable[[Any], Any]

SUPPORTED_TYPES = frozenset({"Task", "Choice", "Pass", "Succeed", "Fail"})
MAX_TRANSITIONS = 25_000  # Step Functions' own history limit
# Errors States.ALL does not match (the specification's "terminal" errors).
UNCATCHABLE = frozenset({"States.Runtime", "States.DataLimitExceeded"})

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_PATH_TOKEN = re.compile(r"\.([A-Za-z0-9_\-@]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class AslDefinitionError(ValueError):
    """The definition uses something this interpreter (or the specification) does not allow."""


class StatesError(Exception):
    """An error in flight through the state machine: a name that Retry/Catch match, and a cause."""

    def __init__(self, error: str, cause: str = "", *, from_task: bool = False) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause
        self.from_task = from_task


# -- paths ---------------------------------------------------------------------------------------


def _tokens(path: str) -> list[str | int]:
    rest = path[2:] if path.startswith("$$") else path[1:]
    out: list[str | int] = []
    pos = 0
    while pos < len(rest):
        m = _PATH_TOKEN.match(rest, pos)
        if m is None:
            raise StatesError("States.Runtime", f"unsupported JSONPath {path!r}")
        name, index, quoted, dquoted = m.groups()
        out.append(int(index) if index is not None else (name or quoted or dquoted or ""))
        pos = m.end()
    return out


def read_path(path: str, data: Any, context: Any = None) -> Any:
    """A reference path (``$.a.b[0]``; ``$$.`` reads the context object). Missing -> StatesError."""
    if not path.startswith("$"):
        raise StatesError("States.Runtime", f"{path!r} is not a path (must start with '$')")
    value = context if path.startswith("$$") else data
    for token in _tokens(path):
        in_list = isinstance(token, int) and isinstance(value, list) and 0 <= token < len(value)
        if in_list or (isinstance(token, str) and isinstance(value, dict) and token in value):
            value = value[token]
        else:
            raise StatesError("States.Runtime", f"path {path!r} selects nothing in the input")
    return value


def write_path(path: str, target: Any, value: Any) -> Any:
    """Apply a ResultPath: a copy of ``target`` with ``value`` placed at ``path``."""
    tokens = _tokens(path)
    if path.startswith("$$") or any(isinstance(t, int) for t in tokens):
        raise StatesError("States.ResultPathMatchFailure", f"ResultPath {path!r} must be a plain field path")
    if not tokens:
        return value
    root = copy.deepcopy(target)
    if not isinstance(root, dict):
        raise StatesError("States.ResultPathMatchFailure", f"cannot apply {path!r} to a non-object input")
    node = root
    for token in tokens[:-1]:
        child = node.setdefault(str(token), {})
        if not isinstance(child, dict):
            raise StatesError("States.ResultPathMatchFailure", f"{path!r}: {token!r} is not an object")
        node = child
    node[str(tokens[-1])] = value
    return root


_INTRINSIC = re.compile(r"^(States\.[A-Za-z]+)\((.*)\)$", re.DOTALL)


def _split_args(text: str) -> list[str]:
    args, depth, quote, buf = [], 0, False, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote and i + 1 < len(text):
            buf += text[i : i + 2]
            i += 2
            continue
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and not quote and depth == 0:
            args.append(buf.strip())
            buf = ""
        else:
            buf += ch
        i += 1
    if buf.strip():
        args.append(buf.strip())
    return args


def _intrinsic(expr: str, data: Any, context: Any) -> Any:
    m = _INTRINSIC.match(expr.strip())
    if m is None:
        raise StatesError("States.Runtime", f"unsupported expression {expr!r}")
    name, raw = m.groups()

    def arg(a: str) -> Any:
        if a.startswith("'") and a.endswith("'"):
            return re.sub(r"\\(.)", r"\1", a[1:-1])
        if a.startswith("$"):
            return read_path(a, data, context)
        if a.startswith("States."):
            return _intrinsic(a, data, context)
        return json.loads(a)

    args = [arg(a) for a in _split_args(raw)]
    if name == "States.Format":
        template, values = str(args[0]), list(args[1:])
        parts = re.split(r"(?<!\\)\{\}", template)
        if len(parts) - 1 != len(values):
            raise StatesError("States.IntrinsicFailure", f"{expr}: {len(values)} arguments for {len(parts) - 1} '{{}}'")
        out = parts[0]
        for value, part in zip(values, parts[1:], strict=True):
            out += (value if isinstance(value, str) else json.dumps(value)) + part
        return out
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.StringToJson":
        return json.loads(args[0])
    raise StatesError("States.Runtime", f"intrinsic {name} is not supported locally")


def resolve_template(template: Any, data: Any, context: Any, failure: str = "States.ParameterPathFailure") -> Any:
    """Parameters / ResultSelector: keys ending in ``.$`` take a path or intrinsic's value."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                try:
                    if not isinstance(value, str):
                        raise StatesError(failure, f"{key}: value must be a path string")
                    out[key[:-2]] = (
                        read_path(value, data, context) if value.startswith("$") else _intrinsic(value, data, context)
                    )
                except StatesError as err:
                    raise StatesError(failure, f"{key}: {err.cause or err.error}") from err
            else:
                out[key] = resolve_template(value, data, context, failure)
        return out
    if isinstance(template, list):
        return [resolve_template(v, data, context, failure) for v in template]
    return copy.deepcopy(template)


# -- choice rules --------------------------------------------------------------------------------

_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}
_KINDS: dict[str, Callable[[Any], bool]] = {
    "String": lambda v: isinstance(v, str),
    "Numeric": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "Timestamp": lambda v: isinstance(v, str),
}


def _rule_matches(rule: Mapping[str, Any], data: Any, context: Any) -> bool:
    if "And" in rule:
        return all(_rule_matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(_rule_matches(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not _rule_matches(rule["Not"], data, context)
    variable = rule["Variable"]
    try:
        value = read_path(variable, data, context)
        present = True
    except StatesError:
        value, present = None, False
    for op, expected in rule.items():
        if op in ("Variable", "Next"):
            continue
        if op == "IsPresent":
            return present == expected
        if not present:
            raise StatesError("States.Runtime", f"Choice: {variable} selects nothing")
        if op == "IsNull":
            return (value is None) == expected
        if op.startswith("Is") and op[2:] in _KINDS:
            return _KINDS[op[2:]](value) == expected
        if op == "StringMatches":
            pattern = re.escape(str(expected)).replace(r"\*", ".*")
            return isinstance(value, str) and re.fullmatch(pattern, value) is not None
        path_form = op.endswith("Path")
        base = op[:-4] if path_form else op
        for kind, check in _KINDS.items():
            if base.startswith(kind) and base[len(kind):] in _COMPARATORS:
                other = read_path(expected, data, context) if path_form else expected
                if kind == "Boolean" and base[len(kind):] != "Equals":
                    break
                return check(value) and check(other) and _COMPARATORS[base[len(kind):]](value, other)
        raise AslDefinitionError(f"Choice comparator {op!r} is not supported")
    raise AslDefinitionError(f"Choice rule without a comparator: {rule}")


# -- definition checks ---------------------------------------------------------------------------


def _check_error_lists(state_name: str, handlers: list[Mapping[str, Any]], what: str) -> None:
    for i, h in enumerate(handlers):
        errors = h.get("ErrorEquals")
        if not errors:
            raise AslDefinitionError(f"{state_name}.{what}[{i}]: ErrorEquals must be a non-empty list")
        if "States.ALL" in errors and (len(errors) != 1 or i != len(handlers) - 1):
            raise AslDefinitionError(f"{state_name}.{what}[{i}]: States.ALL must appear alone, in the last {what}")


def validate_definition(definition: Mapping[str, Any]) -> None:
    """Structural checks (the spec's MUSTs we rely on); raises AslDefinitionError."""
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise AslDefinitionError("definition has no States")
    if definition.get("StartAt") not in states:
        raise AslDefinitionError(f"StartAt {definition.get('StartAt')!r} is not a state")
    for name, state in states.items():
        kind = state.get("Type")
        if kind not in SUPPORTED_TYPES:
            raise AslDefinitionError(f"state {name!r}: type {kind!r} is not supported by the local runner")
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Catch", [])]
        targets += [c.get("Next") for c in state.get("Choices", [])]
        for target in filter(None, targets):
            if target not in states:
                raise AslDefinitionError(f"state {name!r} goes to unknown state {target!r}")
        if kind in ("Task", "Pass") and not state.get("End") and not state.get("Next"):
            raise AslDefinitionError(f"state {name!r} needs Next or End")
        if kind == "Task":
            if not isinstance(state.get("Resource"), str):
                raise AslDefinitionError(f"state {name!r}: Task needs a Resource")
            _check_error_lists(name, state.get("Retry", []), "Retry")
            _check_error_lists(name, state.get("Catch", []), "Catch")
            for r in state.get("Retry", []):
                if r.get("BackoffRate", 2.0) < 1.0 or r.get("MaxAttempts", 3) < 0 or r.get("IntervalSeconds", 1) < 1:
                    raise AslDefinitionError(f"state {name!r}: Retry needs BackoffRate>=1, MaxAttempts>=0, Interval>=1")
                if r.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
                    raise AslDefinitionError(f"state {name!r}: JitterStrategy must be FULL or NONE")


def placeholders(text: str) -> set[str]:
    """The ``${Name}`` DefinitionSubstitutions placeholders of an ASL document."""
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    """Apply DefinitionSubstitutions as Step Functions does; every placeholder must be known."""
    missing = placeholders(text) - set(substitutions)
    if missing:
        raise AslDefinitionError(f"no DefinitionSubstitutions for {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)


# -- execution -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEvent:
    type: str
    state: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    """The outcome of one run: status SUCCEEDED or FAILED, output or error/cause, and the history."""

    execution_id: str
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def events(self, kind: str) -> list[HistoryEvent]:
        return [e for e in self.history if e.type == kind]


def error_of(exc: BaseException) -> StatesError:
    """How Step Functions names a task's exception: Lambda's errorType is the class name."""
    if isinstance(exc, StatesError):
        exc.from_task = True
        return exc
    name = type(exc).__name__
    cause = json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": name,
            "requestId": str(uuid.uuid4()),
            "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
        }
    )
    return StatesError(name, cause, from_task=True)


def error_matches(names: list[str], err: StatesError) -> bool:
    if err.error in names:
        return True
    if "States.ALL" in names and err.error not in UNCATCHABLE:
        return True
    return "States.TaskFailed" in names and err.from_task and err.error != "States.Timeout"


def retry_delay(retrier: Mapping[str, Any], attempt: int, rand: Callable[[], float]) -> float:
    """Seconds before retry number ``attempt + 1``: Interval x Backoff^attempt, capped, jittered."""
    delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** attempt
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, float(retrier["MaxDelaySeconds"]))
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay *= rand()
    return delay


class StateMachine:
    """One ASL definition bound to task callables. ``execute`` runs it to completion."""

    def __init__(
        self,
        definition: Mapping[str, Any] | str,
        tasks: Mapping[str, Task],
        *,
        name: str = "local",
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        on_event: Callable[[HistoryEvent], None] | None = None,
    ) -> None:
        self.definition: dict[str, Any] = json.loads(definition) if isinstance(definition, str) else dict(definition)
        validate_definition(self.definition)
        self.tasks = dict(tasks)
        self.name = name
        self.sleep = sleep
        self.rand = rand
        self.on_event = on_event
        unbound = {s["Resource"] for s in self.definition["States"].values() if s["Type"] == "Task"} - set(tasks)
        if unbound:
            raise AslDefinitionError(f"no local implementation for task resources {sorted(unbound)}")

    @classmethod
    def from_file(
        cls, path: Path, substitutions: Mapping[str, str], tasks: Mapping[str, Task], **kw: Any
    ) -> StateMachine:
        return cls(substitute(path.read_text(), substitutions), tasks, **kw)

    def execute(self, execution_input: Any, *, name: str | None = None) -> Execution:
        name = name or str(uuid.uuid4())
        execution = Execution(execution_id=f"arn:aws:states:local:000000000000:execution:{self.name}:{name}")
        context: dict[str, Any] = {
            "Execution": {
                "Id": execution.execution_id,
                "Name": name,
                "Input": copy.deepcopy(execution_input),
                "StartTime": datetime.now(UTC).isoformat(),
            },
            "StateMachine": {"Id": f"arn:aws:states:local:000000000000:stateMachine:{self.name}", "Name": self.name},
            "State": {},
        }
        self._emit(execution, HistoryEvent("ExecutionStarted", detail={"input": execution_input}))
        data: Any = copy.deepcopy(execution_input)
        current: str = self.definition["StartAt"]
        for _ in range(MAX_TRANSITIONS):
            state = self.definition["States"][current]
            context["State"] = {"Name": current, "EnteredTime": datetime.now(UTC).isoformat(), "RetryCount": 0}
            self._emit(execution, HistoryEvent("StateEntered", current, {"input": data}))
            try:
                data, nxt = self._run_state(execution, current, state, data, context)
            except StatesError as err:
                return self._fail(execution, err.error, err.cause)
            self._emit(execution, HistoryEvent("StateExited", current, {"output": data}))
            if nxt is None:
                if state["Type"] == "Fail":
                    return execution
                execution.status, execution.output = "SUCCEEDED", data
                self._emit(execution, HistoryEvent("ExecutionSucceeded", detail={"output": data}))
                return execution
            current = nxt
        return self._fail(execution, "States.Runtime", f"more than {MAX_TRANSITIONS} state transitions")

    # -- one state -------------------------------------------------------------------------------
    def _run_state(
        self, execution: Execution, name: str, state: Mapping[str, Any], raw: Any, context: dict[str, Any]
    ) -> tuple[Any, str | None]:
        kind = state["Type"]
        if kind == "Fail":
            error = read_path(state["ErrorPath"], raw, context) if "ErrorPath" in state else state.get("Error", "")
            cause = read_path(state["CausePath"], raw, context) if "CausePath" in state else state.get("Cause", "")
            self._fail(execution, str(error), str(cause))
            return raw, None
        effective = self._input_path(state, raw)
        if kind == "Succeed":
            return self._output_path(state, effective), None
        if kind == "Choice":
            for rule in state["Choices"]:
                if _rule_matches(rule, effective, context):
                    return self._output_path(state, effective), rule["Next"]
            if "Default" in state:
                return self._output_path(state, effective), state["Default"]
            raise StatesError("States.NoChoiceMatched", f"no Choice rule of {name!r} matched")
        if kind == "Pass":
            if "Parameters" in state:
                effective = resolve_template(state["Parameters"], effective, context)
            result = copy.deepcopy(state["Result"]) if "Result" in state else effective
            return self._output_path(state, self._result_path(state, raw, result)), self._next(state)
        return self._run_task(execution, name, state, raw, effective, context)

    def _run_task(  # noqa: PLR0917 - one state's whole context
        self,
        execution: Execution,
        name: str,
        state: Mapping[str, Any],
        raw: Any,
        effective: Any,
        context: dict[str, Any],
    ) -> tuple[Any, str | None]:
        retriers: list[Mapping[str, Any]] = state.get("Retry", [])
        attempts = [0] * len(retriers)
        while True:
            try:
                params = (
                    resolve_template(state["Parameters"], effective, context) if "Parameters" in state else effective
                )
                self._emit(execution, HistoryEvent("TaskScheduled", name, {"resource": state["Resource"]}))
                try:
                    result = self.tasks[state["Resource"]](copy.deepcopy(params))
                except Exception as exc:  # any failure of the task is a States error, as on AWS
                    raise error_of(exc) from exc
                self._emit(execution, HistoryEvent("TaskSucceeded", name, {"output": result}))
                if "ResultSelector" in state:
                    result = resolve_template(state["ResultSelector"], result, context)
                output = self._output_path(state, self._result_path(state, raw, result))
                return output, self._next(state)
            except StatesError as err:
                self._emit(execution, HistoryEvent("TaskFailed", name, {"error": err.error, "cause": err.cause}))
                index = next((i for i, r in enumerate(retriers) if error_matches(r["ErrorEquals"], err)), None)
                if index is not None and attempts[index] < int(retriers[index].get("MaxAttempts", 3)):
                    delay = retry_delay(retriers[index], attempts[index], self.rand)
                    attempts[index] += 1
                    context["State"]["RetryCount"] = sum(attempts)
                    self._emit(execution, HistoryEvent("TaskRetry", name, {"error": err.error, "delay": delay,
                                                                          "attempt": attempts[index]}))
                    self.sleep(delay)
                    continue
                for catcher in state.get("Catch", []):
                    if error_matches(catcher["ErrorEquals"], err):
                        error_output = {"Error": err.error, "Cause": err.cause}
                        self._emit(execution, HistoryEvent("TaskCaught", name, {"error": err.error,
                                                                               "next": catcher["Next"]}))
                        path = catcher.get("ResultPath", "$")
                        caught = copy.deepcopy(raw) if path is None else write_path(path, raw, error_output)
                        return caught, catcher["Next"]
                raise

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _next(state: Mapping[str, Any]) -> str | None:
        return None if state.get("End") else state["Next"]

    @staticmethod
    def _input_path(state: Mapping[str, Any], raw: Any) -> Any:
        if "InputPath" in state and state["InputPath"] is None:
            return {}
        return read_path(state.get("InputPath", "$"), raw)

    @staticmethod
    def _output_path(state: Mapping[str, Any], data: Any) -> Any:
        if "OutputPath" in state and state["OutputPath"] is None:
            return {}
        return read_path(state.get("OutputPath", "$"), data)

    @staticmethod
    def _result_path(state: Mapping[str, Any], raw: Any, result: Any) -> Any:
        if "ResultPath" in state and state["ResultPath"] is None:
            return copy.deepcopy(raw)
        return write_path(state.get("ResultPath", "$"), raw, result)

    def _fail(self, execution: Execution, error: str, cause: str) -> Execution:
        execution.status, execution.error, execution.cause = "FAILED", error, cause
        self._emit(execution, HistoryEvent("ExecutionFailed", detail={"error": error, "cause": cause}))
        return execution

    def _emit(self, execution: Execution, event: HistoryEvent) -> None:
        execution.history.append(event)
        if self.on_event is not None:
            self.on_event(event)
