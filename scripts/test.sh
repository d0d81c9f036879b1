#!/usr/bin/env bash
# The one test command: installs what is missing (Debian 12, as root), builds, runs every test.
# Exit status is the tests' exit status.
set -uo pipefail
cd "$(dirname "$0")/.."

packages=(libpq-dev libsystemd-dev postgresql-15 postgresql-client-15)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update && apt-get install -y --no-install-recommends "${missing[@]}" || exit 1
    fi
fi

# Throwaway clusters of test processes that died (crash, kill -9) are left behind; remove those
# whose owner is gone. Clusters of test runs still in progress are left alone.
sweep_orphan_clusters() {
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
sweep_orphan_clusters

swift build --build-tests || exit $?
swift test --skip-build
status=$?
sweep_orphan_clusters
exit $status
