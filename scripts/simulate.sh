#!/usr/bin/env bash
# Runs the deterministic simulation over many seeds, in release mode, one process per core.
#   bash scripts/simulate.sh --seeds 100000 [--first 1]
#   bash scripts/simulate.sh --seed 558 --trace      # replay one seed with its trace
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ensure_system_packages

seeds=2000
first=1
passthrough=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --first) first=$2; shift 2 ;;
        *) passthrough+=("$1"); shift ;;
    esac
done

step "building citrus-simulate (release)"
# --static-swift-stdlib as every release build here (scripts/bench.sh, scripts/package-deb.sh):
# without it, the release objects they share would all be compiled again.
swift build -c release --static-swift-stdlib --product citrus-simulate >/dev/null
binary=.build/release/citrus-simulate

if [ ${#passthrough[@]} -gt 0 ]; then
    exec "$binary" "${passthrough[@]}"
fi

lanes=$(nproc)
per_lane=$(( (seeds + lanes - 1) / lanes ))
step "running $seeds seeds from $first on $lanes cores"
pids=()
logs=()
for lane in $(seq 0 $((lanes - 1))); do
    start=$(( first + lane * per_lane ))
    count=$(( seeds - lane * per_lane ))
    [ $count -gt $per_lane ] && count=$per_lane
    [ $count -le 0 ] && continue
    log=$(mktemp)
    logs+=("$log")
    "$binary" --first "$start" --seeds "$count" >"$log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "${logs[@]}"
rm -f "${logs[@]}"
exit $status
