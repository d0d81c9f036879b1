#!/usr/bin/env bash
# Builds a Debian package of citrus-reconciler: the daemon, its unit, the journal catalog, shell
# completions and a man page generated from the command-line definitions, and an example
# configuration, with maintainer scripts that never start the service on their own.
#
#   bash scripts/package-deb.sh                       # release build (Swift runtime linked in), then the .deb
#   bash scripts/package-deb.sh --binary PATH         # package this binary instead (tests use the debug one)
#   bash scripts/package-deb.sh --output DIR          # where the .deb goes (default: .build/deb)
#   bash scripts/package-deb.sh --maintainer 'Name <address>'   # who answers for the package
#
# The package's version is the binary's own (`citrus-reconciler --version`): one place, the build.
# The repository names no maintainer, so the default Maintainer is a placeholder at a reserved
# domain (RFC 2606); whoever distributes the package names themselves with --maintainer.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

binary=""
output="$repo/.build/deb"
maintainer="citrus-reconciler maintainers <citrus-reconciler@invalid.example>"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        --maintainer) maintainer=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package-deb.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

# Debian Policy 5.6.2: a name, then an address in angle brackets.
printf '%s\n' "$maintainer" | grep -Eq '^[^<>,]*[^<>, ][[:space:]]+<[^<>@[:space:]]+@[^<>@[:space:]]+\.[^<>@[:space:]]+>$' \
    || { echo "package-deb.sh: --maintainer must be 'Name <address>', not: $maintainer" >&2; exit 64; }
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
command -v strip >/dev/null || { echo "package-deb.sh: strip is missing (apt-get install -y binutils)" >&2; exit 69; }
version=$("$binary" --version)
manual_tool="$repo/.build/debug/generate-manual"
[ -x "$manual_tool" ] || swift build --product generate-manual >/dev/null
[ -x "$manual_tool" ] || { echo "package-deb.sh: cannot build swift-argument-parser's generate-manual" >&2; exit 69; }

arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/citrus-deb.XXXXXX")
chmod 0755 "$stage"  # the package's root: /
trap 'rm -rf "$stage"' EXIT

# Stripped, as Debian Policy 10.1 asks: the symbol table serves only debuggers and Swift's crash
# backtracer, which the unit turns off (SWIFT_BACKTRACE=enable=no). The same options as dh_strip.
install -D -m 0755 "$binary" "$stage/usr/bin/citrus-reconciler"
strip --remove-section=.comment --remove-section=.note "$stage/usr/bin/citrus-reconciler"
[ "$("$stage/usr/bin/citrus-reconciler" --version)" = "$version" ] \
    || { echo "package-deb.sh: the stripped daemon does not run" >&2; exit 70; }
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
# bash-completion sources the file: a #! line would say it is run (lintian: bash-completion-with-hashbang).
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' >"$stage/usr/share/bash-completion/completions/citrus-reconciler"
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

