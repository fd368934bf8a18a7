"""The platform resources that ``template.yaml`` declares, created by code on the local stack.

moto cannot deploy a SAM template faithfully, so the local stack is built here from the specs below.
``tests/unit/test_template_drift.py`` holds these specs and ``template.yaml`` to the same names,
keys, indexes, queues and rule pattern, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import INGEST_MAX_RECEIVE_COUNT, Names
from airlock.tenancy.policies import worker_role_permissions
from airlock.tenancy.registry import BUCKET_INDEX

# Lambda's SQS event source mapping wants visibility >= 6x the function timeout; in template.yaml
# the ingest function runs up to 300 s. Locally a failed message should come back within seconds.
LOCAL_VISIBILITY_TIMEOUT_S = 20
__all__ = ["INGEST_MAX_RECEIVE_COUNT", "PlatformResources", "create_platform_resources", "create_worker_role"]


@dataclass(frozen=True)
class TableSpec:
    name: str
    hash_key: str
    range_key: str | None = None
    indexes: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (hash, range)
    ttl_attribute: str | None = None


def table_specs(names: Names) -> list[TableSpec]:
    return [
        TableSpec(names.tenants_table, "tenant_id", indexes={BUCKET_INDEX: ("bucket", None)}),
        TableSpec(names.files_table, "file_id", indexes={"by-tenant": ("tenant_id", "received_at")}),
        TableSpec(names.login_attempts_table, "pk", ttl_attribute="expires_at"),
    ]


def object_created_pattern(names: Names) -> dict[str, Any]:
    """Tenant-bucket uploads under ``inbound/``; nothing we write ourselves matches."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"prefix": names.tenant_bucket_prefix}]},
            "object": {"key": [{"prefix": "inbound/"}]},
        },
    }


def _create_table(ddb: Any, spec: TableSpec) -> None:
    keys = {spec.hash_key, *(k for k in [spec.range_key] if k)}
    for h, r in spec.indexes.values():
        keys.add(h)
        if r:
            keys.add(r)
    schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    if spec.range_key:
        schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
    gsis = []
    for index, (h, r) in spec.indexes.items():
        ks = [{"AttributeName": h, "KeyType": "HASH"}]
        if r:
            ks.append({"AttributeName": r, "KeyType": "RANGE"})
        gsis.append({"IndexName": index, "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}})
    kwargs: dict[str, Any] = {
        "TableName": spec.name,
        "KeySchema": schema,
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in sorted(keys)],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    try:
        ddb.create_table(**kwargs)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
    if spec.ttl_attribute:
        ddb.update_time_to_live(
            TableName=spec.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


@dataclass(frozen=True)
class PlatformResources:
    ingest_queue_url: str
    ingest_dlq_url: str
    alerts_topic_arn: str


def create_platform_resources(
    names: Names, *, visibility_timeout_s: int = LOCAL_VISIBILITY_TIMEOUT_S
) -> PlatformResources:
    """Create (or find) every platform resource; safe to call again."""
    ddb = aws.client("dynamodb")
    for spec in table_specs(names):
        _create_table(ddb, spec)

    sqs = aws.client("sqs")
    dlq_url = sqs.create_queue(
        QueueName=names.ingest_dlq, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=names.ingest_queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": INGEST_MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AllowObjectCreatedRule",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": f"arn:aws:events:{names.region}:{names.account_id}"
                                    f":rule/{names.object_created_rule}"
                                }
                            },
                        }
                    ],
                }
            )
        },
    )

    events = aws.client("events")
    try:
        events.create_event_bus(Name=names.platform_bus)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    events.put_rule(
        Name=names.object_created_rule,
        EventPattern=json.dumps(object_created_pattern(names)),
        State="ENABLED",
        Description="Tenant-bucket uploads under inbound/ to the ingest queue",
    )
    events.put_targets(Rule=names.object_created_rule, Targets=[{"Id": "ingest-queue", "Arn": queue_arn}])

    topic_arn = aws.client("sns").create_topic(Name=names.alerts_topic)["TopicArn"]
    return PlatformResources(ingest_queue_url=queue_url, ingest_dlq_url=dlq_url, alerts_topic_arn=topic_arn)


def create_worker_role(names: Names) -> str:
    """The ingest function's own role, as template.yaml's IngestWorkerRole: assume tenant roles only."""
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        role = iam.create_role(RoleName=names.worker_role_name, AssumeRolePolicyDocument=json.dumps(trust))
        arn = role["Role"]["Arn"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        arn = iam.get_role(RoleName=names.worker_role_name)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=names.worker_role_name,
        PolicyName="ingest-worker",
        PolicyDocument=json.dumps(worker_role_permissions(names)),
    )
    return str(arn)
