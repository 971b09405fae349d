#!/usr/bin/env bash
# Builds the DocC documentation of Sockets and SocketsAsync (their catalogs in
# Sources/*/*.docc and every public symbol's comment) with warnings treated as errors: a symbol
# link that does not resolve, a parameter left undocumented or a malformed comment fails it.
# The archives land in .build/plugins/Swift-DocC/outputs/; to read them in a browser, run
# `swift package --disable-sandbox preview-documentation --target Sockets`.
# Measured on this 2-vCPU machine: about 20 s after scripts/test.sh's build, under a minute
# from a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for target in Sockets SocketsAsync; do
    echo "== documentation for $target"
    if ! swift package generate-documentation --target "$target" --warnings-as-errors 2>&1 | tee -a "$log"; then
        status=1
    fi
done
# docc fails on its own warnings; this also catches any the compiler printed while extracting
# the symbol graphs.
if grep -q 'warning:' "$log"; then
    echo "build-docs: warnings above" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "build-docs: FAILED" >&2
else
    echo "build-docs: both catalogs built with no warnings"
fi
exit "$status"
