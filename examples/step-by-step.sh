#!/bin/sh
# Builds the image of Containerfiles/step-by-step/Containerfile one command
# at a time, as a buildah script would:
#
#   examples/step-by-step.sh [IMAGE-NAME]
#
# RBUILD overrides the command (e.g. RBUILD="rbuild --root /tmp/store").
set -eu
rbuild=${RBUILD:-rbuild}
here=$(cd "$(dirname "$0")" && pwd)
context="$here/../Containerfiles/step-by-step"
image=${1:-step-by-step}

container=$($rbuild from busybox)
$rbuild run "$container" -- sh -c '
  mkdir -p /srv/app/data &&
  echo "made by RUN" > /srv/app/data/run.txt &&
  ln -s data/run.txt /srv/app/latest &&
  chown -R 1000:1000 /srv/app/data'
$rbuild copy --chown 1000:1000 --chmod 0755 "$container" "$context/hello.sh" /srv/app/
$rbuild config \
  --workingdir /srv/app \
  --env GREETING=hello --env APP_HOME=/srv/app \
  --label org.opencontainers.image.title=step-by-step \
  --port 8080 \
  --user app \
  --entrypoint '["/srv/app/hello.sh"]' \
  --cmd '["world"]' \
  "$container"
$rbuild commit --rm "$container" "$image"
