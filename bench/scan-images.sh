#!/usr/bin/env bash
# Times `imagegate scan --exec none` against syft on built images — a Debian
# 12 + python3 docker archive, its OCI layout and the same image served by an
# in-process registry on 127.0.0.1 — then a larger Debian image and a
# five-layer image whose later layers delete and overwrite files; checks that
# both find the deb packages `dpkg-query -W` lists inside the root; and times
# extraction for `--exec chroot` against GNU `tar -xzf` of the same layer.
#
#   bench/scan-images.sh                  # RUNS=5 alternating runs, medians
#   SYFT=/path/to/syft BIG=0 bench/scan-images.sh
#   PARTS="extraction big" bench/scan-images.sh   # some of: deb12 extraction churn big
#
# Root filesystems are built with mmdebstrap (installed with apt-get when
# missing) and cached under ~/.cache/imagegate-test, keyed by suite, variant
# and packages. Install syft for benchmarking only (never a dependency):
#   GOBIN=$(mktemp -d) go install github.com/anchore/syft/cmd/syft@v1.57.1
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BIG=${BIG:-1}
PARTS=${PARTS:-deb12 extraction churn big}
part() { [[ " $PARTS " == *" $1 "* ]]; }
SYFT=${SYFT:-$(command -v syft || true)}
CACHE=${CACHE:-$HOME/.cache/imagegate-test}
out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
go build -o "$out/imagegate" ./cmd/imagegate
go build -o "$out/imagefixture" ./bench/imagefixture

# rootfs SUITE PACKAGES... : prints the path of a cached mmdebstrap tarball.
rootfs() {
  local suite=$1; shift
  local key="$suite-minbase-$(IFS=+; echo "$*")"
  local tar="$CACHE/mmdebstrap/$key.tar"
  if [ ! -s "$tar" ]; then
    command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >&2
    mkdir -p "$CACHE/mmdebstrap"
    mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "$*")" "$suite" "$tar.partial" >&2
    mv "$tar.partial" "$tar"
  fi
  echo "$tar"
}

# images KEY ROOTFS [-churn] : prints the folder holding image.tar and oci/,
# built once per key.
images() {
  local dir="$CACHE/images/$1"
  if [ ! -s "$dir/image.tar" ]; then
    rm -rf "$dir"
    "$out/imagefixture" -out "$dir" ${3:-} "$2" >&2
  fi
  echo "$dir"
}

