#!/usr/bin/env bash
# The async layer's tests under ThreadSanitizer (slow: a separate build in .build-tsan).
# Extra arguments go to `swift test`, e.g. `scripts/test-tsan.sh --filter AsyncWaitingTests`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
if (($#)); then
  swift test --sanitize=thread --scratch-path .build-tsan "$@"
else
  swift test --sanitize=thread --scratch-path .build-tsan --filter SocketsAsyncTests
fi
