#!/usr/bin/env bash
# The project's test command: on a fresh Debian 12 with Swift installed (as root), installs what
# is missing, builds with warnings as errors on the project's targets, and runs every test.
# Tests start their own Postgres clusters, simulators and systemd sandboxes, on loopback only,
# and remove them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

ensure_system_packages
ensure_python_modules
kill_leftover_clusters

step "checking formatting (.swift-format)"
swift format lint --strict --recursive Sources Tests Package.swift

step "building"
swift build --build-tests
# swift-argument-parser's man page generator, for the packaging test (scripts/package-deb.sh).
swift build --product generate-manual

step "testing"
# One test at a time: the integration suites each run Postgres, a simulator and the daemon, and
# two cores shared between them would turn timing into noise.
status=0
swift test --skip-build --no-parallel || status=$?
kill_leftover_clusters
exit $status
