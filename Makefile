# The two commands: `make run` (the whole system locally) and `make test` (every test).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BONUS := ./target/debug/bonus
export SAM_CLI_TELEMETRY := 0
export AWS_REGION ?= eu-west-1
# One-off builds (CI, make test on a fresh clone) need no incremental caches: smaller, faster.
export CARGO_INCREMENTAL ?= 0

.PHONY: run test build unit browser lint fuzz-api package package-check deploy soak bench bench-cold-start profile fmt clean

## Start the local stack: embedded DynamoDB (data in .bonus/), demo config, API on 127.0.0.1:3000.
run: build $(VENV)/.installed
	$(BONUS) dev --seed infra/demo.yaml

build:
	cargo build -p bonus-cli

## Every test: unit, property and integration tests, the template lint, and schemathesis
## against a running `bonus dev`.
test: unit lint fuzz-api

unit: $(VENV)/.installed browser
	cargo test --workspace --all-targets

## The member site's browser test: Debian's Chromium and ChromeDriver, axe-core from npm.
browser:
	bash tests/browser/install.sh

lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --template template.yaml --region $(AWS_REGION)

## schemathesis (from .venv) against docs/openapi.yaml on a `bonus dev` of its own, bounded.
fuzz-api: build $(VENV)/.installed
	bash tests/fuzz/schemathesis.sh

## Every Lambda artifact by `sam build` (rust-cargolambda, one shared dependency build), on
## arm64 (ARCH=x86_64 where the aarch64 target cannot be fetched), then linted and measured.
ARCH ?= arm64
package: $(VENV)/.installed
	ARCH=$(ARCH) bash infra/package.sh

## What CI checks of packaging (the cheapest build that catches the same errors): the order
## webhook alone for arm64, through sam build, its artifact, and the built template linted.
package-check: $(VENV)/.installed
	ARCH=$(ARCH) ONLY=order-webhook bash infra/package.sh

## `make deploy ENV=dev` (or prod): make package, then sam deploy with samconfig.toml's [ENV].
deploy: $(VENV)/.installed
	ENV=$(ENV) ARCH=$(ARCH) bash infra/deploy.sh

## The long runs (docs/reliability.md): 100,000 simulated operations (50 seeds of 2,000),
## 10,000 under faults, 10,000 fuzzed requests in-process, and schemathesis at 500 cases per
## operation. The debug build: its dependencies are optimised already (profile.dev.package).
soak: build $(VENV)/.installed
	SIM_SEEDS=50 SIM_FAULT_OPS=10000 cargo test -p integration-tests --test simulation -- --nocapture --test-threads 1 2>&1 | grep -E 'SIMULATION|panicked|diverged|test result'
	FUZZ_CASES=10000 cargo test -p integration-tests --test fuzz_routes -- --nocapture 2>&1 | grep -E 'FUZZ|panicked|test result'
	FUZZ_CASES=10000 cargo test -p integration-tests --test member_site fuzzed -- --nocapture 2>&1 | grep -E 'panicked|test result'
	FUZZ_EXAMPLES=500 bash tests/fuzz/schemathesis.sh 2>&1 | grep -vE '^\{"level"'

## Benchmarks (figures go to docs/benchmarks.md).
bench:
	cargo bench -p bonus-domain --bench earning
	cargo bench -p bonus-messages --bench render
	cargo test -p integration-tests --test notifications -- --nocapture a_message_costs 2>&1 | grep REQUESTS
	cargo test -p integration-tests --test order_webhook -- --nocapture a_webhook_costs 2>&1 | grep REQUESTS
	cargo bench -p integration-tests --bench nightly 2>&1 | grep -E 'loaded|NIGHTLY'
	cargo bench -p integration-tests --bench clearing 2>&1 | grep CLEARING
	cargo bench -p integration-tests --bench load 2>&1 | grep LOAD
	cargo bench -p integration-tests --bench rewards 2>&1 | grep REWARDS
	$(MAKE) bench-cold-start

## Cold starts of every function's release binary against a local Lambda Runtime API, beside a
## bare lambda_http hello world (tests/benches/cold_start.rs).
FUNCTION_PACKAGES := -p order-webhook -p member-api -p partner-api -p member-site -p hold-sweeper -p nightly -p clearing -p notifications
bench-cold-start:
	cargo build --release --bins $(FUNCTION_PACKAGES) -p hello-lambda-http
	cargo bench -p integration-tests --bench cold_start 2>&1 | grep COLD_START

## CPU per webhook split between our crates, the SDK, the HTTP stack and the emulator (needs
## perf). A release build that keeps its symbols and skips LTO, so that frames keep their crate.
PROFILE_ENV := CARGO_TARGET_DIR=target/profile CARGO_PROFILE_BENCH_STRIP=none \
	CARGO_PROFILE_BENCH_DEBUG=false CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16
profile:
	$(PROFILE_ENV) cargo bench -p integration-tests --bench load --no-run 2>&1 | tee target/profile.log
	exe=$$(sed -n 's/.*Executable benches\/load.rs (\(.*\))/\1/p' target/profile.log); \
	LOAD_SCENARIOS=0 perf record -F 499 --call-graph dwarf,16384 -o target/perf.data -- "$$exe" --bench | grep LOAD
	perf script -F comm,ip,sym -i target/perf.data 2>/dev/null | $(PYTHON) tests/benches/profile_split.py 2000 499

fmt:
	cargo fmt --all

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) target .aws-sam
