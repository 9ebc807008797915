# Sourced by the HTTP bench scripts: signs a member up on a running node the
# way a member does (issue 14): the request (202 whatever the address), the
# confirmation token from the node's file outbox (DATA_DIR/outbox/*.eml),
# the confirmation. Prints the session token. A node from before issue 14
# answers the sign-up itself with a session (201 and a token): that token is
# used as it is, so older builds can be benchmarked side by side.
#
#   TOKEN=$(bench_sign_up "$BASE" "$DIR/data" bench@example.org "benchmark passphrase")
bench_sign_up() { # base, data dir, email, passphrase
  local base=$1 data=$2 email=$3 pass=$4 token="" f answer
  answer=$(curl -sf "$base/v1/members" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"passphrase\":\"$pass\"}")
  token=$(printf '%s' "$answer" | python3 -c 'import json,sys
try: print(json.load(sys.stdin).get("token") or "")
except ValueError: print("")')
  if [ -n "$token" ]; then printf '%s\n' "$token"; return 0; fi
  for _ in $(seq 100); do
    for f in $(ls -r "$data"/outbox/*.eml 2>/dev/null); do
      tr -d '\r' <"$f" | grep -qixF "To: $email" || continue
      token=$(grep -o 'me2b_c_[A-Za-z0-9_-]*' "$f" | head -n1)
      [ -n "$token" ] && break 2
    done
    sleep 0.1
  done
  [ -n "$token" ] || { echo "no confirmation for $email in $data/outbox" >&2; return 1; }
  curl -sf "$base/v1/members/confirm" -H 'content-type: application/json' \
    -d "{\"token\":\"$token\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
