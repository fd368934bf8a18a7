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
from airlock.tenancy.session import SESSION_SECONDS
from airlock.worker.ledger import DEFAULT_LEASE_S

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
    assert "Policies" not in fn["Properties"], "SAM policies on an explicit role would be ignored"
    return str(physical_name(template, role_id)), role_statements(template, role_id)


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


@pytest.mark.parametrize("logical_id", ["IngestFunction", "IdentityProviderFunction", "IdentityProviderApiFunction"])
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


# -- the identity provider's two faces (IdentityProviderMode LAMBDA | API_GATEWAY) ------------------

# -- the ingest function's time budget: the code's lease and session against the template's timeout --


def ingest_timeout_and_visibility(template: Template) -> tuple[int, int]:
    """IngestFunction's Timeout (its own, else the Globals') and its queue's VisibilityTimeout."""
    fn = template["Resources"]["IngestFunction"]["Properties"]
    timeout = fn.get("Timeout", template["Globals"]["Function"].get("Timeout", 3))  # 3 s: Lambda's default
    (event,) = fn["Events"].values()
    queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
    visibility = template["Resources"][queue_id]["Properties"].get("VisibilityTimeout", 30)  # SQS's default
    return int(timeout), int(visibility)


def check_ingest_time_budget(template: Template, lease_s: int, session_s: int) -> None:
    timeout, visibility = ingest_timeout_and_visibility(template)
    # A live worker must never lose its ledger claim: were the lease shorter than an invocation can
    # run, a second delivery could take the file over mid-way and write a second set of outputs.
    assert lease_s > timeout, f"ledger lease ({lease_s} s) must exceed IngestFunction's Timeout ({timeout} s)"
    # AWS refuses an SQS event source whose queue hides a message for less than the function may run.
    assert visibility >= timeout, f"queue VisibilityTimeout ({visibility} s) < IngestFunction's Timeout ({timeout} s)"
    # The tenant session is assumed once per file: its credentials must outlive the invocation.
    assert session_s >= timeout, f"tenant session ({session_s} s) ends before IngestFunction's Timeout ({timeout} s)"


def test_the_ledger_lease_and_the_queue_outlast_the_ingest_timeout(template: Template) -> None:
    timeout, _ = ingest_timeout_and_visibility(template)
    assert timeout == 300, "docs/worker.md and docs/scaling.md quote 300 s: update them with the Timeout"
    check_ingest_time_budget(template, DEFAULT_LEASE_S, SESSION_SECONDS)


def test_raising_the_ingest_timeout_alone_is_caught(template: Template) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["IngestFunction"]["Properties"]["Timeout"] = 900  # Lambda's maximum, lease and queue unchanged

    with pytest.raises(AssertionError, match="ledger lease"):
        check_ingest_time_budget(_mutated(template, edit), DEFAULT_LEASE_S, SESSION_SECONDS)
    with pytest.raises(AssertionError, match="ledger lease"):
        check_ingest_time_budget(template, lease_s=300, session_s=SESSION_SECONDS)  # equal is not enough


def test_a_visibility_timeout_below_the_function_timeout_is_caught(template: Template) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["IngestQueue"]["Properties"]["VisibilityTimeout"] = 299

    with pytest.raises(AssertionError, match="VisibilityTimeout"):
        check_ingest_time_budget(_mutated(template, edit), DEFAULT_LEASE_S, SESSION_SECONDS)


USER_CONFIG_PATH = "/servers/{serverId}/users/{username}/config"
INVOCATION_ROLE = {"Fn::GetAtt": ["IdentityProviderInvocationRole", "Arn"]}
# Properties that differ between the two faces; everything else (code, memory, timeout, network,
# log group, environment, permissions) must be equal.
FACE_SPECIFIC = {"FunctionName", "Handler", "Description"}


