#!/usr/bin/env bash
# Times `imagegate scan` against syft on the same trees in one run, warm,
# and compares what each finds.
#
#   bench/scan-vs-syft.sh                 # syft must be on PATH or in $SYFT
#   SYFT=/path/to/syft RUNS=3 bench/scan-vs-syft.sh
#   IMAGES=0 bench/scan-vs-syft.sh    # trees only, not bench/scan-images.sh
#
# Install syft for benchmarking only (never a dependency):
#   GOBIN=$(mktemp -d) go install github.com/anchore/syft/cmd/syft@v1.57.1
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SYFT=${SYFT:-$(command -v syft || true)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/imagegate" ./cmd/imagegate

# measure LABEL OUTFILE CMD... : runs CMD $runs times (default RUNS) after
# one warm-up (unless WARMUP=0) and prints the best wall time and its peak RSS.
measure() {
  local label=$1 result=$2; shift 2
  [ "${WARMUP:-1}" = 0 ] || "$@" >"$result" 2>/dev/null || true
  local best="" rss=""
  for _ in $(seq "${runs:-$RUNS}"); do
    /usr/bin/time -f '%e %M' -o "$out/time" "$@" >"$result" 2>/dev/null || true
    read -r wall kb <"$out/time"
    if [ -z "$best" ] || awk "BEGIN{exit !($wall < $best)}"; then best=$wall; rss=$kb; fi
  done
  printf '%-44s %7ss %7d MB\n' "$label" "$best" "$((rss / 1024))"
}

count() { jq "$1" "$2" 2>/dev/null || echo "?"; }

bench_tree() {
  local name=$1 spec=$2 syftspec=$3
  echo "== $name"
  measure "imagegate scan $spec --exec none" "$out/ig.json" "$out/imagegate" scan "$spec" --exec none -o json
  echo "   imagegate: deb $(count '[.packages[]|select(.type=="deb")]|length' "$out/ig.json")," \
    "python dists $(count '[.runtimes[]|select(.kind=="python")|.packages[]?]|length' "$out/ig.json")," \
    "runtimes $(count '.runtimes|length' "$out/ig.json")," \
    "python interpreters $(count '[.runtimes[]|select(.kind=="python")]|length' "$out/ig.json")," \
    "stdlib modules $(count '[.runtimes[].modules[]?]|length' "$out/ig.json")," \
    "tools $(count '.tools|length' "$out/ig.json")"
  if [ -n "$SYFT" ]; then
    # syft takes minutes on a whole machine: one run there, already warm
    # from imagegate's runs over the same files.
    if [ "$spec" = "dir:/" ]; then local WARMUP=0 runs=1; fi
    SYFT_CHECK_FOR_APP_UPDATE=false measure "syft scan $syftspec" "$out/syft.json" "$SYFT" scan "$syftspec" -o syft-json -q
    echo "   syft:      deb $(count '[.artifacts[]|select(.type=="deb")]|length' "$out/syft.json")," \
      "python dists $(count '[.artifacts[]|select(.type=="python")]|length' "$out/syft.json")," \
      "binaries $(count '[.artifacts[]|select(.type=="binary")]|length' "$out/syft.json")," \
      "all artifacts $(count '.artifacts|length' "$out/syft.json")"
  fi
}

pyenv_versions="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions"
bench_tree "nine CPython builds" "dir:$pyenv_versions" "dir:$pyenv_versions"
bench_tree "this whole machine as an image" "dir:/" "dir:/"
echo "== imagegate scan host (with execution: nine import sweeps, tool probes)"
measure "imagegate scan host" "$out/host.json" "$out/imagegate" scan host -o json
echo "   modules $(count '[.runtimes[].modules[]?]|length' "$out/host.json"), not ok $(count '[.runtimes[].modules[]?|select(.status!="ok")]|length' "$out/host.json"), tools with versions $(count '[.tools[]|select(.version!=null)]|length' "$out/host.json")"

# Built images (docker archive, OCI layout, registry), a larger image, a
# five-layer one and extraction against tar: IMAGES=0 skips them.
if [ "${IMAGES:-1}" = 1 ]; then
  SYFT="$SYFT" bench/scan-images.sh
fi
