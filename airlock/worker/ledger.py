"""The file ledger (DynamoDB): a conditional claim per object version, so each upload has one outcome.

A claim is a lease: a worker that crashes mid-file stops renewing it, and once it has expired the
next delivery of the same event takes the file over. Terminal states are never overwritten.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names
from schemas.ledger import FileRecord, FileState, ObjectRef

_ser = TypeSerializer()
_de = TypeDeserializer()

# Longer than IngestFunction's Timeout (300 s), so a live worker never loses its claim; raise it with
# the Timeout (tests/unit/test_template_drift.py reads both).
DEFAULT_LEASE_S = 360


def object_version(ref: ObjectRef) -> str:
    if ref.version_id and ref.version_id != "null":
        return ref.version_id
    return (ref.etag or "").strip('"') or "unversioned"


def file_id_for(ref: ObjectRef) -> str:
    """Deterministic per object version: re-runs overwrite outputs instead of duplicating them."""
    digest = hashlib.sha256(f"{ref.bucket}\0{ref.key}\0{object_version(ref)}".encode()).hexdigest()
    return f"f{digest[:23]}"


class ClaimStatus(Enum):
    CLAIMED = "claimed"
    DONE = "done"  # already in a terminal state: a duplicate delivery
    BUSY = "busy"  # another worker holds a live lease: retry later


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    record: FileRecord


def _record(item: dict[str, Any]) -> FileRecord:
    return FileRecord.model_validate({k: _de.deserialize(v) for k, v in item.items()})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ledger:
    def __init__(self, names: Names | None = None, ddb: Any = None, lease_s: int = DEFAULT_LEASE_S) -> None:
        self.names = names or Names.from_env()
        self._ddb = ddb
        self.lease_s = lease_s

    @property
    def ddb(self) -> Any:
        return self._ddb or aws.client("dynamodb")

    def get(self, file_id: str) -> FileRecord | None:
        item = self.ddb.get_item(
            TableName=self.names.files_table, Key={"file_id": {"S": file_id}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return _record(item)

    def claim(self, ref: ObjectRef, tenant_id: str, owner: str) -> Claim:
        """Take the file for ``owner`` unless it is finished or another worker's lease is live."""
        file_id = file_id_for(ref)
        now = int(time.time())
        try:
            item = self.ddb.update_item(
                TableName=self.names.files_table,
                Key={"file_id": {"S": file_id}},
                UpdateExpression=(
                    "SET #state = :processing, #tenant = :tenant, #bucket = :bucket, #key = :key, "
                    "#version = :version, #vid = :vid, #etag = :etag, "
                    "#received = if_not_exists(#received, :iso), #updated = :iso, "
                    "#owner = :owner, #until = :until ADD #attempts :one"
                ),
                ConditionExpression=(
                    "attribute_not_exists(file_id) OR "
                    "(#state IN (:received, :processing) AND #until < :now)"
                ),
                ExpressionAttributeNames={
                    "#state": "state", "#tenant": "tenant_id", "#bucket": "bucket", "#key": "key",
                    "#version": "version", "#vid": "version_id", "#etag": "etag",
                    "#received": "received_at", "#updated": "updated_at",
                    "#owner": "lease_owner", "#until": "lease_until", "#attempts": "attempts",
                },
                ExpressionAttributeValues={
                    ":processing": {"S": FileState.PROCESSING.value},
                    ":received": {"S": FileState.RECEIVED.value},
                    ":tenant": {"S": tenant_id},
                    ":bucket": {"S": ref.bucket},
                    ":key": {"S": ref.key},
                    ":version": {"S": object_version(ref)},
                    ":vid": {"S": ref.version_id or ""},
                    ":etag": {"S": (ref.etag or "").strip('"')},
                    ":iso": {"S": _now_iso()},
                    ":owner": {"S": owner},
                    ":until": {"N": str(now + self.lease_s)},
                    ":now": {"N": str(now)},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
            return Claim(ClaimStatus.CLAIMED, _record(item))
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        record = self.get(file_id)
        assert record is not None  # the condition failed, so the item exists
        if record.state is FileState.PROCESSING and record.lease_owner == owner:
            # Our own update was applied but its response lost; botocore's retry then failed the condition.
            return Claim(ClaimStatus.CLAIMED, record)
        return Claim(ClaimStatus.DONE if record.state.terminal else ClaimStatus.BUSY, record)

    def finish(self, file_id: str, owner: str, state: FileState, **fields: Any) -> FileRecord:
        """Record the outcome, only while ``owner`` still holds the claim."""
        values = {"state": state.value, "updated_at": _now_iso(), **fields}
        names = {f"#f{i}": k for i, k in enumerate(values)}
        expr = ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        attr_values = {f":v{i}": _ser.serialize(v) for i, v in enumerate(values.values())}
        attr_values[":owner"] = {"S": owner}
        item = self.ddb.update_item(
            TableName=self.names.files_table,
            Key={"file_id": {"S": file_id}},
            UpdateExpression=f"SET {expr} REMOVE #until",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={**names, "#until": "lease_until", "#owner": "lease_owner"},
            ExpressionAttributeValues=attr_values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _record(item)

    def release(self, file_id: str, owner: str, error: str) -> None:
        """Give the claim back after a transient failure, so the next delivery can retry at once."""
        try:
            self.ddb.update_item(
                TableName=self.names.files_table,
                Key={"file_id": {"S": file_id}},
                UpdateExpression="SET #until = :zero, #error = :error, #updated = :iso",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={
                    "#error": "error", "#until": "lease_until", "#updated": "updated_at", "#owner": "lease_owner",
                },
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":error": {"S": error[:1000]},
                    ":iso": {"S": _now_iso()},
                    ":owner": {"S": owner},
                },
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def reopen(self, file_id: str) -> FileRecord:
        """Make a finished file claimable again (``airlock files replay``); counts the replay."""
        item = self.ddb.update_item(
            TableName=self.names.files_table,
            Key={"file_id": {"S": file_id}},
            UpdateExpression="SET #state = :received, #until = :zero, #updated = :iso ADD #replays :one",
            ConditionExpression="#state IN (:accepted, :partial, :rejected, :failed)",
            ExpressionAttributeNames={
                "#state": "state", "#until": "lease_until", "#updated": "updated_at", "#replays": "replays",
            },
            ExpressionAttributeValues={
                ":received": {"S": FileState.RECEIVED.value},
                ":zero": {"N": "0"},
                ":iso": {"S": _now_iso()},
                ":one": {"N": "1"},
                **{f":{k}": {"S": v.value} for k, v in (
                    ("accepted", FileState.ACCEPTED), ("partial", FileState.ACCEPTED_WITH_ERRORS),
                    ("rejected", FileState.REJECTED), ("failed", FileState.FAILED),
                )},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _record(item)

    def list_for_tenant(self, tenant_id: str) -> list[FileRecord]:
        resp = self.ddb.query(
            TableName=self.names.files_table,
            IndexName="by-tenant",
            KeyConditionExpression="tenant_id = :t",
            ExpressionAttributeValues={":t": {"S": tenant_id}},
        )
        return [_record(i) for i in resp["Items"]]
