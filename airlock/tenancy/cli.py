"""``airlock tenants onboard|offboard|show|list|check``.

onboard/offboard start an execution of the state machine and wait for it, printing each state as it
is entered: on AWS through StartExecution, locally by running the same ASL file in-process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from airlock import target
from airlock.cli_support import fail
from airlock.naming import Names
from airlock.tenancy.registry import Registry
from schemas.onboarding import (
    MAX_KEY_DELETION_DAYS,
    MIN_KEY_DELETION_DAYS,
    OffboardRequest,
    OnboardRequest,
    SftpUserSpec,
)
from schemas.sftp_user import LOOPBACK_CIDRS
from schemas.tenant import IngestPolicy, Tenant

RUNNER_HELP = (
    "where the state machine runs: aws (StartExecution on the deployed one), local (the same ASL file, "
    "in this process), auto (aws if deployed, else local for a local endpoint; default)"
)

ONBOARD_EXAMPLES = """\
examples:
  airlock tenants onboard acme --user acme-ops --public-key ~/.ssh/id_ed25519.pub
  printf '%s' "$PASSWORD" | airlock tenants onboard acme --user acme-ops --password-stdin
  airlock tenants onboard acme --user acme-ops --public-key ops.pub --cidr 203.0.113.0/24 --allow-partial 0.05

Runs against AWS_ENDPOINT_URL if set, else the local stack started by `airlock local up`, else AWS.
Safe to run again: every step is create-or-get, and the tenant converges to ACTIVE.
The password is hashed before the execution starts: it never appears in the execution history.
"""

OFFBOARD_EXAMPLES = """\
examples:
  airlock tenants offboard acme                       asks for confirmation
  airlock tenants offboard acme --yes --key-deletion-days 7 --reason "contract ended"

Disables the tenant's SFTP users, denies everything to its role, and schedules its KMS key for
deletion after the window (7-30 days). When the window passes, every object in the tenant's bucket
is unreadable for good (crypto-shredding); until then `aws kms cancel-key-deletion` undoes it.
"""

CHECK_EXAMPLES = """\
examples:
  airlock tenants check              every tenant
  airlock tenants check acme --json

