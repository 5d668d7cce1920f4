#!/usr/bin/env bash
# Benchmark: push and pull of an image with one big layer (default 1 GiB of
# random data) and 20 small layers against a local docker-registry, rbuild
# vs `skopeo copy` (and buildah when installed). Prints wall time and peak
# RSS for each run. Measures only; asserts nothing.
#
# Usage: scripts/bench-registry.sh [BIG_MIB]   (needs a release build:
#        cargo build --release; RBUILD=path overrides the binary)
set -euo pipefail

BIG_MIB=${1:-1024}
HERE=$(cd "$(dirname "$0")/.." && pwd)
RBUILD=${RBUILD:-$HERE/target/release/rbuild}
# buildah on PATH, else the modern build some machines have; BUILDAH=path overrides.
BUILDAH=${BUILDAH:-$(command -v buildah || echo /opt/buildah-modern/bin/buildah)}
[ -x "$RBUILD" ] || { echo "build first: cargo build --release (or set RBUILD)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/rbuild-bench-XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: $HOST}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://$HOST/v2/" >/dev/null && break; sleep 0.1; done

# measure NAME CMD...: wall seconds and peak RSS (MiB) of CMD and its children.
measure() {
    local name=$1; shift
    local out=$WORK/time.out
    /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$WORK/err.log" || { cat "$WORK/err.log" >&2; exit 1; }
    read -r secs kib <"$out"
    printf '%-44s %8.2f s %8.1f MiB\n' "$name" "$secs" "$(echo "$kib / 1024" | bc -l)"
}

echo "== building the test image: ${BIG_MIB} MiB random layer + 20 small layers"
mkdir -p "$WORK/rootfs/bin" "$WORK/ctx"
cp /bin/busybox "$WORK/rootfs/bin/" && ln -s busybox "$WORK/rootfs/bin/sh"
for a in head echo; do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/base.tar" .
S="$WORK/store"
"$RBUILD" --root "$S" import "$WORK/base.tar" base >/dev/null
{
    echo "FROM base"
    echo "RUN head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom > /big"
    for i in $(seq 20); do echo "RUN echo layer $i > /small-$i"; done
} >"$WORK/ctx/Containerfile"
"$RBUILD" --root "$S" bud -q -t bench "$WORK/ctx" >/dev/null
"$RBUILD" --root "$S" push bench "oci:$WORK/layout:bench" >/dev/null   # compressed once, cached

echo "== push (blobs compressed and cached by the export above)"
measure "rbuild push (cold registry)" "$RBUILD" --root "$S" push --tls-verify=false bench "docker://$HOST/bench/rbuild:1"
measure "skopeo copy oci: -> docker:// (cold)" skopeo copy --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://$HOST/bench/skopeo:1"
measure "rbuild push (all blobs present)" "$RBUILD" --root "$S" push --tls-verify=false bench "docker://$HOST/bench/rbuild:2"
measure "skopeo copy (all blobs present)" skopeo copy --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://$HOST/bench/skopeo:2"
# buildah keeps its storage inside $WORK, removed at exit.
BUILDAH_STORE=(--root "$WORK/buildah-root" --runroot "$WORK/buildah-run")
if [ -x "$BUILDAH" ]; then
    # buildah pushes only images in its own storage: load it first, untimed.
    BID=$("$BUILDAH" "${BUILDAH_STORE[@]}" pull -q "oci:$WORK/layout:bench")
    measure "buildah push" "$BUILDAH" "${BUILDAH_STORE[@]}" push --tls-verify=false "$BID" "docker://$HOST/bench/buildah:1"
    "$BUILDAH" "${BUILDAH_STORE[@]}" rmi -a >/dev/null
else
    echo "(buildah is not installed here: no buildah figures)"
fi

echo "== pull (empty stores)"
measure "rbuild pull (download + verify + extract)" "$RBUILD" --root "$WORK/pull-store" pull --tls-verify=false "$HOST/bench/rbuild:1"
measure "skopeo copy docker:// -> oci: (download only)" skopeo copy --src-tls-verify=false "docker://$HOST/bench/rbuild:1" "oci:$WORK/pulled:x"
measure "rbuild pull again (all layers present)" "$RBUILD" --root "$WORK/pull-store" pull --policy always --tls-verify=false "$HOST/bench/rbuild:1"
if [ -x "$BUILDAH" ]; then
    measure "buildah pull" "$BUILDAH" "${BUILDAH_STORE[@]}" pull --tls-verify=false "docker://$HOST/bench/rbuild:1"
fi
