# shellcheck shell=bash disable=SC2034 # globals here are read by the scripts that source it
# Helpers shared by the scripts/bench/*.sh benchmarks (sourced, not run): finding the three
# builders, giving each the same busybox base, timing a command (wall ms + peak RSS) and
# printing the table. Each benchmark script sources this file and is otherwise self-contained:
# it makes its own inputs, stores and daemons under one work dir and removes them at exit.
#
# Tools (environment overrides):
#   RBUILD    rbuild binary             default: target/release/rbuild (cargo build --release)
#   BUILDAH   buildah 1.45-dev          default: /opt/buildah-modern/bin/buildah
#             (/work/shared/tools/build-modern-buildah.sh; run as root with --isolation chroot)
#   BUILDKIT  dir with bin/buildkitd and bin/buildctl, or "no" to skip BuildKit
#             default: /opt/buildkit (/work/shared/tools/build-buildkit.sh; needs runc)
#   RUNS      timed runs per figure (median reported)                      default: 3
#   BENCH_TMP parent of the work dir (must not be tmpfs: GiBs are written)  default: /var/tmp
#   KEEP=1    keep the work dir (stores, logs) for inspection
#   NOSYNC=0  leave out the diagnostic "rbuild-nosync" rows: rbuild again with fsync, fdatasync,
#             syncfs and sync made no-ops by an LD_PRELOAD shim (compiled here with cc), which
#             shows what rbuild's durability (an fsync per index write, a syncfs per committed
#             layer) costs. Not a benchmark figure: buildah's overlay driver does not sync
#             layers either, but a store written this way is not safe against power loss.
# Needs: root, GNU time (/usr/bin/time, Debian package `time`, for peak RSS), skopeo,
# docker-registry and runc (only for BuildKit), busybox (busybox-static), python3, strace
# (copy-40k), netavark (Debian `netavark`: buildah 1.45 looks it up while creating a build
# container even with --isolation chroot, "could not find netavark" otherwise).
#
# How every builder gets the same base image:
#   1. a rootfs tarball from the host's static busybox (as scripts/demo.sh) plus optional extra
#      content (the 2 GiB base of touch-on-big-base.sh);
#   2. rbuild: `rbuild import --cmd /bin/sh ROOTFS.tar NAME` into each fresh store; the first
#      import is also pushed uncompressed to `oci-archive:base.tar`;
#   3. buildah: `skopeo copy oci-archive:base.tar containers-storage:[overlay@ROOT+RUNROOT]NAME`
#      into each fresh buildah store: the same layer bytes and config as rbuild's;
#   4. BuildKit: it cannot read a local store, so base.tar is copied by skopeo into a local
#      docker-registry on 127.0.0.1 (plain http, declared in buildkitd.toml), and every
#      Containerfile names the base by that registry name; rbuild and buildah find the same
#      name in their own stores and never contact the registry. Before each cold BuildKit run
#      its cache is pruned and the base pulled again by an untimed `FROM base` + `RUN true`.
#
# Timing: wall time from `date +%s%N` around `/usr/bin/time -f %M CMD` (GNU time adds ~1 ms);
# peak RSS is GNU time's %M: the largest resident set of the command or any of its children
# (rbuild's RUN helpers, buildah's chroot helper). BuildKit does its work in the daemon, so its
# RSS column is buildkitd's VmHWM for that run (reset before each run via clear_refs).
# `sync` runs before each timed command; the page cache is not dropped (shared machine).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/../.." && pwd)
RBUILD=${RBUILD:-$REPO/target/release/rbuild}
BUILDAH=${BUILDAH:-/opt/buildah-modern/bin/buildah}
BUILDKIT=${BUILDKIT:-/opt/buildkit}
RUNS=${RUNS:-3}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
REG_PORT=${REG_PORT:-5055}
REG="127.0.0.1:$REG_PORT"
BASE_NAME="$REG/bench/busybox:latest"
PYTHON=/usr/bin/python3

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '== %s\n' "$*" >&2; }

