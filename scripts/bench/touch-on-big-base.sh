#!/usr/bin/env bash
# Benchmark of issue 5 ("cost is O(diff)"): `RUN touch /x` on a 2 GiB base against the same on
# the 2 MiB busybox base. Target: the same time on both (ratio big/small near 1.0), peak RSS
# under 100 MiB. The big base is busybox plus /data holding 2048 files of 1 MiB of random data,
# imported once per tool (untimed); each timed build runs without the cache (rbuild
# `--no-cache`; buildah without `--layers` caches nothing), small and big interleaved.
# BuildKit is left out: it would pull the 2 GiB base from the local registry, and this figure is
# about the builder's own commit path.
# Usage (as root): scripts/bench/touch-on-big-base.sh      env: RUNS=3 BIG_MB=2048, and lib.sh
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"
BIG_MB=${BIG_MB:-2048}
bench_init

SMALL="$REG/bench/busybox:latest"
BIG="$REG/bench/busybox-big:latest"
extra="$WORK/extra"
mkdir -p "$extra/data"
say "making the ${BIG_MB} MiB base"
head -c "${BIG_MB}M" /dev/urandom | split -b 1M -a 5 - "$extra/data/f"
make_rootfs_tar "$WORK/small.tar"
make_rootfs_tar "$WORK/big.tar" "$extra"
rm -rf "$extra"
ls -l "$WORK/small.tar" "$WORK/big.tar" >>"$LOG"

ctx="$WORK/ctx"
mkdir -p "$ctx"
printf 'FROM %s\nRUN touch /x\n' "$SMALL" >"$ctx/small.Containerfile"
printf 'FROM %s\nRUN touch /x\n' "$BIG" >"$ctx/big.Containerfile"

say "rbuild: import both bases, then $RUNS x (small, big)"
rb_new_store "$WORK/rb" "$WORK/small.tar" "$SMALL"
rb_import "$WORK/rb" "$WORK/big.tar" "$BIG"
rb_argv "$WORK/rb"
for _ in $(seq "$RUNS"); do
  for size in small big; do
    measure "$size/rbuild" "${RB[@]}" bud --no-cache -t "localhost/touch-$size" \
      -f "$ctx/$size.Containerfile" "$ctx"
  done
done
rb_nosync_argv "$WORK/rb"
if [ ${#RBN[@]} -gt 0 ]; then
  say "rbuild-nosync (diagnostic: fsync/syncfs disabled): $RUNS x (small, big)"
  for _ in $(seq "$RUNS"); do
    for size in small big; do
      measure "$size/rbuild-nosync" "${RBN[@]}" bud --no-cache -t "localhost/touch-$size" \
        -f "$ctx/$size.Containerfile" "$ctx"
    done
  done
fi
make_base_archive "$WORK/small.tar" "$WORK/small-oci.tar" "$SMALL"
make_base_archive "$WORK/big.tar" "$WORK/big-oci.tar" "$BIG"
rm -rf "$WORK/rb" "$WORK/small.tar" "$WORK/big.tar"

say "buildah: import both bases, then $RUNS x (small, big)"
bh_new_store "$WORK/bh" "$WORK/small-oci.tar" "$SMALL"
bh_import "$WORK/bh" "$WORK/big-oci.tar" "$BIG"
bh_argv "$WORK/bh"
for _ in $(seq "$RUNS"); do
  for size in small big; do
    measure "$size/buildah" "${BH[@]}" bud --isolation chroot -t "localhost/touch-$size" \
      -f "$ctx/$size.Containerfile" "$ctx"
  done
done
bh_remove_store "$WORK/bh"

table "RUN touch /x on the 2 MiB base" small/buildah small/rbuild small/buildah
table "RUN touch /x on the ${BIG_MB} MiB base" big/buildah big/rbuild big/buildah
table "rbuild: big base vs small base (target ~1.0)" small/rbuild small/rbuild big/rbuild
table "rbuild-nosync: big base vs small base" small/rbuild-nosync small/rbuild-nosync \
  big/rbuild-nosync
table "buildah: big base vs small base" small/buildah small/buildah big/buildah
show_commands
