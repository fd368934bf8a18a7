"""Lockout after repeated failed logins: counters per user and per user+source IP in DynamoDB.

Fixed windows: the first failure opens a window of ``window_s``; when its counter reaches the limit
the user (or the user from that IP) is refused, without checking credentials, until the window ends.
The per-user+IP limit is the tight one (one desk mistyping); the per-user limit is higher so a
spray from many IPs locks the account without one noisy IP locking out the others too soon.
Items carry ``expires_at`` (the table's TTL attribute); TTL deletion is lazy, so expiry is also
checked on read. A success clears both counters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws
from airlock.naming import Names

DEFAULT_MAX_PER_USER = 20
DEFAULT_MAX_PER_USER_IP = 5
DEFAULT_WINDOW_S = 900


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class DynamoAttemptTracker:
    """:class:`airlock.identity.decide.AttemptTracker` over the login-attempts table (``pk``, TTL)."""

    def __init__(
        self,
        names: Names,
        *,
        client: Any = None,
        max_per_user: int | None = None,
        max_per_user_ip: int | None = None,
        window_s: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = names.login_attempts_table
        self._client = client
        self.max_per_user = max_per_user or _env_int("AIRLOCK_LOCKOUT_MAX_PER_USER", DEFAULT_MAX_PER_USER)
        self.max_per_user_ip = max_per_user_ip or _env_int("AIRLOCK_LOCKOUT_MAX_PER_USER_IP", DEFAULT_MAX_PER_USER_IP)
        self.window_s = window_s or _env_int("AIRLOCK_LOCKOUT_WINDOW_S", DEFAULT_WINDOW_S)
        self.clock = clock

    @property
    def ddb(self) -> Any:
        return self._client or aws.client("dynamodb")

    @staticmethod
    def keys(server_id: str, username: str, source_ip: str) -> tuple[str, str]:
        return f"user#{server_id}#{username}", f"userip#{server_id}#{username}#{source_ip}"

    def is_locked(self, server_id: str, username: str, source_ip: str) -> bool:
        user_pk, ip_pk = self.keys(server_id, username, source_ip)
        resp = self.ddb.batch_get_item(
            RequestItems={self.table: {"Keys": [{"pk": {"S": user_pk}}, {"pk": {"S": ip_pk}}], "ConsistentRead": True}}
        )
        if resp.get("UnprocessedKeys"):
            raise ClientError({"Error": {"Code": "Throttled", "Message": "unprocessed keys"}}, "BatchGetItem")
        now = int(self.clock())
        for item in resp.get("Responses", {}).get(self.table, []):
            if int(item["expires_at"]["N"]) <= now:
                continue
            limit = self.max_per_user if item["pk"]["S"] == user_pk else self.max_per_user_ip
            if int(item["failures"]["N"]) >= limit:
                return True
        return False

    def record_failure(self, server_id: str, username: str, source_ip: str) -> None:
        now = int(self.clock())
        for pk in self.keys(server_id, username, source_ip):
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression="ADD failures :one SET expires_at = if_not_exists(expires_at, :exp)",
                    ConditionExpression="attribute_not_exists(pk) OR expires_at > :now",
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":exp": {"N": str(now + self.window_s)},
                        ":now": {"N": str(now)},
                    },
                )
            except ClientError as err:
                if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                # The previous window is over (TTL has not reaped it yet): start a new one.
                self.ddb.put_item(
                    TableName=self.table,
                    Item={"pk": {"S": pk}, "failures": {"N": "1"}, "expires_at": {"N": str(now + self.window_s)}},
                )

    def record_success(self, server_id: str, username: str, source_ip: str) -> None:
        for pk in self.keys(server_id, username, source_ip):
            self.ddb.delete_item(TableName=self.table, Key={"pk": {"S": pk}})
