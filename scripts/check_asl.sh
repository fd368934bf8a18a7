#!/usr/bin/env bash
# Lint the ASL files of template.yaml's state machines, offline. cfn-lint does not read a
# DefinitionUri file, so airlock/local/asl_lint.py wraps each one as the inline Definition of a
# plain AWS::StepFunctions::StateMachine (same DefinitionSubstitutions) for cfn-lint (E3601: the
# States Language schema), after checking what cfn-lint cannot:
#   - every ${placeholder} has a DefinitionSubstitutions key and every key has a placeholder;
#   - the rules the local runner enforces (BackoffRate >= 1, JitterStrategy FULL|NONE, States.ALL
#     alone and last, every Next/Default/Catch target exists, supported state types);
#   - every Retry/Catch error name is a States.*/Lambda.* error or an exception class the steps
#     define (a typo there would silently never match on AWS).
# Usage: scripts/check_asl.sh            (make test, via scripts/check_template.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

.venv/bin/python -m airlock.local.asl_lint "$WORK"
shopt -s nullglob
wrappers=("$WORK"/*.template.json)
.venv/bin/cfn-lint --format parseable -- "${wrappers[@]}"
echo "check_asl: OK (${#wrappers[@]} state machines)" >&2
