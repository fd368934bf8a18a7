"""A real SFTP server for the local stack that behaves like Transfer Family in front of S3.

Every login goes through the identity provider exactly as Transfer Family calls it: a password login
passes the password; a key login passes none and the offered key is checked against the response's
``PublicKeys``. The session then assumes the response's ``Role`` with its ``Policy`` as session
policy, and all S3 access uses those credentials; the bucket and prefixes come only from the
response's logical ``HomeDirectoryDetails``.

Transfer Family's S3 semantics are kept: sequential writes only, an object appears only when the
client closes the file cleanly (spooled to a temp file, then uploaded; a dropped connection leaves
nothing), ``mkdir`` writes a folder marker, rename is copy+delete, nothing outside the logical home.
moto does not enforce session policies, so this server evaluates the session policy itself before
every S3 call (the bridge lives here, not in the core): ``/outbound`` is read-only because the policy
says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import posixpath
import re
import stat as stat_mod
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import asyncssh
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from airlock import aws
from airlock.identity.keys import KeyRejected, parse_public_key
from airlock.naming import LOCAL_SERVER_ID

log = logging.getLogger(__name__)

IdentityFn = Callable[[dict[str, Any]], dict[str, Any]]
T = TypeVar("T")

HOST_KEY_FILE = "ssh_host_ed25519_key"
DEFAULT_IDLE_TIMEOUT_S = 1800.0  # Transfer Family drops idle SFTP sessions after 30 minutes
_S3_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60)
_SESSION_NAME_RE = re.compile(r"[^\w+=,.@-]")


# -- the session policy, evaluated here because moto ignores it ------------------------------------


def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM wildcards: ``*`` any run, ``?`` one character, everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


class SessionPolicy:
    """Enough of IAM policy evaluation for S3 session policies: Allow/Deny, wildcards, StringLike/Equals.

    Anything not understood fails closed: an unknown condition makes an Allow not apply and a Deny
    apply; ``NotAction``/``NotResource`` Allows never apply.
    """

    def __init__(self, document: str | dict[str, Any]) -> None:
        doc = json.loads(document) if isinstance(document, str) else document
        statements = doc.get("Statement", [])
        self.statements: list[dict[str, Any]] = [statements] if isinstance(statements, dict) else statements

    def allows(self, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
        ctx = context or {}
        allowed = False
        for st in self.statements:
            deny = st.get("Effect") == "Deny"
            if not self._applies(st, action, resource, ctx, deny=deny):
                continue
            if deny:
                return False
            allowed = True
        return allowed

    @staticmethod
    def _applies(st: dict[str, Any], action: str, resource: str, ctx: dict[str, str], *, deny: bool) -> bool:
        if "NotAction" in st or "NotResource" in st:
            return deny
        if not any(_wildcard(a.lower()).fullmatch(action.lower()) for a in _as_list(st.get("Action"))):
            return False
        if not any(_wildcard(r).fullmatch(resource) for r in _as_list(st.get("Resource"))):
            return False
        for operator, clauses in (st.get("Condition") or {}).items():
            for key, values in clauses.items():
                if key not in ctx:
                    return deny
                if operator == "StringLike":
                    ok = any(_wildcard(v).fullmatch(ctx[key]) for v in _as_list(values))
                elif operator == "StringEquals":
                    ok = ctx[key] in _as_list(values)
                else:
                    return deny
                if not ok:
                    return False
        return True


# -- the authenticated session ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One logical directory: the client sees ``entry``; objects live at ``bucket``/``prefix``."""

    entry: str
    bucket: str
    prefix: str  # no leading or trailing slash; "" for a whole bucket


@dataclass
class Session:
    username: str
    source_ip: str
    mounts: list[Mount]
    policy: SessionPolicy
    s3: Any


