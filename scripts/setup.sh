# Shared set-up for the project's scripts (sourced, not run).
# Works on a fresh Debian 12 with Swift installed, as root; installs only what is missing.

step() { printf '\n==> %s\n' "$*"; }

# The Debian packages the build, the tests and the demo need.
SYSTEM_PACKAGES=(libpq-dev libsystemd-dev postgresql-15 postgresql-client-15 systemd python3 python3-pip util-linux iproute2 nftables)

ensure_system_packages() {
    local missing=()
    for package in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Python modules the schema validation uses, installed with pip when missing.
ensure_python_modules() {
    python3 -c 'import jsonschema, yaml' 2>/dev/null && return 0
    step "installing jsonschema and PyYAML (pip)"
    python3 -m pip install -q jsonschema PyYAML 2>/dev/null \
        || python3 -m pip install -q --break-system-packages jsonschema PyYAML
}

PG_BIN=/usr/lib/postgresql/15/bin

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# As root, Postgres's tools run as the postgres user (initdb refuses root).
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DIR PORT: a throwaway cluster in DIR, on 127.0.0.1:PORT, trusting local users.
start_postgres() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" start >/dev/null
}

stop_postgres() {
    local dir=$1
    [ -d "$dir/data" ] && as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# Throwaway clusters of test processes that died (crash, kill -9) are left behind; remove those
# whose owner is gone. Clusters of test runs still in progress are left alone.
kill_leftover_clusters() {
    local dir owner pid
    for dir in "${TMPDIR:-/tmp}"/citrus-pg-*; do
        [[ -d $dir ]] || continue
        owner=$(cat "$dir/owner.pid" 2>/dev/null || true)
        if [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
        pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -QUIT "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -rf "$dir"
    done
}
