"""template.yaml, the ASL files and the local runner's wiring must not drift apart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from test_template_drift import NAMES, ROOT, as_list, load_template, resolve  # tests/unit is on sys.path

from airlock.local import asl_lint, asl_onboarding
from airlock.onboarding import names as onames
from airlock.onboarding.policies import tenant_boundary

Template = dict[str, Any]
ALLOWED_STAR = ("xray:", "kms:CreateKey", "secretsmanager:ListSecrets")  # APIs without resource-level scoping


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def getatt_target(value: dict[str, Any]) -> str:
    arg = value["Fn::GetAtt"]
    return str(arg[0] if isinstance(arg, list) else arg.split(".")[0])


def machines(template: Template) -> dict[str, dict[str, Any]]:
    return asl_lint.state_machines(template)


def test_every_substitution_key_matches_a_placeholder_and_the_asl_is_valid(template: Template) -> None:
    found = machines(template)
    assert set(found) == {"OnboardTenantStateMachine", "OffboardTenantStateMachine"}
    for logical_id, res in found.items():
        assert asl_lint.check_machine(logical_id, res["Properties"]) == []


def test_state_machines_are_named_by_convention(template: Template) -> None:
    names = {resolve(template, r["Properties"]["Name"]) for r in machines(template).values()}
    assert names == {onames.state_machine_name(NAMES, w) for w in (onames.ONBOARD, onames.OFFBOARD)}
    assert {Path(r["Properties"]["DefinitionUri"]).name for r in machines(template).values()} == {
        p.name for p in asl_onboarding.ASL_FILES.values()}


def test_local_runner_binds_each_substitution_to_the_handler_the_template_deploys(template: Template) -> None:
    for res in machines(template).values():
        for key, value in res["Properties"]["DefinitionSubstitutions"].items():
            if key == "AlertsTopicArn":
                assert value == {"Ref": "AlertsTopic"}
                continue
            logical_id = getatt_target(value)
            fn = template["Resources"][logical_id]["Properties"]
            step, handler = asl_onboarding.STEP_FUNCTIONS[key]
            assert fn["Handler"].replace("/", ".") == handler, key
            assert resolve(template, fn["FunctionName"]) == onames.function_name(NAMES, step), key
            assert fn["CodeUri"] == "functions/onboarding/"
    local = asl_onboarding.substitutions(NAMES)
    assert local["AlertsTopicArn"] == f"arn:aws:sns:{NAMES.region}:{NAMES.account_id}:{NAMES.alerts_topic}"


def test_each_state_machine_may_invoke_exactly_its_steps_and_publish_alerts(template: Template) -> None:
    for logical_id, res in machines(template).items():
        props = res["Properties"]
        statements = [s for p in props["Policies"] for s in p["Statement"]]
        invoke = next(s for s in statements if s["Action"] == "lambda:InvokeFunction")
        wanted = [v for k, v in props["DefinitionSubstitutions"].items() if k.endswith("FunctionArn")]
        assert sorted(map(json.dumps, as_list(invoke["Resource"]))) == sorted(map(json.dumps, wanted)), logical_id
        publish = next(s for s in statements if s["Action"] == "sns:Publish")
        assert publish["Resource"] == {"Ref": "AlertsTopic"}


def test_the_boundary_in_the_template_is_the_one_roles_are_created_with(template: Template) -> None:
    props = template["Resources"]["TenantRoleBoundary"]["Properties"]
    name, path = resolve(template, props["ManagedPolicyName"]), resolve(template, props["Path"])
    assert f"arn:aws:iam::{NAMES.account_id}:policy{path}{name}" == onames.tenant_boundary_policy_arn(NAMES)
    assert resolve(template, props["PolicyDocument"]) == tenant_boundary(NAMES)


def test_the_bucket_step_runs_as_the_role_every_bucket_policy_admits(template: Template) -> None:
    fn = template["Resources"]["CreateBucketFunction"]["Properties"]
    role_id = getatt_target(fn["Role"])
    role = template["Resources"][role_id]["Properties"]
    assert resolve(template, role["RoleName"]) == onames.bucket_admin_role_name(NAMES)


def _step_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function" and props.get("CodeUri") == "functions/onboarding/":
            out += [(lid, s) for p in props.get("Policies", []) for s in p["Statement"]]
    role = template["Resources"]["OnboardingBucketAdminRole"]["Properties"]
    out += [("OnboardingBucketAdminRole", s) for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    return out


def test_step_permissions_are_scoped_by_naming_convention(template: Template) -> None:
    for lid, s in _step_statements(template):
        resources = [resolve(template, r) for r in as_list(s["Resource"])]
        if resources == ["*"]:
            assert all(a.startswith(ALLOWED_STAR) for a in as_list(s["Action"])), f"{lid}/{s['Sid']}"
            continue
        for r in resources:
            assert r != "*" and (not r.endswith(":*") or ":log-group:" in r), f"{lid}/{s['Sid']}: {r}"
            if r.startswith("arn:aws:iam::") and ":role/" in r:
                assert r == f"arn:aws:iam::{NAMES.account_id}:role{NAMES.tenant_role_path}*", f"{lid}: {r}"
            if r.startswith("arn:aws:s3:::"):
                assert r.startswith(f"arn:aws:s3:::{NAMES.tenant_bucket_prefix}"), f"{lid}: {r}"
            if r.startswith("arn:aws:kms:") and ":key/" in r:
                assert "Condition" in s, f"{lid}/{s['Sid']}: tenant keys only (by tag)"
    creates = [s for _, s in _step_statements(template) if "iam:CreateRole" in as_list(s["Action"])]
    assert creates and all(s["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == {"Ref": "TenantRoleBoundary"}
                           for s in creates), "tenant roles can only be created with the boundary"


def test_step_handlers_import_from_what_the_artifact_ships() -> None:
    text = (ROOT / "functions/onboarding/Makefile").read_text() + (ROOT / "functions/common.mk").read_text()
    blocked = ["airlock.local", "pyarrow",
               *sorted({m.replace("/", ".") for m in re.findall(r"--exclude='?(airlock/[a-z_]+)'?", text)})]
    assert {"airlock.ingest", "airlock.worker"} <= set(blocked)
    probe = f"""
import importlib, importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{{name}} is not shipped with the onboarding functions")
sys.meta_path.insert(0, Block())
for path in {sorted({h for _, h in asl_onboarding.STEP_FUNCTIONS.values()})!r}:
    module, attr = path.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attr)), path
"""
    env = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin",
           "POWERTOOLS_TRACE_DISABLED": "1"}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_function_requirements_follow_pyproject() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower(): d.replace(" ", "") for d in deps}
    for line in (ROOT / "functions/onboarding/requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name = re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0].lower()
            assert name != "pyarrow"
            assert pinned.get(name) == line.strip().replace(" ", ""), line


def test_the_asl_lint_notices_placeholder_and_error_name_mistakes(tmp_path: Path) -> None:
    asl = {"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "${StepArn}", "End": True,
        "Retry": [{"ErrorEquals": ["IamPropagationErorr"], "BackoffRate": 2}]}}}
    (tmp_path / "m.asl.json").write_text(json.dumps(asl))
    problems = asl_lint.check_machine("M", {"DefinitionUri": "m.asl.json",
                                            "DefinitionSubstitutions": {"OtherArn": "x"}}, root=tmp_path)
    assert any("${StepArn}" in p for p in problems)
    assert any("OtherArn is not used" in p for p in problems)
    assert any("IamPropagationErorr" in p for p in problems)
