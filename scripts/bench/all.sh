#!/usr/bin/env bash
# Runs every benchmark in turn and keeps their tables in one file. Before each script it waits
# (up to WAIT_LOAD seconds, default 120) for the 1-minute load average to drop under MAX_LOAD
# (default 1.5) and prints the load it started at, since figures from a busy machine mislead.
# Usage (as root): scripts/bench/all.sh [SCRIPT...]    (default: all five)
#   env: OUT=FILE (default /var/tmp/rbuild-bench-results-DATE.txt), plus each script's own.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
MAX_LOAD=${MAX_LOAD:-1.5}
WAIT_LOAD=${WAIT_LOAD:-120}
OUT=${OUT:-/var/tmp/rbuild-bench-results-$(date -u +%Y%m%dT%H%M%SZ).txt}
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(ten-step.sh run-1g.sh touch-on-big-base.sh copy-40k.sh rootless.sh)

load1() { cut -d' ' -f1 /proc/loadavg; }
below() { awk -v a="$(load1)" -v b="$MAX_LOAD" 'BEGIN { exit !(a < b) }'; }

for s in "${scripts[@]}"; do
  waited=0
  while ! below && [ "$waited" -lt "$WAIT_LOAD" ]; do
    sleep 5
    waited=$((waited + 5))
  done
  {
    printf '\n##### %s   (%s; load %s%s)\n' "$s" "$(date -u +%H:%M:%SZ)" \
      "$(cut -d' ' -f1-3 /proc/loadavg)" "$(below || echo ", above $MAX_LOAD")"
    "$dir/$s" 2>&1
  } | tee -a "$OUT"
done
echo "results: $OUT"
