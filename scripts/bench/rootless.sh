#!/usr/bin/env bash
# Benchmark of issue 5, rootless: the ten-step build (cold and warm) and the 1 GiB RUN + gzip
# export of run-1g.sh, run as an unprivileged user (default rbtest, which needs a subuid/subgid
# range) by rbuild and by rootless buildah (`bud --isolation chroot`: rootless buildah's default
# OCI isolation needs pasta for the network, which this machine lacks; chroot isolation is what
# the root figures use too). Both tools run the same way: a fresh store per cold run, under a
# work dir owned by the user, with HOME, TMPDIR and XDG_RUNTIME_DIR set explicitly.
# Targets as for root: ten-step cold under 1/3 of buildah, warm under 1/3 of buildah --layers,
# 1 GiB bud + push under 1/2 of buildah's.
# Usage (as root): scripts/bench/rootless.sh      env: RUNS=3 DD_MB=200 SIZE_MB=1024
#   BENCH_USER=rbtest, and see lib.sh (BuildKit is not run: it has no rootless peer here).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"
DD_MB=${DD_MB:-200}
SIZE_MB=${SIZE_MB:-1024}
USER_NAME=${BENCH_USER:-rbtest}
# shellcheck disable=SC2034 # read by bench_init in lib.sh
BUILDKIT=no
bench_init
id "$USER_NAME" >/dev/null 2>&1 || die "no user $USER_NAME: useradd -m $USER_NAME, and give it a subuid/subgid range"
grep -q "^$USER_NAME:" /etc/subuid || die "$USER_NAME has no range in /etc/subuid"

home="$WORK/home"
mkdir -p "$home/run"
# A world-readable copy: the checkout may sit under a 0700 home.
install -m 0755 "$RBUILD" "$WORK/rbuild"
chown -R "$USER_NAME" "$home"
as_user=(runuser -u "$USER_NAME" -- env "HOME=$home" "TMPDIR=$home" "XDG_RUNTIME_DIR=$home/run")
RBU=("${as_user[@]}" "$WORK/rbuild" --root "$home/rb/store" --runroot "$home/rb/run")
BHU=("${as_user[@]}" "$BUILDAH" --root "$home/bh/storage" --runroot "$home/bh/run" --storage-driver overlay)

ctx="$home/ctx"
mkdir -p "$ctx"
# shellcheck disable=SC2016 # $APP_MODE is for the image's shell
printf '#!/bin/sh\necho "ten-step app: $APP_MODE"\n' >"$ctx/app.sh"
chmod 0755 "$ctx/app.sh"
cat >"$ctx/ten.Containerfile" <<EOF
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
cat >"$ctx/1g.Containerfile" <<EOF
FROM $BASE_NAME
RUN dd if=/dev/urandom of=/data bs=1M count=$SIZE_MB
EOF
make_rootfs_tar "$WORK/rootfs.tar"
make_base_archive "$WORK/rootfs.tar" "$WORK/base.tar"
chmod 0644 "$WORK/rootfs.tar" "$WORK/base.tar"
chown -R "$USER_NAME" "$home"

# Fresh stores holding only the base, made (untimed) by the user.
rbu_new_store() {
  rm -rf "$home/rb"
  quiet "${RBU[@]}" import --cmd /bin/sh "$WORK/rootfs.tar" "$BASE_NAME"
}
bhu_new_store() {
  [ ! -d "$home/bh" ] || quiet "${as_user[@]}" "$BUILDAH" unshare rm -rf "$home/bh"
  local id
  id=$("${BHU[@]}" pull -q "oci-archive:$WORK/base.tar" 2>>"$LOG")
  quiet "${BHU[@]}" tag "$id" "$BASE_NAME"
}
total() {
  local a b
  read -r -a a <<<"$(last_result "$1")"
  read -r -a b <<<"$(last_result "$2")"
  add_result "$3" $((a[0] + b[0])) $((a[1] > b[1] ? a[1] : b[1]))
}
out="$home/out.tar"

say "rbuild as $USER_NAME: $RUNS x (fresh store, ten-step cold), $RUNS warm; $RUNS x (fresh store, 1 GiB bud + push)"
for _ in $(seq "$RUNS"); do
  rbu_new_store
  measure cold/rbuild "${RBU[@]}" bud -t localhost/ten -f "$ctx/ten.Containerfile" "$ctx"
done
for _ in $(seq "$RUNS"); do
  measure warm/rbuild "${RBU[@]}" bud -t localhost/ten -f "$ctx/ten.Containerfile" "$ctx"
done
for _ in $(seq "$RUNS"); do
  rbu_new_store
  measure bud-1g/rbuild "${RBU[@]}" bud -t localhost/run-1g -f "$ctx/1g.Containerfile" "$ctx"
  rm -f "$out"
  measure push-gzip/rbuild "${RBU[@]}" push --compression-format gzip localhost/run-1g "oci-archive:$out"
  total bud-1g/rbuild push-gzip/rbuild bud+push/rbuild
done
rm -rf "$home/rb" "$out"

say "buildah as $USER_NAME: the same runs (bud --isolation chroot; --layers for the warm rebuild)"
for _ in $(seq "$RUNS"); do
  bhu_new_store
  measure cold/buildah "${BHU[@]}" bud --isolation chroot -t localhost/ten -f "$ctx/ten.Containerfile" "$ctx"
done
measure_warm_seed=1
for _ in $(seq "$RUNS"); do
  if [ "$measure_warm_seed" = 1 ]; then
    # The cache --layers reuses must exist first: one untimed layered build.
    quiet "${BHU[@]}" bud --isolation chroot --layers -t localhost/ten -f "$ctx/ten.Containerfile" "$ctx"
    measure_warm_seed=0
  fi
  measure warm/buildah-layers "${BHU[@]}" bud --isolation chroot --layers -t localhost/ten -f "$ctx/ten.Containerfile" "$ctx"
done
for _ in $(seq "$RUNS"); do
  bhu_new_store
  measure bud-1g/buildah "${BHU[@]}" bud --isolation chroot -t localhost/run-1g -f "$ctx/1g.Containerfile" "$ctx"
  rm -f "$out"
  measure push-gzip/buildah "${BHU[@]}" push localhost/run-1g "oci-archive:$out"
  total bud-1g/buildah push-gzip/buildah bud+push/buildah
done
quiet "${as_user[@]}" "$BUILDAH" unshare rm -rf "$home/bh"
rm -f "$out"

table "rootless ten-step cold build; target < 0.333" cold/buildah cold/rbuild cold/buildah
table "rootless ten-step warm rebuild; target < 0.333" warm/buildah-layers warm/rbuild warm/buildah-layers
table "rootless RUN dd ${SIZE_MB} MiB: bud" bud-1g/buildah bud-1g/rbuild bud-1g/buildah
table "rootless export to oci-archive: gzip" push-gzip/buildah push-gzip/rbuild push-gzip/buildah
table "rootless bud + push gzip; target < 0.5" bud+push/buildah bud+push/rbuild bud+push/buildah
show_commands
