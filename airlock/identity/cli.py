"""``airlock users add|rotate|disable|list TENANT ...``: manage a tenant's SFTP logins.

Runs against AWS_ENDPOINT_URL if set, else the local stack started by ``airlock local up``, else AWS.
Passwords come from stdin (``--password-stdin``) or are generated and printed once; they are never
taken from the command line (shell history, ``ps``). Mistakes print one line, no traceback.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from airlock.cli_support import fail
from airlock.identity.errors import IdentityInputError
from schemas.sftp_user import LOOPBACK_CIDRS, SftpUserSecret
from schemas.tenant import Tenant, TenantStatus

EPILOG = """\
examples:
  airlock users add acme acme-ops --public-key ~/.ssh/id_ed25519.pub --allow-cidr 203.0.113.0/24
  airlock users add acme acme-bot --generate-password --allow-cidr 198.51.100.7
  printf '%s\\n' "$NEW_PASSWORD" | airlock users rotate acme acme-bot --password-stdin
  airlock users rotate acme acme-ops --public-key new.pub --key-expires 2026-12-31
  airlock users disable acme acme-bot            (--enable to undo)
  airlock users list acme --json
"""

GENERATED_PASSWORD_BYTES = 18  # 24 URL-safe characters


class UsageError(Exception):
    """A mistake on the command line; printed as one line."""


def _read_keys(paths: list[str] | None) -> list[str] | None:
    if not paths:
        return None
    keys: list[str] = []
    for path in paths:
        try:
            text = Path(path).expanduser().read_text()
        except OSError as err:
            raise UsageError(f"cannot read public key {path}: {err.strerror}") from err
        found = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not found:
            raise UsageError(f"{path} holds no public key")
        if any("PRIVATE KEY" in ln for ln in found):
            raise UsageError(f"{path} is a private key; pass the .pub file")
        keys.extend(found)
    return keys


def _password(args: argparse.Namespace) -> tuple[str | None, bool]:
    """The new password (or None) and whether we generated it (so it must be printed once)."""
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("--password-stdin read an empty line")
        return line, False
    if args.generate_password:
        return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True
    return None, False


def _expiry(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise UsageError(f"--key-expires {value!r} is not a date (YYYY-MM-DD or ISO 8601)") from err
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise UsageError(f"--key-expires {value} is in the past")
    return moment


def _context(args: argparse.Namespace) -> tuple[str, Tenant]:
    """Resolve the endpoint and server id; return (server_id, tenant)."""
    from airlock import target
    from airlock.naming import Names
    from airlock.tenancy.registry import Registry

    tgt = target.resolve()
    server_id = args.server_id or tgt.server_id
    if not server_id:
        raise UsageError("no SFTP server id: pass --server-id or set AIRLOCK_SFTP_SERVER_ID")
    tenant = Registry(Names.from_env()).get(args.tenant)
    if tenant is None:
        raise UsageError(f"no tenant {args.tenant!r} on {tgt.description}; onboard it first (airlock tenants onboard)")
    if tenant.status in (TenantStatus.OFFBOARDED, TenantStatus.FAILED):
        raise UsageError(f"tenant {args.tenant!r} is {tenant.status.value}; users cannot be changed")
    return server_id, tenant


def _owned_user(server_id: str, tenant_id: str, username: str) -> SftpUserSecret:
    from airlock.identity.store import SecretsManagerStore

    user = SecretsManagerStore().get_user(server_id, username)
    if user is None:
        raise UsageError(f"no SFTP user {username!r} on server {server_id}")
    if user.tenant_id != tenant_id:
        raise UsageError(f"SFTP user {username!r} belongs to another tenant")
    return user


def cmd_add(args: argparse.Namespace) -> int:
    from airlock.identity.store import SecretsManagerStore
    from airlock.identity.users import upsert_user
    from airlock.naming import Names
    from airlock.tenancy.registry import Registry

    keys = _read_keys(args.public_key)
    password, generated = _password(args)
    if keys is None and password is None:
        raise UsageError("a user needs --public-key FILE, --password-stdin or --generate-password")
    expires = _expiry(args.key_expires)
    server_id, tenant = _context(args)
    if SecretsManagerStore().get_user(server_id, args.username) is not None:
        raise UsageError(f"SFTP user {args.username!r} exists; use 'airlock users rotate'")
    cidrs = args.allow_cidr or list(LOOPBACK_CIDRS)
    arn = upsert_user(
        names=Names.from_env(),
        server_id=server_id,
        tenant=tenant,
        username=args.username,
        public_keys=keys,
        password=password,
        allowed_cidrs=cidrs,
        keys_expire_at=expires,
    )
    if args.username not in tenant.sftp_users:
        registry = Registry(Names.from_env())
        registry.put(tenant.model_copy(update={"sftp_users": sorted({*tenant.sftp_users, args.username})}))
    print(f"added SFTP user {args.username} to {tenant.tenant_id} (from {', '.join(cidrs)})", file=sys.stderr)
    if not args.allow_cidr:
        print("note: loopback only; pass --allow-cidr with the counterparty's addresses on AWS", file=sys.stderr)
    _print_generated(password if generated else None)
    print(arn)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from airlock.identity.users import upsert_user
    from airlock.naming import Names

    keys = _read_keys(args.public_key)
    password, generated = _password(args)
    if keys is None and password is None and not args.allow_cidr:
        raise UsageError("nothing to rotate: pass --public-key, --password-stdin, --generate-password or --allow-cidr")
    expires = _expiry(args.key_expires)
    server_id, tenant = _context(args)
    current = _owned_user(server_id, tenant.tenant_id, args.username)
    arn = upsert_user(
        names=Names.from_env(),
        server_id=server_id,
        tenant=tenant,
        username=args.username,
        public_keys=keys,
        password=password,
        allowed_cidrs=args.allow_cidr or None,
        keys_expire_at=expires,
        disabled=current.disabled,
    )
    print(f"rotated SFTP user {args.username} of {tenant.tenant_id}", file=sys.stderr)
    _print_generated(password if generated else None)
    print(arn)
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    from airlock.identity.users import set_disabled

    server_id, tenant = _context(args)
    _owned_user(server_id, tenant.tenant_id, args.username)
    set_disabled(server_id=server_id, username=args.username, disabled=not args.enable)
    print(f"{'enabled' if args.enable else 'disabled'} SFTP user {args.username} of {tenant.tenant_id}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from airlock.identity.users import list_users

    server_id, tenant = _context(args)
    found = list_users(tenant_id=tenant.tenant_id, server_id=server_id)
    if args.json:
        print(json.dumps([u.as_dict() for u in found], indent=2))
        return 0
    if not found:
        print(f"no SFTP users for {tenant.tenant_id} on {server_id}")
        return 0
    for u in found:
        auth = [*(["password"] if u.has_password else []), *(f"key {fp}" for fp in u.key_fingerprints)]
        state = "DISABLED" if u.disabled else "active"
        print(f"{u.username:<24} {state:<8} {', '.join(auth) or '-'}  from {', '.join(u.allowed_cidrs) or 'nowhere'}")
        for fp, at in sorted(u.key_expiry.items()):
            print(f"{'':<24} key {fp} expires {at}")
    return 0


def _print_generated(password: str | None) -> None:
    if password is None:
        return
    print("generated password (shown once, give it to the counterparty over a separate channel):", file=sys.stderr)
    print(password)


def _run(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (UsageError, IdentityInputError) as err:
            return fail(str(err))
        except ClientError as err:
            error = err.response.get("Error", {})
            return fail(f"AWS refused {err.operation_name}: {error.get('Code')}: {error.get('Message')}")
        except BotoCoreError as err:
            return fail(f"cannot reach AWS: {err}")

    return run


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser(
        "users",
        help="manage a tenant's SFTP users (add, rotate, disable, list)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser, *, user: bool = True) -> None:
        p.add_argument("tenant", metavar="TENANT", help="tenant id")
        if user:
            p.add_argument("username", metavar="USERNAME", help="SFTP login name")
        p.add_argument(
            "--server-id", help="Transfer Family server id (default: the local stack's or $AIRLOCK_SFTP_SERVER_ID)"
        )

    def credentials(p: argparse.ArgumentParser) -> None:
        p.add_argument("--public-key", action="append", metavar="FILE", help="OpenSSH .pub file (repeatable)")
        pw = p.add_mutually_exclusive_group()
        pw.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
        pw.add_argument("--generate-password", action="store_true", help="generate a password and print it once")
        p.add_argument("--allow-cidr", action="append", metavar="CIDR", help="source address or block (repeatable)")
        p.add_argument("--key-expires", metavar="DATE", help="the given keys stop working at DATE (ISO 8601)")

    add = verbs.add_parser("add", help="create an SFTP user for a tenant")
    common(add)
    credentials(add)
    add.set_defaults(func=_run(cmd_add))

    rotate = verbs.add_parser("rotate", help="replace a user's keys, password or allowlist (the rest is kept)")
    common(rotate)
    credentials(rotate)
    rotate.set_defaults(func=_run(cmd_rotate))

    disable = verbs.add_parser("disable", help="refuse a user's logins (keys and password are kept)")
    common(disable)
    disable.add_argument("--enable", action="store_true", help="re-enable instead")
    disable.set_defaults(func=_run(cmd_disable))

    lst = verbs.add_parser("list", help="list a tenant's SFTP users (fingerprints, never hashes)")
    common(lst, user=False)
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=_run(cmd_list))