def role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every identity-policy statement attached to a role (inline, RolePolicy, Policy), resolved."""
    role = template["Resources"][role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), f"{role_id}: managed policies cannot be checked here"
    statements: list[dict[str, Any]] = []
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    for res in resources_of(template, "AWS::IAM::RolePolicy").values():
        if res["Properties"]["RoleName"] == {"Ref": role_id}:
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    for res in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in res["Properties"].get("Roles", []):
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    return list(resolve(template, statements))


def check_api_face_equals_lambda_face(template: Template) -> None:
    res = template["Resources"]
    lam, api = res["IdentityProviderFunction"], res["IdentityProviderApiFunction"]
    assert template["Conditions"]["IdentityProviderApiMode"] == {
        "Fn::Equals": [{"Ref": "IdentityProviderMode"}, "API_GATEWAY"]
    }
    assert api.get("Condition") == "IdentityProviderApiMode", "the API face exists in API_GATEWAY mode only"
    assert "Condition" not in lam, "the Lambda face is the default and always exists"
    assert api["Properties"]["Handler"] == "handlers/identity_provider_api.lambda_handler"
    assert resolve(template, api["Properties"]["FunctionName"]) == f"{NAMES.prefix}-identity-provider-api"
    same = {k: v for k, v in lam["Properties"].items() if k not in FACE_SPECIFIC}
    got = {k: v for k, v in api["Properties"].items() if k not in FACE_SPECIFIC}
    differ = sorted(k for k in same.keys() | got.keys() if same.get(k) != got.get(k))
    assert not differ, f"the API face differs from the Lambda face in {differ}"
    assert api["Metadata"]["BuildMethod"] == lam["Metadata"]["BuildMethod"]
    skips = {k: sorted(s["id"] for s in f["Metadata"]["checkov"]["skip"]) for k, f in (("lam", lam), ("api", api))}
    assert skips["api"] == skips["lam"], "checkov skips of the two faces differ"
    # In a VPC each face's own role gets the same ENI statements.
    lam_vpc, api_vpc = res["IdentityProviderVpcPolicy"], res["IdentityProviderApiVpcPolicy"]
    assert api_vpc["Properties"]["RoleName"] == {"Ref": "IdentityProviderApiFunctionRole"}
    assert api_vpc["Properties"]["PolicyDocument"] == lam_vpc["Properties"]["PolicyDocument"]
    assert api_vpc["Condition"] == "IdentityProviderApiInVpc"
    assert template["Conditions"]["IdentityProviderApiInVpc"] == {
        "Fn::And": [{"Condition": "InVpc"}, {"Condition": "IdentityProviderApiMode"}]
    }


def check_identity_api(template: Template) -> None:
    """REGIONAL, AWS_IAM on every method, one GET, proxy to the API face, no cache, no header logging."""
    res = template["Resources"]
    api = res["IdentityProviderApi"]
    props = api["Properties"]
    assert api["Type"] == "AWS::Serverless::Api" and api["Condition"] == "IdentityProviderApiMode"
    assert props["EndpointConfiguration"] == {"Type": "REGIONAL"}, "Transfer Family needs a public regional URL"
    auth = props["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM", "every method must require SigV4 (AWS_IAM)"
    assert auth.get("InvokeRole") == "NONE", "CALLER_CREDENTIALS would need lambda:InvokeFunction on the caller"
    body = props["DefinitionBody"]
    assert "security" not in body and "x-amazon-apigateway-policy" not in body, "Auth owns security and policy"
    methods = [(path, verb, op) for path, ops in body["paths"].items() for verb, op in ops.items()]
    assert [(p, v) for p, v, _ in methods] == [(USER_CONFIG_PATH, "get")], "only GET on the user config path"
    fn_name = resolve(template, res["IdentityProviderApiFunction"]["Properties"]["FunctionName"])
    for path, verb, op in methods:
        # A method-level security list or an override would replace the default authorizer.
        assert "security" not in op and "x-amazon-apigateway-auth" not in op, f"{verb} {path}: overrides AWS_IAM"
        integration = op["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy" and "credentials" not in integration
        uri = resolve(template, integration["uri"])
        assert uri.endswith(f":function:{fn_name}/invocations"), f"{verb} {path} must reach the API face: {uri}"
    assert {p["name"] for p in methods[0][2]["parameters"]} == {
        "serverId", "username", "protocol", "sourceIp", "Password", "PasswordBase64"
    }
    assert props["TracingEnabled"] is True and props["CacheClusterEnabled"] is False
    (settings,) = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["CachingEnabled"] is False, "Transfer Family forbids caching an identity provider API"
    assert settings["DataTraceEnabled"] is False, "data trace would log the Password header"
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] >= settings["ThrottlingRateLimit"]
    logs = props["AccessLogSetting"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["IdentityProviderApiAccessLogGroup", "Arn"]}
    fmt = json.loads(logs["Format"])
    assert not any("header" in v.lower() or "password" in v.lower() for v in fmt.values()), "no header in access logs"
    group = res["IdentityProviderApiAccessLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["PlatformKey", "Arn"]} and group["RetentionInDays"]
    key_logs = next(
        s for s in res["PlatformKey"]["Properties"]["KeyPolicy"]["Statement"] if s["Sid"] == "CloudWatchLogs"
    )
    arns = resolve(template, key_logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    group_arn = f"arn:aws:logs:{NAMES.region}:{NAMES.account_id}:log-group:{resolve(template, group['LogGroupName'])}"
    assert any(re.fullmatch(a.replace("*", ".*"), group_arn) for a in arns), "PlatformKey must admit the access logs"
    # The resource policy admits the invocation role alone, and only on the user config path.
    statements = auth["ResourcePolicy"]["CustomStatements"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert len(allows) == 1 and allows[0]["Principal"] == {"AWS": INVOCATION_ROLE}, "allow the invocation role only"
    assert allows[0]["Action"] == "execute-api:Invoke"
    assert allows[0]["Resource"] == "execute-api:/*/GET/servers/*/users/*/config"
    assert len(denies) == 1 and denies[0]["Principal"] == "*" and denies[0]["Resource"] == "execute-api:/*"
    assert denies[0]["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": INVOCATION_ROLE}}, "deny everyone else"
    perm = resolve(template, res["IdentityProviderApiInvokePermission"]["Properties"])
    assert perm["Principal"] == "apigateway.amazonaws.com" and perm["SourceAccount"] == NAMES.account_id
    assert perm["FunctionName"] == "<IdentityProviderApiFunction.Arn>"
    assert perm["SourceArn"].endswith(":<IdentityProviderApi>/*/GET/servers/*/users/*/config"), perm["SourceArn"]


def check_invocation_role(template: Template) -> None:
    """Trusts Transfer Family of this account; may invoke GET .../config of this API and nothing else."""
    role = template["Resources"]["IdentityProviderInvocationRole"]
    assert role["Condition"] == "IdentityProviderApiMode"
    (trust,) = resolve(template, role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert trust["Effect"] == "Allow" and trust["Principal"] == {"Service": "transfer.amazonaws.com"}
    assert as_list(trust["Action"]) == ["sts:AssumeRole"]
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == NAMES.account_id, "confused deputy"
    statements = role_statements(template, "IdentityProviderInvocationRole")
    this_api = f"arn:aws:execute-api:{NAMES.region}:{NAMES.account_id}:<IdentityProviderApi>"
    rest_api = f"arn:aws:apigateway:{NAMES.region}::/restapis/<IdentityProviderApi>"
    for s in statements:
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s and "Condition" not in s
        actions = as_list(s["Action"])
        if actions == ["execute-api:Invoke"]:
            assert as_list(s["Resource"]) == [f"{this_api}/<IdentityProviderApi.Stage>/GET/servers/*/users/*/config"], (
                f"the invocation role may invoke only GET {USER_CONFIG_PATH}: {s['Resource']}"
            )
        else:
            assert actions == ["apigateway:GET"], f"the invocation role must not have {actions}"
            assert sorted(as_list(s["Resource"])) == [rest_api, f"{rest_api}/*"], "read this API only"
    assert sum(as_list(s["Action"]) == ["execute-api:Invoke"] for s in statements) == 1


def test_api_face_equals_the_lambda_face(template: Template) -> None:
    check_api_face_equals_lambda_face(template)


def test_identity_api_requires_iam_on_every_method(template: Template) -> None:
    check_identity_api(template)


def test_invocation_role_can_invoke_only_the_user_config_path(template: Template) -> None:
    check_invocation_role(template)


def test_every_makefile_function_has_its_build_target(template: Template) -> None:
    """sam build runs ``make --makefile <CodeUri>/Makefile build-<LogicalId>`` for each function."""
    missing = []
    for logical_id, fn in sorted(resources_of(template, "AWS::Serverless::Function").items()):
        if fn.get("Metadata", {}).get("BuildMethod") != "makefile":
            continue
        makefile = ROOT / fn["Properties"]["CodeUri"] / "Makefile"
        proc = subprocess.run(
            ["make", "-n", "--makefile", str(makefile), f"build-{logical_id}"],
            cwd=ROOT, env={"PATH": "/usr/bin:/bin", "ARTIFACTS_DIR": "/nonexistent"},
            capture_output=True, text=True, timeout=60, check=False,
        )
        if proc.returncode != 0:
            missing.append(f"{makefile.relative_to(ROOT)}: build-{logical_id}")
    assert not missing, f"sam build would fail, no make target: {missing}"


def test_identity_api_as_sam_translates_it(template: Template) -> None:
    """The transformed template: AWS_IAM on every method, no caller credentials, one stage, no cycle."""
    sam_python = ROOT / ".tools" / "sam" / "bin" / "python"
    if not sam_python.exists():
        pytest.skip("no .tools/sam (scripts/check_template.sh creates it)")
    probe = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
t = yaml_parse(open("template.yaml").read())
for r in t["Resources"].values():  # local code paths are S3 URIs after sam package
    p = r.get("Properties", {})
    for k in ("CodeUri", "DefinitionUri"):
        if isinstance(p.get(k), str):
            p[k] = "s3://bucket/" + p[k]
class NoManagedPolicies:
    def load(self):
        return {}
json.dump(transform(t, {}, NoManagedPolicies()), sys.stdout)
"""
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": NAMES.region, "SAM_CLI_TELEMETRY": "0"}
    proc = subprocess.run([str(sam_python), "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)["Resources"]
    (rest_id,) = [k for k, v in out.items() if v["Type"] == "AWS::ApiGateway::RestApi"]
    body = out[rest_id]["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["AWS_IAM"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, ops in body["paths"].items():
        for verb, op in ops.items():
            assert op["security"] == [{"AWS_IAM": []}], f"{verb} {path}: {op.get('security')}"
            assert "credentials" not in op["x-amazon-apigateway-integration"], f"{verb} {path}: caller credentials"
    assert body["x-amazon-apigateway-policy"]["Statement"] == template["Resources"]["IdentityProviderApi"][
        "Properties"]["Auth"]["ResourcePolicy"]["CustomStatements"]
    stages = {k: v for k, v in out.items() if v["Type"] == "AWS::ApiGateway::Stage"}
    assert [s["Properties"]["StageName"] for s in stages.values()] == ["prod"], "one stage (no implicit 'Stage')"
    (stage_id,) = stages
    url = out["SftpServer"]["Properties"]["IdentityProviderDetails"]["Fn::If"][1]["Url"]["Fn::Sub"]
    assert url.endswith("/${" + stage_id + "}"), "the server's URL must name the deployed stage"
    gateway = [v for v in out.values() if v["Type"].startswith("AWS::ApiGateway::")]
    assert all(v.get("Condition") == "IdentityProviderApiMode" for v in gateway), "API resources in API mode only"


# The identity checks notice a change made in one place only.


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["IdentityProviderApiFunction"]["Properties"].update(MemorySize=512),
        lambda r: r["IdentityProviderApiFunction"]["Properties"]["Policies"][0]["Statement"].append(
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
        ),
        lambda r: r["IdentityProviderApiFunction"]["Properties"]["Environment"]["Variables"].update(X="1"),
        lambda r: r["IdentityProviderApiFunction"]["Properties"].update(LoggingConfig={"LogGroup": "other"}),
    ],
    ids=["memory", "policy", "environment", "log-group"],
)
def test_api_face_drifting_from_the_lambda_face_is_caught(template: Template, edit: Any) -> None:
    with pytest.raises(AssertionError, match="differs from the Lambda face"):
        check_api_face_equals_lambda_face(_mutated(template, edit))


def _user_config(r: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = r["IdentityProviderApi"]["Properties"]["DefinitionBody"]["paths"][USER_CONFIG_PATH]["get"]
    return op


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["IdentityProviderApi"]["Properties"]["Auth"].update(DefaultAuthorizer="NONE"),
        lambda r: r["IdentityProviderApi"]["Properties"]["Auth"].pop("InvokeRole"),
        lambda r: _user_config(r).update(security=[]),
        lambda r: r["IdentityProviderApi"]["Properties"]["DefinitionBody"]["paths"][USER_CONFIG_PATH].update(
            post=_user_config(r)
        ),
        lambda r: r["IdentityProviderApi"]["Properties"].update(EndpointConfiguration={"Type": "PRIVATE"}),
        lambda r: r["IdentityProviderApi"]["Properties"]["MethodSettings"][0].update(DataTraceEnabled=True),
        lambda r: r["IdentityProviderApi"]["Properties"]["Auth"]["ResourcePolicy"]["CustomStatements"][0].update(
            Principal={"AWS": "*"}
        ),
        lambda r: r["IdentityProviderApi"]["Properties"]["Auth"]["ResourcePolicy"]["CustomStatements"].pop(),
    ],
    ids=["no-auth", "caller-credentials", "method-override", "second-method", "private", "data-trace",
         "open-policy", "no-deny"],
)
def test_opening_the_identity_api_is_caught(template: Template, edit: Any) -> None:
    with pytest.raises(AssertionError):
        check_identity_api(_mutated(template, edit))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "execute-api:Invoke",
         "Resource": {"Fn::Sub": "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${IdentityProviderApi}/*"}},
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"},
        {"Effect": "Allow", "Action": "apigateway:GET", "Resource": "*"},
    ],
    ids=["whole-api", "lambda", "every-api"],
)
def test_widening_the_invocation_role_is_caught(template: Template, statement: dict[str, Any]) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["IdentityProviderInvocationPolicy"]["Properties"]["PolicyDocument"]["Statement"].append(statement)

    with pytest.raises(AssertionError):
        check_invocation_role(_mutated(template, edit))