Compares the live key, key policy, bucket encryption, bucket policy, notifications and role trust
with what onboarding sets up. Exit status: 0 no drift, 1 drift found, 2 usage error.
"""


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _format_validation(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not isinstance(x, int)) or "request"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _print_tenant(tenant: Tenant, as_json: bool) -> None:
    if as_json:
        print(tenant.model_dump_json(indent=2))
        return
    rows = [
        ("tenant", tenant.tenant_id),
        ("status", tenant.status.value + (f" ({tenant.failure})" if tenant.failure else "")),
        ("bucket", tenant.bucket),
        ("role", tenant.role_arn),
        ("kms key", tenant.kms_key_arn or "-"),
        ("sftp users", ", ".join(tenant.sftp_users) or "-"),
        ("partial acceptance",
         f"up to {tenant.policy.max_error_ratio:.1%} bad rows" if tenant.policy.allow_partial else "off"),
        ("slash dates", "day-first" if tenant.policy.date_order == "dmy" else "month-first"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def cmd_onboard(args: argparse.Namespace) -> int:
    tgt = target.resolve()
    server_id = args.server_id or tgt.server_id
    if args.user and not server_id:
        return fail("no SFTP server id: pass --server-id or set AIRLOCK_SFTP_SERVER_ID")
    keys: list[str] = []
    for path in args.public_key or []:
        try:
            keys.extend(line.strip() for line in Path(path).expanduser().read_text().splitlines() if line.strip())
        except OSError as err:
            return fail(f"cannot read public key {path}: {err.strerror}")
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if args.user and not keys and not password:
        return fail("a user needs --public-key FILE or --password-stdin")
    try:
        users = (
            (SftpUserSpec(username=args.user, public_keys=tuple(keys), password=password,
                          allowed_cidrs=tuple(args.cidr or LOOPBACK_CIDRS)),)
            if args.user else ()
        )
        req = OnboardRequest(
            tenant_id=args.tenant,
            display_name=args.display_name or "",
            users=users,
            policy=IngestPolicy(
                allow_partial=args.allow_partial is not None,
                max_error_ratio=args.allow_partial or 0.0,
                date_order=args.date_order,
            ),
        )
    except ValidationError as err:
        return fail(_format_validation(err))
    from airlock.identity.errors import IdentityInputError
    from airlock.onboarding.executions import ExecutionFailed, RunnerUnavailable, onboard

    print(f"onboarding {req.tenant_id} on {tgt.description}", file=sys.stderr)
    try:
        tenant = onboard(req, server_id=server_id or "", names=Names.from_env(), runner=args.runner,
                         progress=_progress)
    except (IdentityInputError, RunnerUnavailable, ValueError) as err:
        return fail(str(err))
    except ExecutionFailed as err:
        print(f"airlock: {err}", file=sys.stderr)
        print(f"airlock: the tenant is marked FAILED and an alert was published; fix the cause and run the "
              f"same command again (execution {err.execution_id})", file=sys.stderr)
        return 1
    _print_tenant(tenant, args.json)
    return 0


def _confirm(tenant_id: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"Offboarding {tenant_id} disables its SFTP users and schedules its KMS key for deletion: "
          "its data becomes unreadable for good once the window passes.", file=sys.stderr)
    try:
        answer = input(f"Type the tenant id ({tenant_id}) to confirm: ")
    except EOFError:
        return False
    return answer.strip() == tenant_id


def cmd_offboard(args: argparse.Namespace) -> int:
    tgt = target.resolve()
    try:
        req = OffboardRequest(
            tenant_id=args.tenant,
            server_id=args.server_id or tgt.server_id or "",
            key_deletion_window_days=args.key_deletion_days,
            requested_by=args.requested_by or "",
            reason=args.reason or "",
        )
    except ValidationError as err:
        return fail(_format_validation(err))
    if Registry(Names.from_env()).get(req.tenant_id) is None:
        return fail(f"no tenant {req.tenant_id!r} in the registry (see `airlock tenants list`)")
    if not args.yes and not _confirm(req.tenant_id):
        return fail("not confirmed: nothing was changed (pass --yes to skip the question)")
    from airlock.onboarding.executions import ExecutionFailed, RunnerUnavailable, offboard

    print(f"offboarding {req.tenant_id} on {tgt.description}", file=sys.stderr)
    try:
        record = offboard(req, names=Names.from_env(), runner=args.runner, progress=_progress)
    except (RunnerUnavailable, ValueError) as err:
        return fail(str(err))
    except ExecutionFailed as err:
        print(f"airlock: {err}", file=sys.stderr)
        print("airlock: the tenant stays SUSPENDED and an alert was published; run the same command again",
              file=sys.stderr)
        return 1
    if args.json:
        print(record.model_dump_json(indent=2))
    else:
        print(f"{record.tenant_id} offboarded: users disabled ({', '.join(record.disabled_users) or 'none'}), "
              f"role denied, key deletion on {record.key_deletion_date or '-'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    target.resolve()
    tenant = Registry(Names.from_env()).get(args.tenant)
    if tenant is None:
        return fail(f"no tenant {args.tenant!r} in the registry (see `airlock tenants list`)")
    _print_tenant(tenant, args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    target.resolve()
    tenants = Registry(Names.from_env()).list()
    if args.json:
        print(json.dumps([t.model_dump(mode="json") for t in tenants], indent=2))
        return 0
    if not tenants:
        print("no tenants yet: `airlock tenants onboard TENANT --user NAME --public-key FILE`")
        return 0
    print(f"{'TENANT':<24} {'STATUS':<11} {'USERS':<6} BUCKET")
    for t in tenants:
        print(f"{t.tenant_id:<24} {t.status.value:<11} {len(t.sftp_users):<6} {t.bucket}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from airlock.tenancy.check import check_tenant

    target.resolve()
    names = Names.from_env()
    registry = Registry(names)
    if args.tenant:
        one = registry.get(args.tenant)
        if one is None:
            return fail(f"no tenant {args.tenant!r} in the registry (see `airlock tenants list`)")
        tenants = [one]
    else:
        tenants = registry.list()
    reports = [check_tenant(t, names) for t in tenants]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        for r in reports:
            print(f"{r.tenant_id}: {'OK' if r.ok else 'DRIFT'} ({r.status}; {len(r.checked)} aspects checked)")
            for finding in r.findings:
                print(f"  - {finding}")
        if not reports:
            print("no tenants to check")
    return 0 if all(r.ok for r in reports) else 1


def _ratio(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number between 0 and 1") from None
    if not 0.0 <= f <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1 (0.05 means 5%% bad rows)")
    return f


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if not MIN_KEY_DELETION_DAYS <= days <= MAX_KEY_DELETION_DAYS:
        raise argparse.ArgumentTypeError(f"KMS allows {MIN_KEY_DELETION_DAYS} to {MAX_KEY_DELETION_DAYS} days")
    return days


def register(sub: argparse._SubParsersAction) -> None:
    tenants = sub.add_parser("tenants", help="onboard, offboard, show, list and check tenants")
    tsub = tenants.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    p = tsub.add_parser(
        "onboard",
        help="run the onboarding state machine: key, role, bucket, SFTP users, registry record",
        epilog=ONBOARD_EXAMPLES,
        formatter_class=raw,
    )
    p.add_argument("tenant", help="tenant id: 3-24 lower-case letters, digits and dashes")
    p.add_argument("--user", help="SFTP user name to create for the tenant")
    p.add_argument("--public-key", action="append", metavar="FILE", help="OpenSSH public key file (repeatable)")
    p.add_argument("--password-stdin", action="store_true", help="read the user's password from standard input")
    p.add_argument("--cidr", action="append",
                   help="source address range the user may log in from (repeatable; default loopback only)")
    p.add_argument("--display-name", help="a human name for the tenant")
    p.add_argument("--allow-partial", type=_ratio, metavar="RATIO",
                   help="publish good rows when at most RATIO of rows are bad (e.g. 0.05); default: reject the file")
    p.add_argument("--date-order", choices=["dmy", "mdy"], default="dmy", help="how to read slash dates (default dmy)")
    p.add_argument("--server-id", help="Transfer Family server id (default: the local stack's)")
    p.add_argument("--runner", choices=["auto", "aws", "local"], default="auto", help=RUNNER_HELP)
    p.add_argument("--json", action="store_true", help="print the registry record as JSON")
    p.set_defaults(func=cmd_onboard)

    p = tsub.add_parser(
        "offboard",
        help="run the offboarding state machine: disable users, deny the role, schedule key deletion",
        epilog=OFFBOARD_EXAMPLES,
        formatter_class=raw,
    )
    p.add_argument("tenant")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--key-deletion-days", type=_days, default=30, metavar="DAYS",
                   help=f"days before the key is deleted ({MIN_KEY_DELETION_DAYS}-{MAX_KEY_DELETION_DAYS}; default 30)")
    p.add_argument("--reason", help="why (kept in the audit record)")
    p.add_argument("--requested-by", help="who asked (kept in the audit record)")
    p.add_argument("--server-id", help="Transfer Family server id of the users (default: every server)")
    p.add_argument("--runner", choices=["auto", "aws", "local"], default="auto", help=RUNNER_HELP)
    p.add_argument("--json", action="store_true", help="print the audit record as JSON")
    p.set_defaults(func=cmd_offboard)

    p = tsub.add_parser("show", help="show one tenant's registry record",
                        epilog="example:\n  airlock tenants show acme --json", formatter_class=raw)
    p.add_argument("tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = tsub.add_parser("list", help="list tenants", epilog="example:\n  airlock tenants list", formatter_class=raw)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = tsub.add_parser("check", help="compare live resources with the registry; exit 1 on drift",
                        epilog=CHECK_EXAMPLES, formatter_class=raw)
    p.add_argument("tenant", nargs="?", help="one tenant (default: every tenant)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)
