#!/usr/bin/env bash
# Static checks of template.yaml, offline, the single entry point `make test` calls:
#   sam validate --lint, cfn-lint (zero findings), checkov (scripts/checkov.sh: zero failures, every
#   skip justified inline) and, when present, the ASL lint of statemachines/ (scripts/check_asl.sh).
# Creates .tools/sam (aws-sam-cli in its own virtualenv: its pins clash with moto/boto3) if missing;
# scripts/checkov.sh does the same for .tools/checkov.
# Usage: scripts/check_template.sh            (called by `make test`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE="template.yaml"
SAM_VENV=".tools/sam"
SAM="$SAM_VENV/bin/sam"
CFN_LINT=".venv/bin/cfn-lint"
SAM_CLI_SPEC='aws-sam-cli>=1.130,<2'

if [[ ! -x "$SAM" ]]; then
  echo "check_template: installing $SAM_CLI_SPEC into $SAM_VENV (once)" >&2
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SAM_CLI_SPEC"
fi
if [[ ! -x "$CFN_LINT" ]]; then
  echo "check_template: $CFN_LINT not found; install the dev extras into .venv (pip install -e '.[dev]')" >&2
  exit 1
fi

# sam validate needs a region, never credentials or the network; no telemetry from checks.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

echo "check_template: sam validate --lint" >&2
"$SAM" validate --lint --template "$TEMPLATE"

# cfn-lint exits non-zero on errors (2), warnings (4) and informational findings (8): all fail here.
echo "check_template: cfn-lint" >&2
"$CFN_LINT" --format parseable -- "$TEMPLATE"

echo "check_template: checkov" >&2
scripts/checkov.sh "$TEMPLATE"

if [[ -x scripts/check_asl.sh ]]; then
  echo "check_template: ASL (scripts/check_asl.sh)" >&2
  scripts/check_asl.sh
fi

echo "check_template: OK" >&2