# -- the isolation probe's way into the worker role (IsolationProbePrincipalArn: test accounts only) --

PROBE_PARAMETER = "IsolationProbePrincipalArn"
PROBE_CONDITION = "IsolationProbeGiven"
PROBE_ARN = f"arn:aws:iam::{NAMES.account_id}:role/isolation-probe"
LAMBDA_TRUST = {
    "Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"aws:SourceAccount": NAMES.account_id}},
}


def deployed_worker_trust(template: Template, probe_principal: str) -> list[dict[str, Any]]:
    """The worker role's trust statements as CloudFormation deploys them for one parameter value.

    Evaluates the conditions (Fn::Not / Fn::Equals / Fn::And / Fn::Or / Condition over Ref) and
    Fn::If with AWS::NoValue; every other parameter keeps its default.
    """
    params = {k: v.get("Default", "") for k, v in template["Parameters"].items()} | {PROBE_PARAMETER: probe_principal}

    def value(v: Any) -> Any:
        if isinstance(v, dict) and set(v) == {"Ref"}:
            return params[v["Ref"]] if v["Ref"] in params else PSEUDO[v["Ref"]]
        return v

    def holds(cond: Any) -> bool:
        (fn, arg), = cond.items()
        if fn == "Condition":
            return holds(template["Conditions"][arg])
        if fn == "Fn::Not":
            return not holds(arg[0])
        if fn == "Fn::And":
            return all(holds(c) for c in arg)
        if fn == "Fn::Or":
            return any(holds(c) for c in arg)
        if fn == "Fn::Equals":
            return bool(value(arg[0]) == value(arg[1]))
        raise AssertionError(f"condition function {fn} not modelled")

    def deploy(v: Any) -> Any:
        if isinstance(v, dict) and set(v) == {"Fn::If"}:
            name, yes, no = v["Fn::If"]
            return deploy(yes if holds(template["Conditions"][name]) else no)
        if isinstance(v, dict) and set(v) == {"Ref"}:
            return None if v["Ref"] == "AWS::NoValue" else value(v)
        if isinstance(v, dict):
            return {k: d for k, d in ((k, deploy(x)) for k, x in v.items()) if d is not None}
        if isinstance(v, list):
            return [d for d in (deploy(x) for x in v) if d is not None]
        return v

    trust = template["Resources"]["IngestWorkerRole"]["Properties"]["AssumeRolePolicyDocument"]
    return list(deploy(trust)["Statement"])


