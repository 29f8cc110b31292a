#!/usr/bin/env bash
# What the member site's browser test needs, installed once: Debian's Chromium and
# ChromeDriver, and axe-core (from the npm registry) into .venv/node.
set -euo pipefail
cd "$(dirname "$0")/../.."

AXE_VERSION=4.11.0
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing Debian's chromium and chromium-driver (the browser test drives them)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  }
fi
if [ ! -f .venv/node/node_modules/axe-core/axe.min.js ] ||
   ! grep -q "\"version\": \"$AXE_VERSION\"" .venv/node/node_modules/axe-core/package.json; then
  if ! command -v npm >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get install -y -qq npm >/dev/null
  fi
  mkdir -p .venv/node
  npm install --silent --no-audit --no-fund --prefix .venv/node "axe-core@$AXE_VERSION" >/dev/null
fi
echo "browser test: $(chromium --version 2>/dev/null | head -1), axe-core $AXE_VERSION"
