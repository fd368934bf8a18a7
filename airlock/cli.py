"""The ``airlock`` command: one sub-command per job, each registered by the module that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airlock import __version__

EXAMPLES = """\
examples:
  airlock demo                                  run the whole flow on the embedded local AWS
  airlock local up                              start the local AWS, event pump and SFTP server
  airlock tenants onboard acme --user acme-ops --public-key ~/.ssh/id_ed25519.pub
  airlock validate trades.csv --json            check a file offline, no AWS needed
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Secure SFTP file intake: validate counterparties' CSV files into typed Parquet.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"airlock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Each module owns its parser: register(sub) adds a sub-command whose ``func(args) -> int`` runs it.
    from airlock.commands import register_all

    register_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
