#!/usr/bin/env bash
# HTTP benchmarks of the vault, measured with oha from a second process.
#
#   bash scripts/bench-http.sh            # builds release, installs oha if missing, prints a table
#   DATABASE=postgres://me2b@127.0.0.1:5432/bench_fresh bash scripts/bench-http.sh
#   CASES="read write" bash scripts/bench-http.sh
#
# In one run, against one server: the bench-only constant route (no auth, storage or
# crypto: the ceiling of the HTTP stack on this machine), authenticated+decrypted
# vault reads, and authenticated+encrypted vault writes, each at a fixed concurrency;
# then reads at a fixed rate of 1,000 requests/s for the latency target.
# On SQLite by default (a fresh data directory); DATABASE puts the node on that
# PostgreSQL database instead (give it an empty one: the bench signs up a member).
# CASES picks cases from: ceiling read write read@rate (all by default), and
# reads100: reads of the member's 100 records picked at random (oha's
# --urls-from-file), not one record over and over;
# login: logins with the right passphrase (Argon2id and the member key's unwrap),
# with the login throttle (issue 14) opened as scripts/bench-logins.sh does (a
# build from before issue 14 has no throttle: it refuses the keys and runs without);
# access: an organisation's POST /v1/org/data-access under the member's consent
# grant (region, interest and the 100 receipts): sealed envelopes since issue 13,
# the node decrypting the vault before. A grant shows at the next release of
# consent changes (README, "Consent releases"), so for `access` the node's
# [consent_release] is a release period whose window is open now, and the setup
# (sign-up, records, grant) runs under libfaketime half an hour before that period's
# boundary; the node is then restarted on the real clock, releases at its first
# view and is measured in the window. BIN runs
# another build of me2b (e.g. one kept from before a change) instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-1000}
DATABASE=${DATABASE:-}
CASES=${CASES:-ceiling read write read@rate}
BIN=${BIN:-}

command -v oha >/dev/null || cargo install --locked oha
if [ -z "$BIN" ]; then
  cargo build --release --locked -p me2b >/dev/null
  BIN=./target/release/me2b
fi

want() { [[ " $CASES " == *" $1 "* ]]; }
DIR=$(mktemp -d /tmp/me2b-bench.XXXXXX)
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop; rm -rf "$DIR"' EXIT

DB_ARGS=()
[ -n "$DATABASE" ] && DB_ARGS=(--database "$DATABASE")
# The login throttle wide open (so that `login` measures Argon2id and the
# unwrap, not the throttle's 429s); an older build refuses the file's keys.
# Not 100,000,000: four times the burst times ten intervals overflows the
# limiter's nanoseconds (a debug build panics at start; release wraps).
printf 'login_account_burst = 1000000\nlogin_ip_burst = 1000000\n' >"$DIR/me2b.toml"
CONFIG=(--config "$DIR/me2b.toml")
if ! "$BIN" "${CONFIG[@]}" --data-dir "$DIR/probe" org list >/dev/null 2>"$DIR/probe.log"; then
  grep -q 'invalid config file' "$DIR/probe.log" || { cat "$DIR/probe.log" >&2; exit 1; }
  CONFIG=()
fi
rm -rf "$DIR/probe"
start() { # [a command that runs the node, e.g. faketime …]
  stop
  : >"$DIR/stdout"
  "$@" "$BIN" "${CONFIG[@]}" --data-dir "$DIR/data" "${DB_ARGS[@]}" serve --listen 127.0.0.1:0 \
    --bench-routes >"$DIR/stdout" 2>"$DIR/server.log" &
  PID=$!
  for _ in $(seq 600); do
    grep -q listening "$DIR/stdout" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q listening "$DIR/stdout" || { echo "the node did not start:" >&2; cat "$DIR/server.log" >&2; exit 1; }
  BASE=$(grep -o 'http://[0-9.:]*' "$DIR/stdout")
}

