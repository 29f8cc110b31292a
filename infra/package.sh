#!/usr/bin/env bash
# `make package`: every Lambda artifact, built by `sam build` (rust-cargolambda), then checked.
#   ARCH=arm64 (default), x86_64, or auto (arm64 if its target can be fetched, else x86_64); ONLY="order-webhook" builds and checks that binary alone
#   (what CI does). Artifacts: .aws-sam/build/<Function>/bootstrap; sizes: target/package-sizes.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${ARCH:-arm64}
ONLY=${ONLY:-}
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"   # cargo-lambda, and zig (python -m ziglang) as its linker
export SAM_CLI_TELEMETRY=0
start=$(date +%s)

if [[ "$ARCH" == auto ]]; then
  # CI: arm64 when its target can be had, else x86_64 (the same build and checks).
  if rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
    || rustup target add aarch64-unknown-linux-gnu; then
    ARCH=arm64
  else
    echo "make package: the aarch64 target could not be fetched; checking an x86_64 build instead" >&2
    ARCH=x86_64
  fi
fi
case "$ARCH" in
  arm64) target=aarch64-unknown-linux-gnu; flag=--arm64 ;;
  x86_64) target=x86_64-unknown-linux-gnu; flag=--x86-64 ;;
  *) echo "ARCH must be arm64 or x86_64, not '$ARCH'" >&2; exit 2 ;;
esac
if ! rustup target list --installed | grep -qx "$target"; then
  if ! rustup target add "$target"; then
    echo >&2
    echo "make package: the Rust target $target could not be fetched (rustup target add failed)." >&2
    echo "Build for x86_64 instead: make package ARCH=x86_64 (the template's Architecture parameter;" >&2
    echo "deploy with the same: make deploy ENV=dev ARCH=x86_64)." >&2
    exit 1
  fi
fi

# The functions and their binaries, as template.yaml names them.
mapfile -t functions < <(python3 infra/functions.py)
bins=()
for f in "${functions[@]}"; do
  bin=${f#*=}
  if [[ -z "$ONLY" || " $ONLY " == *" $bin "* ]]; then bins+=("$bin"); fi
done
if [[ ${#bins[@]} -eq 0 ]]; then echo "no function builds binary '$ONLY'" >&2; exit 2; fi

# One cargo build for all binaries: the dependencies compile once. sam build then finds each
# binary fresh and only copies it.
bin_flags=()
for b in "${bins[@]}"; do bin_flags+=(--bin "$b"); done
echo "== cargo lambda build --release $flag ${bin_flags[*]}"
cargo lambda build --release "$flag" "${bin_flags[@]}"
built=$(date +%s)

# The function(s) to build come first: --parameter-overrides takes every word after it.
sam_args=()
if [[ -n "$ONLY" ]]; then
  for f in "${functions[@]}"; do
    if [[ " $ONLY " == *" ${f#*=} "* ]]; then sam_args+=("${f%%=*}"); fi
  done
fi
sam_args+=(--beta-features --parameter-overrides "Architecture=$ARCH")
echo "== sam build ${sam_args[*]}"
sam build "${sam_args[@]}"
done_at=$(date +%s)

# Checks that need no AWS account: the built template lints, and every artifact exists.
echo "== lint the built template"
cfn-lint .aws-sam/build/template.yaml
sam validate --lint --template .aws-sam/build/template.yaml --region "${AWS_REGION:-eu-west-1}"
python3 infra/functions.py --check-artifacts "$ARCH" ${ONLY:+--only "$ONLY"} | tee target/package-sizes.txt
echo "make package ($ARCH): cargo $((built - start)) s, sam build $((done_at - built)) s, total $((done_at - start)) s"
