#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (release, with AddressSanitizer) and runs each for a
# bounded time on its seed corpus (Fuzz/Corpus/TARGET). Fails on the first crash, ASan
# report, leak or violated property; the crashing input is left in Fuzz/.artifacts/TARGET/.
#
#   scripts/fuzz.sh                          every target, 30 seconds each
#   scripts/fuzz.sh FuzzAddress --runs 10000000
#   scripts/fuzz.sh --seconds 300
#
# New inputs the fuzzer finds go to Fuzz/.work/TARGET (not in git);
#   scripts/fuzz.sh --merge                  adds those that bring new coverage to Fuzz/Corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(FuzzAddress FuzzOptions FuzzControlMessage)
targets=()
limit=(-max_total_time=30)
merge=0
while (($#)); do
  case "$1" in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 64 ;;
    *)
      if [[ " ${all[*]} " != *" $1 "* ]]; then echo "fuzz.sh: unknown target $1 (${all[*]})" >&2; exit 64; fi
      targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all[@]}")

# The Swift driver keeps only the last -sanitize= it is given, and SwiftPM passes one per
# --sanitize: alone, `--sanitize=fuzzer --sanitize=address` compiles Swift code with ASan but
# no coverage counters (11 in all, from the C shims), and libFuzzer fuzzes blind. The -Xswiftc
# flag comes last and asks for both. SwiftPM's own flags still link both runtimes.
# --disable-dead-strip: the linker's --gc-sections would drop most objects' counters too.
build=(swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address
  -Xswiftc -sanitize=fuzzer,address --disable-dead-strip)
"${build[@]}"
bin=$("${build[@]}" --show-bin-path)

# Swift's own crash handler confuses ASan's reports: leave crashes to the sanitizer.
export SWIFT_BACKTRACE=enable=no
status=0
for target in "${targets[@]}"; do
  work="Fuzz/.work/$target"
  artifacts="Fuzz/.artifacts/$target"
  mkdir -p "$work" "$artifacts" "Fuzz/Corpus/$target"
  if ((merge)); then
    "$bin/$target" -merge=1 -max_len=1024 "Fuzz/Corpus/$target" "$work" 2>&1 | grep 'MERGE-OUTER: .* new files' || true
    continue
  fi
  echo "== $target (${limit[*]})"
  # A build without coverage would fuzz blind and find nothing: refuse to call that a pass.
  counters=$("$bin/$target" -runs=0 2>&1 </dev/null | sed -n 's/.*Loaded 1 modules *(\([0-9]*\) inline.*/\1/p' | head -1)
  if [[ -z "$counters" || "$counters" -lt 1000 ]]; then
    echo "fuzz.sh: $target has ${counters:-no} coverage counters; the build lost its instrumentation" >&2
    status=1
    continue
  fi
  if ! "$bin/$target" -max_len=1024 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${limit[@]}" "$work" "Fuzz/Corpus/$target"; then
    echo "fuzz.sh: $target FAILED; the input is in $artifacts/" >&2
    status=1
  fi
done
exit $status
