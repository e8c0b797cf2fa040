#!/usr/bin/env bash
# A full disk under SQLite (issue 13): one imagegate serve on a database in
# a small tmpfs of its own (needs root to mount it), under bench/faultload
# (resolve, job events, user reports, rollouts). At a third of DURATION a
# ballast file fills the file system; at two thirds it is removed.
# faultload then checks: no 5xx but 503 (with the cause in the JSON error),
# every acknowledged event stored, PRAGMA integrity_check ok, no controller
# decision applied twice; and says what clients and /readyz saw meanwhile
# and how long until writes succeeded again.
#
#   sudo bench/fault-sqlite-disk.sh
#   DURATION=120 DISK_MB=32 bench/fault-sqlite-disk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-90}
DISK_MB=${DISK_MB:-64}
[ "$(id -u)" = 0 ] || { echo "fault-sqlite-disk.sh mounts a tmpfs: run it as root" >&2; exit 2; }

out=$(mktemp -d)
mnt="$out/disk"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  umount "$mnt" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
go build -o "$out/imagegate" ./cmd/imagegate
go build -o "$out/faultload" ./bench/faultload
mkdir "$mnt"
mount -t tmpfs -o "size=${DISK_MB}m" tmpfs "$mnt"
db="$mnt/imagegate.db"

cat >"$out/serve.yaml" <<YAML
analysis: {action: dry-run}   # the rollouts advance on bake time alone
controller: {interval: 500ms}
YAML
token=faultload-admin-$RANDOM$RANDOM
IMAGEGATE_ADMIN_TOKEN=$token "$out/imagegate" serve --listen 127.0.0.1:0 --addr-file "$out/addr" --db "$db" \
  --config "$out/serve.yaml" 2>"$out/serve.log" &
pid=$!
for _ in $(seq 100); do [ -s "$out/addr" ] && break; sleep 0.1; done
[ -s "$out/addr" ] || { cat "$out/serve.log"; exit 1; }
url=$(cat "$out/addr")

echo "== SQLite on a ${DISK_MB} MiB tmpfs, ${DURATION}s; the disk is filled at $((DURATION / 3))s and freed at $((2 * DURATION / 3))s ($(nproc) cores shared)"
"$out/faultload" -servers "$url" -token "$token" -duration "${DURATION}s" -rollouts -sqlite "$db" \
  -batch 100 -ingest-pause 100ms -faults "$out/faults" >"$out/result" 2>&1 &
load=$!
sleep 8 # seeding: a first rollout through three rings
start=$(date +%s)
filled=0
while kill -0 "$load" 2>/dev/null; do
  sleep 1
  t=$(($(date +%s) - start))
  if [ "$filled" = 0 ] && [ "$t" -ge $((DURATION / 3)) ]; then
    echo "$(date +%s%3N) fill-disk" >>"$out/faults"
    dd if=/dev/zero of="$mnt/ballast" bs=64k 2>/dev/null || true
    df -k "$mnt" | tail -1
    filled=1
  fi
  if [ "$filled" = 1 ] && [ "$t" -ge $((2 * DURATION / 3)) ]; then
    echo "$(date +%s%3N) free-disk" >>"$out/faults"
    rm -f "$mnt/ballast"
    filled=2
  fi
done
rc=0
wait "$load" || rc=$?
cat "$out/result"
echo "server log: $(grep -c 'request failed"\|level=ERROR' "$out/serve.log" || true) error lines (500s), $(grep -c 'failing dependency' "$out/serve.log" || true) answered 503"
grep -m3 'failing dependency' "$out/serve.log" || true
exit "$rc"
