#!/bin/sh
# Checks systemd/citrus-reconciler.service without installing it:
#   1. `systemd-analyze security --offline=yes` must report an exposure of at most 1.1 (what it is today);
#   2. `systemd-analyze verify` must print nothing;
#   3. a unit that denies socket binds (SocketBindDeny=) must allow the port of the metrics address
#      that deploy/citrus-reconciler.env.example sets (CITRUS_METRICS_ADDRESS): a bind the unit
#      denies is exit 78, which the unit does not restart. systemd enforces these rules only on
#      cgroup v2 with its BPF support, so a system test where they are not enforced passes either
#      way; this reads the rules instead.
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

# 3. The metrics port. The example's line may be commented out; its port is what operators start from.
example="$here/../deploy/citrus-reconciler.env.example"
address=$(sed -n 's/^#\{0,1\}CITRUS_METRICS_ADDRESS=\(.*\)$/\1/p' "$example" | head -n 1)
[ -n "$address" ] || { echo "check-unit: $example does not name CITRUS_METRICS_ADDRESS" >&2; exit 1; }
port=${address##*:}
case "$address" in
    \[*) family=ipv6 ;;
    *) family=ipv4 ;;
esac
# Each rule is [ipv4|ipv6:][tcp|udp:][port[-port]] or `any`; an empty assignment clears the list.
# A bind is allowed when an allow rule matches it, else denied when a deny rule matches it.
bind_check=$(awk -v port="$port" -v family="$family" '
    function matches(rule,    n, parts, i, low, high) {
        if (rule == "any") return 1
        n = split(rule, parts, ":")
        for (i = 1; i <= n; i++) {
            if (parts[i] == "ipv4" || parts[i] == "ipv6") { if (parts[i] != family) return 0; continue }
            if (parts[i] == "tcp" || parts[i] == "udp") { if (parts[i] != "tcp") return 0; continue }
            low = parts[i]; high = parts[i]
            if (index(parts[i], "-")) { low = substr(parts[i], 1, index(parts[i], "-") - 1); high = substr(parts[i], index(parts[i], "-") + 1) }
            if (port + 0 < low + 0 || port + 0 > high + 0) return 0
        }
        return 1
    }
    /^SocketBindAllow=/ { value = substr($0, 17); if (value == "") allowed = 0; else if (matches(value)) allowed = 1 }
    /^SocketBindDeny=/ { value = substr($0, 16); if (value == "") denied = 0; else if (matches(value)) denied = 1 }
    END { print (allowed || !denied) ? "allowed" : "denied" }
' "$unit")
if [ "$bind_check" != allowed ]; then
    echo "check-unit: the unit denies binding $address (CITRUS_METRICS_ADDRESS in the example environment file): add SocketBindAllow=tcp:$port" >&2
    exit 1
fi

score=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "check-unit: no exposure score" >&2; exit 1; }
echo "citrus-reconciler.service: verify clean, binds $address, exposure $score"
awk -v s="$score" 'BEGIN { exit !(s <= 1.1) }' || { echo "exposure $score is above 1.1" >&2; exit 1; }
