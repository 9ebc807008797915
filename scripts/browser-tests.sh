#!/usr/bin/env bash
# Browser tests of the web UI (tests/browser): a real `me2b serve` on port 0
# per test file, Debian's headless Chromium driven by playwright-core, axe-core
# in every page, a screenshot per step (tests/browser/screenshots/, ignored by
# git). Installs what it needs: Debian's chromium when /usr/bin/chromium is
# missing (root or sudo), and the locked npm packages (`npm ci`); nothing
# downloads a browser. Needs Node.js 20+ and npm. Extra arguments go to
# `node --test` (e.g. a test file).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "browser tests: installing Debian's chromium"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
"$CHROMIUM" --version

echo "browser tests: building me2b"
cargo build --locked -p me2b
export ME2B_BIN=${ME2B_BIN:-$PWD/target/debug/me2b}

cd tests/browser
# playwright-core must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error
rm -rf screenshots
if [ "$#" -gt 0 ]; then
  node --test --test-concurrency=1 --test-reporter=spec "$@"
else
  node --test --test-concurrency=1 --test-reporter=spec ./*.test.js
fi
echo "browser tests: screenshots in tests/browser/screenshots/"
