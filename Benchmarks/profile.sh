#!/usr/bin/env bash
# Counters that explain the table (run Benchmarks/run.sh once first, to build everything):
#
#   Benchmarks/profile.sh perf IMPL        where IMPL's echo server spends its CPU under the
#                                          100-connection load (perf record -e cpu-clock: this
#                                          VM has software events only), by library and by
#                                          function; IMPL: c, nio, sync, async
#   Benchmarks/profile.sh strace IMPL      system calls per message of IMPL's echo server
#                                          (100 connections) and per round trip of its own
#                                          ping-pong pair (strace -c -f, server and client)
#
# Rates under perf or strace are slower than in the table: read the shares and the counts per
# message. (valgrind 3.19 here cannot profile the Swift binaries: it rejects their DWARF 5 and,
# stripped of it, crashes in libdispatch's sigsuspend; it works for the C server.)
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:?usage: profile.sh perf|strace IMPL}"
impl="${2:?usage: profile.sh perf|strace IMPL}"
bin="$(swift build -c release --show-bin-path)"
cbench=.build/c/cbench
out="results/profile-$mode-$impl"
mkdir -p results

case "$impl" in
    c) echo_server=("$cbench" server echo-epoll); pp_server=("$cbench" server echo-blocking); pp_client=("$cbench" pingpong) ;;
    nio) echo_server=("$bin/bench-nio" server echo); pp_server=("${echo_server[@]}"); pp_client=("$bin/bench-nio" pingpong) ;;
    sync) echo_server=("$bin/bench-sockets" server sync-echo-epoll); pp_server=("$bin/bench-sockets" server sync-echo-blocking)
          pp_client=("$bin/bench-sockets" pingpong --api sync) ;;
    async) echo_server=("$bin/bench-sockets" server async-echo); pp_server=("${echo_server[@]}"); pp_client=("$bin/bench-sockets" pingpong --api async) ;;
    *) echo "unknown implementation $impl (c, nio, sync, async)" >&2; exit 64 ;;
esac

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Starts a server (under a wrapper) with its output in $1; sets $port and $spid.
start() {
    local log="$1"; shift
    : > "$log"
    "$@" > "$log" 2>"$log.err" &
    pids+=($!)
    spid=$!
    for _ in $(seq 600); do grep -q '^port ' "$log" && break; sleep 0.05; done
    port="$(awk '/^port /{print $2; exit}' "$log")"
    [ -n "$port" ] || { echo "the server did not start" >&2; cat "$log.err" >&2; exit 1; }
}

# Ends the server that strace runs (strace then writes its summary and exits).
stop_traced() {
    local child
    for child in $(ps --ppid "$spid" -o pid=); do kill "$child" 2>/dev/null || true; done
    wait "$spid" 2>/dev/null || true
}

messages() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }

case "$mode" in
perf)
    # Software sampling (this VM has no hardware counters): where the server's CPU time goes,
    # by library and by function, under the 100-connection echo load.
    start "$out.server" taskset -c 0 "${echo_server[@]}"
    taskset -c 1 "$cbench" load --port "$port" --conns 100 --warmup 0.5 --duration 6 --server-pid "$spid" > "$out.load" &
    lpid=$!
    sleep 1
    perf record -q -e cpu-clock -F 5000 -g -p "$spid" -o "$out.data" -- sleep 4 2>/dev/null
    wait "$lpid"
    echo "$impl echo server, 100 connections: $(cat "$out.load")"
    echo "share of the server's samples by library:"
    perf report -i "$out.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -8
    echo "top functions outside the kernel:"
    perf report -i "$out.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | grep -v kernel.kallsyms | head -"${TOP:-15}"
    ;;
strace)
    start "$out.server" strace -f -c -o "$out.echo.strace" "${echo_server[@]}"
    result="$("$cbench" load --port "$port" --conns 100 --warmup 0 --duration 3 --server-pid "$spid")"
    n="$(messages messages <<< "$result")"
    stop_traced
    echo "$impl echo server, 100 connections, $n messages; system calls per message:"
    awk -v n="$n" 'NR > 2 && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-16s %.3f\n", $NF, $4 / n }' "$out.echo.strace" | sort -k2 -nr | head -8
    start "$out.server" strace -f -c -o "$out.pp-server.strace" "${pp_server[@]}"
    result="$(strace -f -c -o "$out.pp-client.strace" "${pp_client[@]}" --port "$port" --size 64 --warmup 0 --duration 2)"
    n="$(messages round_trips <<< "$result")"
    stop_traced
    for side in server client; do
        echo "$impl ping-pong $side, $n round trips; system calls per round trip:"
        awk -v n="$n" 'NR > 2 && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-16s %.3f\n", $NF, $4 / n }' "$out.pp-$side.strace" | sort -k2 -nr | head -6
    done
    ;;
*) echo "unknown mode $mode (perf, strace)" >&2; exit 64 ;;
esac