def parse_mounts(details: str) -> list[Mount]:
    mounts = []
    for item in json.loads(details):
        entry = "/" + str(item["Entry"]).strip("/")
        target = str(item["Target"]).strip("/")
        bucket, _, prefix = target.partition("/")
        if not bucket or entry == "/":
            raise ValueError("bad HomeDirectoryDetails entry")
        mounts.append(Mount(entry=entry, bucket=bucket, prefix=prefix.strip("/")))
    return mounts


def _role_session_name(username: str) -> str:
    return _SESSION_NAME_RE.sub("-", f"sftp-{username}")[:64]


def open_session(username: str, source_ip: str, response: dict[str, Any]) -> Session | None:
    """Turn an identity response into an S3 session the way Transfer Family does (assume role + policy)."""
    if not response.get("Role") or response.get("HomeDirectoryType") != "LOGICAL":
        return None
    mounts = parse_mounts(response["HomeDirectoryDetails"])
    policy_text = response.get("Policy")
    kwargs: dict[str, Any] = {
        "RoleArn": response["Role"],
        "RoleSessionName": _role_session_name(username),
        "DurationSeconds": 3600,
    }
    if policy_text:
        kwargs["Policy"] = policy_text
    creds = aws.client("sts").assume_role(**kwargs)["Credentials"]
    s3 = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).client("s3", config=_S3_CONFIG)
    # No policy means the role's own permissions; an unparseable one means nothing.
    policy = SessionPolicy(policy_text) if policy_text else SessionPolicy({"Statement": [_ALLOW_ALL]})
    return Session(username=username, source_ip=source_ip, mounts=mounts, policy=policy, s3=s3)


_ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


# -- SSH: authentication through the identity provider ---------------------------------------------


class _Gate(asyncssh.SSHServer):
    """One per connection: calls the identity provider and holds the resulting session."""

    def __init__(self, server: LocalSftpServer) -> None:
        self._server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.source_ip = ""
        self.session: Session | None = None
        self.lost = False
        self.last_activity = time.monotonic()
        self._key_responses: dict[str, dict[str, Any]] = {}
        self._watchdog: asyncio.Task[None] | None = None
        # Logins in progress: a slow identity call (argon2, STS) is not idleness; login_timeout covers it.
        self._authenticating = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.source_ip = str(peer[0]) if peer else ""
        self._server._connections.add(conn)
        self._watchdog = asyncio.get_running_loop().create_task(self._idle_watchdog())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.conn is not None:
            self._server._connections.discard(self.conn)
        if self._watchdog is not None:
            self._watchdog.cancel()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    async def _idle_watchdog(self) -> None:
        timeout = self._server.idle_timeout_s
        while True:
            await asyncio.sleep(min(timeout, 5.0))
            if self._authenticating:
                continue
            if time.monotonic() - self.last_activity >= timeout and self.conn is not None:
                log.info("closing idle SFTP session of %s", self.session.username if self.session else "-")
                self.conn.close()
                return

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        self._authenticating += 1
        try:
            response = await self._server._call_identity(username, self.source_ip, password)
            return await self._establish(username, response)
        finally:
            self._authenticating -= 1
            self.touch()  # the idle clock starts when the login is answered, not when it was asked

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._authenticating += 1
        try:
            return await self._validate_public_key(username, key)
        finally:
            self._authenticating -= 1
            self.touch()

    async def _validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # asyncssh asks once for the key query and once for the signature: one IdP call per login.
        if username not in self._key_responses:
            self._key_responses[username] = await self._server._call_identity(username, self.source_ip, None)
        response = self._key_responses[username]
        if not response.get("Role") or not _key_listed(key, response.get("PublicKeys") or []):
            return False
        if self.session is not None and self.session.username == username:
            return True
        return await self._establish(username, response)

    async def _establish(self, username: str, response: dict[str, Any]) -> bool:
        if not response.get("Role"):
            return False
        try:
            self.session = await asyncio.get_running_loop().run_in_executor(
                self._server._executor, open_session, username, self.source_ip, response
            )
        except (ClientError, ValueError, KeyError) as err:
            log.warning("SFTP login of %s failed to open an S3 session: %s", username, err)
            return False
        return self.session is not None


