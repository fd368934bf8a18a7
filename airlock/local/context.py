"""A Lambda context for handlers invoked in-process by the local stack."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from airlock.naming import DEFAULT_REGION, LOCAL_ACCOUNT_ID


@dataclass
class LocalLambdaContext:
    """The attributes powertools and our handlers read from ``context``."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_s: float = 300.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{DEFAULT_REGION}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