# Debian Policy 12.5: copyright, in the machine-readable format (DEP-5). The repository has no
# LICENSE file, so the daemon's own code is marked as unlicensed rather than given a license no one
# chose; what the release build links in statically is listed with its licenses.
# Dated by the commit built (SOURCE_DATE_EPOCH when set): the same tree makes the same files.
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo "unknown commit")
built_at=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date -u +%s)}
year=$(date -u -d "@$built_at" +%Y)
cat >"$docs/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: citrus-reconciler
Upstream-Contact: $maintainer
Comment: /usr/bin/citrus-reconciler links in, statically, the Swift standard
 library and Foundation from the Swift toolchain (Apache-2.0 with the Runtime
 Library Exception, https://swift.org/LICENSE.txt) and the Swift packages that
 Package.swift names, with their dependencies, which SwiftPM fetches into
 .build/checkouts when it builds. libc, libpq, libsystemd, libstdc++, libgcc
 and zlib are the host's, through Depends.

Files: *
Copyright: $year citrus-reconciler maintainers
License: citrus-reconciler-unlicensed

Files: .build/checkouts/*
Copyright: Apple Inc. and the authors of each package (see its NOTICE.txt)
 1995-2016 The OpenSSL Project Authors (BoringSSL, in swift-crypto and swift-nio-ssl)
 Google Inc. (BoringSSL)
License: Apache-2.0
Comment: swift-argument-parser, swift-crypto, swift-log, swift-metrics,
 swift-prometheus, swift-nio, swift-nio-ssl, swift-nio-extras, swift-nio-http2,
 async-http-client, swift-service-lifecycle, swift-collections, swift-atomics,
 swift-system and the other packages they depend on: each is under the Apache
 License 2.0, BoringSSL included, except the two C libraries below.

Files: .build/checkouts/swift-nio/Sources/CNIOLLHTTP/*
Copyright: 2018 Fedor Indutny
License: Expat
Comment: llhttp, vendored by swift-nio: the HTTP/1 parser of the metrics
 endpoint and the DigitalOcean client.

Files: .build/checkouts/swift-nio-extras/Sources/CNIOExtrasZlib/*
Copyright: 1995-2026 Jean-loup Gailly and Mark Adler
License: Zlib
Comment: zlib, vendored by swift-nio-extras (NIOHTTPCompression, which
 async-http-client uses) and linked in; hence the lintian override for
 embedded-library zlib. The system's libz.so.1 is loaded too, by Foundation.

License: citrus-reconciler-unlicensed
 The citrus-reconciler repository carries no LICENSE file and names no
 license. Until its copyright holders choose one, this package grants no
 rights beyond those the law allows without a license.

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.

License: Zlib
 This software is provided 'as-is', without any express or implied
 warranty.  In no event will the authors be held liable for any damages
 arising from the use of this software.
 .
 Permission is granted to anyone to use this software for any purpose,
 including commercial applications, and to alter it and redistribute it
 freely, subject to the following restrictions:
 .
 1. The origin of this software must not be misrepresented; you must not
    claim that you wrote the original software. If you use this software
    in a product, an acknowledgment in the product documentation would be
    appreciated but is not required.
 2. Altered source versions must be plainly marked as such, and must not be
    misrepresented as being the original software.
 3. This notice may not be removed or altered from any source distribution.

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at https://www.apache.org/licenses/LICENSE-2.0
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can
 be found in "/usr/share/common-licenses/Apache-2.0".
COPYRIGHT
chmod 0644 "$docs/copyright"

# Debian Policy 12.7: the changelog, compressed with gzip -9n (no name, no time stamp). The
# repository keeps no changelog of its own, so the entry names the version and the commit built.
cat >"$docs/changelog.Debian" <<CHANGELOG
citrus-reconciler ($version) unstable; urgency=medium

  * Packaged by scripts/package-deb.sh from citrus-reconciler $version, commit
    $commit. The changes are in the repository's history (git log).

 -- $maintainer  $(LC_ALL=C date -u -R -d "@$built_at")
CHANGELOG
gzip -9n "$docs/changelog.Debian"
chmod 0644 "$docs/changelog.Debian.gz"

# The zlib that swift-nio-extras vendors is compiled into the daemon; SwiftPM offers no way to
# build that module against the system's libz (see copyright).
install -D -m 0644 /dev/stdin "$stage/usr/share/lintian/overrides/citrus-reconciler" <<'OVERRIDES'
# zlib vendored by swift-nio-extras (CNIOExtrasZlib), linked in by SwiftPM; see copyright.
citrus-reconciler: embedded-library zlib [usr/bin/citrus-reconciler]
OVERRIDES

# The example configuration is a conffile: dpkg keeps the operator's edits on upgrade.
install -d -m 0700 "$stage/etc/citrus-reconciler"
install -m 0600 deploy/citrus-reconciler.env.example "$stage/etc/citrus-reconciler/citrus-reconciler.env"

install -d -m 0755 "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: citrus-reconciler
Version: $version
Architecture: $arch
Maintainer: $maintainer
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
# For `dpkg --verify`; conffiles are left out, as dh_md5sums does (dpkg records their sums itself).
(cd "$stage" && find . -type f ! -path ./DEBIAN/\* ! -path ./etc/\* -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

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
