#!/usr/bin/env bash
# Benchmarks: builds release, runs the real daemon against a throwaway Postgres and citrus-do-sim
# beside a naive baseline, and prints one Markdown table. About 8 minutes on 2 cores after the
# build; nothing leaves 127.0.0.1.
#
#   bash scripts/bench.sh                 # full run, table on stdout
#   bash scripts/bench.sh --quick         # small sizes: checks the benchmark works (figures not comparable)
#   bash scripts/bench.sh --keep          # keep every process's log in the scratch directory
#   BENCH_OUT=BENCHMARKS.md bash scripts/bench.sh   # also write the table (and the machine) to a file
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

ensure_system_packages
step "building (release)"
swift build -c release --product citrus-reconciler >/dev/null
swift build -c release --product citrus-do-sim >/dev/null
swift build -c release --product citrus-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)

step "running the benchmark (progress below, the table at the end)"
TABLE=$(mktemp)
trap 'rm -f "$TABLE"' EXIT
"$BIN/citrus-bench" run --bin-dir "$BIN" "$@" | tee "$TABLE"

if [ -n "${BENCH_OUT:-}" ]; then
    {
        echo "# Benchmarks"
        echo
        echo "Measured by \`bash scripts/bench.sh\` on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
        echo
        cat "$TABLE"
    } >"$BENCH_OUT"
    echo "wrote $BENCH_OUT"
fi