def check_worker_trust(template: Template) -> None:
    """Lambda of this account always; the probe principal only when the parameter names one; no one else."""
    probe = template["Parameters"][PROBE_PARAMETER]
    assert probe.get("Default") == "", "the probe principal must default to nobody"
    pattern = re.compile(probe["AllowedPattern"])
    for ok in ("", PROBE_ARN, f"arn:aws:iam::{NAMES.account_id}:user/ci",
               f"arn:aws:iam::{NAMES.account_id}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123"):
        assert pattern.fullmatch(ok), f"{PROBE_PARAMETER} should accept {ok!r}"
    for bad in ("*", f"arn:aws:iam::{NAMES.account_id}:root", f"arn:aws:iam::{NAMES.account_id}:role/*",
                "arn:aws:iam::*:role/probe", f"arn:aws:sts::{NAMES.account_id}:assumed-role/probe/s", NAMES.account_id):
        assert not pattern.fullmatch(bad), f"{PROBE_PARAMETER} must refuse {bad!r}"
    assert deployed_worker_trust(template, "") == [LAMBDA_TRUST], "without the parameter only Lambda may assume"
    with_probe = deployed_worker_trust(template, PROBE_ARN)
    probe_statement = {"Sid": "IsolationProbe", "Effect": "Allow", "Principal": {"AWS": PROBE_ARN},
                       "Action": "sts:AssumeRole"}
    assert with_probe == [LAMBDA_TRUST, probe_statement], with_probe
    uses = json.dumps(template["Resources"]).count(json.dumps({"Ref": PROBE_PARAMETER}))
    assert uses == 1, f"{PROBE_PARAMETER} must grant nothing but the worker role's trust ({uses} uses)"


