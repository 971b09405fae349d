#!/usr/bin/env bash
# The whole test suite under ThreadSanitizer and/or AddressSanitizer (with LeakSanitizer),
# each in a scratch path of its own (.build-tsan, .build-asan). `sock` is built there too,
# with the same sanitizer, and the end-to-end tests run that binary (SOCK_BINARY).
#
#   scripts/test-sanitizers.sh                 both, one after the other
#   scripts/test-sanitizers.sh thread          ThreadSanitizer only
#   scripts/test-sanitizers.sh address --filter SocketsAsyncTests   (the rest goes to swift test)
#
# Tests see SOCKETS_SANITIZER=thread|address and may make CPU-heavy loads lighter (never
# skip). Any sanitizer report fails the run: TSan makes the test process exit non-zero, ASan stops
# at the first error, LSan reports leaks at exit. XCTest's own leaks are suppressed
# (scripts/lsan-suppressions.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

which=all
if (($#)) && [[ "$1" != -* ]]; then which=$1; shift; fi
case "$which" in
  thread|address|all) ;;
  *) echo "usage: scripts/test-sanitizers.sh [thread|address|all] [swift test arguments...]" >&2; exit 64 ;;
esac

scripts/install-test-deps.sh
# Swift's crash handler and the sanitizers' reports get in each other's way.
export SWIFT_BACKTRACE=enable=no
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan-suppressions.txt${LSAN_OPTIONS:+ $LSAN_OPTIONS}"

run() {
  local sanitizer=$1 scratch=$2
  shift 2
  local start=$SECONDS
  echo "== $sanitizer sanitizer ($scratch)"
  swift build --sanitize="$sanitizer" --scratch-path "$scratch" --product sock
  local bin
  bin=$(swift build --sanitize="$sanitizer" --scratch-path "$scratch" --show-bin-path)
  # One test at a time: the tests already take turns (the descriptor-leak check), and a test
  # waiting for its turn counts against its time limit, which the sanitizers' slowness exceeds.
  SOCKETS_SANITIZER="$sanitizer" SOCK_BINARY="$bin/sock" swift test --sanitize="$sanitizer" --scratch-path "$scratch" --no-parallel "$@"
  echo "== $sanitizer sanitizer: passed in $((SECONDS - start)) s"
}

if [[ "$which" == thread || "$which" == all ]]; then run thread .build-tsan "$@"; fi
if [[ "$which" == address || "$which" == all ]]; then run address .build-asan "$@"; fi
