#!/usr/bin/env bash
# Builds a Debian package of citrus-reconciler: the daemon, its unit, the journal catalog, shell
# completions and a man page generated from the command-line definitions, and an example
# configuration, with maintainer scripts that never start the service on their own.
#
#   bash scripts/package-deb.sh                       # release build (Swift runtime linked in), then the .deb
#   bash scripts/package-deb.sh --binary PATH         # package this binary instead (tests use the debug one)
#   bash scripts/package-deb.sh --output DIR          # where the .deb goes (default: .build/deb)
#
# The package's version is the binary's own (`citrus-reconciler --version`): one place, the build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

binary=""
output="$repo/.build/deb"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package-deb.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

command -v dpkg-deb >/dev/null || { echo "package-deb.sh: dpkg-deb is missing (apt-get install -y dpkg)" >&2; exit 69; }
# What the daemon loads, by package: the Swift runtime and Foundation are linked in (ldd shows
# libpq, libsystemd, libstdc++, libgcc_s, zlib and libc's own libraries).
depends="libc6, libgcc-s1, libpq5, libstdc++6, libsystemd0, zlib1g"
if [ -z "$binary" ]; then
    # The Swift runtime is linked in, so the package needs no toolchain on the host.
    swift build -c release --static-swift-stdlib --product citrus-reconciler
    binary="$repo/.build/release/citrus-reconciler"
    # A library the binary needs beyond $depends would be missing on a host without Swift.
    for library in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case "$library" in
            libc.so.* | libm.so.* | ld-linux*.so.* | libgcc_s.so.* | libpq.so.* | libstdc++.so.* | libsystemd.so.* | libz.so.*) ;;
            *) echo "package-deb.sh: the daemon needs $library, which Depends does not name" >&2; exit 70 ;;
        esac
    done
fi
[ -x "$binary" ] || { echo "package-deb.sh: no executable at $binary" >&2; exit 66; }
manual_tool="$repo/.build/debug/generate-manual"
[ -x "$manual_tool" ] || swift build --product generate-manual >/dev/null
[ -x "$manual_tool" ] || { echo "package-deb.sh: cannot build swift-argument-parser's generate-manual" >&2; exit 69; }

version=$("$binary" --version)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/citrus-deb.XXXXXX")
chmod 0755 "$stage"  # the package's root: /
trap 'rm -rf "$stage"' EXIT

install -D -m 0755 "$binary" "$stage/usr/bin/citrus-reconciler"
# Packages put units in /usr/lib/systemd/system; /etc/systemd/system stays the operator's.
sed 's#^ExecStart=/usr/local/bin/citrus-reconciler#ExecStart=/usr/bin/citrus-reconciler#; s#file:///usr/local/share/doc/#file:///usr/share/doc/#' \
    systemd/citrus-reconciler.service >"$stage/citrus-reconciler.service"
grep -q '^ExecStart=/usr/bin/citrus-reconciler run' "$stage/citrus-reconciler.service" \
    || { echo "package-deb.sh: the unit's ExecStart= was not where expected" >&2; exit 70; }
install -D -m 0644 "$stage/citrus-reconciler.service" "$stage/usr/lib/systemd/system/citrus-reconciler.service"
rm "$stage/citrus-reconciler.service"
sed 's#file:///usr/local/share/doc/#file:///usr/share/doc/#' deploy/citrus-reconciler.catalog >"$stage/catalog"
install -D -m 0644 "$stage/catalog" "$stage/usr/lib/systemd/catalog/citrus-reconciler.catalog"
rm "$stage/catalog"

# Completions and the man page, from the command-line definitions themselves.
install -d -m 0755 "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/man/man1"
"$binary" --generate-completion-script bash >"$stage/usr/share/bash-completion/completions/citrus-reconciler"
"$binary" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_citrus-reconciler"
"$binary" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/citrus-reconciler.fish"
"$manual_tool" "$binary" --date "$(date -u +%Y-%m-%d)" -o "$stage/usr/share/man/man1"
gzip -9n "$stage/usr/share/man/man1/citrus-reconciler.1"

docs="$stage/usr/share/doc/citrus-reconciler"
install -D -m 0644 README.md "$docs/README.md"
install -D -m 0644 deploy/README.md "$docs/deploy.md"
install -D -m 0644 deploy/database-role.sql "$docs/examples/database-role.sql"
install -D -m 0644 deploy/cloud-init.sh.tmpl "$docs/examples/cloud-init.sh.tmpl"
install -D -m 0644 docs/agent-protocol.md "$docs/agent-protocol.md"

# The example configuration is a conffile: dpkg keeps the operator's edits on upgrade.
install -d -m 0700 "$stage/etc/citrus-reconciler"
install -m 0600 deploy/citrus-reconciler.env.example "$stage/etc/citrus-reconciler/citrus-reconciler.env"

install -d -m 0755 "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: citrus-reconciler
Version: $version
Architecture: $arch
Maintainer: citrus-reconciler developers <citrus-reconciler@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Description: makes DigitalOcean droplets match the rows of a Postgres table
 A daemon, managed by systemd, that creates one droplet per row of the
 servers table exactly once, follows it until it is ready, records its
 address, destroys droplets whose rows ask for it, and writes an audit trail
 to the journal. See /usr/share/doc/citrus-reconciler/README.md.
CONTROL
echo "/etc/citrus-reconciler/citrus-reconciler.env" >"$stage/DEBIAN/conffiles"

cat >"$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
# Never enables or starts the service: it needs a database and a token first (README).
set -e
if [ "$1" = "configure" ]; then
    chmod 0700 /etc/citrus-reconciler
    chmod 0600 /etc/citrus-reconciler/citrus-reconciler.env
    journalctl --update-catalog >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
        # An upgrade restarts a running daemon on the new binary; a stopped one stays stopped.
        if [ -n "$2" ]; then systemctl try-restart citrus-reconciler.service >/dev/null 2>&1 || true; fi
    fi
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
    systemctl stop citrus-reconciler.service >/dev/null 2>&1 || true
    systemctl disable citrus-reconciler.service >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
    journalctl --update-catalog >/dev/null 2>&1 || true
fi
if [ "$1" = "purge" ]; then
    # The token is the operator's: it is kept, and so is the directory while it holds it.
    rm -f /etc/citrus-reconciler/citrus-reconciler.env
    rmdir --ignore-fail-on-non-empty /etc/citrus-reconciler 2>/dev/null || true
fi
exit 0
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$output"
deb="$output/citrus-reconciler_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
