#!/usr/bin/env bash
# Benchmark of issues 4 and 6: `COPY . /app` of a generated 40,000-file, 400 MB context, then
# `push oci-archive:` (gzip).
#  - cold (fresh store holding only the base): rbuild `bud` + `push` against buildah `bud` +
#    `push` (its default: no --layers) and BuildKit `--output type=oci,compression=gzip`;
#    target (issue 4): under half of buildah's time, rbuild's peak RSS under 100 MiB;
#  - rebuild with the context unchanged (same store, `bud` only; buildah with `--layers` after
#    one untimed `bud --layers`): target (issue 6) under a third of buildah's time, without
#    reading the files: one extra rebuild of each tool runs under `strace -f` to count the
#    regular files opened and the bytes read (read, pread64, readv, preadv, preadv2) and copied
#    in the kernel (copy_file_range, sendfile, splice).
# The context: 200 directories (20 x 10) of 200 files, sizes drawn uniformly from 0..2x the mean
# (fixed seed), random bytes. The Containerfile lives outside the context.
# Usage (as root): scripts/bench/copy-40k.sh   env: RUNS=3 FILES=40000 TOTAL_MB=400, and lib.sh
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"
FILES=${FILES:-40000}
TOTAL_MB=${TOTAL_MB:-400}
bench_init
command -v strace >/dev/null || die "strace is missing: apt-get install strace"

