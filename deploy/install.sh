#!/bin/sh
# Installs citrus-reconciler on a systemd host. Run as root from a checkout after
# `swift build -c release`:
#     deploy/install.sh [--root DIR] [--binary PATH] [--token-from-stdin]
#
#   --root DIR          install under DIR instead of / (also $CITRUS_INSTALL_ROOT); for packaging
#                       and tests. systemd is then not told (no daemon-reload).
#   --binary PATH       the daemon to install (default: .build/release/citrus-reconciler).
#   --token-from-stdin  read the DigitalOcean API token from stdin into the credential file.
#
# Installs:
#   /usr/local/bin/citrus-reconciler
#   /etc/systemd/system/citrus-reconciler.service
#   /usr/lib/systemd/catalog/citrus-reconciler.catalog    (+ journalctl --update-catalog)
#   /etc/citrus-reconciler/                              (root only, 0700)
#   /etc/citrus-reconciler/citrus-reconciler.env         (example, 0600; never overwritten)
# It never enables or starts the service, never overwrites the token, and never prints it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
root=${CITRUS_INSTALL_ROOT:-/}
binary="$repo/.build/release/citrus-reconciler"
token_from_stdin=no

while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        --binary) binary=$2; shift 2 ;;
        --binary=*) binary=${1#--binary=}; shift ;;
        --token-from-stdin) token_from_stdin=yes; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

if [ ! -x "$binary" ]; then
    echo "install.sh: no daemon at $binary; run 'swift build -c release' or pass --binary" >&2
    exit 66
fi

root=${root%/}
etc="$root/etc/citrus-reconciler"

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd/catalog"
install -m 0755 "$binary" "$root/usr/local/bin/citrus-reconciler"
install -m 0644 "$repo/systemd/citrus-reconciler.service" "$root/etc/systemd/system/citrus-reconciler.service"
install -m 0644 "$here/citrus-reconciler.catalog" "$root/usr/lib/systemd/catalog/citrus-reconciler.catalog"
if [ -f "$repo/README.md" ]; then
    install -d -m 0755 "$root/usr/local/share/doc/citrus-reconciler"
    install -m 0644 "$repo/README.md" "$root/usr/local/share/doc/citrus-reconciler/README.md"
fi

# Configuration and the credential live together, readable by root only; systemd reads them
# (EnvironmentFile=, LoadCredential=) before dropping to the service's dynamic user.
install -d -m 0700 -o root -g root "$etc"
chmod 0700 "$etc"

if [ ! -e "$etc/citrus-reconciler.env" ]; then
    (
        umask 077
        cat >"$etc/citrus-reconciler.env" <<'ENV'
# Environment for citrus-reconciler.service (systemd EnvironmentFile= syntax).
# The DigitalOcean token does not belong here: it is the credential file
# /etc/citrus-reconciler/digitalocean-token (see `systemctl cat citrus-reconciler`).

# libpq conninfo string or URI. When unset, libpq's defaults and PG* variables apply.
# The role is created by deploy/database-role.sql. verify-full needs a root certificate: libpq 15
# finds none by itself under DynamicUser= (sslrootcert=system is libpq 16+), so name the bundle.
# A password goes in a pgpass credential, not here (see the unit's LoadCredential=pgpass).
CITRUS_DATABASE_URL=postgresql://citrus_reconciler@localhost/citrus?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt

# Log level (trace, debug, info, notice, warning, error, critical; default info). Applied by
# `systemctl reload citrus-reconciler` as well as at start.
#CITRUS_LOG_LEVEL=info

# DigitalOcean API base URL (default https://api.digitalocean.com); point it at citrus-do-sim
# for a rehearsal.
#CITRUS_DIGITALOCEAN_URL=https://api.digitalocean.com
ENV
    )
    echo "wrote an example $etc/citrus-reconciler.env; edit CITRUS_DATABASE_URL"
else
    echo "kept the existing $etc/citrus-reconciler.env"
fi

token="$etc/digitalocean-token"
if [ "$token_from_stdin" = yes ]; then
    (
        umask 077
        # Strip one trailing newline; the token itself never reaches argv or the terminal.
        tr -d '\r\n' >"$token.new"
    )
    if [ ! -s "$token.new" ]; then
        rm -f "$token.new"
        echo "install.sh: no token on stdin; left $token unchanged" >&2
        exit 65
    fi
    chmod 0600 "$token.new"
    mv -f "$token.new" "$token"
    echo "stored the DigitalOcean token in $token (0600)"
fi

if [ "$root" = "" ]; then
    journalctl --update-catalog
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
else
    journalctl --root="$root" --update-catalog
fi

echo "installed citrus-reconciler under ${root:-/}"
if [ ! -s "$token" ]; then
    cat <<HINT
next: store the DigitalOcean API token (root-owned, mode 0600), without echoing it:
    ( umask 077; systemd-ask-password -n 'DigitalOcean token:' >$token )
  or: deploy/install.sh --token-from-stdin <file-holding-the-token
HINT
fi
cat <<HINT
then: create the database role (deploy/database-role.sql), run
    citrus-reconciler migrate    (as the table owner)
    systemctl enable --now citrus-reconciler
    journalctl -u citrus-reconciler -f
HINT
