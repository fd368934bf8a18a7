"""template.yaml and the code that names and creates the same resources must not drift apart.

The local stack builds the platform from ``airlock.local.resources`` and everything finds resources
through ``airlock.naming.Names``; AWS builds it from ``template.yaml``. Each ``check_*`` below
compares one aspect with ``${Prefix}`` resolved to the default prefix, and raises AssertionError on
drift. The tests run every check on the real template, and again on mutated copies (or mutated
specs) to prove the check notices a change made in one place only.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from airlock.local.resources import INGEST_MAX_RECEIVE_COUNT, TableSpec, object_created_pattern, table_specs
from airlock.naming import Names
from airlock.tenancy.policies import worker_role_permissions

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NAMES = Names()  # prefix "airlock", the local account and region
PSEUDO = {
    "AWS::AccountId": NAMES.account_id,
    "AWS::Region": NAMES.region,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
Template = dict[str, Any]


# -- loading and resolving -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def load_template() -> Template:
    return cfn_yaml.load(str(TEMPLATE))


def physical_name(template: Template, logical_id: str) -> str | None:
    """The name the template gives a resource, resolved; None if CloudFormation would generate one."""
    res = template["Resources"][logical_id]
    prop = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Events::EventBus": "Name",
        "AWS::Events::Rule": "Name",
        "AWS::SNS::Topic": "TopicName",
        "AWS::IAM::Role": "RoleName",
        "AWS::Serverless::Function": "FunctionName",
        "AWS::Logs::LogGroup": "LogGroupName",
    }.get(res["Type"])
    if prop is None or prop not in res.get("Properties", {}):
        return None
    value = resolve(template, res["Properties"][prop])
    assert isinstance(value, str), f"{logical_id}.{prop} does not resolve to a string: {value!r}"
    return value


def _arn(template: Template, logical_id: str) -> str:
    """The ARN a resource will have, built the way Names builds it (for named resources)."""
    res_type = template["Resources"][logical_id]["Type"]
    name = physical_name(template, logical_id)
    a, r = NAMES.account_id, NAMES.region
    arns = {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{r}:{a}:table/{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{name}",
        "AWS::Events::EventBus": f"arn:aws:events:{r}:{a}:event-bus/{name}",
        "AWS::Events::Rule": f"arn:aws:events:{r}:{a}:rule/{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{r}:{a}:{name}",
        "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{name}:*",
    }
    if name is None or res_type not in arns:
        return f"<{logical_id}.Arn>"
    return arns[res_type]


def _attr(template: Template, logical_id: str, attr: str) -> str:
    if attr == "Arn":
        return _arn(template, logical_id)
    if attr == "QueueName":
        return physical_name(template, logical_id) or f"<{logical_id}.QueueName>"
    return f"<{logical_id}.{attr}>"


def resolve(template: Template, value: Any) -> Any:
    """Resolve Ref / Fn::Sub / Fn::GetAtt with parameter defaults and the local account/region.

    Named resources resolve to their name (Ref of a table, rule, bus, role) or ARN (GetAtt .Arn);
    anything else stays a readable placeholder such as ``<PlatformKey.Arn>``.
    """
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}

    def ref(name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in params:
            return params[name]
        if name in template["Resources"]:
            res_type = template["Resources"][name]["Type"]
            if res_type in ("AWS::SQS::Queue",):
                return f"https://sqs.{NAMES.region}.amazonaws.com/{NAMES.account_id}/{physical_name(template, name)}"
            if res_type in ("AWS::SNS::Topic",):
                return _arn(template, name)
            return physical_name(template, name) or f"<{name}>"
        raise AssertionError(f"Ref to unknown name {name!r}")

    def sub(text: str, local: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key in local:
                return str(resolve(template, local[key]))
            if "." in key:
                logical_id, attr = key.split(".", 1)
                return _attr(template, logical_id, attr)
            return ref(key)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return ref(value["Ref"])
        if set(value) == {"Fn::Sub"}:
            arg = value["Fn::Sub"]
            if isinstance(arg, list):
                return sub(arg[0], arg[1])
            return sub(arg, {})
        if set(value) == {"Fn::GetAtt"}:
            arg = value["Fn::GetAtt"]
            logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return _attr(template, logical_id, attr)
        return {k: resolve(template, v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(template, v) for v in value]
    return value


def resources_of(template: Template, res_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == res_type}


def by_name(template: Template, res_type: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, keyed by their resolved physical name."""
    out: dict[str, dict[str, Any]] = {}
    for logical_id, res in resources_of(template, res_type).items():
        name = physical_name(template, logical_id)
        assert name, f"{logical_id} must be named from Prefix (naming.py), not left to CloudFormation"
        out[name] = {"LogicalId": logical_id, **res}
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- checks (each raises AssertionError on drift) ------------------------------------------------


