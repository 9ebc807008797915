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
# --urls-from-file), not one record over and over. BIN runs
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

DIR=$(mktemp -d /tmp/me2b-bench.XXXXXX)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

DB_ARGS=()
[ -n "$DATABASE" ] && DB_ARGS=(--database "$DATABASE")
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$DIR/data" --bench-routes "${DB_ARGS[@]}" \
  >"$DIR/stdout" 2>"$DIR/server.log" &
PID=$!
for _ in $(seq 100); do grep -q listening "$DIR/stdout" 2>/dev/null && break; sleep 0.1; done
BASE=$(grep -o 'http://[0-9.:]*' "$DIR/stdout")

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

want() { [[ " $CASES " == *" $1 "* ]]; }
echo "oha $(oha --version | awk '{print $2}'), $(nproc) cores, duration $DURATION, concurrency $CONCURRENCY, database $([ -n "$DATABASE" ] && echo postgres || echo sqlite)" >&2
{
  echo -e "case\treq/s\tp50 ms\tp99 ms\t2xx\tnon-2xx"
  if want ceiling; then run ceiling -c "$CONCURRENCY" "$BASE/bench/constant"; fi
  if want read; then run read -c "$CONCURRENCY" -H "authorization: Bearer $TOKEN" "$BASE/v1/vault/records/$RID"; fi
  if want reads100; then run reads100 -c "$CONCURRENCY" -H "authorization: Bearer $TOKEN" --urls-from-file "$DIR/urls.txt"; fi
  if want write; then run write -c "$CONCURRENCY" -m POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY" "$BASE/v1/vault/records"; fi
  if want read@rate; then run "read@${RATE}rps" -c "$CONCURRENCY" -q "$RATE" -H "authorization: Bearer $TOKEN" "$BASE/v1/vault/records/$RID"; fi
} | tee "$DIR/table.tsv" | column -t -s $'\t'
python3 - "$DIR/table.tsv" <<'PY'
import sys
rows = {l.split("\t")[0]: l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]}
if all(k in rows for k in ("ceiling", "read", "write")):
    c, r, w = (float(rows[k][1]) for k in ("ceiling", "read", "write"))
    print(f"\nread / ceiling = {100*r/c:.1f} %   write / ceiling = {100*w/c:.1f} %")
PY
