#!/usr/bin/env bash
# The benchmark's idle resident size alone, repeatable: the daemon as the bench runs it (leader,
# empty table, its flags), against a throwaway Postgres and citrus-do-sim; VmRSS and VmHWM from
# /proc/PID/status 3.5 s after its first list request (the bench waits 0.5 s after it, then 3 s).
# Builds nothing: point it at built binaries. Nothing leaves 127.0.0.1.
#
#   bash scripts/idle-rss.sh                              # .build/release's daemon and simulator, 3 runs
#   bash scripts/idle-rss.sh --daemon PATH --runs 5       # another build of the daemon
#   bash scripts/idle-rss.sh --simulator PATH             # citrus-do-sim from elsewhere (any build)
#   bash scripts/idle-rss.sh --maps                       # also resident KiB per mapped file, last run
#   bash scripts/idle-rss.sh --inspect 'CMD'              # also run CMD PID on the idle daemon, last run
#
# Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

daemon=.build/release/citrus-reconciler
simulator=""
runs=3
maps=no
inspect=""
while [ $# -gt 0 ]; do
    case "$1" in
        --daemon) daemon=$2; shift 2 ;;
        --simulator) simulator=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --maps) maps=yes; shift ;;
        --inspect) inspect=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "idle-rss.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done
simulator=${simulator:-$(dirname "$daemon")/citrus-do-sim}
for binary in "$daemon" "$simulator"; do
    [ -x "$binary" ] || { echo "idle-rss.sh: no executable at $binary (swift build -c release --product ...)" >&2; exit 66; }
done

WORK=$(mktemp -d /tmp/citrus-idle-rss.XXXXXX)
chmod 755 "$WORK"  # the postgres user must reach its data directory inside
SIM_PID=""
DAEMON_PID=""
cleanup() {
    [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    [ -n "$SIM_PID" ] && kill -TERM "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
    stop_postgres "$WORK/pg"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PGPORT=$(free_port)
start_postgres "$WORK/pg" "$PGPORT"
TOKEN=dop_v1_citrus_bench_token_0123456789abcdef
echo "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"

# The bench's simulator: DigitalOcean's real limits, droplets boot in 10 s.
"$simulator" --port 0 --token "$TOKEN" --boot-seconds 10 --rate-per-minute 250 --rate-per-hour 5000 \
    --seed 7 --log-level warning >"$WORK/sim.url" 2>"$WORK/sim.log" &
SIM_PID=$!
for _ in $(seq 200); do [ -s "$WORK/sim.url" ] && break; sleep 0.1; done
SIM_URL=$(head -n1 "$WORK/sim.url")

# sim GET|DELETE PATH: the simulator's /_sim API; prints the body.
sim() {
    python3 - "$1" "$SIM_URL$2" <<'PY'
import sys, urllib.request
request = urllib.request.Request(sys.argv[2], method=sys.argv[1])
print(urllib.request.urlopen(request, timeout=5).read().decode())
PY
}
# Exits 0 once the simulator has logged a droplet list (the daemon's first pass).
listed() {
    sim GET /_sim/requests | python3 -c '
import json, sys
requests = json.load(sys.stdin)["requests"]
sys.exit(0 if any(r["method"] == "GET" and r["route"] == "/v2/droplets" for r in requests) else 1)'
}
status_kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$2/status"; }

rss=()
hwm=()
for run in $(seq "$runs"); do
    database="run$run"
    psql -qAtX "postgresql://postgres@127.0.0.1:$PGPORT/postgres" -c "CREATE DATABASE $database"
    DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/$database"
    "$daemon" migrate --database-url "$DATABASE_URL" >"$WORK/migrate-$run.log" 2>&1
    sim DELETE /_sim/requests >/dev/null
    # The bench's flags and environment (no systemd notification socket, no journal stream).
    env -u NOTIFY_SOCKET -u JOURNAL_STREAM "$daemon" run --database-url "$DATABASE_URL" \
        --digitalocean-url "$SIM_URL" --digitalocean-token-file "$WORK/token" --resync-interval 60s \
        --fast-interval 5s --settle-period 60s --log-format text >"$WORK/daemon-$run.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 600); do
        listed && break
        kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon-$run.log" >&2; exit 1; }
        sleep 0.1
    done
    listed || { echo "idle-rss.sh: no list request within 60 s" >&2; cat "$WORK/daemon-$run.log" >&2; exit 1; }
    sleep 3.5
    rss+=("$(status_kib VmRSS "$DAEMON_PID")")
    hwm+=("$(status_kib VmHWM "$DAEMON_PID")")
    awk -v run="$run" -v rss="${rss[-1]}" -v hwm="${hwm[-1]}" -v threads="$(status_kib Threads "$DAEMON_PID")" \
        'BEGIN { printf "run %d: VmRSS %.1f MiB, VmHWM %.1f MiB, %d threads\n", run, rss / 1024, hwm / 1024, threads }'
    if [ "$maps" = yes ] && [ "$run" = "$runs" ]; then
        # Resident KiB per mapped file (anonymous, heap and stacks together), largest first.
        awk '/^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6 ? $6 : "[anonymous]") }
             /^Rss:/ { rss[name] += $2 }
             END { for (n in rss) printf "%8d KiB  %s\n", rss[n], n }' "/proc/$DAEMON_PID/smaps" | sort -rn
    fi
    if [ -n "$inspect" ] && [ "$run" = "$runs" ]; then $inspect "$DAEMON_PID"; fi
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
awk -v runs="$runs" -v rss="$(median "${rss[@]}")" -v hwm="$(median "${hwm[@]}")" -v daemon="$daemon" \
    'BEGIN { printf "median of %d: VmRSS %.1f MiB, VmHWM %.1f MiB (%s)\n", runs, rss / 1024, hwm / 1024, daemon }'
