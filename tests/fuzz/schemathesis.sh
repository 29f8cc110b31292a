#!/usr/bin/env bash
# Fuzz the HTTP API with schemathesis (from .venv) against docs/openapi.yaml, on a `bonus dev`
# of its own (demo data, a temporary data dir, a free port). Webhook bodies are signed by
# tests/fuzz/schemathesis_hooks.py. Pass: the checks below (FUZZ_CHECKS replaces them). One worker:
# two make CPython 3.11's ast.parse fail inside hypothesis (a thread-safety bug).
#   FUZZ_EXAMPLES  cases per operation and phase (default 25; `make soak` uses more)
#   FUZZ_SEED      schemathesis' seed (default 17)
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=${FUZZ_EXAMPLES:-25}
seed=${FUZZ_SEED:-17}
venv=${VENV:-.venv}
bonus=${BONUS:-./target/debug/bonus}
data=$(mktemp -d)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bonus" dev --port "$port" --seed infra/demo.yaml --data-dir "$data" >"$data/dev.log" 2>&1 &
dev=$!
stop() {
  kill -INT "$dev" 2>/dev/null || true
  wait "$dev" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT
api="http://127.0.0.1:$port"
"$venv/bin/python" - "$api" <<'PY'
import sys, time, urllib.request, urllib.error
api = sys.argv[1]
deadline = time.time() + 120
while True:
    try:
        urllib.request.urlopen(api + "/v1/rewards", timeout=2)
        break
    except urllib.error.HTTPError:
        break  # answering (401 without a key): up
    except Exception:
        if time.time() > deadline:
            sys.exit("bonus dev did not come up within 120 s")
        time.sleep(0.2)
PY
# No 5xx, the JSON error on every 4xx (the hooks' own check), and the answers as the spec
# documents them: status codes, content types, response schemas and headers, 405 with Allow,
# and no route that answers without its credentials.
checks=not_a_server_error,json_error_on_4xx,status_code_conformance,content_type_conformance
checks+=,response_schema_conformance,response_headers_conformance,unsupported_method
checks+=,missing_required_header,ignored_auth
# The demo's checkout key (every scope but transfer): requests reach the handlers, not just the key check.
key=bk_707c4b8a18e644ceb45b1c7dfd85e45e199fdcfe_ca128797
PYTHONPATH=tests/fuzz SCHEMATHESIS_HOOKS=schemathesis_hooks FUZZ_SEED="$seed" \
  "$venv/bin/schemathesis" run docs/openapi.yaml \
  --url "$api" \
  --header "Authorization: Bearer $key" \
  --checks "${FUZZ_CHECKS:-$checks}" \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" \
  --seed "$seed" \
  --workers 1 \
  --request-timeout 10 \
  --no-color \
  || { echo "schemathesis failed; bonus dev's log:"; tail -n 40 "$data/dev.log"; exit 1; }
