"""``airlock invoke FUNCTION_ID --event FILE``: run one function in-process, as ``sam local invoke`` would.

Handler, timeout, memory and environment come from ``template.yaml`` (Globals + the function,
parameters at their defaults unless overridden), then ``--env-vars`` (sam's format: ``Parameters``
for every function, ``<FunctionId>`` for one; like sam, only variables the template declares are
overridden). The AWS endpoint is ``--endpoint``, else the running local stack, else an ephemeral
in-process one (moto, no SFTP, no pump). No Docker: the handler is imported from this checkout.
Prints the handler's JSON result on stdout (logs go to stderr); exit 1 if the handler raised.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock import aws
from airlock.naming import DEFAULT_REGION, LOCAL_ACCOUNT_ID

DEFAULT_TEMPLATE = Path("template.yaml")
DEFAULT_ENV_VARS = Path("events/env.json")
PSEUDO = {"AWS::AccountId": LOCAL_ACCOUNT_ID, "AWS::Region": DEFAULT_REGION, "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "airlock-local", "AWS::NoValue": None}
LOCAL_BASE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": DEFAULT_REGION, "AWS_REGION": DEFAULT_REGION,
                  "POWERTOOLS_TRACE_DISABLED": "true"}


class InvokeError(Exception):
    """A problem with the request (unknown function, bad file), not with the handler."""


# -- template ------------------------------------------------------------------------------------


def load_template(path: Path) -> dict[str, Any]:
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) turned into their long form."""
    import yaml  # PyYAML comes with the local extra (moto)

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Condition" if suffix == "Condition" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    data = yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise InvokeError(f"{path} is not a CloudFormation template")
    return data


@dataclass
class Resolver:
    """Enough of CloudFormation's intrinsics for environment variables: Ref, Sub, Join, If, Select."""

    template: dict[str, Any]
    overrides: dict[str, str]

    def param(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        spec = self.template.get("Parameters", {}).get(name)
        if spec is None:
            return None
        default = spec.get("Default", "")
        return default.split(",") if spec.get("Type") == "CommaDelimitedList" else str(default)

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template.get("Conditions", {})[name]))

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) != 1:
            return {k: self.value(x) for k, x in v.items()}
        (fn, arg), = v.items()
        if fn == "Ref":
            if arg in PSEUDO:
                return PSEUDO[arg]
            return self.param(arg) if arg in self.template.get("Parameters", {}) else arg
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals":
            a, b = self.value(arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not self.value(arg[0])
        if fn == "Fn::And":
            return all(self.value(x) for x in arg)
        if fn == "Fn::Or":
            return any(self.value(x) for x in arg)
        if fn == "Fn::If":
            name, yes, no = arg
            return self.value(yes if self.condition(name) else no)
        if fn == "Fn::Join":
            sep, items = arg
            values = self.value(items)
            return sep.join(",".join(x) if isinstance(x, list) else str(x) for x in values)
        if fn == "Fn::Select":
            return self.value(arg[1])[int(arg[0])]
        if fn == "Fn::Split":
            return str(self.value(arg[1])).split(arg[0])
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else arg
            return self.sub(text, local)
        if fn == "Fn::GetAtt":
            # Attributes of resources that do not exist locally: sam local invoke cannot know them either.
            return ""
        return v

    def sub(self, text: str, local: dict[str, Any]) -> str:
        import re

        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            got = self.value(local[key]) if key in local else self.value({"Ref": key}) if "." not in key else ""
            return ",".join(got) if isinstance(got, list) else str(got)

        return re.sub(r"\$\{([^}]+)\}", one, text)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    function_name: str
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]


