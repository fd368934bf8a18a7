"""The tenant registry (DynamoDB): the only source of truth for which bucket belongs to whom."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names
from schemas.tenant import Tenant, TenantStatus

BUCKET_INDEX = "by-bucket"

_ser = TypeSerializer()
_de = TypeDeserializer()


def _to_item(tenant: Tenant) -> dict[str, Any]:
    data = tenant.model_dump(mode="json", exclude_none=True)
    return {k: _ser.serialize(_floats_to_str(v)) for k, v in data.items()}


def _floats_to_str(value: Any) -> Any:
    # DynamoDB refuses Python floats; the policy's ratios round-trip through pydantic as strings.
    if isinstance(value, float):
        return str(value)
    if isinstance(value, dict):
        return {k: _floats_to_str(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats_to_str(v) for v in value]
    return value


def _from_item(item: dict[str, Any]) -> Tenant:
    data = {k: _de.deserialize(v) for k, v in item.items()}
    return Tenant.model_validate(data)


class Registry:
    """Typed access to the tenants table. Lookups by bucket use the ``by-bucket`` GSI."""

    def __init__(self, names: Names | None = None, ddb: Any = None) -> None:
        self.names = names or Names.from_env()
        self._ddb = ddb

    @property
    def ddb(self) -> Any:
        return self._ddb or aws.client("dynamodb")

    def get(self, tenant_id: str) -> Tenant | None:
        resp = self.ddb.get_item(
            TableName=self.names.tenants_table, Key={"tenant_id": {"S": tenant_id}}, ConsistentRead=True
        )
        item = resp.get("Item")
        return _from_item(item) if item else None

    def by_bucket(self, bucket: str) -> Tenant | None:
        """The tenant that owns ``bucket``, or None. The bucket name is the only trusted input."""
        resp = self.ddb.query(
            TableName=self.names.tenants_table,
            IndexName=BUCKET_INDEX,
            KeyConditionExpression="bucket = :b",
            ExpressionAttributeValues={":b": {"S": bucket}},
        )
        items = resp.get("Items", [])
        if len(items) != 1:
            return None  # none, or an inconsistent registry: fail closed
        # The GSI is eventually consistent and may project a stale copy: read the base item.
        tenant_id = _de.deserialize(items[0]["tenant_id"])
        return self.get(tenant_id)

    def list(self) -> list[Tenant]:
        tenants: list[Tenant] = []
        paginator = self.ddb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.names.tenants_table):
            tenants.extend(_from_item(i) for i in page.get("Items", []))
        return sorted(tenants, key=lambda t: t.tenant_id)

    def create_pending(self, tenant: Tenant) -> Tenant:
        """Register a tenant as PENDING unless it exists; return the stored record either way."""
        try:
            self.ddb.put_item(
                TableName=self.names.tenants_table,
                Item=_to_item(tenant),
                ConditionExpression="attribute_not_exists(tenant_id)",
            )
            return tenant
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        existing = self.get(tenant.tenant_id)
        assert existing is not None
        return existing

    def put(self, tenant: Tenant) -> Tenant:
        updated = tenant.model_copy(update={"updated_at": datetime.now(UTC).isoformat(timespec="seconds")})
        self.ddb.put_item(TableName=self.names.tenants_table, Item=_to_item(updated))
        return updated

    def set_status(self, tenant_id: str, status: TenantStatus, failure: str | None = None) -> Tenant:
        tenant = self.get(tenant_id)
        if tenant is None:
            raise KeyError(tenant_id)
        return self.put(tenant.model_copy(update={"status": status, "failure": failure}))