def _key_listed(key: asyncssh.SSHKey, lines: list[str]) -> bool:
    offered = key.export_public_key("openssh").decode()
    try:
        blob = parse_public_key(offered).blob
    except KeyRejected:
        return False
    for line in lines:
        try:
            if parse_public_key(line).blob == blob:
                return True
        except KeyRejected:
            continue
    return False


# -- SFTP over S3 ----------------------------------------------------------------------------------


@dataclass
class _Loc:
    """A resolved client path: the virtual root (or an ancestor of a mount), or a place in S3."""

    vpath: str
    mount: Mount | None = None
    key: str = ""  # object key without trailing slash; the mount's prefix itself for the mount root
    children: list[str] = field(default_factory=list)  # virtual directories only

    @property
    def is_mount_root(self) -> bool:
        return self.mount is not None and self.key == self.mount.prefix

    @property
    def dir_prefix(self) -> str:
        return f"{self.key}/" if self.key else ""


@dataclass
class _Handle:
    loc: _Loc
    spool: IO[bytes]
    writing: bool
    size: int = 0
    failed: bool = False


def _dir_attrs(writable: bool, mtime: int = 0) -> asyncssh.SFTPAttrs:
    mode = stat_mod.S_IFDIR | (0o755 if writable else 0o555)
    return asyncssh.SFTPAttrs(permissions=mode, size=0, uid=0, gid=0, nlink=1, atime=mtime, mtime=mtime)


