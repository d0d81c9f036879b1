#!/usr/bin/env bash
# Runs citrus-reconciler locally against a throwaway Postgres, the bundled DigitalOcean simulator
# and the Engine Hub stand-in, and shows the platform's whole flow: rows go creating → provisioning
# → initializing (droplet up, cloud-init installing the agent) → active (the agent connected to the
# hub); then one agent is dropped by the hub → unreachable → active again; one row is renamed in
# place and another moved to a region it cannot move to (drift). Ctrl-C stops everything
# and removes what it made. Nothing leaves 127.0.0.1.
#
#   bash scripts/demo.sh              # build, start, insert 5 rows, show the flow, then watch
#   ROWS=20 bash scripts/demo.sh      # more rows
#   DEMO_EXIT=1 bash scripts/demo.sh  # stop after the flow instead of watching
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

ROWS=${ROWS:-5}
BOOT_SECONDS=${BOOT_SECONDS:-4}          # the simulated droplet's new → active
AGENT_BOOT_SECONDS=${AGENT_BOOT_SECONDS:-2}  # cloud-init until the agent dials the hub
ensure_system_packages
step "building (debug)"
swift build --product citrus-reconciler >/dev/null
swift build --product citrus-do-sim >/dev/null
swift build --product citrus-engine-sim >/dev/null
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

# Waits for a process's first stdout line (its address) in a file.
first_line() {
    for _ in $(seq 200); do [ -s "$1" ] && break; sleep 0.1; done
    head -n1 "$1"
}

step "starting a throwaway Postgres"
PGPORT=$(free_port)
start_postgres "$WORK/pg" "$PGPORT"
DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
sql() { psql -qAtX "$DATABASE_URL" -c "$1"; }

step "migrating"
"$BIN/citrus-reconciler" migrate --database-url "$DATABASE_URL"

step "starting the DigitalOcean simulator (droplets boot in ${BOOT_SECONDS}s, cloud-init takes ${AGENT_BOOT_SECONDS}s more)"
"$BIN/citrus-do-sim" --port 0 --boot-seconds "$BOOT_SECONDS" --seed 7 \
    --agent-boot-seconds "$AGENT_BOOT_SECONDS" --agent-heartbeat-seconds 2 --agent-reconnect-max-seconds 2 \
    >"$WORK/sim.url" 2>"$WORK/sim.log" &
PIDS+=($!)
SIM_URL=$(first_line "$WORK/sim.url")
echo "simulator at $SIM_URL"

step "starting the Engine Hub stand-in"
"$BIN/citrus-engine-sim" --port 0 --database-url "$DATABASE_URL" >"$WORK/hub.url" 2>"$WORK/hub.log" &
PIDS+=($!)
HUB_URL=$(first_line "$WORK/hub.url" | sed 's/.* on //')
HUB_PORT=$(echo "$HUB_URL" | sed -E 's#.*:([0-9]+)/.*#\1#')
echo "hub at $HUB_URL"

METRICS_PORT=$(free_port)
step "starting the daemon with agent bootstrap (its log: $WORK/daemon.log)"
echo "dop_v1_simulator_development_token" >"$WORK/token"
chmod 600 "$WORK/token"
"$BIN/citrus-reconciler" run --database-url "$DATABASE_URL" --digitalocean-url "$SIM_URL" \
    --digitalocean-token-file "$WORK/token" --log-format text \
    --engine-url "$HUB_URL" --agent-stale-after 8s --resync-interval 5s \
    --metrics-address "127.0.0.1:$METRICS_PORT" >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)
echo "metrics at http://127.0.0.1:$METRICS_PORT/metrics"

step "inserting $ROWS rows and one invalid one"
for i in $(seq "$ROWS"); do sql "INSERT INTO servers (name) VALUES ('demo-$i')"; done
sql "INSERT INTO servers (name) VALUES ('not_a_valid_name')"

show() {
    clear 2>/dev/null || true
    "$BIN/citrus-reconciler" status --database-url "$DATABASE_URL"
    echo
    echo "last daemon log lines:"
    tail -n 5 "$WORK/daemon.log" | cut -c1-200
}

# Waits (showing the table) until `sql "$1"` prints "t"; gives up after $2 seconds.
wait_for() {
    local deadline=$((SECONDS + $2))
    until [ "$(sql "$1")" = "t" ]; do
        show
        [ "$SECONDS" -lt "$deadline" ] || { echo "gave up waiting for: $1"; return 1; }
        sleep 1
    done
}

