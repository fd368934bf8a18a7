"""``airlock local up`` and ``airlock demo``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from airlock.local.stack import LocalStack, LocalStackConfig, PortInUseError, state_dir_default

UP_EPILOG = """\
examples:
  airlock local up                                 AWS on 127.0.0.1:4566, SFTP on 127.0.0.1:2222
  airlock local up --aws-port 5000 --sftp-port 2022

then, in another shell:
  airlock tenants onboard acme --user acme-ops --public-key ~/.ssh/id_ed25519.pub
  sftp -P 2222 acme-ops@127.0.0.1          # put a CSV into /inbound, read /outbound/reports
  AWS_ENDPOINT_URL=http://127.0.0.1:4566 aws s3 ls    # any AWS client works against the endpoint

Stops cleanly on Ctrl-C or SIGTERM. Host keys persist in the state directory, so known_hosts stays valid.
"""


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535; 0 picks a free one)")
    return port


def cmd_up(args: argparse.Namespace) -> int:
    config = LocalStackConfig(
        aws_port=args.aws_port, sftp_port=args.sftp_port, state_dir=args.state_dir,
        pump_concurrency=args.workers,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(config)
    try:
        stack.start()
    except PortInUseError as err:
        print(f"airlock: {err}", file=sys.stderr)
        return 2
    try:
        st = stack.state()
        print("airlock local stack is up")
        print(f"  AWS endpoint   {st['aws_endpoint']}   (export AWS_ENDPOINT_URL={st['aws_endpoint']})")
        print(f"  SFTP           {st['sftp_host']}:{st['sftp_port']}   server id {st['server_id']}")
        print(f"  host key       {st['host_key_fingerprint']}")
        print(f"  state          {config.state_dir.resolve()}")
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        print("stopping...", file=sys.stderr)
        stack.stop()
        print("stopped", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from airlock.local.demo import run_demo

    return run_demo(state_dir=args.state_dir, timeout_s=args.timeout, verbose=args.verbose)


def register(sub: argparse._SubParsersAction) -> None:
    local = sub.add_parser("local", help="the embedded local AWS, event pump and SFTP server")
    lsub = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = lsub.add_parser("up", help="run the local stack in the foreground", epilog=UP_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("--aws-port", type=_port, default=4566, help="AWS endpoint port (default 4566)")
    up.add_argument("--sftp-port", type=_port, default=2222, help="SFTP port (default 2222)")
    up.add_argument("--state-dir", type=Path, default=state_dir_default(),
                    help="where host keys and the running stack's facts live (default .airlock)")
    up.add_argument("--workers", type=int, default=2, help="concurrent ingest workers (default 2)")
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser(
        "demo",
        help="the whole flow on the local stack: onboard, sftp upload, validated Parquet",
        description="Starts the local stack on free ports, onboards tenant 'demo' with a fresh SSH key, "
        "uploads real sample files with the OpenSSH sftp client, waits for the verdicts, prints them, "
        "and shuts everything down.",
    )
    demo.add_argument("--state-dir", type=Path, default=Path(".airlock/demo"), help="default .airlock/demo")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for verdicts (default 60)")
    demo.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    demo.set_defaults(func=cmd_demo)
