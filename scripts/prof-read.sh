#!/bin/bash
# prof-read.sh BIN OUT: a perf profile (OUT.data) of the authenticated vault read
# under 32 connections of oha (OUT.oha); read it with
#   perf report -i OUT.data --no-children --sort symbol
set -euo pipefail
BIN=$1; OUT=$2
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/me2b-prof.XXXXXX)
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$DIR/data" --bench-routes >"$DIR/stdout" 2>"$DIR/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf $DIR' EXIT
for _ in $(seq 100); do grep -q listening "$DIR/stdout" 2>/dev/null && break; sleep 0.1; done
BASE=$(grep -o 'http://[0-9.:]*' "$DIR/stdout")
. scripts/bench-signup.sh
TOKEN=$(bench_sign_up "$BASE" "$DIR/data" bench@example.org "benchmark passphrase")
BODY='{"kind":"receipt","merchant":"Corner Co-op","items":[{"name":"Oat milk","category":"food.dairy-alternatives","quantity":2,"unit_price":{"minor":189,"currency":"EUR"}}],"total":{"minor":378,"currency":"EUR"},"purchased_at":"2026-11-20T17:03:00Z"}'
RID=$(curl -sf "$BASE/v1/vault/records" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
oha --no-tui -z 25s -c 32 -H "authorization: Bearer $TOKEN" "$BASE/v1/vault/records/$RID" > $OUT.oha &
OP=$!
sleep 3
perf record -F 999 -g -p $PID -o $OUT.data -- sleep 15 2>/dev/null
wait $OP
