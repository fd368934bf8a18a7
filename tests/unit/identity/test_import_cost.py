"""The identity provider Lambda ships without pyarrow: importing it must not load pyarrow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_identity_provider_does_not_import_pyarrow() -> None:
    code = (
        "import sys, handlers.identity_provider, handlers.identity_provider_api; "
        "import airlock.identity.service, airlock.identity.lockout; "
        "heavy = sorted(m for m in ('pyarrow', 'asyncssh', 'paramiko', 'moto') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
