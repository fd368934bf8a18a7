"""Operating the ingest path from the CLI: replay a file, redrive dead letters."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.cli import main
from airlock.local.stack import LocalStack
from airlock.onboarding.steps import onboard
from airlock.worker.ledger import Ledger, file_id_for
from schemas.ledger import FileRecord, ObjectRef
from schemas.onboarding import OnboardRequest

pytestmark = pytest.mark.integration


def wait(stack: LocalStack, file_id: str, check: Any, timeout_s: float = 20) -> FileRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = Ledger(stack.names).get(file_id)
        if record is not None and check(record):
            return record
        time.sleep(0.1)
    raise AssertionError(f"{file_id} did not reach the expected state")


def test_replay_processes_a_finished_file_again_under_the_same_id(
    local_stack: LocalStack, ls_session: Any, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = onboard(OnboardRequest(tenant_id="ops-replay"), server_id=local_stack.config.server_id,
                     names=local_stack.names)
    put = ls_session.client("s3").put_object(
        Bucket=tenant.bucket, Key="inbound/fixings.csv", Body=(samples / "strata" / "fixings-1.csv").read_bytes()
    )
    ref = ObjectRef(bucket=tenant.bucket, key="inbound/fixings.csv", version_id=put["VersionId"], etag=put["ETag"])
    first = wait(local_stack, file_id_for(ref), lambda r: r.state.terminal)
    assert first.verdict == "accepted"
    # the original has left inbound/ (only its version remains): replay still finds it
    assert ls_session.client("s3").list_objects_v2(Bucket=tenant.bucket, Prefix="inbound/")["KeyCount"] == 0

    assert main(["files", "replay", first.file_id]) == 0
    assert f"replaying inbound/fixings.csv as {first.file_id}" in capsys.readouterr().out
    again = wait(local_stack, first.file_id, lambda r: r.state.terminal and r.replays == 1)
    assert again.verdict == "accepted"
    assert again.attempts == first.attempts + 1
    assert sorted(again.output_keys) == sorted(first.output_keys)

    assert main(["files", "list", "ops-replay", "--json"]) == 0
    out = capsys.readouterr().out  # the in-process pump may print metric lines beside ours
    listed, _ = json.JSONDecoder().raw_decode(out[out.index("[\n"):])
    assert [r["file_id"] for r in listed] == [first.file_id]


def test_replay_of_an_unknown_file_says_so(local_stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["files", "replay", "fdoesnotexist"]) == 2
    err = capsys.readouterr().err
    assert "no file 'fdoesnotexist' in the ledger" in err and "Traceback" not in err


def test_redrive_moves_every_dead_letter_back(
    local_stack: LocalStack, ls_session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = ls_session.client("sqs")
    assert local_stack.resources is not None
    for i in range(3):
        sqs.send_message(QueueUrl=local_stack.resources.ingest_dlq_url, MessageBody=json.dumps({"dead": i}))

    assert main(["dlq", "redrive"]) == 0
    assert "redrove 3 messages" in capsys.readouterr().out
    left = sqs.get_queue_attributes(QueueUrl=local_stack.resources.ingest_dlq_url,
                                    AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0"