step "waiting for every row to reach active through its agent"
wait_for "SELECT count(*) = $ROWS FROM servers WHERE name LIKE 'demo-%' AND status = 'active'" 120
show
echo
echo "insert → active, through the agent (droplet boot ${BOOT_SECONDS}s + cloud-init ${AGENT_BOOT_SECONDS}s):"
sql "SELECT s.name || ': ' || string_agg(e.to_status || ' +' || to_char(extract(epoch FROM e.created_at - s.created_at), 'FM990.0') || 's', ', ' ORDER BY e.id)
     FROM servers s JOIN server_events e ON e.server_id = s.id
     WHERE s.name LIKE 'demo-%' AND e.from_status IS DISTINCT FROM e.to_status AND e.kind <> 'create_accepted'
     GROUP BY s.name, s.created_at ORDER BY s.created_at"
sql "SELECT 'median insert → active: ' || to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.created_at - s.created_at)), 'FM990.00') || ' s'
     FROM servers s JOIN server_events e ON e.server_id = s.id WHERE e.kind = 'agent_connected' AND s.name LIKE 'demo-%'"

step "the hub drops demo-1's agent for 20 s"
AGENT=$(sql "SELECT agent_id FROM servers WHERE name = 'demo-1'")
body='{"seconds": 20}'
exec 3<>"/dev/tcp/127.0.0.1/$HUB_PORT"
printf 'POST /admin/agents/%s/drop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$AGENT" "${#body}" "$body" >&3
tail -n1 <&3; echo
exec 3<&-
wait_for "SELECT status = 'unreachable' FROM servers WHERE name = 'demo-1'" 60
show
echo; echo "demo-1 is unreachable; the hub lets its agent back in after 20 s"
wait_for "SELECT status = 'active' FROM servers WHERE name = 'demo-1'" 60
show

step "renaming demo-2 in place, and moving demo-3 to another region (which cannot be done in place)"
UPDATED_AT=$(sql "UPDATE servers SET name = 'demo-2-renamed' WHERE name = 'demo-2' RETURNING clock_timestamp()")
sql "UPDATE servers SET region = 'nyc3' WHERE name = 'demo-3'" >/dev/null
wait_for "SELECT droplet_name = 'demo-2-renamed' AND change_goal IS NULL FROM servers WHERE name = 'demo-2-renamed'" 60
wait_for "SELECT drift IS NOT NULL FROM servers WHERE name = 'demo-3'" 60
show
echo
sql "SELECT 'UPDATE → droplet renamed and recorded: ' || to_char(extract(epoch FROM e.created_at - '$UPDATED_AT'::timestamptz), 'FM990.0') || ' s'
     FROM server_events e JOIN servers s ON s.id = e.server_id
     WHERE s.name = 'demo-2-renamed' AND e.kind = 'change_completed' ORDER BY e.id LIMIT 1"
echo "demo-2-renamed's rename (server_events):"
sql "SELECT to_char(e.created_at, 'HH24:MI:SS') || '  ' || e.kind || '  ' || e.message FROM server_events e
     JOIN servers s ON s.id = e.server_id WHERE s.name = 'demo-2-renamed' AND e.kind LIKE ANY (ARRAY['action_%', 'change_%'])
     ORDER BY e.id" | cut -c1-220
echo
echo "what plan says (demo-3's region is drift: the row keeps its status and says what to do):"
"$BIN/citrus-reconciler" plan --database-url "$DATABASE_URL" --digitalocean-url "$SIM_URL" \
    --digitalocean-token-file "$WORK/token" 2>/dev/null | cut -c1-220

echo
echo "demo-1's story (server_events):"
sql "SELECT to_char(e.created_at, 'HH24:MI:SS') || '  ' || e.kind || '  ' || e.message FROM server_events e
     JOIN servers s ON s.id = e.server_id WHERE s.name = 'demo-1' ORDER BY e.id" | cut -c1-220

# Plain HTTP on loopback with bash alone: GET $1 from the daemon's metrics endpoint.
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT"
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3
    sed '1,/^\r$/d' <&3
    exec 3<&-
}
echo
echo "the daemon's /metrics (citrus_ series, histogram buckets left out):"
http_get /metrics | grep '^citrus_' | grep -v '_bucket{' | sort

[ "${DEMO_EXIT:-0}" = "1" ] && exit 0
step "watching (Ctrl-C to stop)"
while true; do show; sleep 2; done
