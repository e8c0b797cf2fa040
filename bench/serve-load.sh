#!/usr/bin/env bash
# Load test of imagegate serve from a separate process on loopback:
# resolve req/s with p50/p99 over keep-alive connections, and event ingest
# in batches of 500 (durable before each 2xx). SQLite always; PostgreSQL
# too when a DSN is given. Bounded: each phase stops after DURATION.
#
#   bench/serve-load.sh
#   PG_DSN='postgres://imagegate:imagegate@127.0.0.1:5432/imagegate_test?sslmode=disable' bench/serve-load.sh
#   CONNECTIONS=32 DURATION=20s RUN_IDS=1 bench/serve-load.sh
#   RUNS=5 RESOLVE_DURATION=0 PG_DSN=... bench/serve-load.sh   # ingest only, 5 alternating runs per store, medians
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
# RESOLVE_DURATION=0 skips the resolve phase (ingest only).
RESOLVE_DURATION=${RESOLVE_DURATION:-$DURATION}
CONNECTIONS=${CONNECTIONS:-16}
INGEST_WORKERS=${INGEST_WORKERS:-4}
PG_DSN=${PG_DSN:-}
# RUNS=N repeats the stores alternately (sqlite, postgres, sqlite, ...),
# each on a fresh database, and prints each store's median events/s: the
# machine is shared, so one run says little.
RUNS=${RUNS:-1}
# RUN_IDS=1 sends a workflow run id with every resolve (4 jobs per run):
# the run-affinity path, one store write per new run.
extra=()
[ "${RUN_IDS:-0}" = 1 ] && extra+=(-run-ids)
out=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

go build -o "$out/imagegate" ./cmd/imagegate
go build -o "$out/loadgen" ./bench/loadgen
imagegate=("$out/imagegate")
if ! "$out/imagegate" serve --help >/dev/null 2>&1; then
  # Until the root command registers serve, run it through the test
  # binary's helper process (the same code).
  go test -c -o "$out/imagegate.test" ./cmd/imagegate
  imagegate=(env IMAGEGATE_HELPER_PROCESS=1 "$out/imagegate.test" -test.run='^TestHelperProcess$' --)
fi

token=loadgen-admin-$RANDOM$RANDOM
# bench STORE-NAME DB: start a server on a free port, seed, measure, stop.
bench() {
  local name=$1 db=$2
  rm -f "$out/addr"
  IMAGEGATE_ADMIN_TOKEN=$token "${imagegate[@]}" serve --listen 127.0.0.1:0 --addr-file "$out/addr" \
    --db "$db" 2>"$out/serve-$name.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$out/addr" ] && break; sleep 0.1; done
  [ -s "$out/addr" ] || { cat "$out/serve-$name.log"; exit 1; }
  echo "== $name ($(nproc) cores, server and load generator on the same machine)"
  "$out/loadgen" -server "$(cat "$out/addr")" -token "$token" -seed -label "load-$name-$RANDOM" \
    -connections "$CONNECTIONS" -duration "$RESOLVE_DURATION" -ingest-workers "$INGEST_WORKERS" -ingest-duration "$DURATION" "${extra[@]}" |
    tee -a "$out/results-$name"
  kill "$pid"; wait "$pid" || true; pid=""
}

# median NAME: the median ingest events/s of NAME's runs.
median() {
  [ -s "$out/results-$1" ] || return 0
  sed -n 's/.* \([0-9]*\) events\/s.*/\1/p' "$out/results-$1" | sort -n |
    awk -v name="$1" '{v[NR]=$1} END {if (NR) printf "median %s ingest: %d events/s over %d runs (%s)\n", name, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), NR, join(v)}
      function join(a,  s, i) {for (i=1; i<=NR; i++) s = s (i>1 ? " " : "") a[i]; return s}'
}

if [ -n "$PG_DSN" ]; then
  # Scratch schemas of that database, dropped at the end (needs psql).
  schemas=()
  trap 'for s in "${schemas[@]}"; do PGOPTIONS=--client-min-messages=warning psql -q "$PG_DSN" -c "DROP SCHEMA IF EXISTS $s CASCADE" || true; done; cleanup' EXIT
  sep='?'; [[ $PG_DSN == *\?* ]] && sep='&'
fi
for run in $(seq "$RUNS"); do
  rm -f "$out"/imagegate-*.db*
  bench sqlite "$out/imagegate-$run.db"
  if [ -n "$PG_DSN" ]; then
    schema=imagegate_bench_$$_$run
    schemas+=("$schema")
    psql -q "$PG_DSN" -c "CREATE SCHEMA $schema"
    bench postgres "${PG_DSN}${sep}search_path=$schema"
  fi
done
if [ "$RUNS" -gt 1 ]; then
  median sqlite
  median postgres
fi
