#!/usr/bin/env bash
# Server CPU per ingested event, for two or more builds of imagegate side
# by side: on a shared machine events/s says as much about the neighbours
# as about the code, while the CPU the server spends per event does not.
# Each run starts every binary in turn on a fresh database (alternating,
# so that a noisy minute hits all of them), drives the same ingest load
# as bench/serve-load.sh (loadgen, 4 workers, batches of 500, durable
# before each 2xx) and reads the server's utime+stime from /proc before
# and after. It prints each run and, per binary, the medians.
#
#   bench/ingest-cpu.sh /tmp/imagegate-main ./imagegate          # SQLite
#   RUNS=7 DURATION=10s bench/ingest-cpu.sh A B
#   PG_DSN='postgres://imagegate:imagegate@127.0.0.1:5432/imagegate_test?sslmode=disable' bench/ingest-cpu.sh A B
#
# With the server CPU-bound on C cores, events/s ≈ C × 1e6 / (server +
# loadgen CPU-µs per event); the loadgen's share is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 IMAGEGATE-BINARY..." >&2; exit 2; }
RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
INGEST_WORKERS=${INGEST_WORKERS:-4}
PG_DSN=${PG_DSN:-}
out=$(mktemp -d)
pid=""
schemas=()
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  for s in "${schemas[@]}"; do PGOPTIONS=--client-min-messages=warning psql -q "$PG_DSN" -c "DROP SCHEMA IF EXISTS $s CASCADE" || true; done
  rm -rf "$out"
}
trap cleanup EXIT
go build -o "$out/loadgen" ./bench/loadgen
tck=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sep='?'; [[ $PG_DSN == *\?* ]] && sep='&'
token=ingest-cpu-$RANDOM$RANDOM

# one BINARY INDEX RUN: prints "INDEX events server-µs/event loadgen-µs/event events/s".
one() {
  local bin=$1 i=$2 run=$3 db
  if [ -n "$PG_DSN" ]; then
    local schema=imagegate_cpu_$$_${run}_$i
    schemas+=("$schema")
    psql -q "$PG_DSN" -c "CREATE SCHEMA $schema"
    db="${PG_DSN}${sep}search_path=$schema"
  else
    db="$out/db-$run-$i.db"
  fi
  rm -f "$out/addr"
  IMAGEGATE_ADMIN_TOKEN=$token "$bin" serve --listen 127.0.0.1:0 --addr-file "$out/addr" --db "$db" 2>"$out/serve-$i.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$out/addr" ] && break; sleep 0.1; done
  [ -s "$out/addr" ] || { cat "$out/serve-$i.log" >&2; exit 1; }
  local t0 t1
  t0=$(ticks "$pid")
  local TIMEFORMAT='%U %S'
  { time "$out/loadgen" -server "$(cat "$out/addr")" -token "$token" -seed -label "cpu-$i-$RANDOM" -json \
      -duration 0 -ingest-workers "$INGEST_WORKERS" -ingest-duration "$DURATION" >"$out/res.json"; } 2>"$out/lg-time"
  t1=$(ticks "$pid")
  kill "$pid"; wait "$pid" || true; pid=""
  [ -z "$PG_DSN" ] && rm -f "$out"/db-"$run"-"$i".db*
  local events eps
  events=$(sed -n 's/.*"events": \([0-9]*\).*/\1/p' "$out/res.json")
  eps=$(sed -n 's/.*"perSecond": \([0-9.]*\).*/\1/p' "$out/res.json" | tail -1)
  awk -v i="$i" -v e="$events" -v d="$((t1 - t0))" -v tck="$tck" -v eps="$eps" -v lg="$(cat "$out/lg-time")" \
    'BEGIN {split(lg, l, " "); printf "%d %d %.1f %.1f %.0f\n", i, e, d / tck * 1e6 / e, (l[1] + l[2]) * 1e6 / e, eps}'
}

store=sqlite; [ -n "$PG_DSN" ] && store=postgres
echo "== $store, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs of $DURATION"
for run in $(seq "$RUNS"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1))
    r=$(one "$bin" "$i" "$run")
    echo "$r" >>"$out/all"
    read -r _ e s l eps <<<"$r"
    printf 'run %d  %-40s %8d events  server %6.1f CPU-µs/event  loadgen %5.1f  %6.0f events/s\n' "$run" "$bin" "$e" "$s" "$l" "$eps"
  done
done
i=0
for bin in "$@"; do
  i=$((i + 1))
  awk -v i="$i" -v bin="$bin" '$1 == i {s[++n] = $3; l[n] = $4; e[n] = $5}
    function med(a,  k, j, t) {for (k = 1; k <= n; k++) for (j = k + 1; j <= n; j++) if (a[j] < a[k]) {t = a[k]; a[k] = a[j]; a[j] = t}
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2}
    END {printf "median %-40s server %6.1f CPU-µs/event  loadgen %5.1f  %6.0f events/s  (%d runs)\n", bin, med(s), med(l), med(e), n}' "$out/all"
done
