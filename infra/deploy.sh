#!/usr/bin/env bash
# `make deploy ENV=dev|prod [ARCH=x86_64]`: build and check every artifact (infra/package.sh),
# then `sam deploy` with samconfig.toml's environment. DRY_RUN=1 stops before sam deploy and
# prints what it would run (everything that can be checked without an AWS account is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=${ENV:?ENV=dev or ENV=prod}
ARCH=${ARCH:-arm64}
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
overrides=$(python3 - "$ENV" "$ARCH" <<'PY'
import sys, tomllib, re
env, arch = sys.argv[1], sys.argv[2]
conf = tomllib.load(open("samconfig.toml", "rb"))
if env not in conf or "deploy" not in conf[env]:
    sys.exit(f"samconfig.toml has no [{env}.deploy.parameters]; environments: "
             + ", ".join(k for k in conf if k not in ("version", "default")))
params = conf[env]["deploy"]["parameters"]["parameter_overrides"]
print(re.sub(r"Architecture=\S+", f"Architecture={arch}", params))
PY
)
ARCH=$ARCH bash infra/package.sh
cmd=(sam deploy --config-env "$ENV" --template-file .aws-sam/build/template.yaml --parameter-overrides "$overrides")
if [[ -n "${DRY_RUN:-}" ]]; then
  echo "DRY_RUN: would run: ${cmd[*]}"
  exit 0
fi
"${cmd[@]}"
