#!/usr/bin/env bash
# The README demo: import a busybox base made from the host's static
# busybox (no registry needed), build Containerfiles/demo with RUN, COPY,
# ENV and CMD, then list the image, show its history and export it.
# Usage: scripts/demo.sh [RBUILD_BINARY]   (default: target/release/rbuild)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/rbuild}
bin=$(realpath "$bin")
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "demo: busybox is missing: apt-get install busybox-static" >&2; exit 1; }

work=$(mktemp -d /tmp/rbuild-demo.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT
store="$work/store"
rb() { "$bin" --root "$store" --runroot "$work/run" "$@"; }

# A busybox rootfs: the binary, its applet links, passwd and group.
root="$work/rootfs"
mkdir -p "$root"/{bin,etc,tmp,root}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$work/busybox.tar" .

echo "== rbuild import busybox.tar busybox"
rb import --cmd /bin/sh "$work/busybox.tar" busybox
echo "== rbuild bud -t demo Containerfiles/demo"
rb bud -t demo Containerfiles/demo
echo "== rbuild images"
rb images
echo "== rbuild history demo"
rb history demo
echo "== rbuild push demo oci-archive:$work/demo.tar"
rb push demo "oci-archive:$work/demo.tar"
echo "== the image's CMD and ENV"
rb inspect --format '{{.OCIv1.Config.Cmd}} {{.OCIv1.Config.Env}}' demo