# serve DIR : serves DIR/oci from an in-process registry; prints host:port.
serve() {
  rm -f "$out/addr"
  "$out/imagefixture" -serve "$1/oci" -addr-file "$out/addr" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do [ -s "$out/addr" ] && break; sleep 0.1; done
  cat "$out/addr"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# race LABEL-A "CMD A" LABEL-B "CMD B" : RUNS alternating runs of each after
# one warm-up each; prints median wall, CPU (user+sys) and peak RSS.
race() {
  local la=$1 ca=$2 lb=$3 cb=$4
  : >"$out/a.t"; : >"$out/b.t"
  bash -c "$ca" >"$out/a.out" 2>/dev/null || true
  bash -c "$cb" >"$out/b.out" 2>/dev/null || true
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %U %S %M' -a -o "$out/a.t" bash -c "$ca" >"$out/a.out" 2>/dev/null || true
    /usr/bin/time -f '%e %U %S %M' -a -o "$out/b.t" bash -c "$cb" >"$out/b.out" 2>/dev/null || true
  done
  for x in a b; do
    local l; [ $x = a ] && l=$la || l=$lb
    printf '  %-34s wall %6.2fs  cpu %6.2fs  peak %5d MB\n' "$l" \
      "$(awk '{print $1}' "$out/$x.t" | median)" "$(awk '{print $2+$3}' "$out/$x.t" | median)" \
      "$(( $(awk '{print $4}' "$out/$x.t" | median | cut -d. -f1) / 1024 ))"
  done
  awk -v r="$(awk '{print $1}' "$out/b.t" | median)" -v i="$(awk '{print $1}' "$out/a.t" | median)" \
    -v rm="$(awk '{print $4}' "$out/b.t" | median)" -v im="$(awk '{print $4}' "$out/a.t" | median)" \
    'BEGIN { printf "  %s is %.1fx faster in wall time and uses %.0f%% of the peak memory\n", "imagegate", r / i, 100 * im / rm }'
}

# debs ROOTFS : what dpkg-query -W lists inside the root, sorted.
debs() {
  local root="$out/root"
  rm -rf "$root"; mkdir -p "$root"
  tar -xf "$1" -C "$root" --exclude='./dev/*' 2>/dev/null || true
  dpkg-query --root="$root" -W -f '${Package}\n' | sort -u
  rm -rf "$root"
}

compare_debs() { # SNAPSHOT SYFT-JSON WANT-FILE
  jq -r '.packages[]|select(.type=="deb")|.name' "$1" | sort -u >"$out/ig.debs"
  if cmp -s "$out/ig.debs" "$3"; then echo "  imagegate: the same $(wc -l <"$3") deb packages as dpkg-query -W"
  else echo "  imagegate: deb packages differ from dpkg-query -W:"; diff "$3" "$out/ig.debs" | head | sed 's/^/    /'; fi
  if [ -n "$SYFT" ] && [ -s "$2" ]; then
    jq -r '.artifacts[]|select(.type=="deb")|.name' "$2" | sort -u >"$out/syft.debs"
    if cmp -s "$out/syft.debs" "$3"; then echo "  syft:      the same deb packages"
    else echo "  syft:      $(wc -l <"$out/syft.debs") deb packages ($(comm -3 "$3" "$out/syft.debs" | wc -l) differ)"; fi
  fi
}

bench_image() { # NAME IMAGES-DIR ROOTFS
  local name=$1 dir=$2 want="$out/want.debs"
  debs "$3" >"$want"
  local addr; addr=$(serve "$dir")
  echo "== $name: $(du -m "$dir/image.tar" | cut -f1) MB archive, $(tar -tf "$3" | wc -l) entries in the base layer"
  for spec in "docker-archive:$dir/image.tar" "oci:$dir/oci" "registry:$addr/bench/image:1"; do
    local kind=${spec%%:*} syftspec=$spec insecure=""
    if [ "$kind" = registry ]; then insecure="--insecure"; fi
    if [ "$kind" = oci ]; then syftspec="oci-dir:${spec#oci:}"; fi
    echo "-- $kind"
    if [ -n "$SYFT" ]; then
      race "imagegate scan --exec none" "'$out/imagegate' scan '$spec' $insecure --cache-dir '$out/cache' --exec none -o json" \
           "syft scan" "SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=true '$SYFT' scan '$syftspec' -o syft-json -q"
      cp "$out/a.out" "$out/ig.json"; cp "$out/b.out" "$out/syft.json"
    else
      "$out/imagegate" scan "$spec" $insecure --cache-dir "$out/cache" --exec none -o json >"$out/ig.json"
    fi
    compare_debs "$out/ig.json" "$out/syft.json" "$want"
  done
  if [ -n "$SYFT" ]; then
    echo "-- registry, no layer cache (every layer fetched on every run)"
    race "imagegate scan --cache-dir ''" "'$out/imagegate' scan 'registry:$addr/bench/image:1' --insecure --cache-dir '' --exec none -o json" \
         "syft scan" "SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=true '$SYFT' scan 'registry:$addr/bench/image:1' -o syft-json -q"
  fi
}

# extraction DIR : --exec chroot's extraction against tar -xzf of the layer.
extraction() {
  local dir=$1 layer
  layer=$(tar -tf "$dir/image.tar" | grep -m1 '\.tar\.gz$')
  tar -xf "$dir/image.tar" -C "$out" "$layer"
  echo "-- extraction for --exec chroot, against GNU tar on the same layer ($(du -m "$out/$layer" | cut -f1) MB gzip)"
  : >"$out/tar.t"; : >"$out/x.t"
  for _ in $(seq "$RUNS"); do
    mkdir -p "$out/x"; sync
    /usr/bin/time -f '%e' -a -o "$out/tar.t" tar -xzf "$out/$layer" -C "$out/x" 2>/dev/null || true
    rm -rf "$out/x"; sync
    "$out/imagegate" scan "docker-archive:$dir/image.tar" --exec chroot -o json -v --temp-dir "$out" 2>&1 >/dev/null |
      sed -n 's/.*msg="extracted image".*elapsed=\([0-9.]*\)\(m\?s\).*/\1 \2/p' |
      awk '{print ($2=="ms" ? $1/1000 : $1)}' >>"$out/x.t"
  done
  local t x; t=$(median <"$out/tar.t"); x=$(median <"$out/x.t")
  printf '  tar -xzf %.2fs, imagegate extraction %.2fs (%.2fx tar), medians of %d alternating runs\n' "$t" "$x" "$(awk -v a="$x" -v b="$t" 'BEGIN{print a/b}')" "$RUNS"
  : >"$out/c.t"
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e' -a -o "$out/c.t" "$out/imagegate" check "docker-archive:$dir/image.tar" --exec chroot --temp-dir "$out" >/dev/null 2>&1 || true
  done
  printf '  imagegate check --exec chroot: %.2fs (median of %d)\n' "$(median <"$out/c.t")" "$RUNS"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); syft: ${SYFT:-not found}"
base=$(rootfs bookworm python3)
deb12=$(images bookworm-python3 "$base")
if part deb12; then bench_image "Debian 12 + python3" "$deb12" "$base"; fi
if part extraction; then extraction "$deb12"; fi
if part churn; then
  churn=$(images bookworm-python3-churn "$base" -churn)
  bench_image "Debian 12 + python3, five layers (deletes, overwrites, opaque dirs)" "$churn" "$base"
fi
if [ "$BIG" = 1 ] && part big; then
  big=$(rootfs bookworm python3 nodejs default-jdk-headless build-essential git)
  bigimg=$(images bookworm-big "$big")
  bench_image "Debian 12 + python3, nodejs, default-jdk-headless, build-essential, git" "$bigimg" "$big"
fi
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
