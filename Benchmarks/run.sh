#!/usr/bin/env bash
# Builds the benchmarks (swift build -c release here, gcc -O2 for the C reference and the
# malloc counter) and runs every workload against C, swift-nio, Sockets and SocketsAsync in
# interleaved rounds; prints one markdown table and the issue's targets, met or missed.
#
#   Benchmarks/run.sh            3 rounds, about 10 minutes
#   Benchmarks/run.sh --quick    1 round, short runs, about a minute
#   Benchmarks/run.sh --only echo --reps 5    some workloads only (keys: pingpong, bulk, echo,
#                                             udp, accept, idle, allocs)
# The table and raw results go to Benchmarks/results/latest.{md,json}; the processes' standard
# error to Benchmarks/results/latest.log. See ../BENCHMARKS.md for how to read them.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p .build/c results
gcc -O2 -Wall -Wextra -o .build/c/cbench c/cbench.c
gcc -O2 -Wall -Wextra -shared -fPIC -o .build/c/libmalloccount.so c/malloccount.c
echo "building the Swift benchmarks (release; swift-nio takes several minutes the first time)..." >&2
# A new source file in the main package (a path dependency) can go unseen by a build plan
# made before it: plan again (cheap; nothing is recompiled that has not changed).
rm -f .build/release.yaml
swift build -c release >&2
bin="$(swift build -c release --show-bin-path)"
: > results/latest.log
exec python3 driver.py --swift-bin "$bin" --c-bin .build/c \
    --markdown results/latest.md --json results/latest.json --log results/latest.log "$@"
