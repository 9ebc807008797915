#!/usr/bin/env bash
# Two builds of me2b side by side under scripts/bench-http.sh, on SQLite and on
# PostgreSQL, alternating, in one run (so both see the same machine load).
#
#   BEFORE=/path/to/old/me2b AFTER=./target/release/me2b bash scripts/bench-http-compare.sh
#   ROUNDS=3 CASES="write read" DURATION=20s bash scripts/bench-http-compare.sh
#   DBS=sqlite CASES="ceiling read" ROUNDS=2 BEFORE=... bash scripts/bench-http-compare.sh
#   DURATION=10s DBS=sqlite CASES="login read access" ROUNDS=2 BEFORE=... AFTER=... bash scripts/bench-http-compare.sh
#
# AFTER defaults to this checkout's release build. DBS picks the databases
# (sqlite postgres by default); CASES is passed to bench-http.sh (ceiling read
# reads100 write read@rate login access; login and access run against builds
# from before issues 13 and 14 too). Each run's line ends with the load average (`uptime`) just
# before it and the time it ended: on a shared machine only the ratios of one
# run mean anything.
# PostgreSQL is a throwaway cluster
# in a temporary directory with its durability settings left on (fsync,
# synchronous_commit, full_page_writes), as a node would run it; each run gets a
# fresh database. Prints one line per run and a table of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

ROUNDS=${ROUNDS:-3}
export CASES=${CASES:-write read}
DBS=${DBS:-sqlite postgres}
BEFORE=${BEFORE:?BEFORE: the me2b binary to compare against}
if [ -z "${AFTER:-}" ]; then
  cargo build --release --locked -p me2b >/dev/null
  AFTER=./target/release/me2b
fi

pg_bindir() {
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
  done
  printf '%s' "$best"
}
OUT=$(mktemp -d /tmp/me2b-bench-out.XXXXXX)
PGTMP=""
RUN=()
cleanup() {
  if [ -n "$PGTMP" ]; then
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGTMP"
  fi
  rm -rf "$OUT"
}
trap cleanup EXIT INT TERM
if [[ " $DBS " == *" postgres "* ]]; then
  PGBIN=$(pg_bindir)
  [ -n "$PGBIN" ] || { echo "no PostgreSQL server found (scripts/test.sh installs one)" >&2; exit 1; }
  PGTMP=$(mktemp -d /tmp/me2b-bench-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    id me2b-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin me2b-pg
    chown me2b-pg "$PGTMP"
    RUN=(runuser -u me2b-pg --)
  fi
  chmod 700 "$PGTMP"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${RUN[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U me2b --auth=trust -E UTF8 --no-instructions >/dev/null
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGTMP -c max_connections=200" start >/dev/null
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (fsync on)" >&2
fi
echo "before: $BEFORE, after: $AFTER, rounds $ROUNDS, databases: $DBS, cases: $CASES" >&2

n=0
: >"$OUT/all.txt"
for round in $(seq "$ROUNDS"); do
  for db in $DBS; do
    for build in before after; do
      bin=$BEFORE
      [ "$build" = after ] && bin=$AFTER
      url=""
      if [ "$db" = postgres ]; then
        n=$((n + 1))
        "${RUN[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U me2b "bench_$n"
        url="postgres://me2b@127.0.0.1:$PORT/bench_$n"
      fi
      load=$(uptime | sed 's/.*load average: //; s/,//g' | awk '{print $1}')
      DATABASE=$url BIN=$bin bash scripts/bench-http.sh 2>/dev/null | tee "$OUT/run.txt" >/dev/null
      awk -v r="$round" -v d="$db" -v b="$build" -v l="$load" -v t="$(date -u +%H:%M:%S)" \
        'NR > 1 && NF == 6 { print r, d, b, $0, "load", l, "ended", t }' "$OUT/run.txt" \
        | tee -a "$OUT/all.txt"
    done
  done
done

echo
python3 - "$OUT/all.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r, db, build, case, rps, p50, p99, ok, bad = line.split()[:9]
    rows.setdefault((db, case, build), []).append((float(rps), float(p50), float(p99), int(bad)))
print("| database | case | build | req/s (runs) | median req/s | median p50 ms | median p99 ms | non-2xx |")
print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
for (db, case, build), v in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "before")):
    med = lambda i: statistics.median(x[i] for x in v)
    runs = ", ".join(f"{x[0]:,.0f}" for x in v)
    print(f"| {db} | {case} | {build} | {runs} | {med(0):,.0f} | {med(1):.2f} | {med(2):.2f} | {sum(x[3] for x in v)} |")
PY
