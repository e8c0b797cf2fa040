#!/usr/bin/env bash
# Faults under load on PostgreSQL (issue 13). REPLICAS imagegate serve
# replicas share one database of a PostgreSQL server of their own (a
# throwaway cluster in a temporary directory on PG_PORT: the machine's
# shared cluster is never restarted), under bench/faultload (resolve, job
# events, user reports, one rollout after another). Every KILL_EVERY
# seconds the replica leading the controller is killed with -9 and
# restarted on its port: at once the first time (it takes its own lease
# back), after RESTART_DELAY (beyond the 10 s lease TTL: another replica
# takes the lease over) the next, and so on; at half time PostgreSQL
# itself is restarted (PG_RESTART=0 skips it). faultload then checks that every acknowledged event is
# stored, that no answer was a 5xx other than 503, that every controller
# decision was applied once, and says per fault what clients saw.
#
#   bench/fault-postgres.sh                   # 5 minutes, 2 replicas
#   DURATION=120 REPLICAS=3 bench/fault-postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-300}
REPLICAS=${REPLICAS:-2}
KILL_EVERY=${KILL_EVERY:-20}
PG_PORT=${PG_PORT:-5440}
PG_RESTART=${PG_RESTART:-1}
RESTART_DELAY=${RESTART_DELAY:-12}
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}

out=$(mktemp -d)
chmod 755 "$out"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgctl() { as_pg "$PGBIN/pg_ctl" -D "$out/pg/data" -l "$out/pg/log" -w "$@" >/dev/null; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$out/pg/data" ] && pgctl stop -m immediate 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT

go build -o "$out/imagegate" ./cmd/imagegate
go build -o "$out/faultload" ./bench/faultload

mkdir -p "$out/pg"
[ "$(id -u)" = 0 ] && chown postgres "$out/pg"
as_pg "$PGBIN/initdb" -D "$out/pg/data" -U imagegate --auth=trust -E UTF8 >/dev/null
start_pg() { pgctl start -o "-p $PG_PORT -k $out/pg -c listen_addresses=127.0.0.1 -c max_connections=100"; }
start_pg
dsn="postgres://imagegate@127.0.0.1:$PG_PORT/postgres?sslmode=disable"

cat >"$out/serve.yaml" <<YAML
analysis: {action: dry-run}   # the rollouts advance on bake time alone
controller: {interval: 500ms}
YAML
token=faultload-admin-$RANDOM$RANDOM
ports=()
for _ in $(seq "$REPLICAS"); do
  ports+=("$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')")
done
start_replica() { # INDEX
  local i=$1
  IMAGEGATE_ADMIN_TOKEN=$token "$out/imagegate" serve --listen "127.0.0.1:${ports[$i]}" --db "$dsn" \
    --config "$out/serve.yaml" 2>>"$out/replica-$i.log" &
  pids[$i]=$!
}
urls=()
for i in $(seq 0 $((REPLICAS - 1))); do
  start_replica "$i"
  urls+=("http://127.0.0.1:${ports[$i]}")
done
for u in "${urls[@]}"; do
  for _ in $(seq 100); do curl -fs "$u/readyz" >/dev/null && break; sleep 0.1; done
done
servers=$(IFS=,; echo "${urls[*]}")

echo "== $REPLICAS replicas on PostgreSQL (own cluster on :$PG_PORT), ${DURATION}s, kill -9 every ${KILL_EVERY}s$([ "$PG_RESTART" = 1 ] && echo ', PostgreSQL restarted at half time') ($(nproc) cores shared)"
"$out/faultload" -servers "$servers" -token "$token" -duration "${DURATION}s" -rollouts -pg "$dsn" \
  -faults "$out/faults" >"$out/result" 2>&1 &
load=$!
sleep 2 # seeding
start=$(date +%s)
# leader prints the index of the replica that leads the controller, or
# one in turn when none does (the lease is moving).
leader() {
  for i in $(seq 0 $((REPLICAS - 1))); do
    if curl -fs "${urls[$i]}/metrics" 2>/dev/null | grep -q '^imagegate_controller_leader 1$'; then echo "$i"; return; fi
  done
  echo $((n % REPLICAS))
}
n=0
restarted_pg=0
declare -A restart_at=()
while kill -0 "$load" 2>/dev/null; do
  sleep 1
  t=$(($(date +%s) - start))
  for i in "${!restart_at[@]}"; do
    if [ "$t" -ge "${restart_at[$i]}" ]; then start_replica "$i"; unset "restart_at[$i]"; fi
  done
  [ "$t" -ge "$DURATION" ] && break
  if [ "$PG_RESTART" = 1 ] && [ "$restarted_pg" = 0 ] && [ "$t" -ge $((DURATION / 2 / KILL_EVERY * KILL_EVERY + KILL_EVERY / 2)) ]; then
    echo "$(date +%s%3N) pg-restart" >>"$out/faults"
    pgctl restart -m fast -o "-p $PG_PORT -k $out/pg -c listen_addresses=127.0.0.1 -c max_connections=100"
    restarted_pg=1
  fi
  if [ "$t" -ge $(((n + 1) * KILL_EVERY)) ]; then
    i=$(leader)
    delay=0
    [ $((n % 2)) = 1 ] && delay=$RESTART_DELAY
    echo "$(date +%s%3N) kill-9-replica-$i-restart-after-${delay}s" >>"$out/faults"
    kill -9 "${pids[$i]}"
    wait "${pids[$i]}" 2>/dev/null || true
    restart_at[$i]=$((t + delay))
    [ "$delay" = 0 ] && { start_replica "$i"; unset "restart_at[$i]"; }
    n=$((n + 1))
  fi
done
rc=0
wait "$load" || rc=$?
cat "$out/result"
echo "replica logs: $(cat "$out"/replica-*.log | grep -c '"request failed"\|level=ERROR' || true) error lines (500s), $(cat "$out"/replica-*.log | grep -c 'failing dependency' || true) answered 503"
exit "$rc"