def check_tables(template: Template, specs: list[TableSpec]) -> None:
    tables = by_name(template, "AWS::DynamoDB::Table")
    assert set(tables) == {s.name for s in specs}, f"tables differ: template {sorted(tables)}"
    for spec in specs:
        props = tables[spec.name]["Properties"]
        keys = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
        assert keys.get("HASH") == spec.hash_key, f"{spec.name}: hash key"
        assert keys.get("RANGE") == spec.range_key, f"{spec.name}: range key"
        indexes = {
            gsi["IndexName"]: (
                next(k["AttributeName"] for k in gsi["KeySchema"] if k["KeyType"] == "HASH"),
                next((k["AttributeName"] for k in gsi["KeySchema"] if k["KeyType"] == "RANGE"), None),
            )
            for gsi in props.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == spec.indexes, f"{spec.name}: indexes {indexes} != {spec.indexes}"
        key_attrs = {spec.hash_key, *([spec.range_key] if spec.range_key else [])}
        key_attrs |= {a for h, r in spec.indexes.values() for a in (h, r) if a}
        defined = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
        assert defined == dict.fromkeys(key_attrs, "S"), f"{spec.name}: attribute definitions"
        ttl = props.get("TimeToLiveSpecification")
        got_ttl = ttl["AttributeName"] if ttl and ttl.get("Enabled") else None
        assert got_ttl == spec.ttl_attribute, f"{spec.name}: TTL attribute"
        assert props["BillingMode"] == "PAY_PER_REQUEST", f"{spec.name}: billing mode"
        sse = props["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS", f"{spec.name}: SSE-KMS"
        assert resolve(template, sse["KMSMasterKeyId"]) == "<PlatformKey.Arn>", f"{spec.name}: platform key"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def check_rule(template: Template, pattern: dict[str, Any]) -> None:
    rules = by_name(template, "AWS::Events::Rule")
    assert NAMES.object_created_rule in rules, f"no rule named {NAMES.object_created_rule}"
    rule = rules[NAMES.object_created_rule]["Properties"]
    assert "EventBusName" not in rule, "S3 sends Object Created to the default bus"
    assert resolve(template, rule["EventPattern"]) == pattern, "event pattern differs from object_created_pattern()"
    targets = resolve(template, rule["Targets"])
    assert [t["Arn"] for t in targets] == [NAMES.queue_arn(NAMES.ingest_queue)], "rule must target the ingest queue"


def check_queues(template: Template, max_receive_count: int) -> None:
    queues = by_name(template, "AWS::SQS::Queue")
    assert set(queues) == {NAMES.ingest_queue, NAMES.ingest_dlq}, f"queues: {sorted(queues)}"
    ingest = resolve(template, queues[NAMES.ingest_queue]["Properties"])
    redrive = ingest["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == NAMES.queue_arn(NAMES.ingest_dlq), "DLQ target"
    assert redrive["maxReceiveCount"] == max_receive_count, "maxReceiveCount != INGEST_MAX_RECEIVE_COUNT"

    fn = next(
        f
        for f in resources_of(template, "AWS::Serverless::Function").values()
        if f["Properties"]["Handler"] == "handlers/ingest.lambda_handler"
    )
    timeout = fn["Properties"]["Timeout"]
    (event,) = fn["Properties"]["Events"].values()
    window = event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
    assert ingest["VisibilityTimeout"] >= 6 * timeout + window, "visibility < 6 x timeout + window"
    assert resolve(template, event["Properties"]["Queue"]) == NAMES.queue_arn(NAMES.ingest_queue)
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    # Both queues under the customer-managed queue key, which admits EventBridge for our rule only.
    for name in (NAMES.ingest_queue, NAMES.ingest_dlq):
        key_ref = queues[name]["Properties"]["KmsMasterKeyId"]
        assert isinstance(key_ref, dict) and set(key_ref) == {"Ref"}, f"{name}: needs a customer-managed key"
        key = template["Resources"][key_ref["Ref"]]
        assert key["Type"] == "AWS::KMS::Key"
        statements = resolve(template, key["Properties"]["KeyPolicy"]["Statement"])
        events = [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]
        assert events, f"{name}: key policy must admit events.amazonaws.com"
        rule_arn = f"arn:aws:events:{NAMES.region}:{NAMES.account_id}:rule/{NAMES.object_created_rule}"
        assert all(s["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn for s in events)

    (policy,) = resources_of(template, "AWS::SQS::QueuePolicy").values()
    sends = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert all(
        s["Principal"] == {"Service": "events.amazonaws.com"}
        and resolve(template, s["Condition"]["ArnEquals"]["aws:SourceArn"]) == rule_arn
        for s in sends
    ), "only the rule may send, by aws:SourceArn"


def check_bus_and_topic(template: Template) -> None:
    assert set(by_name(template, "AWS::Events::EventBus")) == {NAMES.platform_bus}
    topics = by_name(template, "AWS::SNS::Topic")
    assert set(topics) == {NAMES.alerts_topic}
    assert "KmsMasterKeyId" in topics[NAMES.alerts_topic]["Properties"], "alerts topic must be KMS-encrypted"


def worker_statements(template: Template) -> tuple[str, list[dict[str, Any]]]:
    """The worker role's name and every statement attached to it (inline and RolePolicy)."""
    fn = next(
        f
        for f in resources_of(template, "AWS::Serverless::Function").values()
        if f["Properties"]["Handler"] == "handlers/ingest.lambda_handler"
    )
    role_ref = fn["Properties"].get("Role")
    assert role_ref, "the ingest function needs its own named role (tenant roles trust it by ARN)"
    role_id = role_ref["Fn::GetAtt"][0] if "Fn::GetAtt" in role_ref else role_ref["Ref"]
    role = template["Resources"][role_id]
    assert "Policies" not in fn["Properties"], "SAM policies on an explicit role would be ignored"
    assert not role["Properties"].get("ManagedPolicyArns"), "managed policies cannot be checked here"
    statements: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    for res in resources_of(template, "AWS::IAM::RolePolicy").values():
        if res["Properties"]["RoleName"] == {"Ref": role_id}:
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    for res in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in res["Properties"].get("Roles", []):
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    return str(physical_name(template, role_id)), resolve(template, statements)


def check_worker_role(template: Template) -> None:
    role_name, statements = worker_statements(template)
    assert role_name == NAMES.worker_role_name, "worker role name != Names.worker_role_name"
    for s in statements:
        assert s["Effect"] == "Allow", "unexpected Deny: keep the worker's policy allow-only and minimal"
        assert "NotAction" not in s and "NotResource" not in s, "NotAction/NotResource grants too much"
        for action in as_list(s["Action"]):
            service = action.split(":", 1)[0].lower()
            assert action != "*" and service not in ("s3", "kms"), f"worker role must not have {action}"
        if any(a.lower().startswith("sts:") for a in as_list(s["Action"])):
            tenant_roles = f"arn:aws:iam::{NAMES.account_id}:role{NAMES.tenant_role_path}*"
            assert as_list(s["Resource"]) == [tenant_roles], f"STS only on tenant roles: {s['Resource']}"
    # Every statement of the Python twin is in the template, resolved to the same ARNs.
    expected = worker_role_permissions(NAMES)["Statement"]
    for want in expected:
        got = next((s for s in statements if s.get("Sid") == want["Sid"]), None)
        assert got is not None, f"worker role lacks statement {want['Sid']}"
        assert sorted(as_list(got["Action"])) == sorted(as_list(want["Action"])), f"{want['Sid']}: actions"
        assert sorted(as_list(got["Resource"])) == sorted(as_list(want["Resource"])), f"{want['Sid']}: resources"


def handler_target(handler: str) -> tuple[str, str]:
    """``handlers/ingest.lambda_handler`` -> (``handlers.ingest``, ``lambda_handler``)."""
    module, _, attr = handler.rpartition(".")
    return module.replace("/", "."), attr


def excluded_packages(code_uri: str) -> list[str]:
    """Packages the function's Makefile leaves out of its artifact (``--exclude=airlock/x``)."""
    makefile = ROOT / code_uri / "Makefile"
    text = makefile.read_text() + (ROOT / "functions" / "common.mk").read_text()
    return sorted({m.replace("/", ".") for m in re.findall(r"--exclude='?(airlock/[a-z_]+)'?", text)})


def requirement_names(code_uri: str) -> set[str]:
    lines = (ROOT / code_uri / "requirements.txt").read_text().splitlines()
    reqs = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    return {re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower() for req in reqs}


# -- tests ---------------------------------------------------------------------------------------


def test_tables_match_local_specs(template: Template) -> None:
    check_tables(template, table_specs(NAMES))


def test_rule_pattern_matches_local_pattern(template: Template) -> None:
    check_rule(template, object_created_pattern(NAMES))


def test_queues_match_local_redrive_and_lambda_guidance(template: Template) -> None:
    check_queues(template, INGEST_MAX_RECEIVE_COUNT)


def test_bus_and_topic_names(template: Template) -> None:
    check_bus_and_topic(template)


def test_worker_role_reaches_tenant_data_only_through_tenant_roles(template: Template) -> None:
    check_worker_role(template)


def test_functions_get_the_naming_environment(template: Template) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert resolve(template, env["AIRLOCK_PREFIX"]) == NAMES.prefix
    assert resolve(template, env["AIRLOCK_ACCOUNT_ID"]) == NAMES.account_id
    assert "AIRLOCK_SFTP_SERVER_IDS" in env
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Airlock"
    for logical_id, fn in resources_of(template, "AWS::Serverless::Function").items():
        assert "POWERTOOLS_SERVICE_NAME" in fn["Properties"]["Environment"]["Variables"], logical_id


def test_identity_provider_permissions(template: Template) -> None:
    fn = template["Resources"]["IdentityProviderFunction"]["Properties"]
    statements = [s for p in fn["Policies"] for s in resolve(template, p["Statement"])]
    secrets = [s for s in statements if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
    assert secrets and all(
        as_list(s["Resource"]) == [f"arn:aws:secretsmanager:{NAMES.region}:{NAMES.account_id}:secret:sftp/*"]
        for s in secrets
    )
    for s in statements:
        for action in as_list(s["Action"]):
            assert action.split(":")[0] not in ("s3", "kms", "sts"), action
    perm = resolve(template, template["Resources"]["IdentityProviderInvokePermission"]["Properties"])
    assert perm["Principal"] == "transfer.amazonaws.com" and perm["SourceAccount"] == NAMES.account_id


@pytest.mark.parametrize("logical_id", ["IngestFunction", "IdentityProviderFunction"])
def test_handler_imports_from_what_the_artifact_ships(template: Template, logical_id: str) -> None:
    """The Handler names an importable callable, using only the packages the Makefile ships."""
    props = template["Resources"][logical_id]["Properties"]
    module, attr = handler_target(props["Handler"])
    blocked = ["airlock.local", *excluded_packages(props["CodeUri"])]
    if "pyarrow" not in requirement_names(props["CodeUri"]):
        blocked.append("pyarrow")
    probe = f"""
import importlib, importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{{name}} is not shipped with this function")
sys.meta_path.insert(0, Block())
mod = importlib.import_module({module!r})
assert callable(getattr(mod, {attr!r})), "handler attribute is not callable"
"""
    env = {
        "AWS_REGION": NAMES.region,
        "AWS_DEFAULT_REGION": NAMES.region,
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"{props['Handler']} does not import within its artifact:\n{proc.stderr[-2000:]}"


def test_function_requirements_follow_pyproject() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower(): d.replace(" ", "") for d in deps}
    for code_uri in ("functions/ingest", "functions/identity"):
        for line in (ROOT / code_uri / "requirements.txt").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name = re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0].lower()
                assert pinned.get(name) == line.strip().replace(" ", ""), f"{code_uri}: {line} != pyproject"
    assert "pyarrow" not in requirement_names("functions/identity"), "the identity provider must not ship pyarrow"


# -- the checks notice drift introduced in one place only -----------------------------------------


def _mutated(template: Template, edit: Any) -> Template:
    copied = copy.deepcopy(template)
    edit(copied["Resources"])
    return copied


def test_renaming_a_table_in_the_template_only_is_caught(template: Template) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["FilesTable"]["Properties"]["TableName"] = {"Fn::Sub": "${Prefix}-file-ledger"}

    with pytest.raises(AssertionError, match="tables differ"):
        check_tables(_mutated(template, edit), table_specs(NAMES))


def test_renaming_a_table_in_the_code_only_is_caught(template: Template) -> None:
    specs = [
        dataclasses.replace(s, name=s.name + "-v2") if s.name == NAMES.tenants_table else s for s in table_specs(NAMES)
    ]
    with pytest.raises(AssertionError, match="tables differ"):
        check_tables(template, specs)


def test_changing_a_gsi_in_one_place_is_caught(template: Template) -> None:
    specs = [
        dataclasses.replace(s, indexes={"by-tenant": ("tenant_id", "uploaded_at")})
        if s.name == NAMES.files_table
        else s
        for s in table_specs(NAMES)
    ]
    with pytest.raises(AssertionError, match="indexes"):
        check_tables(template, specs)


def test_changing_the_rule_pattern_in_one_place_is_caught(template: Template) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["ObjectCreatedRule"]["Properties"]["EventPattern"]["detail"]["object"]["key"] = [{"prefix": "in/"}]

    with pytest.raises(AssertionError, match="event pattern"):
        check_rule(_mutated(template, edit), object_created_pattern(NAMES))
    pattern = json.loads(json.dumps(object_created_pattern(NAMES)))
    pattern["detail-type"] = ["Object Created", "Object Deleted"]
    with pytest.raises(AssertionError, match="event pattern"):
        check_rule(template, pattern)


def test_changing_the_redrive_count_in_one_place_is_caught(template: Template) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["IngestQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = INGEST_MAX_RECEIVE_COUNT + 1

    with pytest.raises(AssertionError, match="maxReceiveCount"):
        check_queues(_mutated(template, edit), INGEST_MAX_RECEIVE_COUNT)
    with pytest.raises(AssertionError, match="maxReceiveCount"):
        check_queues(template, INGEST_MAX_RECEIVE_COUNT + 1)


def test_renaming_the_bus_or_topic_is_caught(template: Template) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["PlatformBus"]["Properties"]["Name"] = {"Fn::Sub": "${Prefix}-events"}

    with pytest.raises(AssertionError):
        check_bus_and_topic(_mutated(template, edit))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::airlock-t-*/*"},
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/*"},
        },
    ],
)
def test_widening_the_worker_role_is_caught(template: Template, statement: dict[str, Any]) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["IngestWorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)

    with pytest.raises(AssertionError):
        check_worker_role(_mutated(template, edit))
