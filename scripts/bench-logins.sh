#!/usr/bin/env bash
# Login throughput under the throttle (issue 14), measured with oha from a
# second process against a real `me2b serve` (recommended Argon2id: 19 MiB).
#
#   bash scripts/bench-logins.sh          # PROFILE=release DURATION=10s CONCURRENCY=32
#
# Cases, each on a fresh node: wrong passphrases on one account with the
# default throttle (what a brute force gets: mostly 429), the same with the
# throttle wide open (the Argon2-bound ceiling: what it got before), and
# the right passphrase with the throttle wide open.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-release}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-32}

. scripts/bench-signup.sh
command -v oha >/dev/null || cargo install --locked oha
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p me2b --bin me2b >/dev/null
else
  cargo build --locked -p me2b --bin me2b >/dev/null
fi
BIN=./target/$PROFILE/me2b

DIR=$(mktemp -d /tmp/me2b-bench-logins.XXXXXX)
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop; rm -rf "$DIR"' EXIT

start() { # config text
  stop
  rm -rf "$DIR/data"
  printf '%s\n' "$1" >"$DIR/me2b.toml"
  "$BIN" --config "$DIR/me2b.toml" --data-dir "$DIR/data" serve --listen 127.0.0.1:0 \
    >"$DIR/stdout" 2>"$DIR/server.log" &
  PID=$!
  for _ in $(seq 300); do grep -q listening "$DIR/stdout" 2>/dev/null && break; sleep 0.1; done
  BASE=$(grep -o 'http://[0-9.:]*' "$DIR/stdout")
  bench_sign_up "$BASE" "$DIR/data" bench@example.org "benchmark passphrase" >/dev/null
}

run() { # name, body
  local out
  out=$(oha --no-tui --output-format json -z "$DURATION" -c "$CONCURRENCY" -m POST \
    -H 'content-type: application/json' -d "$2" "$BASE/v1/sessions")
  python3 - "$1" "$out" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
s = r["summary"]; codes = r.get("statusCodeDistribution", {})
lat = r.get("latencyPercentiles", {})
print(f"| {name} | {s['requestsPerSec']:,.0f} | {', '.join(f'{k}: {v:,}' for k, v in sorted(codes.items()))} "
      f"| {lat.get('p50', 0) * 1000:.1f} | {lat.get('p99', 0) * 1000:.1f} |")
PY
}

WRONG='{"email":"bench@example.org","passphrase":"a wrong passphrase"}'
RIGHT='{"email":"bench@example.org","passphrase":"benchmark passphrase"}'
# (1,000,000: 100,000,000 overflows the long account limiter's nanoseconds)
OPEN=$'login_account_burst = 1000000\nlogin_ip_burst = 1000000'
echo "| case | req/s | answers | p50 ms | p99 ms |"
echo "| --- | ---: | --- | ---: | ---: |"
start ""
run "wrong passphrase, one account, default throttle" "$WRONG"
start "$OPEN"
run "wrong passphrase, throttle open (Argon2 bound)" "$WRONG"
start "$OPEN"
run "right passphrase, throttle open (Argon2 bound)" "$RIGHT"
