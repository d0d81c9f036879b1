#!/bin/sh
# Installs citrus-reconciler on a systemd host. Run as root from a checkout after
# `swift build -c release --static-swift-stdlib --product citrus-reconciler`:
#     deploy/install.sh [--root DIR] [--binary PATH] [--token-from-stdin]
#     deploy/install.sh --uninstall [--root DIR]
#
#   --root DIR          install under DIR instead of / (also $CITRUS_INSTALL_ROOT); for packaging
#                       and tests. systemd is then not told (no daemon-reload).
#   --binary PATH       the daemon to install (default: .build/release/citrus-reconciler).
#   --token-from-stdin  read the DigitalOcean API token from stdin into the credential file.
#   --uninstall         stop and disable the service, remove what install.sh installed; keep
#                       /etc/citrus-reconciler (configuration and token) and say so.
#
# Installs (as a package would, with /etc/systemd/system left for the operator's overrides):
#   /usr/local/bin/citrus-reconciler
#   /usr/lib/systemd/system/citrus-reconciler.service
#   /usr/lib/systemd/catalog/citrus-reconciler.catalog    (+ journalctl --update-catalog)
#   bash, zsh and fish completions, and the man page citrus-reconciler(1) when swift-argument-
#   parser's generate-manual has been built (swift build --product generate-manual)
#   /etc/citrus-reconciler/                              (root only, 0700)
#   /etc/citrus-reconciler/citrus-reconciler.env         (example, 0600; never overwritten)
# It never enables or starts the service, never overwrites the token, and never prints it.
# A .deb with the same contents at a package's paths (the binary stripped, with Debian's copyright
# and changelog.Debian.gz): scripts/package-deb.sh.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
root=${CITRUS_INSTALL_ROOT:-/}
binary="$repo/.build/release/citrus-reconciler"
token_from_stdin=no
uninstall=no

while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        --binary) binary=$2; shift 2 ;;
        --binary=*) binary=${1#--binary=}; shift ;;
        --token-from-stdin) token_from_stdin=yes; shift ;;
        --uninstall) uninstall=yes; shift ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

root=${root%/}
etc="$root/etc/citrus-reconciler"
unit="$root/usr/lib/systemd/system/citrus-reconciler.service"
installed="$root/usr/local/bin/citrus-reconciler
$unit
$root/usr/lib/systemd/catalog/citrus-reconciler.catalog
$root/usr/local/share/bash-completion/completions/citrus-reconciler
$root/usr/local/share/zsh/site-functions/_citrus-reconciler
$root/usr/local/share/fish/vendor_completions.d/citrus-reconciler.fish
$root/usr/local/share/man/man1/citrus-reconciler.1"

if [ "$uninstall" = yes ]; then
    if [ "$root" = "" ] && [ -d /run/systemd/system ]; then
        systemctl disable --now citrus-reconciler.service 2>/dev/null || true
    fi
    echo "$installed" | while read -r file; do rm -f "$file"; done
    rm -rf "$root/usr/local/share/doc/citrus-reconciler"
    if [ "$root" = "" ]; then
        journalctl --update-catalog
        if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
    fi
    echo "uninstalled citrus-reconciler from ${root:-/}; kept $etc (configuration and token): remove it yourself when done"
    exit 0
fi

if [ ! -x "$binary" ]; then
    echo "install.sh: no daemon at $binary; run 'swift build -c release --static-swift-stdlib --product citrus-reconciler' or pass --binary" >&2
    exit 66
fi

install -d -m 0755 "$root/usr/local/bin" "$root/usr/lib/systemd/system" "$root/usr/lib/systemd/catalog"
install -m 0755 "$binary" "$root/usr/local/bin/citrus-reconciler"
install -m 0644 "$repo/systemd/citrus-reconciler.service" "$unit"
install -m 0644 "$here/citrus-reconciler.catalog" "$root/usr/lib/systemd/catalog/citrus-reconciler.catalog"
# A unit in /etc/systemd/system (an older install.sh put it there) shadows this one: say so.
if [ -f "$root/etc/systemd/system/citrus-reconciler.service" ]; then
    echo "note: $root/etc/systemd/system/citrus-reconciler.service shadows the unit just installed;" \
        "remove it unless it is your own (overrides belong in citrus-reconciler.service.d/)" >&2
fi

# Completions and the man page, generated from the command-line definitions of this binary.
share="$root/usr/local/share"
install -d -m 0755 "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d"
"$binary" --generate-completion-script bash >"$share/bash-completion/completions/citrus-reconciler"
"$binary" --generate-completion-script zsh >"$share/zsh/site-functions/_citrus-reconciler"
"$binary" --generate-completion-script fish >"$share/fish/vendor_completions.d/citrus-reconciler.fish"
manual_tool="$repo/.build/debug/generate-manual"
install -d -m 0755 "$share/man/man1"
if [ ! -x "$manual_tool" ]; then
    echo "no man page: build swift-argument-parser's generator first (swift build --product generate-manual)"
elif ! "$manual_tool" "$binary" -o "$share/man/man1" 2>/dev/null; then
    echo "no man page: $binary did not describe its command line"
fi
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
        cat "$here/citrus-reconciler.env.example" >"$etc/citrus-reconciler.env"
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
