#!/usr/bin/env bash
# Schema-driven API tests: schemathesis (from PyPI, pinned) against a real
# `me2b serve` and its /openapi.json, as a member and as an organisation with
# every role. Fails on any failure of any check: a 5xx, an undocumented
# status code, an answer that does not match its schema, a request that
# breaks the schema accepted, a valid request refused.
#
# Runs from the checkout: `bash scripts/schemathesis.sh` (CI runs it after the
# tests). Needs cargo and CPython 3 with venv and pip; installs schemathesis
# into target/schemathesis-venv (once per version). Extra arguments go to
# `schemathesis run` (e.g. `--max-examples 5`, `--include-path-regex vault`).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
# Test cases per operation, per principal, and the seed: the same cases every run.
MAX_EXAMPLES=${ME2B_SCHEMATHESIS_EXAMPLES:-25}
SEED=${ME2B_SCHEMATHESIS_SEED:-20261205}

log() { printf '[schemathesis.sh] %s\n' "$*" >&2; }

VENV=target/schemathesis-venv
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/schemathesis" --version

cargo build --locked --quiet -p me2b --bin me2b
BIN=target/debug/me2b

WORK=$(mktemp -d /tmp/me2b-schemathesis.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Logins are throttled per account and per address: wide enough here that
# the fuzzer reaches the handlers (429 is documented and checked all the same).
cat >"$WORK/me2b.toml" <<TOML
login_account_burst = 1000000
login_ip_burst = 1000000
TOML
"$BIN" --config "$WORK/me2b.toml" --data-dir "$WORK/data" serve --listen 127.0.0.1:0 \
  >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do
  grep -q 'listening on http://' "$WORK/serve.out" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.1
done
BASE=$(grep -o 'http://[0-9.:]*' "$WORK/serve.out" | head -n 1)
[ -n "$BASE" ] || { log "the node did not start"; cat "$WORK/serve.log" >&2; exit 1; }
log "me2b serve on $BASE (data in $WORK/data)"

# An organisation with every role (the CLI, on the same database), and a member.
ORG_KEY=$("$BIN" --data-dir "$WORK/data" org create --name "Fuzz Co-op" --kind coop \
  --roles admin,consent,offers,credentials,insights,certifier | awk '$1 == "api" && $2 == "key" && $3 ~ /^me2b_k_/ {print $3}')
[ -n "$ORG_KEY" ] || { log "could not create the organisation"; exit 1; }
# A member signs up as members do: the request (202), the confirmation token
# from the message in the node's outbox (DATA_DIR/outbox/*.eml), the
# confirmation, whose answer carries the session (crates/cli/tests/signup).
MEMBER_TOKEN=$(python3 - "$BASE" "$WORK/data/outbox" <<'PY'
import glob, json, os, re, sys, time, urllib.request
base, outbox = sys.argv[1], sys.argv[2]
email = "fuzz@example.org"
def post(path, body):
    req = urllib.request.Request(base + path, method="POST", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.status, json.load(r)
status, _ = post("/v1/members", {"email": email, "passphrase": "correct horse battery"})
assert status == 202, f"sign-up answered {status}"
token = None
for _ in range(100):
    for path in sorted(glob.glob(os.path.join(outbox, "*.eml")), reverse=True):
        text = open(path, encoding="utf-8", errors="replace").read()
        if any(l.strip() == "To: " + email for l in text.splitlines()):
            m = re.search(r"me2b_c_[A-Za-z0-9_-]+", text)
            if m:
                token = m.group(0)
                break
    if token:
        break
    time.sleep(0.1)
assert token, "no confirmation in the outbox"
status, body = post("/v1/members/confirm", {"token": token})
assert status == 201, f"confirmation answered {status}"
print(body["token"])
PY
)
[ -n "$MEMBER_TOKEN" ] || { log "could not sign a member up"; exit 1; }

run() {
  local who=$1 token=$2
  shift 2
  log "as $who: $MAX_EXAMPLES examples per operation, seed $SEED"
  "$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$BASE/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 60 \
    --suppress-health-check all \
    --no-color \
    "$@"
}

status=0
# Logging out and erasing would end the principal's session mid-run: the
# member run leaves those two operations to the API tests (crates/server/tests).
run member "$MEMBER_TOKEN" \
  --exclude-operation-id log_out --exclude-operation-id erase \
  "$@" || status=1
run organisation "$ORG_KEY" "$@" || status=1
if [ "$status" -ne 0 ]; then
  log "failures above; the node's log:"
  tail -n 50 "$WORK/serve.log" >&2
fi
exit "$status"
