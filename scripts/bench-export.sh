#!/usr/bin/env bash
# Benchmark: export a 1 GiB incompressible layer directory with rbuild's
# layer library (examples/export_layer.rs) against the shell pipeline the
# issue names, for zstd and gzip, plus the diff-ID-only hash pass.
#
#   scripts/bench-export.sh [WORKDIR] [SIZE_MIB]
#   ONLY=zstd scripts/bench-export.sh    # only the measurements matching ONLY
#
# Prints the median of 3 runs of each command — wall seconds, CPU seconds
# (user + sys of every process in the pipeline) — and the peak RSS (from
# /usr/bin/time -v), then the rbuild/baseline ratios. Target (issue 4): zstd
# within 20% of the baseline pipeline. On a shared, loaded machine the CPU
# ratio is the fairer one: the scheduler gives the 6-process baseline more
# of the CPU than rbuild's 4 threads.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-/var/tmp/rbuild-bench-export}
size_mib=${2:-1024}
runs=3
data="$work/layer-${size_mib}m"
mkdir -p "$work"

if [ ! -f "$data/.complete" ]; then
    echo "generating $size_mib MiB of incompressible data in $data ..." >&2
    rm -rf "$data"
    mkdir -p "$data/a/b" "$data/c"
    files=16
    per=$((size_mib / files))
    for i in $(seq 1 $files); do
        sub=$([ $((i % 2)) -eq 0 ] && echo a/b || echo c)
        openssl rand -out "$data/$sub/blob-$i" $((per * 1024 * 1024))
    done
    # A few hundred small files too, as a real layer has.
    for i in $(seq 1 300); do head -c 2000 /dev/urandom > "$data/c/small-$i"; done
    touch "$data/.complete"
fi

cargo build --release --example export_layer >&2
bin=target/release/examples/export_layer
# Warm the page cache so every command reads from memory.
cat "$data"/*/* "$data"/a/b/* > /dev/null 2>&1 || true

# measure NAME COMMAND...: appends "NAME median_wall_s peak_rss_kib median_cpu_s" to $results.
results=$(mktemp)
measure() {
    local name=$1
    shift
    [[ $name =~ ${ONLY:-.} ]] || return 0
    local times=() cpus=() rss=0
    for _ in $(seq 1 $runs); do
        local log
        log=$(mktemp)
        /usr/bin/time -v -o "$log" bash -c "$*" > /dev/null 2>&1
        local t r c
        t=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$log")
        # Peak RSS of the largest process in the pipeline (time -v reports
        # the maximum over the waited-for children).
        r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
        c=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$log")
        times+=("$t")
        cpus+=("$c")
        [ "$r" -gt "$rss" ] && rss=$r
        rm -f "$log"
    done
    local median cpu
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    cpu=$(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    printf '%-16s %7.2f s wall %7.2f s CPU %8d KiB peak RSS\n' "$name" "$median" "$cpu" "$rss" >&2
    echo "$name $median $rss $cpu" >> "$results"
}

tarpipe="tar -C '$data' --sort=name -cf - ."
measure baseline-zstd "$tarpipe | tee >(openssl dgst -sha256 >/dev/null) | zstd -T2 -3 | openssl dgst -sha256"
measure rbuild-zstd "$bin '$data' --compression zstd --threads 2"
measure baseline-gzip "$tarpipe | tee >(openssl dgst -sha256 >/dev/null) | gzip -1 | openssl dgst -sha256"
measure rbuild-gzip "$bin '$data' --compression gzip --threads 2"
measure baseline-hash "$tarpipe | openssl dgst -sha256"
measure rbuild-diff-id "$bin '$data' --diff-id-only"

ratio() {
    grep -q "^$1 " "$results" && grep -q "^$2 " "$results" || return 0
    awk -v a="$1" -v b="$2" '$1==a {x=$2; xc=$4} $1==b {y=$2; yc=$4}
        END {printf "%s / %s = %.2f wall, %.2f CPU\n", a, b, x/y, xc/yc}' "$results"
}
echo "--- ratios (lower is better for rbuild) ---"
ratio rbuild-zstd baseline-zstd
ratio rbuild-gzip baseline-gzip
ratio rbuild-diff-id baseline-hash
echo "--- raw: name median_wall_s peak_rss_kib median_cpu_s ---"
cat "$results"
rm -f "$results"
