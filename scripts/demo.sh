#!/usr/bin/env bash
# Runs citrus-reconciler locally against a throwaway Postgres and the bundled DigitalOcean
# simulator, inserts a few example rows, and shows them converge. Ctrl-C stops everything and
# removes what it made. Nothing leaves 127.0.0.1.
#
#   bash scripts/demo.sh            # build, start, insert 5 rows, watch
#   ROWS=20 bash scripts/demo.sh    # more rows
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

ROWS=${ROWS:-5}
ensure_system_packages
step "building (debug)"
swift build --product citrus-reconciler >/dev/null
swift build --product citrus-do-sim >/dev/null
BIN=$(swift build --show-bin-path)

WORK=$(mktemp -d /tmp/citrus-demo.XXXXXX)
chmod 755 "$WORK"  # the postgres user must reach its data directory inside
PIDS=()
cleanup() {
    trap - EXIT INT TERM
    echo
    step "stopping"
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    stop_postgres "$WORK/pg"
    rm -rf "$WORK"
    echo "cleaned up"
}
trap cleanup EXIT INT TERM

step "starting a throwaway Postgres"
PGPORT=$(free_port)
start_postgres "$WORK/pg" "$PGPORT"
DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"

step "starting the DigitalOcean simulator"
"$BIN/citrus-do-sim" --port 0 --boot-seconds 4 --seed 7 >"$WORK/sim.url" 2>"$WORK/sim.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/sim.url" ] && break; sleep 0.1; done
SIM_URL=$(head -n1 "$WORK/sim.url")
echo "simulator at $SIM_URL"

step "migrating"
"$BIN/citrus-reconciler" migrate --database-url "$DATABASE_URL"

step "starting the daemon (its log: $WORK/daemon.log)"
echo "dop_v1_simulator_development_token" >"$WORK/token"
chmod 600 "$WORK/token"
"$BIN/citrus-reconciler" run --database-url "$DATABASE_URL" --digitalocean-url "$SIM_URL" \
    --digitalocean-token-file "$WORK/token" --log-format text >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)

step "inserting $ROWS rows"
for i in $(seq "$ROWS"); do
    psql -q "$DATABASE_URL" -c "INSERT INTO servers (name) VALUES ('demo-$i')"
done
psql -q "$DATABASE_URL" -c "INSERT INTO servers (name) VALUES ('not_a_valid_name')"

step "watching (Ctrl-C to stop)"
while true; do
    clear 2>/dev/null || true
    "$BIN/citrus-reconciler" status --database-url "$DATABASE_URL"
    echo
    echo "last daemon log lines:"
    tail -n 5 "$WORK/daemon.log"
    sleep 2
done
