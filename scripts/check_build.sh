#!/usr/bin/env bash
# `sam build` every function, then hold each artifact to what Lambda and our design need:
#   - under Lambda's 250 MB unzipped limit (with a margin: fail above 240 MB);
#   - no pyarrow outside IngestFunction (the identity provider and onboarding steps must stay light);
#   - the function's handler imports from the artifact alone, in an isolated python3.11 (what the
#     Lambda runtime does on a cold start), so a trimmed or missing package shows up here, not on AWS.
# Needs the package registry (sam build downloads Lambda-platform wheels); not part of `make test`.
# Usage: scripts/check_build.sh [build dir]        (make build-check)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${1:-.aws-sam/build}"
SAM=".tools/sam/bin/sam"
[[ -x "$SAM" ]] || scripts/check_template.sh >/dev/null   # creates .tools/sam
PY311="$(command -v python3.11 || true)"
[[ -n "$PY311" ]] || { echo "check_build: python3.11 is needed to import the artifacts (Lambda runtime python3.11)" >&2; exit 2; }

export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# Every optional function exists in this build: the API face and the host key import are conditional.
if [[ "${CHECK_BUILD_SKIP_BUILD:-}" == 1 ]]; then
  echo "check_build: checking the existing build in $BUILD_DIR (CHECK_BUILD_SKIP_BUILD=1)" >&2
else
echo "check_build: sam build into $BUILD_DIR (downloads wheels; a few minutes)" >&2
"$SAM" build --build-dir "$BUILD_DIR" --parameter-overrides \
  IdentityProviderMode=API_GATEWAY SftpEndpointType=PUBLIC \
  HostKeySecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:check-build >/dev/null
fi

"$PY311" - "$BUILD_DIR" <<'PY'
import json, os, subprocess, sys
from pathlib import Path

build = Path(sys.argv[1])
template = json.loads(subprocess.run([".tools/sam/bin/python", "-c",
    "import json,sys; from samtranslator.yaml_helper import yaml_parse; "
    "print(json.dumps(yaml_parse(open(sys.argv[1]).read())))", str(build / "template.yaml")],
    capture_output=True, text=True, check=True).stdout)
LIMIT, MARGIN = 250_000_000, 240_000_000
failures, rows = [], []
for name, res in sorted(template["Resources"].items()):
    if res["Type"] != "AWS::Serverless::Function":
        continue
    art = build / name
    size = sum(f.stat().st_size for f in art.rglob("*") if f.is_file() and not f.is_symlink())
    module = res["Properties"]["Handler"].rsplit(".", 1)[0].replace("/", ".")
    probe = ("import sys; sys.path[:0] = [sys.argv[1]]; import importlib; importlib.import_module(sys.argv[2]); "
             "print(int('pyarrow' in sys.modules))")
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(art), module],
                          capture_output=True, text=True, env=env)
    loads_pyarrow = proc.stdout.strip() == "1"
    ships_pyarrow = (art / "pyarrow").exists()
    rows.append(f"{name:34} {size / 1e6:6.1f} MB  pyarrow={'yes' if ships_pyarrow else 'no '}  import={'ok' if proc.returncode == 0 else 'FAILED'}")
    if size > MARGIN:
        failures.append(f"{name}: {size / 1e6:.1f} MB unzipped (Lambda's limit is {LIMIT / 1e6:.0f} MB)")
    if proc.returncode != 0:
        failures.append(f"{name}: `import {module}` fails from the artifact: {proc.stderr.strip().splitlines()[-1:]}")
    if name != "IngestFunction" and (ships_pyarrow or loads_pyarrow):
        failures.append(f"{name}: ships or loads pyarrow")
print("\n".join(rows))
if failures:
    print("check_build: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"check_build: OK ({len(rows)} functions)", file=sys.stderr)
PY
