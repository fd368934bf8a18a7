#!/usr/bin/env bash
# Creates .venv with everything `make demo` and `make test` need, and the system tools they call.
# Idempotent: re-runs only the pip step when pyproject.toml changed (the Makefile's stamp decides).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "bootstrap: Airlock needs Python 3.11 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)." >&2
  echo "bootstrap: set PYTHON=/path/to/python3.11 and run again." >&2
  exit 2
fi

# The demo and end-to-end tests drive the stock OpenSSH client.
missing=()
for tool in sftp ssh-keygen ssh-keyscan; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing openssh-client (missing: ${missing[*]})"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
  else
    echo "bootstrap: please install the OpenSSH client (missing: ${missing[*]}), e.g. 'sudo apt-get install openssh-client'" >&2
    exit 2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "bootstrap: installing Airlock and its dependencies into .venv (first run takes a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
