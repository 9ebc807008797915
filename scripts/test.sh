#!/usr/bin/env bash
# Runs every me2b test, on SQLite and on a real PostgreSQL.
#
# It installs the PostgreSQL server from Debian's packages when none is present,
# starts a throwaway cluster in a temporary directory owned by an unprivileged user
# (PostgreSQL refuses to run as root), listening on 127.0.0.1 only, runs
# `cargo test --workspace --locked`, and stops and removes the cluster afterwards.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p me2b-storage`).
set -euo pipefail
cd "$(dirname "$0")/.."
# runuser and useradd live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[test.sh] %s\n' "$*" >&2; }

pg_bindir() {
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
  done
  printf '%s' "$best"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

PGBIN=$(pg_bindir)
if [ -z "$PGBIN" ]; then
  log "no PostgreSQL server found: installing Debian's postgresql package"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  PGBIN=$(pg_bindir)
  [ -n "$PGBIN" ] || { log "PostgreSQL installation failed"; exit 1; }
fi

PGTMP=$(mktemp -d /tmp/me2b-pg.XXXXXX)
RUN=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL will not run as root: use (and if needed create) an unprivileged user.
  PGUSER_OS=me2b-pg
  id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
  chown "$PGUSER_OS" "$PGTMP"
  RUN=(runuser -u "$PGUSER_OS" --)
fi
chmod 700 "$PGTMP"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)

cleanup() {
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGTMP"
}
trap cleanup EXIT INT TERM

log "starting a throwaway PostgreSQL ($("$PGBIN/postgres" --version | awk '{print $3}')) on 127.0.0.1:$PORT"
"${RUN[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U me2b --auth=trust -E UTF8 --no-instructions >"$PGTMP/initdb.log" 2>&1 \
  || { cat "$PGTMP/initdb.log" >&2; exit 1; }
# The cluster is throwaway: durability settings off for speed (the tests that kill
# processes kill me2b, never PostgreSQL).
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGTMP -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$PGTMP/server.log" >&2; exit 1; }

export ME2B_TEST_POSTGRES_URL="postgres://me2b@127.0.0.1:$PORT/postgres"
export ME2B_REQUIRE_POSTGRES=1
log "running cargo test --workspace --locked $*"
OUT="$PGTMP/cargo-test.log"
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$OUT"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run, summed over every test binary.
summary=$(awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped", p, f, i }' "$OUT")
mkdir -p target && echo "$summary" > target/test-summary.txt
echo
echo "tests: $summary"
exit "$status"
