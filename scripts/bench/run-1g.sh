#!/usr/bin/env bash
# Benchmark of issues 5 and 4: a RUN writing 1 GiB of random data, committed, then exported to
# `oci-archive:` with gzip — rbuild `bud` + `push` against buildah `bud` + `push` (and BuildKit
# building straight to an OCI tarball). Target: rbuild's total under half of buildah's, peak RSS
# under 100 MiB. Also issue 4's export figure: rbuild `push --compression-format zstd` of that
# layer against the shell pipeline
#   tar -cf - DIR | tee >(openssl dgst -sha256 >/dev/null) | zstd -T2 -3 | openssl dgst -sha256
# over the same layer directory (target: within 20%).
# Every cold run starts from a fresh store holding only the base.
# Usage (as root): scripts/bench/run-1g.sh      env: RUNS=3 SIZE_MB=1024, and see lib.sh
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-1024}
bench_init

ctx="$WORK/ctx"
mkdir -p "$ctx"
cat >"$ctx/Containerfile" <<EOF
FROM $BASE_NAME
RUN dd if=/dev/urandom of=/data bs=1M count=$SIZE_MB
EOF

make_rootfs_tar "$WORK/rootfs.tar"
make_base_archive "$WORK/rootfs.tar" "$WORK/base.tar"
out="$WORK/out.tar"

# total KEY_A KEY_B TOTAL_KEY: the latest runs of A and B added up (RSS: the larger one).
total() {
  local a b
  read -r -a a <<<"$(last_result "$1")"
  read -r -a b <<<"$(last_result "$2")"
  add_result "$3" $((a[0] + b[0])) $((a[1] > b[1] ? a[1] : b[1]))
}

say "rbuild: $RUNS x (fresh store, bud, push gzip, push zstd, shell zstd pipeline)"
for _ in $(seq "$RUNS"); do
  rb_new_store "$WORK/rb" "$WORK/rootfs.tar"
  rb_argv "$WORK/rb"
  measure bud/rbuild "${RB[@]}" bud -t localhost/run-1g -f "$ctx/Containerfile" "$ctx"
  rm -f "$out"
  measure push-gzip/rbuild "${RB[@]}" push --compression-format gzip localhost/run-1g "oci-archive:$out"
  total bud/rbuild push-gzip/rbuild bud+push-gzip/rbuild
  rm -f "$out"
  measure push-zstd/rbuild "${RB[@]}" push --compression-format zstd localhost/run-1g "oci-archive:$out"
  rm -f "$out"
  layer=$(find "$WORK/rb/store/layers" -mindepth 3 -maxdepth 3 -path '*/diff/data' -printf '%h\n' | head -1)
  [ -n "$layer" ] || die "cannot find the RUN layer's diff dir under $WORK/rb/store/layers"
  # shellcheck disable=SC2016 # $1 is expanded by that inner bash
  measure push-zstd/shell-pipeline bash -c 'tar -C "$1" -cf - . | tee >(openssl dgst -sha256 >/dev/null) | zstd -q -T2 -3 | openssl dgst -sha256' _ "$layer"
done
rm -rf "$WORK/rb"
rb_nosync_argv "$WORK/rb-nosync"
if [ ${#RBN[@]} -gt 0 ]; then
  say "rbuild-nosync (diagnostic: fsync/syncfs disabled): $RUNS x (fresh store, bud)"
  for _ in $(seq "$RUNS"); do
    rb_new_store "$WORK/rb-nosync" "$WORK/rootfs.tar"
    measure bud/rbuild-nosync "${RBN[@]}" bud -t localhost/run-1g -f "$ctx/Containerfile" "$ctx"
  done
  rm -rf "$WORK/rb-nosync"
fi

say "buildah: $RUNS x (fresh store, bud, push)"
for _ in $(seq "$RUNS"); do
  bh_new_store "$WORK/bh" "$WORK/base.tar"
  bh_argv "$WORK/bh"
  measure bud/buildah "${BH[@]}" bud --isolation chroot -t localhost/run-1g -f "$ctx/Containerfile" "$ctx"
  rm -f "$out"
  measure push-gzip/buildah "${BH[@]}" push localhost/run-1g "oci-archive:$out"
  total bud/buildah push-gzip/buildah bud+push-gzip/buildah
  rm -f "$out"
done
bh_remove_store "$WORK/bh"

if [ "$HAVE_BK" = 1 ]; then
  say "BuildKit: $RUNS x (cache pruned, build --output type=oci gzip)"
  bk_start "$WORK/base.tar"
  MEASURE_PID=$BK_PID
  bk_build_argv "$ctx" "$ctx/Containerfile" "type=oci,dest=$out,compression=gzip"
  for _ in $(seq "$RUNS"); do
    bk_cold
    rm -f "$out"
    measure bud+push-gzip/buildkit "${BKB[@]}"
  done
  MEASURE_PID=''
  rm -f "$out"
fi

table "RUN dd ${SIZE_MB} MiB urandom: build" bud/buildah bud/rbuild bud/buildah bud/rbuild-nosync
table "export to oci-archive: with gzip" push-gzip/buildah push-gzip/rbuild push-gzip/buildah
table "build + export (gzip), the issue-5 target: < 0.5" bud+push-gzip/buildah \
  bud+push-gzip/rbuild bud+push-gzip/buildah bud+push-gzip/buildkit
table "export with zstd, the issue-4 target: < 1.2" push-zstd/shell-pipeline \
  push-zstd/rbuild push-zstd/shell-pipeline
show_commands
