"""``airlock tenants onboard|show|list``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from airlock import target
from airlock.naming import Names
from airlock.tenancy.registry import Registry
from schemas.onboarding import OnboardRequest, SftpUserSpec
from schemas.sftp_user import LOOPBACK_CIDRS
from schemas.tenant import IngestPolicy, Tenant

ONBOARD_EXAMPLES = """\
examples:
  airlock tenants onboard acme --user acme-ops --public-key ~/.ssh/id_ed25519.pub
  printf '%s' "$PASSWORD" | airlock tenants onboard acme --user acme-ops --password-stdin
  airlock tenants onboard acme --user acme-ops --public-key ops.pub --cidr 203.0.113.0/24 --allow-partial 0.05

Runs against AWS_ENDPOINT_URL if set, else the local stack started by `airlock local up`, else AWS.
Safe to run again: every step is create-or-get, and the tenant converges to ACTIVE.
"""


def _fail(message: str) -> int:
    print(f"airlock: {message}", file=sys.stderr)
    return 2


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
        return _fail("no SFTP server id: pass --server-id or set AIRLOCK_SFTP_SERVER_ID")
    keys: list[str] = []
    for path in args.public_key or []:
        try:
            keys.extend(line.strip() for line in Path(path).expanduser().read_text().splitlines() if line.strip())
        except OSError as err:
            return _fail(f"cannot read public key {path}: {err.strerror}")
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if args.user and not keys and not password:
        return _fail("a user needs --public-key FILE or --password-stdin")
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
        return _fail(_format_validation(err))
    from airlock.identity.errors import IdentityInputError
    from airlock.onboarding.steps import onboard

    print(f"onboarding {req.tenant_id} on {tgt.description}", file=sys.stderr)
    try:
        tenant = onboard(req, server_id=server_id or "", names=Names.from_env())
    except (IdentityInputError, ValueError) as err:
        return _fail(str(err))
    _print_tenant(tenant, args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    target.resolve()
    tenant = Registry(Names.from_env()).get(args.tenant)
    if tenant is None:
        return _fail(f"no tenant {args.tenant!r} in the registry (see `airlock tenants list`)")
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


def _ratio(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number between 0 and 1") from None
    if not 0.0 <= f <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1 (0.05 means 5%% bad rows)")
    return f


def register(sub: argparse._SubParsersAction) -> None:
    tenants = sub.add_parser("tenants", help="onboard, show and list tenants")
    tsub = tenants.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)

    p = tsub.add_parser(
        "onboard",
        help="create a tenant's key, role, bucket, SFTP user and registry record",
        epilog=ONBOARD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--json", action="store_true", help="print the registry record as JSON")
    p.set_defaults(func=cmd_onboard)

    p = tsub.add_parser("show", help="show one tenant's registry record")
    p.add_argument("tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = tsub.add_parser("list", help="list tenants")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
