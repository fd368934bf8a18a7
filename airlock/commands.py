"""Where each sub-command module is plugged into the ``airlock`` parser."""

from __future__ import annotations

import argparse
import importlib

# module path -> each exposes ``register(sub: argparse._SubParsersAction) -> None``
COMMAND_MODULES = (
    "airlock.ingest.cli",
    "airlock.identity.cli",
    "airlock.invoke",
    "airlock.local.cli",
    "airlock.tenancy.cli",
    "airlock.worker.cli",
)


def register_all(sub: argparse._SubParsersAction) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
