"""What operating the stack relies on, checked on template.yaml itself (no AWS).

cfn-lint and checkov judge resources one at a time; these tests hold the cross-cutting promises:
every alarm reaches the alerts topic, the dashboard is valid JSON naming only metrics something emits,
saved queries equal their copies in docs/queries/, every log group has a retention and a key, every
queue and table is encrypted, and the samconfig profiles only set parameters the template has.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from typing import Any

import pytest
from test_template_drift import NAMES, ROOT, Template, load_template, resolve, resources_of

QUERIES = ROOT / "docs" / "queries"
# Metrics the template derives from logs (AWS::Logs::MetricFilter).
VERDICTS = ("accepted", "accepted_with_errors", "rejected", "failed")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def emitted_metric_names() -> set[str]:
    """Metric names the handlers pass to add_metric/single_metric (f"Files_{verdict}" expanded)."""
    names: set[str] = set()
    for path in (ROOT / "handlers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func not in ("add_metric", "single_metric"):
                continue
            for kw in node.keywords:
                if kw.arg != "name":
                    continue
                if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    names.add(kw.value.value)
                elif isinstance(kw.value, ast.JoinedStr):
                    head = "".join(v.value for v in kw.value.values if isinstance(v, ast.Constant))
                    names |= {head + v for v in VERDICTS}
    return names


def filter_metric_names(template: Template) -> set[str]:
    return {
        t["MetricName"]
        for f in resources_of(template, "AWS::Logs::MetricFilter").values()
        for t in f["Properties"]["MetricTransformations"]
    }


def dashboard(template: Template) -> dict[str, Any]:
    (board,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = resolve(template, board["Properties"]["DashboardBody"])
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def airlock_metrics_in_dashboard(board: dict[str, Any]) -> set[str]:
    names = set()
    for widget in board["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if row and row[0] == "Airlock":
                names.add(row[1])
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    names |= set(re.findall(r'MetricName=\\?"(\w+)', item["expression"]))
    return names


def test_every_alarm_notifies_the_alerts_topic(template: Template) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert {"IngestDeadLetterAlarm", "IngestErrorRateAlarm", "RejectedLoginsAlarm", "OnboardingFailedAlarm"} <= set(
        alarms
    )
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertsTopic"}], logical_id
        name = resolve(template, alarm["Properties"]["AlarmName"])
        assert name.startswith(f"{NAMES.prefix}-"), f"{logical_id}: the topic policy admits {NAMES.prefix}-* alarms"
        assert "docs/operations.md" in alarm["Properties"].get("AlarmDescription", "") or logical_id == (
            "IngestDeadLetterAlarm"
        ), f"{logical_id}: say where the runbook is"


def test_dashboard_is_json_and_names_only_known_metrics(template: Template) -> None:
    board = dashboard(template)
    known = emitted_metric_names() | filter_metric_names(template) | {"RejectedLogins"}
    used = airlock_metrics_in_dashboard(board)
    assert used, "the dashboard shows no Airlock metric"
    assert used <= known, f"dashboard metrics nobody emits: {sorted(used - known)}"
    kinds = {w["type"] for w in board["widgets"]}
    assert {"metric", "log", "alarm"} <= kinds


def test_alarms_use_known_airlock_metrics(template: Template) -> None:
    known = emitted_metric_names() | filter_metric_names(template)
    for logical_id, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if "MetricName" in props:
            stats.append(props)
        for metric in stats:
            if metric["Namespace"] == "Airlock":
                assert metric["MetricName"] in known, f"{logical_id}: {metric['MetricName']} is emitted by nothing"


def test_existing_handler_metrics_are_on_the_dashboard(template: Template) -> None:
    used = airlock_metrics_in_dashboard(dashboard(template))
    missing = emitted_metric_names() - used
    assert not missing, f"handler metrics missing from the dashboard: {sorted(missing)}"


def test_saved_queries_equal_docs_queries(template: Template) -> None:
    athena = resources_of(template, "AWS::Athena::NamedQuery")
    files = {p.name: p.read_text() for p in QUERIES.glob("*.sql")}
    assert len(athena) == len(files) >= 3
    for logical_id, q in athena.items():
        text = q["Properties"]["QueryString"]["Fn::Sub"]
        fname = re.search(r"docs/queries/([\w.-]+)", q["Properties"]["Description"]).group(1)  # type: ignore[union-attr]
        assert text == files[fname], f"{logical_id} differs from docs/queries/{fname}"
    logs = resources_of(template, "AWS::Logs::QueryDefinition")
    insights = {p.name: p.read_text() for p in QUERIES.glob("*.logs-insights")}
    assert len(logs) == len(insights) >= 3
    for logical_id, q in logs.items():
        name = resolve(template, q["Properties"]["Name"]).split("/", 1)[1]
        assert q["Properties"]["QueryString"] == insights[f"{name}.logs-insights"], logical_id


def test_athena_placeholders_are_template_names(template: Template) -> None:
    params = set(template["Parameters"]) | set(template["Resources"]) | {"AWS::AccountId", "AWS::Region"}
    for path in QUERIES.glob("*.sql"):
        for ref in re.findall(r"\$\{([^}!]+)\}", path.read_text()):
            assert ref.split(".")[0] in params, f"{path.name}: ${{{ref}}} is not a parameter or resource"


def test_log_groups_have_retention_and_key(template: Template) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    assert groups
    for logical_id, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), f"{logical_id}: no retention"
        assert group["Properties"].get("KmsKeyId"), f"{logical_id}: not KMS-encrypted"
    for logical_id, fn in resources_of(template, "AWS::Serverless::Function").items():
        assert "LogGroup" in fn["Properties"].get("LoggingConfig", {}), f"{logical_id}: logs to an unmanaged group"


def test_queues_tables_topics_buckets_encrypted(template: Template) -> None:
    for lid, q in resources_of(template, "AWS::SQS::Queue").items():
        assert "KmsMasterKeyId" in q["Properties"] or q["Properties"].get("SqsManagedSseEnabled"), lid
    for lid, t in resources_of(template, "AWS::DynamoDB::Table").items():
        assert t["Properties"]["SSESpecification"]["SSEEnabled"] is True, lid
    for lid, t in resources_of(template, "AWS::SNS::Topic").items():
        assert "KmsMasterKeyId" in t["Properties"], lid
    for lid, b in resources_of(template, "AWS::S3::Bucket").items():
        assert b["Properties"]["BucketEncryption"], lid
        assert all(b["Properties"]["PublicAccessBlockConfiguration"].values()), f"{lid}: public access not blocked"


def test_no_wildcard_resource_where_a_narrower_one_exists(template: Template) -> None:
    """Identity policies: '*' only for actions that accept no narrower resource."""
    # Actions IAM authorizes on "*" only (Service Authorization Reference: no resource type), plus the
    # ENI lifecycle Lambda performs with the execution role (AWSLambdaVPCAccessExecutionRole's shape).
    star_only = ("xray:", "kms:CreateKey", "secretsmanager:ListSecrets", "ec2:DescribeNetworkInterfaces",
                 "ec2:DescribeSubnets", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
                 "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses")
    docs: list[tuple[str, dict[str, Any]]] = []
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs += [(lid, p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append((lid, props["PolicyDocument"]))
        elif res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            docs += [(lid, p) for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
    assert docs
    for lid, doc in docs:
        for s in doc["Statement"]:
            if s["Resource"] == "*" or s["Resource"] == ["*"]:
                actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                assert all(a.startswith(star_only) for a in actions), f"{lid}/{s.get('Sid')}: {actions} on '*'"


def test_gateway_endpoints_admit_only_this_account(template: Template) -> None:
    endpoints = resources_of(template, "AWS::EC2::VPCEndpoint")
    gateways = {k: v for k, v in endpoints.items() if v["Properties"]["VpcEndpointType"] == "Gateway"}
    assert {resolve(template, g["Properties"]["ServiceName"]).rsplit(".", 1)[1] for g in gateways.values()} == {
        "s3",
        "dynamodb",
    }
    for lid, ep in endpoints.items():
        for s in resolve(template, ep["Properties"]["PolicyDocument"]["Statement"]):
            assert s["Effect"] == "Allow" and s["Condition"]["StringEquals"]["aws:PrincipalAccount"] == NAMES.account_id
            if lid in gateways:
                assert s["Condition"]["StringEquals"]["aws:ResourceAccount"] == NAMES.account_id, lid


def test_onboarding_alarm_names_the_state_machines_of_the_template(template: Template) -> None:
    """The alarm and dashboard name the state machines by ARN; once they exist, the names must agree."""
    machines = resources_of(template, "AWS::Serverless::StateMachine") | resources_of(
        template, "AWS::StepFunctions::StateMachine"
    )
    if not machines:
        pytest.skip("no state machine in template.yaml yet (onboarding block)")
    names = set()
    for m in machines.values():
        name = m["Properties"].get("Name") or m["Properties"].get("StateMachineName")
        assert name, "state machines must be named from Prefix so alarms can find them"
        names.add(resolve(template, name))
    alarm = json.dumps(resolve(template, template["Resources"]["OnboardingFailedAlarm"]["Properties"]["Metrics"]))
    used = set(re.findall(r"stateMachine:([\w-]+)", alarm))
    assert used <= names, f"alarm watches {sorted(used - names)}, template has {sorted(names)}"


def test_sftp_server_wiring(template: Template) -> None:
    server = template["Resources"]["SftpServer"]
    props = server["Properties"]
    # IdentityProviderMode picks the face; LAMBDA (the default) is the else branch of every switch.
    assert template["Parameters"]["IdentityProviderMode"]["Default"] == "LAMBDA"
    assert props["IdentityProviderType"] == {"Fn::If": ["IdentityProviderApiMode", "API_GATEWAY", "AWS_LAMBDA"]}
    cond, api, lam = props["IdentityProviderDetails"]["Fn::If"]
    assert cond == "IdentityProviderApiMode"
    fn_name = resolve(template, template["Resources"]["IdentityProviderFunction"]["Properties"]["FunctionName"])
    assert resolve(template, lam["Function"]).endswith(f":function:{fn_name}")
    assert set(api) == {"Url", "InvocationRole", "SftpAuthenticationMethods"}, "API mode: Url + InvocationRole only"
    assert api["InvocationRole"] == {"Fn::GetAtt": ["IdentityProviderInvocationRole", "Arn"]}
    url = api["Url"]["Fn::Sub"]
    assert url.startswith("https://${IdentityProviderApi}.execute-api.")
    assert url.endswith("/${IdentityProviderApi.Stage}"), "the stage Transfer Family calls"
    assert lam["SftpAuthenticationMethods"] == api["SftpAuthenticationMethods"] == "PUBLIC_KEY_OR_PASSWORD"
    assert props["Protocols"] == ["SFTP"] and props["Domain"] == "S3"
    env = template["Globals"]["Function"]["Environment"]["Variables"]["AIRLOCK_SFTP_SERVER_IDS"]
    assert '["SftpServer", "ServerId"]' in json.dumps(env), "the functions must answer the stack's own server"
    vpc = server["Properties"]["EndpointDetails"]["Fn::If"][1]
    assert len(vpc["SubnetIds"]["Fn::If"][1]) == len(vpc["AddressAllocationIds"]["Fn::If"][1]), "one EIP per subnet"


def test_identity_alarms_and_audit_follow_the_face_the_server_calls(template: Template) -> None:
    """IdentityProviderMode=API_GATEWAY: the error-rate alarm watches the API face, and both faces write
    the audit line to the group the login metric filters and saved queries read."""
    res = template["Resources"]
    alarm = res["IdentityProviderErrorRateAlarm"]["Properties"]
    lambda_metrics = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m
                      and m["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"]
    assert lambda_metrics
    face = {"Fn::If": ["IdentityProviderApiMode", {"Ref": "IdentityProviderApiFunction"},
                       {"Ref": "IdentityProviderFunction"}]}
    for metric in lambda_metrics:
        assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": face}], metric["MetricName"]
    audit_group = {"Ref": "IdentityProviderLogGroup"}
    for fn in ("IdentityProviderFunction", "IdentityProviderApiFunction"):
        assert res[fn]["Properties"]["LoggingConfig"]["LogGroup"] == audit_group, fn
    login_filters = [f for f in resources_of(template, "AWS::Logs::MetricFilter").values()
                     if "sftp_login" in f["Properties"]["FilterPattern"]]
    assert login_filters and all(f["Properties"]["LogGroupName"] == audit_group for f in login_filters)


def test_samconfig_profiles_set_only_template_parameters(template: Template) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert {"default", "prod"} <= set(config)
    for env in ("default", "prod"):
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        keys = re.findall(r'(\w+)="', overrides)
        unknown = set(keys) - set(template["Parameters"])
        assert keys and not unknown, f"[{env}] sets parameters the template lacks: {sorted(unknown)}"


def test_host_key_import_is_wired_to_the_stacks_own_server_and_secret_only(template: Template) -> None:
    """HostKeySecretArn imports a migrated server's host key: into this stack's server, read from that one
    secret; without a server in the stack, or without the parameter, nothing of it is created."""
    res = template["Resources"]
    assert template["Parameters"]["HostKeySecretArn"]["Default"] == ""
    assert template["Conditions"]["ImportHostKey"] == {"Fn::And": [
        {"Condition": "CreateSftpServer"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "HostKeySecretArn"}, ""]}]}]}
    for logical_id in ("HostKeyImportFunction", "HostKeyImportLogGroup", "SftpHostKey"):
        assert res[logical_id]["Condition"] == "ImportHostKey", logical_id
    custom = res["SftpHostKey"]["Properties"]
    assert custom["ServerId"] == {"Fn::GetAtt": ["SftpServer", "ServerId"]}
    assert custom["SecretArn"] == {"Ref": "HostKeySecretArn"}
    assert custom["ServiceToken"] == {"Fn::GetAtt": ["HostKeyImportFunction", "Arn"]}
    fn = res["HostKeyImportFunction"]["Properties"]
    assert fn["Handler"] == "handlers/host_key_import.lambda_handler"
    (policy,) = fn["Policies"]
    grants = {s["Sid"]: s for s in policy["Statement"]}
    assert set(grants) == {"ReadHostKeySecret", "ImportIntoThisServer"}
    assert grants["ReadHostKeySecret"]["Action"] == "secretsmanager:GetSecretValue"
    assert grants["ReadHostKeySecret"]["Resource"] == {"Ref": "HostKeySecretArn"}, "that one secret, not sftp/*"
    assert sorted(grants["ImportIntoThisServer"]["Action"]) == ["transfer:ImportHostKey", "transfer:ListHostKeys"]
    assert resolve(template, grants["ImportIntoThisServer"]["Resource"]) == (
        f"arn:aws:transfer:{NAMES.region}:{NAMES.account_id}:server/<SftpServer.ServerId>"), "this server only"
    assert template["Outputs"]["SftpHostKeyFingerprint"]["Value"] == {"Fn::GetAtt": ["SftpHostKey", "Fingerprint"]}
