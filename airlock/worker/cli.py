"""``airlock files list|show|replay`` and ``airlock dlq status|redrive``: operating the ingest path."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botocore.exceptions import ClientError

from airlock import aws, target
from airlock.cli_support import fail
from airlock.naming import Names
from airlock.worker.ledger import Ledger
from schemas.ledger import FileRecord, FileState

FILES_EPILOG = """\
examples:
  airlock files list acme                       every file acme sent, newest first
  airlock files list acme --state REJECTED
  airlock files show f1a2b3...                  one file's ledger record (verdict, outputs, attempts)
  airlock files replay f1a2b3...                process that upload again (same file id: outputs are overwritten)

replay needs no access to tenant data: it reopens the ledger entry and queues the original upload
event again; the worker reads the original object version under the tenant's role.
"""

DLQ_EPILOG = """\
examples:
  airlock dlq status                            how many messages wait in the ingest queue and its DLQ
  airlock dlq redrive                           move every dead letter back to the ingest queue
  airlock dlq redrive --max 10
"""


def _object_event(record: FileRecord) -> str:
    """The EventBridge "Object Created" event the upload produced, rebuilt from the ledger."""
    return json.dumps({
        "version": "0",
        "id": f"replay-{record.file_id}-{record.replays}",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": Names.from_env().account_id,
        "region": Names.from_env().region,
        "time": record.updated_at,
        "resources": [f"arn:aws:s3:::{record.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": record.bucket},
            "object": {"key": record.key, "version-id": record.version_id or None, "etag": record.etag, "size": 0},
            "request-id": f"replay-{record.replays}",
            "requester": "airlock-replay",
            "reason": "Replay",
        },
    })


def cmd_list(args: argparse.Namespace) -> int:
    target.resolve()
    records = Ledger(Names.from_env()).list_for_tenant(args.tenant)
    if args.state:
        records = [r for r in records if r.state.value == args.state]
    records.sort(key=lambda r: r.received_at, reverse=True)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return 0
    if not records:
        print(f"no files for tenant {args.tenant!r}" + (f" in state {args.state}" if args.state else ""))
        return 0
    print(f"{'FILE ID':<25} {'STATE':<21} {'KIND':<14} {'OK':>7} {'BAD':>7}  KEY")
    for r in records:
        print(f"{r.file_id:<25} {r.state.value:<21} {(r.kind or '-'):<14} {r.rows_accepted or 0:>7} "
              f"{r.rows_rejected or 0:>7}  {r.key}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    target.resolve()
    record = Ledger(Names.from_env()).get(args.file_id)
    if record is None:
        return fail(f"no file {args.file_id!r} in the ledger (see `airlock files list TENANT`)")
    print(record.model_dump_json(indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    tgt = target.resolve()
    names = Names.from_env()
    ledger = Ledger(names)
    record = ledger.get(args.file_id)
    if record is None:
        return fail(f"no file {args.file_id!r} in the ledger (see `airlock files list TENANT`)")
    if not record.state.terminal:
        return fail(f"file {args.file_id} is {record.state.value}: only a finished file can be replayed")
    reopened = ledger.reopen(args.file_id)
    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName=names.ingest_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=_object_event(reopened))
    print(f"replaying {record.key} as {record.file_id} (replay #{reopened.replays}) on {tgt.description}")
    print(f"follow it with: airlock files show {record.file_id}")
    return 0


def _queue_depth(sqs: object, url: str) -> int:
    attrs = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _queues() -> tuple[Any, str, str, Names] | int:
    """(sqs client, ingest queue URL, DLQ URL, names), or the exit code after saying what is missing."""
    tgt = target.resolve()
    names = Names.from_env()
    sqs = aws.client("sqs")
    try:
        queue = sqs.get_queue_url(QueueName=names.ingest_queue)["QueueUrl"]
        dlq = sqs.get_queue_url(QueueName=names.ingest_dlq)["QueueUrl"]
    except ClientError as err:
        return fail(f"cannot find the ingest queues on {tgt.description}: {err.response['Error']['Message']}")
    return sqs, queue, dlq, names


def cmd_dlq_status(args: argparse.Namespace) -> int:
    found = _queues()
    if isinstance(found, int):
        return found
    sqs, queue, dlq, _ = found
    print(f"ingest queue      {_queue_depth(sqs, queue)} messages")
    print(f"dead-letter queue {_queue_depth(sqs, dlq)} messages")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    """Move dead letters back one by one: send to the ingest queue first, then delete, so none is lost."""
    found = _queues()
    if isinstance(found, int):
        return found
    sqs, queue, dlq, names = found
    moved = 0
    while args.max is None or moved < args.max:
        want = 10 if args.max is None else min(10, args.max - moved)
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=want, WaitTimeSeconds=1,
                                       VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        for m in messages:
            sqs.send_message(QueueUrl=queue, MessageBody=m["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
        print(f"\rmoved {moved} dead letters back to {names.ingest_queue}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"redrove {moved} messages from {names.ingest_dlq} to {names.ingest_queue}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    files = sub.add_parser("files", help="list, show and replay uploaded files", epilog=FILES_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    fsub = files.add_subparsers(dest="files_command", metavar="ACTION", required=True)
    p = fsub.add_parser("list", help="the files a tenant sent")
    p.add_argument("tenant")
    p.add_argument("--state", choices=[s.value for s in FileState], help="only files in this state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = fsub.add_parser("show", help="one file's ledger record")
    p.add_argument("file_id")
    p.add_argument("--json", action="store_true", help="(the record is always printed as JSON)")
    p.set_defaults(func=cmd_show)
    p = fsub.add_parser("replay", help="process a finished file again", epilog=FILES_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file_id")
    p.set_defaults(func=cmd_replay)

    dlq = sub.add_parser("dlq", help="the ingest dead-letter queue", epilog=DLQ_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    p = dsub.add_parser("status", help="messages waiting in the ingest queue and its DLQ")
    p.set_defaults(func=cmd_dlq_status)
    p = dsub.add_parser("redrive", help="move dead letters back to the ingest queue")
    p.add_argument("--max", type=int, help="move at most this many (default: all)")
    p.set_defaults(func=cmd_dlq_redrive)