def test_the_probe_may_assume_the_worker_role_only_when_the_parameter_names_it(template: Template) -> None:
    check_worker_trust(template)


def _probe_statement(r: dict[str, Any]) -> dict[str, Any]:
    statements = r["IngestWorkerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return next(s for s in statements if "Fn::If" in s)


def _unconditional(r: dict[str, Any]) -> None:
    statements = r["IngestWorkerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    statements[statements.index(_probe_statement(r))] = _probe_statement(r)["Fn::If"][1]


@pytest.mark.parametrize(
    "edit",
    [
        _unconditional,
        lambda r: _probe_statement(r)["Fn::If"].__setitem__(2, copy.deepcopy(_probe_statement(r)["Fn::If"][1])),
        lambda r: _probe_statement(r)["Fn::If"][1].update(Principal={"AWS": "*"}),
        lambda r: _probe_statement(r)["Fn::If"][1].update(Action=["sts:AssumeRole", "sts:TagSession"]),
        lambda r: r["IngestWorkerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0].pop("Condition"),
        lambda r: r["IngestWorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": {"Ref": PROBE_PARAMETER}}),
    ],
    ids=["unconditional", "else-branch", "any-principal", "tag-session", "lambda-any-account", "second-use"],
)
def test_a_probe_trust_outside_its_condition_is_caught(template: Template, edit: Any) -> None:
    with pytest.raises(AssertionError):
        check_worker_trust(_mutated(template, edit))


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t["Conditions"].__setitem__(PROBE_CONDITION, {"Fn::Equals": ["on", "on"]}),
        lambda t: t["Parameters"][PROBE_PARAMETER].__setitem__("Default", PROBE_ARN),
        lambda t: t["Parameters"][PROBE_PARAMETER].__setitem__("AllowedPattern", ".*"),
    ],
    ids=["always-true", "default-set", "any-value"],
)
def test_a_probe_parameter_that_is_on_by_default_or_unchecked_is_caught(template: Template, edit: Any) -> None:
    copied = copy.deepcopy(template)
    edit(copied)
    with pytest.raises(AssertionError):
        check_worker_trust(copied)