def _file_attrs(size: int, mtime: int, writable: bool) -> asyncssh.SFTPAttrs:
    mode = stat_mod.S_IFREG | (0o644 if writable else 0o444)
    return asyncssh.SFTPAttrs(permissions=mode, size=size, uid=0, gid=0, nlink=1, atime=mtime, mtime=mtime)


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class S3SftpServer(asyncssh.SFTPServer):
    """The SFTP subsystem of one authenticated connection, over the session's S3 credentials."""

    def __init__(self, chan: asyncssh.SSHServerChannel, server: LocalSftpServer) -> None:
        super().__init__(chan)
        owner = chan.get_connection().get_owner()
        assert isinstance(owner, _Gate) and owner.session is not None
        self._gate = owner
        self._session: Session = owner.session
        self._server = server

    # -- helpers ----------------------------------------------------------------------------------
    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        self._gate.touch()
        return await asyncio.get_running_loop().run_in_executor(self._server._executor, fn, *args)

    def _resolve(self, path: bytes) -> _Loc:
        self._gate.touch()
        try:
            text = path.decode("utf-8")
        except UnicodeDecodeError as err:
            raise asyncssh.SFTPNoSuchFile("path is not UTF-8") from err
        if "\x00" in text:
            raise asyncssh.SFTPNoSuchFile("bad path")
        vpath = posixpath.normpath(re.sub("/+", "/", "/" + text))
        vpath = "/" if vpath in ("/", "//", ".") else vpath.rstrip("/")
        for mount in sorted(self._session.mounts, key=lambda m: len(m.entry), reverse=True):
            if vpath == mount.entry or vpath.startswith(mount.entry + "/"):
                rest = vpath[len(mount.entry) :].strip("/")
                key = "/".join(p for p in (mount.prefix, rest) if p)
                return _Loc(vpath=vpath, mount=mount, key=key)
        children = sorted(
            {
                m.entry[len(vpath) :].strip("/").split("/")[0]
                for m in self._session.mounts
                if vpath == "/" or m.entry.startswith(vpath + "/")
            }
        )
        if children:
            return _Loc(vpath=vpath, children=children)
        raise asyncssh.SFTPNoSuchFile(f"{vpath}: no such file or directory")

    def _s3_loc(self, path: bytes) -> _Loc:
        """A place in S3 for an operation that needs one; anything outside the mounts is denied."""
        try:
            loc = self._resolve(path)
        except asyncssh.SFTPNoSuchFile as err:
            raise asyncssh.SFTPPermissionDenied("Access denied") from err
        if loc.mount is None:
            raise asyncssh.SFTPPermissionDenied("Access denied")
        return loc

    def _allowed(self, action: str, loc: _Loc, key: str | None = None) -> bool:
        assert loc.mount is not None
        return self._session.policy.allows(action, f"arn:aws:s3:::{loc.mount.bucket}/{key or loc.key}")

    def _require(self, action: str, loc: _Loc, key: str | None = None) -> None:
        if not self._allowed(action, loc, key):
            raise asyncssh.SFTPPermissionDenied("Access denied")

    def _require_list(self, loc: _Loc, prefix: str) -> None:
        assert loc.mount is not None
        if not self._session.policy.allows("s3:ListBucket", f"arn:aws:s3:::{loc.mount.bucket}", {"s3:prefix": prefix}):
            raise asyncssh.SFTPPermissionDenied("Access denied")

    def _writable(self, loc: _Loc) -> bool:
        return loc.mount is not None and self._allowed("s3:PutObject", loc, f"{loc.dir_prefix}x")

    def _session_ending(self) -> bool:
        """True when asyncssh closes handles because the connection or channel went away."""
        chan = self.channel
        return self._gate.lost or chan.is_closing() or getattr(chan, "_recv_state", "open") != "open"

    def _translate(self, err: ClientError) -> asyncssh.SFTPError:
        code = _error_code(err)
        if code in ("AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId"):
            return asyncssh.SFTPPermissionDenied("Access denied")
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
            return asyncssh.SFTPNoSuchFile("No such file")
        log.warning("S3 error for %s: %s", self._session.username, code)
        return asyncssh.SFTPFailure(f"S3 error: {code}")

    # -- S3 primitives (blocking; run in the executor) ---------------------------------------------
    def _head(self, loc: _Loc) -> dict[str, Any] | None:
        assert loc.mount is not None
        try:
            return dict(self._session.s3.head_object(Bucket=loc.mount.bucket, Key=loc.key))
        except ClientError as err:
            if _error_code(err) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _has_children(self, loc: _Loc) -> bool:
        assert loc.mount is not None
        resp = self._session.s3.list_objects_v2(Bucket=loc.mount.bucket, Prefix=loc.dir_prefix, MaxKeys=2)
        keys = [o["Key"] for o in resp.get("Contents", [])]
        return bool(keys)

    def _stat_blocking(self, loc: _Loc) -> asyncssh.SFTPAttrs:
        if loc.mount is None:
            return _dir_attrs(False)
        if loc.is_mount_root:
            return _dir_attrs(self._writable(loc))
        if self._allowed("s3:GetObject", loc):
            head = self._head(loc)
            if head is not None:
                return _file_attrs(
                    int(head["ContentLength"]), int(head["LastModified"].timestamp()), self._writable(loc)
                )
        self._require_list(loc, loc.dir_prefix)
        if self._has_children(loc):
            return _dir_attrs(self._writable(loc))
        raise asyncssh.SFTPNoSuchFile(f"{loc.vpath}: no such file or directory")

    def _list_blocking(self, loc: _Loc) -> list[asyncssh.SFTPName]:
        assert loc.mount is not None
        self._require_list(loc, loc.dir_prefix)
        writable = self._writable(loc)
        names: list[asyncssh.SFTPName] = []
        found_any = loc.is_mount_root
        paginator = self._session.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=loc.mount.bucket, Prefix=loc.dir_prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                found_any = True
                name = cp["Prefix"][len(loc.dir_prefix) :].rstrip("/")
                if name:
                    names.append(asyncssh.SFTPName(name.encode(), attrs=_dir_attrs(writable)))
            for obj in page.get("Contents", []):
                found_any = True
                name = obj["Key"][len(loc.dir_prefix) :]
                if not name:  # the folder marker of this directory
                    continue
                attrs = _file_attrs(int(obj["Size"]), int(obj["LastModified"].timestamp()), writable)
                names.append(asyncssh.SFTPName(name.encode(), attrs=attrs))
        if not found_any:
            if self._head(loc) is not None:
                raise asyncssh.SFTPNotADirectory(f"{loc.vpath}: not a directory")
            raise asyncssh.SFTPNoSuchFile(f"{loc.vpath}: no such file or directory")
        return names

    def _download(self, loc: _Loc, spool: IO[bytes]) -> int:
        assert loc.mount is not None
        body = self._session.s3.get_object(Bucket=loc.mount.bucket, Key=loc.key)["Body"]
        size = 0
        for chunk in body.iter_chunks(1024 * 1024):
            spool.write(chunk)
            size += len(chunk)
        return size

    def _upload(self, loc: _Loc, spool: IO[bytes]) -> None:
        # No SSE parameters: the bucket's default encryption (SSE-KMS, tenant key) applies, as in AWS.
        assert loc.mount is not None
        spool.seek(0)
        self._session.s3.upload_fileobj(spool, loc.mount.bucket, loc.key)

    # -- SFTP operations ---------------------------------------------------------------------------
    def realpath(self, path: bytes) -> bytes:
        text = path.decode("utf-8", errors="replace")
        vpath = posixpath.normpath(re.sub("/+", "/", "/" + text))
        return b"/" if vpath in ("/", "//", ".") else vpath.rstrip("/").encode()

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        loc = self._resolve(path)
        try:
            return await self._io(self._stat_blocking, loc)
        except ClientError as err:
            raise self._translate(err) from err

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.stat(path)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        loc = self._resolve(path)
        yield asyncssh.SFTPName(b".", attrs=_dir_attrs(self._writable(loc)))
        yield asyncssh.SFTPName(b"..", attrs=_dir_attrs(False))
        if loc.mount is None:
            for child in loc.children:
                child_loc = self._resolve(f"{loc.vpath.rstrip('/')}/{child}".encode())
                yield asyncssh.SFTPName(child.encode(), attrs=_dir_attrs(self._writable(child_loc)))
            return
        try:
            names = await self._io(self._list_blocking, loc)
        except ClientError as err:
            raise self._translate(err) from err
        for name in names:
            yield name

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> _Handle:
        loc = self._s3_loc(path)
        if loc.is_mount_root:
            raise asyncssh.SFTPFileIsADirectory(f"{loc.vpath}: is a directory")
        writing = bool(pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT))
        if pflags & asyncssh.FXF_APPEND:
            raise asyncssh.SFTPOpUnsupported("Append is not supported: S3 objects are written whole")
        self._require("s3:PutObject" if writing else "s3:GetObject", loc)
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, dir=self._server.spool_dir)  # noqa: SIM115
        try:
            if writing:
                if pflags & asyncssh.FXF_EXCL and await self._io(self._head, loc) is not None:
                    raise asyncssh.SFTPFileAlreadyExists(f"{loc.vpath}: file exists")
                return _Handle(loc=loc, spool=spool, writing=True)
            size = await self._io(self._download, loc, spool)
            return _Handle(loc=loc, spool=spool, writing=False, size=size)
        except ClientError as err:
            spool.close()
            raise self._translate(err) from err
        except BaseException:
            spool.close()
            raise

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        handle = _as_handle(file_obj)
        self._gate.touch()
        if handle.writing:
            raise asyncssh.SFTPOpUnsupported("This file is open for writing")
        handle.spool.seek(offset)
        return handle.spool.read(size)

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        handle = _as_handle(file_obj)
        self._gate.touch()
        if not handle.writing:
            raise asyncssh.SFTPPermissionDenied("This file is open for reading")
        if offset != handle.size:
            handle.failed = True  # Transfer Family refuses random access to S3 objects; nothing is stored
            raise asyncssh.SFTPOpUnsupported("Only sequential writes are supported")
        handle.spool.seek(offset)
        handle.spool.write(data)
        handle.size += len(data)
        return len(data)

    async def close(self, file_obj: object) -> None:
        handle = _as_handle(file_obj)
        try:
            if handle.writing:
                if handle.failed or self._session_ending():
                    log.info("discarding incomplete upload of %s by %s", handle.loc.vpath, self._session.username)
                    return
                await self._io(self._upload, handle.loc, handle.spool)
        except ClientError as err:
            raise self._translate(err) from err
        finally:
            handle.spool.close()

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        handle = _as_handle(file_obj)
        return _file_attrs(handle.size, int(time.time()), handle.writing)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """Accepted and ignored, like Transfer Family with ``SetStatOption: ENABLE_NO_OP``."""
        self._resolve(path)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._resolve(path)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        _as_handle(file_obj)

    async def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        loc = self._s3_loc(path)
        if loc.is_mount_root:
            raise asyncssh.SFTPFileAlreadyExists(f"{loc.vpath}: exists")
        marker = loc.dir_prefix
        self._require("s3:PutObject", loc, marker)
        assert loc.mount is not None
        bucket = loc.mount.bucket
        try:
            if await self._io(self._head, loc) is not None:
                raise asyncssh.SFTPFileAlreadyExists(f"{loc.vpath}: a file with that name exists")
            await self._io(lambda: self._session.s3.put_object(Bucket=bucket, Key=marker, Body=b""))
        except ClientError as err:
            raise self._translate(err) from err

    async def rmdir(self, path: bytes) -> None:
        loc = self._s3_loc(path)
        if loc.is_mount_root:
            raise asyncssh.SFTPPermissionDenied("Access denied")
        marker = loc.dir_prefix
        self._require("s3:DeleteObject", loc, marker)
        self._require_list(loc, marker)
        assert loc.mount is not None
        bucket = loc.mount.bucket
        try:
            resp = await self._io(lambda: self._session.s3.list_objects_v2(Bucket=bucket, Prefix=marker, MaxKeys=2))
            keys = [o["Key"] for o in resp.get("Contents", [])]
            if not keys:
                raise asyncssh.SFTPNoSuchFile(f"{loc.vpath}: no such directory")
            if keys != [marker]:
                raise asyncssh.SFTPDirNotEmpty(f"{loc.vpath}: directory not empty")
            await self._io(lambda: self._session.s3.delete_object(Bucket=bucket, Key=marker))
        except ClientError as err:
            raise self._translate(err) from err

    async def remove(self, path: bytes) -> None:
        loc = self._s3_loc(path)
        if loc.is_mount_root:
            raise asyncssh.SFTPPermissionDenied("Access denied")
        self._require("s3:DeleteObject", loc)
        assert loc.mount is not None
        bucket = loc.mount.bucket
        try:
            if await self._io(self._head, loc) is None:
                raise asyncssh.SFTPNoSuchFile(f"{loc.vpath}: no such file")
            await self._io(lambda: self._session.s3.delete_object(Bucket=bucket, Key=loc.key))
        except ClientError as err:
            raise self._translate(err) from err

    async def _rename(self, oldpath: bytes, newpath: bytes, *, overwrite: bool) -> None:
        src, dst = self._s3_loc(oldpath), self._s3_loc(newpath)
        if src.is_mount_root or dst.is_mount_root:
            raise asyncssh.SFTPPermissionDenied("Access denied")
        self._require("s3:GetObject", src)
        self._require("s3:DeleteObject", src)
        self._require("s3:PutObject", dst)
        assert src.mount is not None and dst.mount is not None
        s3 = self._session.s3
        try:
            if await self._io(self._head, src) is None:
                raise asyncssh.SFTPNoSuchFile(f"{src.vpath}: no such file (directories cannot be renamed)")
            if not overwrite and await self._io(self._head, dst) is not None:
                raise asyncssh.SFTPFileAlreadyExists(f"{dst.vpath}: file exists")
            src_bucket, dst_bucket = src.mount.bucket, dst.mount.bucket
            source = {"Bucket": src_bucket, "Key": src.key}
            await self._io(lambda: s3.copy_object(Bucket=dst_bucket, Key=dst.key, CopySource=source))
            await self._io(lambda: s3.delete_object(Bucket=src_bucket, Key=src.key))
        except ClientError as err:
            raise self._translate(err) from err

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self._rename(oldpath, newpath, overwrite=False)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self._rename(oldpath, newpath, overwrite=True)

    def readlink(self, path: bytes) -> bytes:
        raise asyncssh.SFTPOpUnsupported("Symbolic links are not supported")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("Symbolic links are not supported")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("Hard links are not supported")

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("statvfs is not supported")

    def exit(self) -> None:
        log.debug("SFTP session of %s ended", self._session.username)


