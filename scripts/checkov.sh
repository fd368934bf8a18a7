#!/usr/bin/env bash
# checkov on template.yaml, offline (--skip-download: no policy download, no platform upload).
# checkov's pins clash with aws-sam-cli's and the app's, so it lives in its own virtualenv,
# .tools/checkov (created on first run). Fails on any failed check, on a parsing error, and when
# nothing was scanned (a template checkov cannot read must not pass as "clean").
# Skips are inline in template.yaml (Metadata.checkov.skip, each with its reason).
# Usage: scripts/checkov.sh [template]          (called by scripts/check_template.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE="${1:-template.yaml}"
VENV=".tools/checkov"
CHECKOV="$VENV/bin/checkov"
CHECKOV_SPEC='checkov>=3.2,<4'

if [[ ! -x "$CHECKOV" ]]; then
  echo "checkov: installing $CHECKOV_SPEC into $VENV (once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$CHECKOV_SPEC"
fi

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# checkov exits 1 on failed checks; the summary below decides, so keep going to print it.
BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false "$CHECKOV" --skip-download --framework cloudformation \
  --file "$TEMPLATE" --output json >"$report" 2>/dev/null || true

python3 - "$report" <<'PY'
import json, sys

raw = json.load(open(sys.argv[1]))
reports = raw if isinstance(raw, list) else [raw]
failed, skipped, passed, parsing = [], [], 0, 0
for rep in reports:
    if not isinstance(rep, dict) or "summary" not in rep:
        continue
    s = rep["summary"]
    passed += s.get("passed", 0)
    parsing += s.get("parsing_errors", 0)
    failed += rep.get("results", {}).get("failed_checks", [])
    skipped += rep.get("results", {}).get("skipped_checks", [])
for c in failed:
    print(f"FAILED {c['check_id']} {c['resource']}: {c['check_name']}", file=sys.stderr)
for c in skipped:
    print(f"skipped {c['check_id']} {c['resource']}: {(c.get('check_result', {}).get('suppress_comment') or '').strip()[:100]}", file=sys.stderr)
print(f"checkov: {passed} passed, {len(failed)} failed, {len(skipped)} skipped, {parsing} parsing errors", file=sys.stderr)
unjustified = [c for c in skipped if not (c.get("check_result", {}).get("suppress_comment") or "").strip()]
for c in unjustified:
    print(f"UNJUSTIFIED skip {c['check_id']} {c['resource']}: give it a comment in Metadata.checkov.skip", file=sys.stderr)
if failed or parsing or unjustified or passed == 0:
    sys.exit(1)
PY
