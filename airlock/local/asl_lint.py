"""Static checks of the ASL files that cfn-lint cannot make (it does not read ``DefinitionUri``).

Used by ``scripts/check_asl.sh``, which also wraps each file as an inline ``Definition`` for
cfn-lint's States Language schema (:func:`cfn_wrapper`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from airlock.local.asl import AslDefinitionError, placeholders, validate_definition
from airlock.onboarding import errors as step_errors

ROOT = Path(__file__).resolve().parents[2]


def known_error_names() -> set[str]:
    """Exception classes the steps raise (class name = Step Functions error name)."""
    return {n for n, v in vars(step_errors).items() if isinstance(v, type) and issubclass(v, BaseException)}


def state_machines(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::StateMachine"}


def check_machine(logical_id: str, props: dict[str, Any], root: Path = ROOT) -> list[str]:
    """Problems of one state machine: placeholders vs substitutions, structure, error names."""
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str):
        return [f"{logical_id}: DefinitionUri must name a local ASL file"]
    text = (root / uri).read_text()
    try:
        definition = json.loads(text)
    except ValueError as err:
        return [f"{uri}: not JSON ({err})"]
    subs = props.get("DefinitionSubstitutions", {})
    used = placeholders(text)
    problems = [f"{uri}: placeholder ${{{k}}} has no DefinitionSubstitutions key in {logical_id}"
                for k in sorted(used - set(subs))]
    problems += [f"{logical_id}: DefinitionSubstitutions key {k} is not used by {uri}"
                 for k in sorted(set(subs) - used)]
    try:
        validate_definition(definition)
    except AslDefinitionError as err:
        problems.append(f"{uri}: {err}")
    known = known_error_names()
    for name, state in definition.get("States", {}).items():
        for handler in state.get("Retry", []) + state.get("Catch", []):
            for error in handler.get("ErrorEquals", []):
                if not (error.startswith(("States.", "Lambda.")) or error in known):
                    problems.append(f"{uri}: {name} matches error {error!r}, which no step raises")
    return problems


def cfn_wrapper(logical_id: str, props: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """A plain CloudFormation template with the ASL inline, for cfn-lint (rule E3601)."""
    subs = props.get("DefinitionSubstitutions", {})
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            logical_id: {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/asl-lint",
                    "Definition": json.loads((root / props["DefinitionUri"]).read_text()),
                    "DefinitionSubstitutions": {k: f"arn:aws:lambda:us-east-1:123456789012:function:{k}" for k in subs},
                },
            }
        },
    }


def main(argv: list[str]) -> int:
    """``python -m airlock.local.asl_lint OUT_DIR``: print problems, write cfn-lint wrappers."""
    from cfnlint.decode import cfn_yaml

    out = Path(argv[0])
    machines = state_machines(cfn_yaml.load(str(ROOT / "template.yaml")))
    problems = [] if machines else ["template.yaml declares no AWS::Serverless::StateMachine"]
    for logical_id, res in machines.items():
        found = check_machine(logical_id, res["Properties"])
        problems += found
        if not found:
            (out / f"{logical_id}.template.json").write_text(json.dumps(cfn_wrapper(logical_id, res["Properties"])))
    for p in problems:
        print(f"check_asl: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
