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
        cat <<'NOTES'

## How each figure is measured

- **INSERT → create**: rows inserted one at a time, 150 ms apart; for each row, from just before its
  `INSERT` is sent to the time the simulator logged the `POST /v2/droplets` whose body carries the
  row's `citrus-server:<uuid>` tag (one clock: everything runs on this machine). The baseline creates
  inline right after its own `INSERT`, so its figure is only the insert and one loopback round trip.
- **Rows at once**: one `INSERT` of N rows; seconds until the last row reads `active` in Postgres;
  requests are every `/v2` request the simulator logged up to that moment. The floor is one create per
  row plus one list page per 200 droplets for the one pass that must see them active.
- **Lost create responses**: the simulator performs the create and closes the connection without an
  answer, for 20% of creates. Duplicates are droplets created beyond one per row.
- **Burst**: 500 rows in one `INSERT` against the real limits (250 per sliding minute, 5,000 per
  hour). Seconds until the simulator has accepted a create for every row; 429s and requests counted up
  to that create. The floor is what the sliding minute allows: the n-th counted request (including
  the daemon's list pages, and anything in the minute before the burst) cannot go out before
  ⌊(n − 1)/250⌋ minutes; the issue's approximation (500 + list pages)/250 minutes is shown beside it.
  The baseline is stopped once its creates are all in.
- **Steady state**: 1,000 droplets injected active with both tags, and matching rows (active, id and
  addresses recorded); the daemon with `--resync-interval 60s`. Requests counted from the start of its
  first pass to the start of its fourth (three whole cycles, about 180 s), scaled to an hour. The
  baseline never looks again once a droplet is active, so its figure is 0 (and it notices nothing).
- **Decision**: `Decider.decide` in process, 10,000 active rows against their 10,000 droplets (nothing
  to do), thread CPU time per call, after two warm-up calls.
- **Full pass at 10,000**: wall time of `citrus-reconciler plan` (process start, connect, read every
  row, 50 list pages, decide, print) against a simulator with its limits raised.
- **Resident size**: `VmRSS` (and `VmHWM`, the peak) from `/proc/PID/status`: the leader 3 s after its
  first pass over an empty table; the daemon 3 s after its first pass over 10,000 servers.
- **Takeover**: two replicas on one database; the leader is killed with SIGKILL at a random moment,
  and the figure is the time until the simulator logs the next request (the new leader's first pass).
  Five kills, the killed replica restarted as the new standby each time.
NOTES
    } >"$BENCH_OUT"
    echo "wrote $BENCH_OUT"
fi