bench_init() {
  [ "$(id -u)" = 0 ] || die "run as root (buildah --isolation chroot and BuildKit's OCI worker need it)"
  [ -x /usr/bin/time ] || die "GNU time is missing (/usr/bin/time): apt-get install time"
  [ -x "$RBUILD" ] || die "no rbuild binary at $RBUILD: cargo build --release (or set RBUILD)"
  [ -x "$BUILDAH" ] || die "no buildah at $BUILDAH: run /work/shared/tools/build-modern-buildah.sh MIRROR (or set BUILDAH)"
  [ -x /usr/lib/podman/netavark ] || [ -x /usr/libexec/podman/netavark ] ||
    die "buildah needs netavark even with --isolation chroot: apt-get install netavark"
  command -v skopeo >/dev/null || die "skopeo is missing: apt-get install skopeo"
  command -v busybox >/dev/null || die "busybox is missing: apt-get install busybox-static"
  [ -x "$PYTHON" ] || die "python3 is missing at $PYTHON"
  RBUILD=$(realpath "$RBUILD")
  HAVE_BK=0
  if [ "$BUILDKIT" != no ] && [ -x "$BUILDKIT/bin/buildkitd" ] && [ -x "$BUILDKIT/bin/buildctl" ]; then
    if command -v runc >/dev/null && command -v docker-registry >/dev/null; then
      HAVE_BK=1
    else
      say "BuildKit skipped: its OCI worker needs runc and the base needs docker-registry (apt-get install runc docker-registry)"
    fi
  elif [ "$BUILDKIT" != no ]; then
    say "BuildKit skipped: no $BUILDKIT/bin/buildkitd (run /work/shared/tools/build-buildkit.sh MIRROR, or set BUILDKIT=no)"
  fi
  mkdir -p "$BENCH_TMP"
  WORK=$(mktemp -d "$BENCH_TMP/rbuild-bench.XXXXXX")
  chmod 0755 "$WORK"
  mkdir -p "$WORK/results"
  LOG="$WORK/log"
  : >"$LOG"
  BK_PID='' REG_PID=''
  MEASURE_PID=''
  trap bench_cleanup EXIT
  say "work dir $WORK (log: $LOG)"
  say "rbuild: $RBUILD ($("$RBUILD" --version 2>&1 | head -1), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
  say "buildah: $("$BUILDAH" --version 2>&1 | head -1)"
  [ "$HAVE_BK" = 0 ] || say "buildkit: $("$BUILDKIT/bin/buildkitd" --version 2>&1 | head -1)"
  say "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Unmount whatever the builders left mounted below the work dir, deepest first.
unmount_below() {
  local dir=$1
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

bench_cleanup() {
  local rc=$?
  [ -z "$BK_PID" ] || { kill "$BK_PID" 2>/dev/null; wait "$BK_PID" 2>/dev/null || true; }
  [ -z "$REG_PID" ] || { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; }
  unmount_below "$WORK"
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  return "$rc"
}

# Run a command untimed, its output to the log; on failure show the log's tail.
quiet() {
  printf '$ %s\n' "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 || { tail -25 "$LOG" >&2; die "failed: $*"; }
}

# --- inputs -------------------------------------------------------------------------------

# make_rootfs_tar OUT [EXTRA_DIR]: busybox, its applet links, passwd/group, plus EXTRA_DIR's
# content at / when given, as a tarball with numeric owners 0.
make_rootfs_tar() {
  local out=$1 extra=${2:-} root
  root=$(mktemp -d "$WORK/rootfs.XXXXXX")
  mkdir -p "$root"/{bin,etc,tmp,root}
  chmod 1777 "$root/tmp"
  cp "$(command -v busybox)" "$root/bin/busybox"
  local applet
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  local tar_args=(-C "$root" .)
  [ -z "$extra" ] || tar_args+=(-C "$extra" .)
  tar --numeric-owner --owner=0 --group=0 -cf "$out" "${tar_args[@]}"
  rm -rf "$root"
}

# --- rbuild -------------------------------------------------------------------------------

# /usr/bin/time runs programs, not shell functions: the *_argv helpers set an array holding
# the real command line (RB, BH, BK), which both `measure` and the untimed wrappers use.
rb_argv() { RB=("$RBUILD" --root "$1/store" --runroot "$1/run"); }
rb() { rb_argv "$1"; shift; "${RB[@]}" "$@"; }

# rb_new_store DIR ROOTFS_TAR [NAME]: a fresh rbuild store holding that base as NAME
# (default $BASE_NAME).
rb_new_store() {
  rm -rf "$1"; mkdir -p "$1"
  rb_import "$@"
}
rb_import() { quiet rb "$1" import --cmd /bin/sh "$2" "${3:-$BASE_NAME}"; }

# make_base_archive ROOTFS_TAR OUT [NAME]: the base as an uncompressed oci-archive, via
# rbuild, for skopeo to hand to buildah and the registry.
make_base_archive() {
  local name=${3:-$BASE_NAME}
  rb_new_store "$WORK/base-store" "$1" "$name"
  quiet rb "$WORK/base-store" push --compression-format none "$name" "oci-archive:$2"
  rm -rf "$WORK/base-store"
}

# rb_nosync_argv DIR: RBN = the rbuild command line with the no-sync shim preloaded, or empty
# when NOSYNC=0 or no C compiler is found.
rb_nosync_argv() {
  RBN=()
  [ "${NOSYNC:-1}" = 1 ] || return 0
  local so="$WORK/nosync.so"
  if [ ! -e "$so" ]; then
    command -v cc >/dev/null || { say "NOSYNC rows skipped: no cc"; NOSYNC=0; return 0; }
    printf '%s\n' '#include <unistd.h>' \
      'int fsync(int fd) { (void)fd; return 0; }' \
      'int fdatasync(int fd) { (void)fd; return 0; }' \
      'int syncfs(int fd) { (void)fd; return 0; }' \
      'void sync(void) {}' >"$WORK/nosync.c"
    quiet cc -shared -fPIC -O2 -o "$so" "$WORK/nosync.c"
  fi
  rb_argv "$1"
  RBN=(env "LD_PRELOAD=$so" "${RB[@]}")
}

# --- buildah ------------------------------------------------------------------------------

bh_argv() { BH=("$BUILDAH" --root "$1/storage" --runroot "$1/run" --storage-driver overlay); }
bh() { bh_argv "$1"; shift; "${BH[@]}" "$@"; }

# bh_new_store DIR BASE_ARCHIVE [NAME]: a fresh buildah store holding that base as NAME
# (default $BASE_NAME).
bh_new_store() {
  bh_remove_store "$1"
  mkdir -p "$1"
  bh_import "$@"
}
bh_import() {
  quiet skopeo copy --quiet "oci-archive:$2" \
    "containers-storage:[overlay@$1/storage+$1/run]${3:-$BASE_NAME}"
}

bh_remove_store() {
  local dir=$1
  [ -d "$dir" ] || return 0
  unmount_below "$dir"
  rm -rf "$dir"
}

# --- BuildKit -----------------------------------------------------------------------------

BK=()
bk() { "${BK[@]}" "$@"; }

# bk_start BASE_ARCHIVE: a docker-registry holding the base, and buildkitd (OCI worker).
bk_start() {
  local archive=$1
  mkdir -p "$WORK/registry" "$WORK/bk"
  cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: $REG
EOF
  docker-registry serve "$WORK/registry/config.yml" >>"$WORK/registry/log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do
    curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  quiet skopeo copy --quiet --dest-tls-verify=false "oci-archive:$archive" "docker://$BASE_NAME"
  cat >"$WORK/bk/buildkitd.toml" <<EOF
[registry."$REG"]
  http = true
  insecure = true
[worker.oci]
  enabled = true
  gc = false
[worker.containerd]
  enabled = false
EOF
  local sock="$WORK/bk/buildkitd.sock"
  BK=("$BUILDKIT/bin/buildctl" --addr "unix://$sock")
  "$BUILDKIT/bin/buildkitd" --config "$WORK/bk/buildkitd.toml" --root "$WORK/bk/root" \
    --addr "unix://$sock" >>"$WORK/bk/log" 2>&1 &
  BK_PID=$!
  for _ in $(seq 300); do
    bk debug workers >/dev/null 2>&1 && return 0
    kill -0 "$BK_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$WORK/bk/log" >&2
  die "buildkitd did not start (log: $WORK/bk/log)"
}

# bk_build_argv CONTEXT FILE OUTPUT: BKB = the buildctl command line of that build.
bk_build_argv() {
  BKB=("${BK[@]}" build --progress plain --frontend dockerfile.v0 --local "context=$1"
    --local "dockerfile=$(dirname "$2")" --opt "filename=$(basename "$2")" --output "$3")
}
# bk_build CONTEXT FILE OUTPUT: run that build (BKB stays as the caller set it).
bk_build() { local -a BKB; bk_build_argv "$@"; "${BKB[@]}"; }

# bk_cold: forget every cache record, then pull the base again (untimed), so a cold BuildKit
# build starts where rbuild's and buildah's do: base present, nothing else.
bk_cold() {
  quiet bk prune --all
  local d="$WORK/bk/warm"
  mkdir -p "$d"
  printf 'FROM %s\nRUN true\n' "$BASE_NAME" >"$d/Containerfile"
  quiet bk_build "$d" "$d/Containerfile" type=image,name=localhost/bench-warm-base
}

# --- timing -------------------------------------------------------------------------------

# rfile KEY: the file holding KEY's runs ("cold/rbuild" -> results/cold__rbuild).
rfile() { echo "$WORK/results/${1//\//__}"; }

# measure KEY CMD...: run CMD once, append "ms rss_kib" to results/KEY. With MEASURE_PID set,
# the RSS is that process's VmHWM (a daemon doing the work), reset just before the run.
measure() {
  local key=$1; shift
  local tfile="$WORK/time.out" t0 t1 rss
  [ -s "$(rfile "$key")" ] || printf '%s\t%s\n' "$key" "$(printf '%q ' "$@")" >>"$WORK/commands"
  printf '$ [%s] %s\n' "$key" "$*" >>"$LOG"
  [ -z "${MEASURE_PID:-}" ] || echo 5 >"/proc/$MEASURE_PID/clear_refs"
  sync
  t0=$(date +%s%N)
  /usr/bin/time -f %M -o "$tfile" "$@" >>"$LOG" 2>&1 || {
    tail -25 "$LOG" >&2
    die "failed: $*"
  }
  t1=$(date +%s%N)
  if [ -n "${MEASURE_PID:-}" ]; then
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MEASURE_PID/status")
  else
    rss=$(tail -1 "$tfile")
  fi
  echo "$(((t1 - t0) / 1000000)) $rss" >>"$(rfile "$key")"
}

# add_result KEY MS RSS_KIB: a figure measured some other way (e.g. a sum of two commands).
add_result() { echo "$2 $3" >>"$(rfile "$1")"; }

# last_result KEY: "ms rss" of the latest run.
last_result() { tail -1 "$(rfile "$1")"; }

median_ms() { awk '{ print $1 }' "$(rfile "$1")" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
max_rss_kib() { awk '$2 > m { m = $2 } END { print m + 0 }' "$(rfile "$1")"; }

# table TITLE REF_KEY KEY...: one row per key: median, ratio to REF_KEY's median, peak RSS,
# every run. Keys are "scenario/tool"; missing keys (a skipped tool) are left out.
table() {
  local title=$1 ref=$2; shift 2
  local ref_ms='' key
  [ -s "$(rfile "$ref")" ] && ref_ms=$(median_ms "$ref")
  printf '\n%s (median of %s runs; ratio = median / %s)\n' "$title" "$RUNS" "$ref"
  printf '%-34s %10s %8s %13s  %s\n' "scenario/tool" "median" "ratio" "peak RSS" "runs (ms)"
  for key in "$@"; do
    [ -s "$(rfile "$key")" ] || continue
    local ms rss ratio runs
    ms=$(median_ms "$key")
    rss=$(max_rss_kib "$key")
    if [ -n "$ref_ms" ] && [ "$ref_ms" -gt 0 ]; then
      ratio=$(awk -v a="$ms" -v b="$ref_ms" 'BEGIN { printf "%.3f", a / b }')
    else
      ratio=-
    fi
    runs=$(awk '{ printf "%s ", $1 }' "$(rfile "$key")")
    printf '%-34s %8s ms %8s %9.1f MiB  %s\n' "$key" "$ms" "$ratio" \
      "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$runs"
  done
}

# show_commands: the exact commands behind the figures (first run of each key).
show_commands() {
  printf '\nCommands (first run of each figure; stores under %s):\n' "$WORK"
  sed 's/^/  /' "$WORK/commands"
}
