#!/bin/sh
# Checks systemd/citrus-reconciler.service without installing it:
#   1. `systemd-analyze security --offline=yes` must report an exposure of at most 1.1 (what it is today);
#   2. `systemd-analyze verify` must print nothing.
# verify refuses a unit whose ExecStart binary does not exist, and the daemon is usually not
# installed where this runs. So verify checks a copy in a temporary directory whose ExecStart
# names an existing binary: $CITRUS_BINARY, else .build/debug/citrus-reconciler, else /bin/true.
# Nothing else in the copy changes, so every other directive is verified as written.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
unit="$here/citrus-reconciler.service"
binary=${CITRUS_BINARY:-}
if [ -z "$binary" ]; then
    if [ -x "$here/../.build/debug/citrus-reconciler" ]; then
        binary="$here/../.build/debug/citrus-reconciler"
    else
        binary=/bin/true
    fi
fi
binary=$(readlink -f "$binary")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/local/bin/citrus-reconciler |ExecStart=$binary |" "$unit" >"$tmp/citrus-reconciler.service"
grep -q "^ExecStart=$binary " "$tmp/citrus-reconciler.service" || { echo "check-unit: ExecStart not rewritten" >&2; exit 1; }

out=$(systemd-analyze verify "$tmp/citrus-reconciler.service" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    printf 'systemd-analyze verify is not clean:\n%s\n' "$out" >&2
    exit 1
fi

score=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "check-unit: no exposure score" >&2; exit 1; }
echo "citrus-reconciler.service: verify clean, exposure $score"
awk -v s="$score" 'BEGIN { exit !(s <= 1.1) }' || { echo "exposure $score is above 1.1" >&2; exit 1; }