def _as_handle(file_obj: object) -> _Handle:
    if not isinstance(file_obj, _Handle):
        raise asyncssh.SFTPFailure("Invalid handle")
    return file_obj


# -- the server ------------------------------------------------------------------------------------


def load_or_create_host_key(state_dir: Path) -> asyncssh.SSHKey:
    """The host key is created once and reused, so clients' known_hosts stays valid across restarts."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / HOST_KEY_FILE
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment="airlock-local-sftp")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.export_private_key("openssh"))
    os.replace(tmp, path)
    (state_dir / f"{HOST_KEY_FILE}.pub").write_bytes(key.export_public_key("openssh"))
    return key


class LocalSftpServer:
    """The local Transfer Family stand-in: asyncssh on its own asyncio loop in a daemon thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2222,
        *,
        state_dir: Path,
        identity: IdentityFn,
        server_id: str = LOCAL_SERVER_ID,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        login_timeout_s: float = 30.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.state_dir = Path(state_dir)
        self.server_id = server_id
        self.identity = identity
        self.idle_timeout_s = idle_timeout_s
        self.login_timeout_s = login_timeout_s
        self.host_key = load_or_create_host_key(self.state_dir)
        self.spool_dir = str(self.state_dir / "spool")
        Path(self.spool_dir).mkdir(parents=True, exist_ok=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="sftp-io")
        self.port = port

    # -- facts clients need ---------------------------------------------------------------------
    @property
    def host_key_fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
        return str(self.host_key.get_fingerprint("sha256"))

    @property
    def host_public_key(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()

    def known_hosts_line(self) -> str:
        """A known_hosts line for this server (``[host]:port`` form when the port is not 22)."""
        host = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        key_type, key_data = self.host_public_key.split()[:2]
        return f"{host} {key_type} {key_data}"

    # -- identity, as Transfer Family calls it ------------------------------------------------------
    async def _call_identity(self, username: str, source_ip: str, password: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "username": username,
            "protocol": "SFTP",
            "serverId": self.server_id,
            "sourceIp": source_ip,
        }
        if password is not None:
            event["password"] = password
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self.identity, event)
        except Exception:
            log.exception("identity provider failed for %s", username)
            return {}
        return result if isinstance(result, dict) else {}

    # -- lifecycle --------------------------------------------------------------------------------
    async def _listen(self) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            self.host,
            self._requested_port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Gate(self),
            sftp_factory=lambda chan: S3SftpServer(chan, self),
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_pty=False,
            login_timeout=self.login_timeout_s,
            keepalive_interval=30,
        )

    def start(self, timeout_s: float = 10.0) -> LocalSftpServer:
        """Start listening; returns once the port is bound (``.port`` is the real port)."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        thread = threading.Thread(target=loop.run_forever, name="airlock-sftp", daemon=True)
        thread.start()
        self._thread = thread
        try:
            self._acceptor = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout_s)
        except BaseException:
            self.stop()
            raise
        self.port = self._acceptor.get_port()
        log.info("local SFTP server on %s:%d (host key %s)", self.host, self.port, self.host_key_fingerprint)
        return self

    async def _shutdown(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            with contextlib.suppress(Exception):
                await self._acceptor.wait_closed()
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 2)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._loop = self._thread = self._acceptor = None

    def __enter__(self) -> LocalSftpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
