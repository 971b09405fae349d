#!/usr/bin/env bash
# The test command: installs the Debian peers the tests talk to, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
swift build --product sock
swift test "$@"
