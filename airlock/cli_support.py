"""What every ``airlock`` sub-command shares: how a user mistake is reported."""

from __future__ import annotations

import sys

USAGE_ERROR = 2


def fail(message: str) -> int:
    """Print one actionable line (no traceback) and return the "could not run" exit code."""
    print(f"airlock: {message}", file=sys.stderr)
    return USAGE_ERROR
