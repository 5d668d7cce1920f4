#!/usr/bin/env bash
# Benchmark of issues 5 and 6: a 10-step build (RUN echo, ENV, WORKDIR, COPY, LABEL,
# RUN dd 200 MB, EXPOSE, RUN, USER, CMD) on the busybox base, cold (fresh store, base only)
# and rebuilt with a warm cache (same store, nothing changed).
# Targets: cold under 1/3 of buildah's time and under BuildKit's; warm rebuild under 30 ms and
# under 1/3 of buildah's cached rebuild; peak RSS under 100 MiB.
# rbuild: `bud` (its cache is on by default); buildah: `bud --isolation chroot` as it builds by
# default (the reference for the cold figure), and with `--layers` (caching, as rbuild does:
# the reference for the warm rebuild); BuildKit: `buildctl build --output type=image` (kept in
# its store, as the others).
# Usage (as root): scripts/bench/ten-step.sh      env: RUNS=3 DD_MB=200, and see lib.sh
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"
DD_MB=${DD_MB:-200}
bench_init

ctx="$WORK/ctx"
mkdir -p "$ctx"
# shellcheck disable=SC2016 # $APP_MODE is for the image's shell
printf '#!/bin/sh\necho "ten-step app: $APP_MODE"\n' >"$ctx/app.sh"
chmod 0755 "$ctx/app.sh"
cat >"$ctx/Containerfile" <<EOF
FROM $BASE_NAME
RUN echo "step two" > /step2
ENV APP_MODE=bench APP_HOME=/app
WORKDIR /app
COPY app.sh ./
LABEL org.opencontainers.image.title="ten-step bench"
RUN dd if=/dev/zero of=/app/blob bs=1M count=$DD_MB
EXPOSE 8080
RUN echo done > /app/done
CMD ["/app/app.sh"]
EOF

make_rootfs_tar "$WORK/rootfs.tar"
make_base_archive "$WORK/rootfs.tar" "$WORK/base.tar"

say "rbuild: $RUNS cold builds (fresh store each) then $RUNS warm rebuilds"
for _ in $(seq "$RUNS"); do
  rb_new_store "$WORK/rb" "$WORK/rootfs.tar"
  rb_argv "$WORK/rb"
  measure cold/rbuild "${RB[@]}" bud -t localhost/ten-step -f "$ctx/Containerfile" "$ctx"
done
for _ in $(seq "$RUNS"); do
  measure warm/rbuild "${RB[@]}" bud -t localhost/ten-step -f "$ctx/Containerfile" "$ctx"
done
grep -q 'Using cache' "$LOG" || die "rbuild's rebuild did not use its cache (see $LOG)"
rb_nosync_argv "$WORK/rb-nosync"
if [ ${#RBN[@]} -gt 0 ]; then
  say "rbuild-nosync (diagnostic: fsync/syncfs disabled): the same cold and warm runs"
  for _ in $(seq "$RUNS"); do
    rb_new_store "$WORK/rb-nosync" "$WORK/rootfs.tar"
    measure cold/rbuild-nosync "${RBN[@]}" bud -t localhost/ten-step -f "$ctx/Containerfile" "$ctx"
  done
  for _ in $(seq "$RUNS"); do
    measure warm/rbuild-nosync "${RBN[@]}" bud -t localhost/ten-step -f "$ctx/Containerfile" "$ctx"
  done
fi
rm -rf "$WORK/rb" "$WORK/rb-nosync"

say "buildah: $RUNS cold builds as buildah does by default (no --layers, no cache)"
for _ in $(seq "$RUNS"); do
  bh_new_store "$WORK/bh" "$WORK/base.tar"
  bh_argv "$WORK/bh"
  measure cold/buildah "${BH[@]}" bud --isolation chroot -t localhost/ten-step \
    -f "$ctx/Containerfile" "$ctx"
done
say "buildah: $RUNS cold builds with --layers (caching, as rbuild), then $RUNS warm rebuilds"
for _ in $(seq "$RUNS"); do
  bh_new_store "$WORK/bh" "$WORK/base.tar"
  bh_argv "$WORK/bh"
  measure cold/buildah-layers "${BH[@]}" bud --isolation chroot --layers -t localhost/ten-step \
    -f "$ctx/Containerfile" "$ctx"
done
for _ in $(seq "$RUNS"); do
  measure warm/buildah-layers "${BH[@]}" bud --isolation chroot --layers -t localhost/ten-step \
    -f "$ctx/Containerfile" "$ctx"
done
bh_remove_store "$WORK/bh"

if [ "$HAVE_BK" = 1 ]; then
  say "BuildKit: $RUNS cold builds (cache pruned each) then $RUNS warm rebuilds"
  bk_start "$WORK/base.tar"
  MEASURE_PID=$BK_PID
  bk_build_argv "$ctx" "$ctx/Containerfile" type=image,name=localhost/ten-step
  for _ in $(seq "$RUNS"); do
    bk_cold
    measure cold/buildkit "${BKB[@]}"
  done
  for _ in $(seq "$RUNS"); do
    measure warm/buildkit "${BKB[@]}"
  done
  MEASURE_PID=''
fi

table "ten-step cold build (${DD_MB} MB dd); target < 0.333 and < buildkit" cold/buildah \
  cold/rbuild cold/buildah cold/buildah-layers cold/buildkit cold/rbuild-nosync
table "ten-step warm-cache rebuild; target < 30 ms and < 0.333" warm/buildah-layers \
  warm/rbuild warm/buildah-layers warm/buildkit warm/rbuild-nosync
show_commands