ctx="$WORK/ctx"
say "generating $FILES files, $TOTAL_MB MB in $ctx"
"$PYTHON" - "$ctx" "$FILES" "$TOTAL_MB" <<'EOF'
import os, random, sys
root, files, total_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(40000)
mean = total_mb * 1000 * 1000 // files
per_dir = 200
for i in range(files):
    d = os.path.join(root, "d%02d" % (i // per_dir // 10), "s%d" % (i // per_dir % 10))
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(rng.randint(0, 2 * mean)))
EOF
printf 'context: %s files, %s bytes\n' "$(find "$ctx" -type f | wc -l)" "$(du -sb "$ctx" | cut -f1)" >>"$LOG"
cfile="$WORK/Containerfile"
printf 'FROM %s\nCOPY . /app\n' "$BASE_NAME" >"$cfile"

make_rootfs_tar "$WORK/rootfs.tar"
make_base_archive "$WORK/rootfs.tar" "$WORK/base.tar"
out="$WORK/out.tar"

total() {
  local a b
  read -r -a a <<<"$(last_result "$1")"
  read -r -a b <<<"$(last_result "$2")"
  add_result "$3" $((a[0] + b[0])) $((a[1] > b[1] ? a[1] : b[1]))
}

# traced KEY CMD...: run CMD under strace -f, print what it opened and read.
traced() {
  local key=$1; shift
  local trace="$WORK/strace.${key//\//_}"
  printf '$ [%s] strace ... %s\n' "$key" "$*" >>"$LOG"
  strace -f -qq -s 0 -o "$trace" -e signal=none \
    -e trace=openat,open,read,pread64,readv,preadv,preadv2,copy_file_range,sendfile,splice \
    "$@" >>"$LOG" 2>&1 || die "failed under strace: $* (log: $LOG)"
  awk -v key="$key" -v files="$FILES" '
    /(openat|open)\(/ && !/O_DIRECTORY/ && !/= -1/ && !/resumed>/ { opened++ }
    /(read|pread64|readv|preadv|preadv2|copy_file_range|sendfile|splice)(\(| resumed>)/ && /= [0-9]+$/ {
      n = $NF; if (/copy_file_range|sendfile|splice/) copied += n; else read += n
    }
    END { printf "%-16s files opened (not dirs): %6d; bytes read: %11d; copied in kernel: %d (context: %d files)\n", key, opened, read, copied, files }
  ' "$trace" | tee -a "$WORK/reads"
  rm -f "$trace"
}

say "rbuild: $RUNS x (fresh store, bud, push gzip), then $RUNS unchanged rebuilds"
for _ in $(seq "$RUNS"); do
  rb_new_store "$WORK/rb" "$WORK/rootfs.tar"
  rb_argv "$WORK/rb"
  measure bud/rbuild "${RB[@]}" bud -t localhost/copy-40k -f "$cfile" "$ctx"
  rm -f "$out"
  measure push-gzip/rbuild "${RB[@]}" push --compression-format gzip localhost/copy-40k "oci-archive:$out"
  total bud/rbuild push-gzip/rbuild bud+push-gzip/rbuild
  rm -f "$out"
done
for _ in $(seq "$RUNS"); do
  measure rebuild/rbuild "${RB[@]}" bud -t localhost/copy-40k -f "$cfile" "$ctx"
done
grep -q 'Using cache' "$LOG" || die "rbuild's rebuild did not use its cache (see $LOG)"
traced rebuild/rbuild "${RB[@]}" bud -t localhost/copy-40k -f "$cfile" "$ctx" >/dev/null
rm -rf "$WORK/rb"
rb_nosync_argv "$WORK/rb-nosync"
if [ ${#RBN[@]} -gt 0 ]; then
  say "rbuild-nosync (diagnostic: fsync/syncfs disabled): $RUNS x (fresh store, bud), $RUNS rebuilds"
  for _ in $(seq "$RUNS"); do
    rb_new_store "$WORK/rb-nosync" "$WORK/rootfs.tar"
    measure bud/rbuild-nosync "${RBN[@]}" bud -t localhost/copy-40k -f "$cfile" "$ctx"
  done
  for _ in $(seq "$RUNS"); do
    measure rebuild/rbuild-nosync "${RBN[@]}" bud -t localhost/copy-40k -f "$cfile" "$ctx"
  done
  rm -rf "$WORK/rb-nosync"
fi

say "buildah: $RUNS x (fresh store, bud, push), then bud --layers and $RUNS unchanged rebuilds"
for _ in $(seq "$RUNS"); do
  bh_new_store "$WORK/bh" "$WORK/base.tar"
  bh_argv "$WORK/bh"
  measure bud/buildah "${BH[@]}" bud --isolation chroot -t localhost/copy-40k -f "$cfile" "$ctx"
  rm -f "$out"
  measure push-gzip/buildah "${BH[@]}" push localhost/copy-40k "oci-archive:$out"
  total bud/buildah push-gzip/buildah bud+push-gzip/buildah
  rm -f "$out"
done
# buildah caches only with --layers: one untimed build fills its cache.
quiet "${BH[@]}" bud --isolation chroot --layers -t localhost/copy-40k -f "$cfile" "$ctx"
for _ in $(seq "$RUNS"); do
  measure rebuild/buildah "${BH[@]}" bud --isolation chroot --layers -t localhost/copy-40k -f "$cfile" "$ctx"
done
traced rebuild/buildah "${BH[@]}" bud --isolation chroot --layers -t localhost/copy-40k -f "$cfile" "$ctx" >/dev/null
bh_remove_store "$WORK/bh"

if [ "$HAVE_BK" = 1 ]; then
  say "BuildKit: $RUNS x (cache pruned, build to oci tar gzip), then $RUNS unchanged rebuilds"
  bk_start "$WORK/base.tar"
  MEASURE_PID=$BK_PID
  bk_build_argv "$ctx" "$cfile" "type=oci,dest=$out,compression=gzip"
  for _ in $(seq "$RUNS"); do
    bk_cold
    rm -f "$out"
    measure bud+push-gzip/buildkit "${BKB[@]}"
  done
  rm -f "$out"
  # The rebuild keeps the image in BuildKit's store, as rbuild's and buildah's rebuilds do.
  bk_build_argv "$ctx" "$cfile" type=image,name=localhost/copy-40k
  quiet "${BKB[@]}"
  for _ in $(seq "$RUNS"); do
    measure rebuild/buildkit "${BKB[@]}"
  done
  MEASURE_PID=''
fi

table "COPY ${FILES} files / ${TOTAL_MB} MB: bud" bud/buildah bud/rbuild bud/buildah bud/rbuild-nosync
table "push oci-archive: gzip" push-gzip/buildah push-gzip/rbuild push-gzip/buildah
table "bud + push, the issue-4 target: < 0.5" bud+push-gzip/buildah bud+push-gzip/rbuild \
  bud+push-gzip/buildah bud+push-gzip/buildkit
table "rebuild, context unchanged, the issue-6 target: < 0.333" rebuild/buildah rebuild/rbuild \
  rebuild/buildah rebuild/buildkit rebuild/rbuild-nosync
printf '\nWhat one more unchanged rebuild opened and read (strace -f):\n'
cat "$WORK/reads"
show_commands