def function_spec(template: dict[str, Any], logical_id: str, overrides: dict[str, str] | None = None) -> FunctionSpec:
    resources = template["Resources"]
    functions = sorted(k for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function")
    if logical_id not in functions:
        raise InvokeError(f"no function {logical_id!r} in the template; functions: {', '.join(functions)}")
    r = Resolver(template, overrides or {})
    glob = template.get("Globals", {}).get("Function", {})
    props = resources[logical_id].get("Properties", {})
    env: dict[str, str] = {}
    for source in (glob, props):
        for key, value in (source.get("Environment", {}).get("Variables", {}) or {}).items():
            resolved = r.value(value)
            env[key] = "" if resolved is None else str(resolved)
    return FunctionSpec(
        logical_id=logical_id,
        handler=str(props.get("Handler") or glob.get("Handler")),
        function_name=str(r.value(props.get("FunctionName", logical_id))),
        timeout_s=float(props.get("Timeout", glob.get("Timeout", 3))),
        memory_mb=int(props.get("MemorySize", glob.get("MemorySize", 128))),
        environment=env,
    )


def apply_env_vars_file(spec: FunctionSpec, data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """sam's --env-vars semantics: ``Parameters`` then ``<FunctionId>``, declared variables only."""
    env = dict(spec.environment)
    ignored: list[str] = []
    for section in ("Parameters", spec.logical_id):
        for key, value in (data.get(section) or {}).items():
            if key in env:
                env[key] = str(value)
            elif section == spec.logical_id:
                ignored.append(key)
    return env, ignored


# -- running -------------------------------------------------------------------------------------


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    aws.reset_clients()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()


@contextlib.contextmanager
def aws_endpoint(explicit: str | None) -> Iterator[dict[str, str]]:
    """Endpoint variables: explicit, else the running local stack's, else an ephemeral stack's.

    Against the embedded stack, its account and prefix win over the file (written for LocalStack).
    """
    if explicit:
        yield {"AWS_ENDPOINT_URL": explicit}
        return
    from airlock.local.stack import LocalStack, LocalStackConfig, read_state

    state = read_state()
    if state:
        yield {"AWS_ENDPOINT_URL": str(state["aws_endpoint"]), "AIRLOCK_ACCOUNT_ID": LOCAL_ACCOUNT_ID,
               "AIRLOCK_PREFIX": str(state.get("prefix", "airlock"))}
        return
    print("airlock invoke: no local stack running; starting an ephemeral one (empty: no tenants)", file=sys.stderr)
    with LocalStack(LocalStackConfig(aws_port=0, with_sftp=False, with_pump=False)) as stack:
        yield {"AWS_ENDPOINT_URL": stack.endpoint, "AIRLOCK_ACCOUNT_ID": stack.names.account_id,
               "AIRLOCK_PREFIX": stack.names.prefix}


def call_handler(spec: FunctionSpec, event: Any, env: dict[str, str]) -> Any:
    """Import the handler with the function's environment in place and call it with a Lambda context."""
    from airlock.local.context import LocalLambdaContext

    module_path, attr = spec.handler.rsplit(".", 1)
    lambda_env = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "_HANDLER": spec.handler,
        **env,
    }
    # Logs to stderr, the result alone to stdout (as sam local invoke); powertools binds the stream at import.
    with patched_environ(lambda_env), contextlib.redirect_stdout(sys.stderr):
        handler = getattr(importlib.import_module(module_path.replace("/", ".")), attr)
        context = LocalLambdaContext(function_name=spec.function_name, memory_limit_in_mb=spec.memory_mb,
                                     timeout_s=spec.timeout_s)
        return handler(event, context)


def invoke(function_id: str, event: Any, *, template: Path = DEFAULT_TEMPLATE, env_vars: dict[str, Any] | None = None,
           parameter_overrides: dict[str, str] | None = None, endpoint: str | None = None) -> Any:
    spec = function_spec(load_template(template), function_id, parameter_overrides)
    env, ignored = apply_env_vars_file(spec, env_vars or {})
    for key in ignored:
        print(f"airlock invoke: {key} is not declared by {function_id} in the template; ignored (as sam does)",
              file=sys.stderr)
    with aws_endpoint(endpoint) as local:
        # Local credentials and the endpoint win over the file: the file is written for sam's Docker network.
        return call_handler(spec, event, {**env, **LOCAL_BASE_ENV, **local})


def _overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r}: use Key=Value")
        out[key] = value
    return out


def cmd_invoke(args: argparse.Namespace) -> int:
    try:
        event = json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
        env_vars = json.loads(Path(args.env_vars).read_text()) if args.env_vars else {}
        result = invoke(args.function_id, event, template=Path(args.template), env_vars=env_vars,
                        parameter_overrides=_overrides(args.parameter_overrides), endpoint=args.endpoint)
    except (InvokeError, OSError, ValueError, argparse.ArgumentTypeError) as err:
        print(f"airlock invoke: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the handler raised: report it as Lambda would
        traceback.print_exc(file=sys.stderr)
        print(json.dumps({"errorMessage": str(err), "errorType": type(err).__name__}))
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


EPILOG = """\
examples:
  airlock invoke IngestFunction --event events/ingest_eventbridge.json
  airlock invoke IdentityProviderFunction --event events/identity_provider_password.json --env-vars events/env.json
  airlock invoke IngestFunction --event - < my-event.json --parameter-overrides Prefix=airdev

The same files work with `sam local invoke FUNCTION_ID -e FILE --env-vars events/env.json` (needs Docker).
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("invoke", help="run one Lambda function in-process against the local stack",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("function_id", metavar="FUNCTION_ID", help="logical id in template.yaml, e.g. IngestFunction")
    p.add_argument("--event", "-e", required=True, help="event JSON file ('-' for standard input)")
    p.add_argument("--env-vars", "-n", default=None, help="sam-style environment file (e.g. events/env.json)")
    p.add_argument("--template", "-t", default=str(DEFAULT_TEMPLATE), help="SAM template (default template.yaml)")
    p.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="template parameters (default: their Default)")
    p.add_argument("--endpoint", help="AWS endpoint (default: the running local stack, else an ephemeral one)")
    p.set_defaults(func=cmd_invoke)
