"""The embedded local AWS: moto's server, the platform resources, the event pump and the SFTP server.

One process, each part stoppable, all torn down together. Everything that differs from AWS is
bridged here (and in the rest of ``airlock/local/``), never in the core or the handlers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from airlock import aws
from airlock.local.context import LocalLambdaContext
from airlock.local.pump import EventPump
from airlock.local.resources import PlatformResources, create_platform_resources, create_worker_role
from airlock.naming import DEFAULT_REGION, LOCAL_SERVER_ID, Names

log = logging.getLogger(__name__)

STATE_FILE = "local.json"
DEFAULT_STATE_DIR = Path(".airlock")
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": DEFAULT_REGION,
    "AWS_REGION": DEFAULT_REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Airlock",
}


class PortInUseError(RuntimeError):
    pass


def state_dir_default() -> Path:
    return Path(os.environ.get("AIRLOCK_STATE_DIR", DEFAULT_STATE_DIR))


def _check_port_free(host: str, port: int, what: str, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise PortInUseError(
                f"{what} port {host}:{port} is in use ({err.strerror}); pick another with {flag}"
            ) from err


def _invoke(handler_path: str, function_name: str) -> Any:
    """A callable that invokes a handler in-process, as Lambda would, with a fresh context."""
    module_name, attr = handler_path.rsplit(".", 1)

    def call(event: dict[str, Any], _context: Any = None) -> Any:
        import importlib

        handler = getattr(importlib.import_module(module_name), attr)
        return handler(event, LocalLambdaContext(function_name=function_name))

    return call


@dataclass
class LocalStackConfig:
    host: str = "127.0.0.1"
    aws_port: int = 4566
    sftp_port: int = 2222
    state_dir: Path = field(default_factory=state_dir_default)
    server_id: str = LOCAL_SERVER_ID
    pump_concurrency: int = 2
    with_sftp: bool = True
    with_pump: bool = True
    # Use an AWS endpoint that is already running (e.g. a LocalStack container) instead of moto.
    external_endpoint: str | None = None


class LocalStack:
    """Start with ``start()`` (or ``with LocalStack(...) as stack``); ``stop()`` undoes everything."""

    def __init__(self, config: LocalStackConfig | None = None, names: Names | None = None) -> None:
        self.config = config or LocalStackConfig()
        self.names = names or Names()
        self.endpoint = ""
        self.resources: PlatformResources | None = None
        self.pump: EventPump | None = None
        self.sftp: Any = None
        self._moto: Any = None
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        cfg = self.config
        if cfg.external_endpoint is None:
            _check_port_free(cfg.host, cfg.aws_port, "AWS endpoint", "--aws-port")
        if cfg.with_sftp:
            _check_port_free(cfg.host, cfg.sftp_port, "SFTP", "--sftp-port")
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        if cfg.external_endpoint is not None:
            self.endpoint = cfg.external_endpoint
        else:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            from moto.server import ThreadedMotoServer

            from airlock.local import moto_bridge

            moto_bridge.install()

            self._moto = ThreadedMotoServer(ip_address=cfg.host, port=cfg.aws_port, verbose=False)
            self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
        self._set_env(
            {
                **LOCAL_ENV,
                "AWS_ENDPOINT_URL": self.endpoint,
                "AIRLOCK_PREFIX": self.names.prefix,
                "AIRLOCK_ACCOUNT_ID": self.names.account_id,
                "AIRLOCK_SFTP_SERVER_IDS": cfg.server_id,
                "AIRLOCK_WORKER_ROLE_ARN": self.names.worker_role_arn,
            }
        )
        try:
            self.resources = create_platform_resources(self.names)
            create_worker_role(self.names)
            if cfg.with_pump:
                self.pump = EventPump(
                    self.resources.ingest_queue_url,
                    _invoke("handlers.ingest.lambda_handler", "IngestFunction"),
                    concurrency=cfg.pump_concurrency,
                )
                self.pump.start()
            if cfg.with_sftp:
                from airlock.local.sftp import LocalSftpServer

                self.sftp = LocalSftpServer(
                    host=cfg.host,
                    port=cfg.sftp_port,
                    state_dir=cfg.state_dir,
                    server_id=cfg.server_id,
                    identity=_invoke("handlers.identity_provider.lambda_handler", "IdentityProviderFunction"),
                )
                self.sftp.start()
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.sftp is not None:
            self.sftp.stop()
            self.sftp = None
        if self.pump is not None:
            self.pump.stop()
            self.pump = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        (self.config.state_dir / STATE_FILE).unlink(missing_ok=True)
        self._restore_env()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- facts for people and other processes ---------------------------------------------------
    @property
    def sftp_port(self) -> int:
        return int(self.sftp.port) if self.sftp is not None else 0

    def state(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "aws_endpoint": self.endpoint,
            "region": self.names.region,
            "prefix": self.names.prefix,
            "server_id": self.config.server_id,
            "sftp_host": self.config.host,
            "sftp_port": self.sftp_port,
            "host_key_fingerprint": getattr(self.sftp, "host_key_fingerprint", None),
            "ingest_queue_url": self.resources.ingest_queue_url if self.resources else None,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _write_state(self) -> None:
        path = self.config.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2))
        tmp.replace(path)

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        aws.reset_clients()

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        aws.reset_clients()


def read_state(state_dir: Path | None = None) -> dict[str, Any] | None:
    """The running local stack's facts, or None when none is up (a stale file is ignored)."""
    path = (state_dir or state_dir_default()) / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return state