FAKE=()
if want access; then
  faketime_lib() { local f; for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do [ -e "$f" ] && { echo "$f"; return; }; done; true; }
  if [ -z "$(faketime_lib)" ]; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y libfaketime >/dev/null; else echo "access needs libfaketime (apt-get install libfaketime)" >&2; exit 1; fi
  fi
  # The release period (hours) whose access window has the longest time left
  # now, with its last boundary under ten hours ago (sessions last twelve).
  read -r PERIOD BOUNDARY < <(python3 -c '
import time
now, best = time.time(), None
for p in range(1, 169):
    b = int(now // (p * 3600)) * p * 3600
    left = p * 900 - (now - b)
    if now - b < 36000 and left > 900 and (best is None or left > best[2]):
        best = (p, b, left)
print(best[0], best[1])')
  mkdir -p -m 700 "$DIR/data"
  printf '[consent_release]\nrelease_period_hours = %d\nmin_batch = 1\nmax_delay_hours = %d\naccess_window_minutes = %d\n' \
    "$PERIOD" "$PERIOD" $((PERIOD * 15)) >"$DIR/data/governance.toml"
  SETUP_AT=$(date -u -d "@$((BOUNDARY - 1800))" '+%Y-%m-%d %H:%M:%S')
  # libfaketime preloaded (not the faketime wrapper, which forks: $PID is the node)
  FAKE=(env TZ=UTC LD_PRELOAD="$(faketime_lib)" FAKETIME="@$SETUP_AT")
  echo "access: release period ${PERIOD} h, setup at $SETUP_AT UTC (faketime), measured in the window after $(date -u -d "@$BOUNDARY" '+%H:%M') UTC" >&2
  ORGKEY=$("${FAKE[@]}" "$BIN" "${CONFIG[@]}" --data-dir "$DIR/data" "${DB_ARGS[@]}" org create \
    --name "Bench Co-op" --roles consent 2>"$DIR/org.log" | awk '$1 == "api" && $2 == "key" && $3 != "id" { print $3 }')
  [ -n "$ORGKEY" ] || { echo "access: no API key from \`me2b org create\`" >&2; exit 1; }
fi
start "${FAKE[@]}"

# Sign-up needs the e-mail confirmation (issue 14): the token comes from the
# node's file outbox in its data directory.
. scripts/bench-signup.sh
TOKEN=$(bench_sign_up "$BASE" "$DIR/data" bench@example.org "benchmark passphrase")
BODY='{"kind":"receipt","merchant":"Corner Co-op","items":[{"name":"Oat milk","category":"food.dairy-alternatives","quantity":2,"unit_price":{"minor":189,"currency":"EUR"}}],"total":{"minor":378,"currency":"EUR"},"purchased_at":"2026-11-20T17:03:00Z"}'
RID=""
for _ in $(seq 100); do
  RID=$(curl -sf "$BASE/v1/vault/records" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  echo "$BASE/v1/vault/records/$RID" >>"$DIR/urls.txt"
done
LOGIN='{"email":"bench@example.org","passphrase":"benchmark passphrase"}'

if want access; then
  for r in '{"kind":"profile_attribute","name":"region","value":"Utrecht"}' '{"kind":"interest","topic":"cycling"}'; do
    curl -sf "$BASE/v1/vault/records" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$r" >/dev/null
  done
  ASK='{"purposes":["service-personalisation"],"categories":["region","interest","purchase"],"processing":["use"],"legal_basis":"consent","retention_days":90,"recipients":[],"notice":"We use what you share to send offers that fit you.","notice_version":"2026-11"}'
  RQ=$(curl -sf "$BASE/v1/org/consent-requests" -H "authorization: Bearer $ORGKEY" -H 'content-type: application/json' -d "$ASK" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sf "$BASE/v1/me/consent-requests/$RQ/grant" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{}' >/dev/null
  start # the real clock: past the boundary, in its window
  ACCESS="{\"request_id\":\"$RQ\",\"purpose\":\"service-personalisation\",\"processing\":\"use\"}"
  curl -s "$BASE/v1/org/data-access" -H "authorization: Bearer $ORGKEY" -H 'content-type: application/json' -d "$ACCESS" \
    | python3 -c 'import json,sys
d = json.load(sys.stdin); n = len(d.get("disclosures", []))
if n != 1: sys.exit(f"access: expected one disclosure, got {json.dumps(d)[:300]}")
print(f"access: one disclosure of {len(json.dumps(d)):,} bytes of JSON", file=sys.stderr)'
fi

run() { # name, extra oha args...
  local name=$1; shift
  oha --no-tui --output-format json -z "$DURATION" "$@" >"$DIR/$name.json"
  python3 - "$DIR/$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k.startswith("2"))
bad = sum(v for k, v in codes.items() if not k.startswith("2"))
print(f"{sys.argv[2]}\t{s['requestsPerSec']:.0f}\t{p['p50']*1000:.2f}\t{p['p99']*1000:.2f}\t{ok}\t{bad}")
PY
}

echo "oha $(oha --version | awk '{print $2}'), $(nproc) cores, duration $DURATION, concurrency $CONCURRENCY, database $([ -n "$DATABASE" ] && echo postgres || echo sqlite)" >&2
{
  echo -e "case\treq/s\tp50 ms\tp99 ms\t2xx\tnon-2xx"
  if want login; then run login -c "$CONCURRENCY" -m POST -H 'content-type: application/json' -d "$LOGIN" "$BASE/v1/sessions"; fi
  if want ceiling; then run ceiling -c "$CONCURRENCY" "$BASE/bench/constant"; fi
  if want read; then run read -c "$CONCURRENCY" -H "authorization: Bearer $TOKEN" "$BASE/v1/vault/records/$RID"; fi
  if want reads100; then run reads100 -c "$CONCURRENCY" -H "authorization: Bearer $TOKEN" --urls-from-file "$DIR/urls.txt"; fi
  if want write; then run write -c "$CONCURRENCY" -m POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY" "$BASE/v1/vault/records"; fi
  if want access; then run access -c "$CONCURRENCY" -m POST -H "authorization: Bearer $ORGKEY" -H 'content-type: application/json' -d "$ACCESS" "$BASE/v1/org/data-access"; fi
  if want read@rate; then run "read@${RATE}rps" -c "$CONCURRENCY" -q "$RATE" -H "authorization: Bearer $TOKEN" "$BASE/v1/vault/records/$RID"; fi
} | tee "$DIR/table.tsv" | column -t -s $'\t'
python3 - "$DIR/table.tsv" <<'PY'
import sys
rows = {l.split("\t")[0]: l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]}
if all(k in rows for k in ("ceiling", "read", "write")):
    c, r, w = (float(rows[k][1]) for k in ("ceiling", "read", "write"))
    print(f"\nread / ceiling = {100*r/c:.1f} %   write / ceiling = {100*w/c:.1f} %")
PY
