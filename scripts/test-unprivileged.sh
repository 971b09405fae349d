#!/usr/bin/env bash
# The whole test suite again as an ordinary user: nobody (uid 65534), no capabilities, the soft
# descriptor limit at 1024 (as many desktops have it). Tests that need a privilege are skipped
# and say what they need; everything else must pass. Prints how many tests ran and how many were
# skipped (and why), and exits non-zero on any failure.
#
#   scripts/test-unprivileged.sh                       as root: builds, then drops to nobody
#   scripts/test-unprivileged.sh --filter OptionTests  (arguments go to the test binary)
#
# Run by root, it builds as root and runs the same test binary as nobody, copied with `sock` into
# a temporary folder of nobody's own (with its HOME and TMPDIR): `swift test` would write to the
# root-owned build folder even with --skip-build, and a build of nobody's own would take minutes
# more. Run by any other user, it runs the tests as that user. Only Swift Testing tests run (the
# package has no XCTest tests).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

unprivileged_uid=65534
if [ "$(id -u)" -eq 0 ]; then
  scripts/install-test-deps.sh
fi
swift build --build-tests
swift build --product sock
bin=$(swift build --show-bin-path)
tests=("$bin"/*PackageTests.xctest)
[ -x "${tests[0]}" ] || { echo "test-unprivileged: no test binary in $bin" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sockets-unprivileged.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "${tests[0]}" "$work/tests"
cp "$bin/sock" "$work/sock"
mkdir "$work/home" "$work/tmp"
chmod 755 "$work"

as_user=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$unprivileged_uid:$unprivileged_uid" "$work"
  # A new uid drops the permitted and effective capabilities; the inheritable, ambient and
  # bounding sets are emptied too, and no-new-privs keeps set-uid and file-capability programs
  # (ping, say) from handing any back.
  as_user=(setpriv --reuid="$unprivileged_uid" --regid="$unprivileged_uid" --clear-groups
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs)
fi
log="$work/output.txt"
status=0
"${as_user[@]}" env -i PATH="$PATH" HOME="$work/home" TMPDIR="$work/tmp" LANG=C.UTF-8 NO_COLOR=1 \
  SOCK_BINARY="$work/sock" \
  bash -c 'ulimit -Sn 1024 && cd "$1" && shift && echo "as $(id -un) (uid $(id -u)), $(grep CapEff /proc/self/status | tr -s "\t " " "), soft descriptor limit $(ulimit -Sn)" && exec ./tests --testing-library swift-testing "$@"' \
  bash "$work" "$@" 2>&1 | tee "$log" || status=$?

# Swift Testing's lines: "✔ Test NAME passed after ...", "✘ Test NAME failed after ...",
# "➜ Test NAME skipped: "REASON"", and the closing "Test run with N tests in M suites ...".
summary=$(grep -E '^[^ ]+ Test run with [0-9]+ tests? ' "$log" | tail -1 || true)
passed=$(grep -E '^[^ ]+ Test .+ passed after ' "$log" | grep -vc ' Test run with ' || true)
failed=$(grep -E '^[^ ]+ Test .+ failed after ' "$log" | grep -vc ' Test run with ' || true)
skipped=$(grep -cE '^[^ ]+ Test .+ skipped(: |$)' "$log" || true)
echo
echo "== unprivileged run: $((SECONDS - start)) s"
if [ "$skipped" -gt 0 ]; then
  echo "skipped, by reason:"
  grep -E '^[^ ]+ Test .+ skipped(: |$)' "$log" | sed -E 's/^.* skipped(: )?//' | sort | uniq -c | sort -rn
fi
if [ -z "$summary" ]; then
  echo "test-unprivileged: the test process ended without its summary (exit status $status)" >&2
  [ "$status" -ne 0 ] || status=1
fi
total=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"${summary:-Test run with 0 tests}")
echo "$((total - skipped)) of $total tests ran, $skipped skipped"
echo "unprivileged: $passed passed, $failed failed, $skipped skipped"
exit "$status"
