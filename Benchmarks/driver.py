#!/usr/bin/env python3
"""Runs the benchmark workloads against C, swift-nio, and this library's sync and async APIs,
in interleaved rounds, and prints one markdown table (run.sh builds everything first).

Every server runs pinned to CPU 0 and prints "port N"; every client prints one JSON line. The
many-connection loads (echo, accept, idle, allocations) use one common load generator, the C
one, pinned to CPU 1, so that only the server differs. Every process is started in a session of
its own and killed (the whole group) when its run ends, whatever happens."""

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

IMPLS = ["c", "nio", "sync", "async"]
# Ping-pong also runs a C client and server that wait with epoll, as an event loop does: the
# floor for any event-loop design (the blocking C pair is the floor for all).
PINGPONG_IMPLS = ["c", "c-epoll", "nio", "sync", "async"]
NAMES = {"c": "C", "c-epoll": "C (epoll)", "nio": "swift-nio", "sync": "Sockets (sync)", "async": "SocketsAsync"}

LIVE = set()  # process groups to kill on the way out


def kill_group(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    LIVE.discard(proc)


def kill_all(*_):
    for proc in list(LIVE):
        kill_group(proc)


class Bins:
    def __init__(self, swift_bin, c_bin):
        self.cbench = os.path.join(c_bin, "cbench")
        self.malloc = os.path.join(c_bin, "libmalloccount.so")
        self.sockets = os.path.join(swift_bin, "bench-sockets")
        self.nio = os.path.join(swift_bin, "bench-nio")

    def server(self, impl, kind):
        """kind: echo-one (one connection), discard, echo-many, udp-sink, udp-sink-mmsg."""
        mmsg = ["--mmsg"] if kind == "udp-sink-mmsg" else []
        udp = kind.startswith("udp-sink")
        if impl == "c-epoll":
            return [self.cbench, "server", "echo-epoll"]
        if impl == "c":
            name = {"echo-one": "echo-blocking", "discard": "discard-blocking", "echo-many": "echo-epoll"}.get(kind, "udp-sink")
            return [self.cbench, "server", name] + mmsg
        if impl == "nio":
            name = "udp-sink" if udp else ("discard" if kind == "discard" else "echo")
            return [self.nio, "server", name] + mmsg
        if impl == "sync":
            name = {"echo-one": "sync-echo-blocking", "discard": "sync-discard-blocking", "echo-many": "sync-echo-epoll"}.get(kind, "sync-udp-sink")
            return [self.sockets, "server", name] + mmsg
        name = "async-udp-sink" if udp else ("async-discard" if kind == "discard" else "async-echo")
        return [self.sockets, "server", name] + mmsg

    def client(self, impl, command):
        """This implementation's own client for pingpong, bulk, udp-send."""
        if impl == "c":
            return [self.cbench, command]
        if impl == "c-epoll":
            return [self.cbench, command, "--epoll"]
        if impl == "nio":
            return [self.nio, command]
        return [self.sockets, command, "--api", impl]


def read_line(proc, timeout):
    """One line of the process's standard output, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        if chunk == b"\n":
            return buf.decode()
        buf += chunk
    return None


def run_pair(bins, impl, server_kind, client_argv, placement, duration, result_from="client", env=None, log=None):
    """Starts impl's server, runs the client against it, returns the JSON result (or an error)."""
    server_cpu, client_cpu = placement
    server_env = dict(os.environ, **(env or {}))
    server = subprocess.Popen(
        ["taskset", "-c", server_cpu] + bins.server(impl, server_kind),
        stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL, start_new_session=True, env=server_env)
    LIVE.add(server)
    client = None
    try:
        line = read_line(server, 15)
        if not line or not line.startswith("port "):
            return {"error": f"server did not start ({line!r})"}
        port = line.split()[1]
        argv = [a.replace("{port}", port).replace("{pid}", str(server.pid)) for a in client_argv]
        client = subprocess.Popen(["taskset", "-c", client_cpu] + argv, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
                                  start_new_session=True)
        LIVE.add(client)
        try:
            out, _ = client.communicate(timeout=duration + 60)
        except subprocess.TimeoutExpired:
            return {"error": "client timed out"}
        if client.returncode != 0:
            return {"error": f"client exited with {client.returncode}"}
        if result_from == "server":
            line = read_line(server, 5)
            if not line:
                return {"error": "no result from the server"}
            result = json.loads(line)
            result["client"] = json.loads(out.decode().strip().splitlines()[-1])
            return result
        return json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as error:
        return {"error": f"unreadable result: {error}"}
    finally:
        if client is not None:
            kill_group(client)
        kill_group(server)


class Workload:
    def __init__(self, key, title, unit, scale, metric, run, extras=(), better="higher", impls=IMPLS):
        self.key, self.title, self.unit, self.scale, self.metric = key, title, unit, scale, metric
        self.run, self.extras, self.better, self.impls = run, extras, better, impls


def workloads(bins, quick, only):
    d = 0.5 if quick else 2.0          # ping-pong
    db = 1.0 if quick else 3.0         # bulk, UDP, accept
    de = 1.0 if quick else 3.0         # echo
    wu = 0.2 if quick else 0.3
    idle = 2000 if quick else 10000
    items = []

    for size in (1, 64):
        for name, placement in (("same", ("0", "0")), ("split", ("0", "1"))):
            def run(impl, size=size, placement=placement):
                argv = bins.client(impl, "pingpong") + ["--port", "{port}", "--size", str(size), "--duration", str(d), "--warmup", str(wu)]
                return run_pair(bins, impl, "echo-one", argv, placement, d + wu)
            items.append(Workload(f"pingpong-{size}-{name}", f"ping-pong {size} B, {name}", "round trips/s", 1, "rate", run,
                                  extras=(("p50 µs", "p50_us", 1), ("p99 µs", "p99_us", 1)), impls=PINGPONG_IMPLS))

    def bulk(impl):
        argv = bins.client(impl, "bulk") + ["--port", "{port}", "--size", str(256 * 1024), "--duration", str(db)]
        return run_pair(bins, impl, "discard", argv, ("0", "1"), db)
    items.append(Workload("bulk", "bulk 256 KiB writes, split", "GB/s", 1e-9, "rate", bulk))

    for conns in (100, 1000):
        def echo(impl, conns=conns):
            argv = [bins.cbench, "load", "--port", "{port}", "--conns", str(conns), "--size", "64", "--warmup", str(wu + 0.5),
                    "--duration", str(de), "--server-pid", "{pid}"]
            return run_pair(bins, impl, "echo-many", argv, ("0", "1"), de + 1)
        items.append(Workload(f"echo-{conns}", f"echo {conns} conns × 64 B", "msgs/s", 1, "rate", echo,
                              extras=(("server CPU µs/msg", "cpu_us_per_msg", 1), ("ctx sw/msg", "ctx_per_msg", 1))))

    for mmsg in (False, True):
        def udp(impl, mmsg=mmsg):
            flag = ["--mmsg"] if mmsg else []
            argv = bins.client(impl, "udp-send") + ["--port", "{port}", "--size", "64", "--duration", str(db)] + flag
            result = run_pair(bins, impl, "udp-sink-mmsg" if mmsg else "udp-sink", argv, ("0", "1"), db, result_from="server")
            if "client" in result:
                result["sent_rate"] = result["client"]["rate"]
            return result
        calls = "recvmmsg/sendmmsg ×64" if mmsg else "recvfrom/sendto"
        items.append(Workload(f"udp-{'mmsg' if mmsg else 'single'}", f"UDP 64 B, {calls}", "datagrams/s received", 1, "rate", udp,
                              extras=(("sent/s", "sent_rate", 1),)))

    def accept(impl):
        argv = [bins.cbench, "accept", "--port", "{port}", "--parallel", "4", "--warmup", str(wu), "--duration", str(db),
                "--server-pid", "{pid}"]
        return run_pair(bins, impl, "echo-many", argv, ("0", "1"), db + 1)
    items.append(Workload("accept", "accept + 8 B exchange", "conns/s", 1, "rate", accept,
                          extras=(("server CPU µs/conn", "cpu_us_per_conn", 1),)))

    def idle_run(impl):
        argv = [bins.cbench, "idle", "--port", "{port}", "--conns", str(idle), "--server-pid", "{pid}"]
        return run_pair(bins, impl, "echo-many", argv, ("0", "1"), 30)
    items.append(Workload("idle", f"{idle} idle conns: server RSS", "bytes/conn", 1, "bytes_per_conn", idle_run, better="lower"))

    def allocs(impl):
        counter = tempfile.NamedTemporaryFile(prefix="malloc-counter-", delete=False)
        counter.close()
        try:
            argv = [bins.cbench, "load", "--port", "{port}", "--conns", "100", "--size", "64", "--warmup", str(wu + 0.5),
                    "--duration", str(min(de, 1.0)), "--server-pid", "{pid}", "--malloc-counter", counter.name]
            env = {"LD_PRELOAD": bins.malloc, "MALLOC_COUNTER_FILE": counter.name}
            return run_pair(bins, impl, "echo-many", argv, ("0", "1"), de + 1, env=env)
        finally:
            os.unlink(counter.name)
    items.append(Workload("allocs", "echo 100 conns: mallocs/msg", "mallocs/msg", 1, "mallocs_per_msg", allocs, better="lower"))

    if only:
        items = [w for w in items if any(w.key.startswith(o) for o in only)]
    return items


def fmt(value, unit=""):
    if value is None:
        return "n/a"
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def summarize(items, results, reps):
    """The markdown table, and per-workload medians for the targets."""
    lines = ["| workload | implementation | median | range (min–max) | × C | × swift-nio | more (medians) |",
             "|---|---|---:|---:|---:|---:|---|"]
    medians = {}
    for w in items:
        med = {}
        for impl in w.impls:
            runs = [r for r in results[w.key][impl] if "error" not in r]
            values = [r[w.metric] * w.scale for r in runs if w.metric in r]
            med[impl] = statistics.median(values) if values else None
        medians[w.key] = med
        for impl in w.impls:
            runs = results[w.key][impl]
            good = [r for r in runs if "error" not in r]
            values = [r[w.metric] * w.scale for r in good if w.metric in r]
            errors = [r["error"] for r in runs if "error" in r]
            if not values:
                why = errors[0] if errors else "not run"
                lines.append(f"| {w.title} ({w.unit}) | {NAMES[impl]} | n/a | {why} | | | |")
                continue
            m = med[impl]
            ratio_c = f"{m / med['c']:.2f}" if med["c"] else "n/a"
            ratio_n = f"{m / med['nio']:.2f}" if med["nio"] else "n/a"
            more = []
            for label, key, scale in w.extras:
                xs = [r[key] * scale for r in good if key in r]
                if xs:
                    more.append(f"{label} {fmt(statistics.median(xs))}")
                    medians.setdefault(f"{w.key}:{key}", {})[impl] = statistics.median(xs)
            if errors:
                more.append(f"{len(errors)} of {len(runs)} runs failed: {errors[0]}")
            unit = w.unit
            lines.append(f"| {w.title} ({unit}) | {NAMES[impl]} | {fmt(m)} | {fmt(min(values))}–{fmt(max(values))} | "
                         f"{ratio_c} | {ratio_n} | {'; '.join(more)} |")
    return "\n".join(lines), medians


def targets(medians):
    """The issue's targets, met or missed, from this run's medians."""
    out = []

    def ratio(key, impl, ref):
        m = medians.get(key)
        if not m or not m.get(impl) or not m.get(ref):
            return None
        return m[impl] / m[ref]

    def line(text, value, goal):
        if value is None:
            out.append(f"- {text}: not measured")
        else:
            out.append(f"- {text}: {value:.2f}x (target ≥ {goal}x) — {'**met**' if value >= goal else '**missed**'}")

    line("async echo, 100 conns vs C epoll server", ratio("echo-100", "async", "c"), 0.95)
    line("async echo, 100 conns vs swift-nio", ratio("echo-100", "async", "nio"), 1.3)
    # Throughput with many connections swings ±20% with what else runs on the machine; the
    # server's CPU time per message moves much less. Messages per CPU-second, relative:
    for ref, goal in (("c", 0.95), ("nio", 1.3)):
        cpu = ratio("echo-100:cpu_us_per_msg", ref, "async")
        name = "C epoll server" if ref == "c" else "swift-nio"
        line(f"async echo, 100 conns vs {name}, by server CPU per message", cpu, goal)
    for size in (1, 64):
        line(f"same-CPU ping-pong {size} B, sync vs C", ratio(f"pingpong-{size}-same", "sync", "c"), 0.95)
        line(f"same-CPU ping-pong {size} B, async vs C", ratio(f"pingpong-{size}-same", "async", "c"), 0.9)
    line("bulk, sync vs C", ratio("bulk", "sync", "c"), 0.95)
    line("bulk, async vs C", ratio("bulk", "async", "c"), 0.95)
    a = medians.get("allocs", {}).get("async")
    if a is None:
        out.append("- async echo allocations per message: not measured")
    else:
        out.append(f"- async echo allocations per message: {a:.3f} (target 0) — {'**met**' if a < 0.01 else '**missed**'}")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--swift-bin", required=True)
    parser.add_argument("--c-bin", required=True)
    parser.add_argument("--quick", action="store_true", help="one round, short durations (about a minute)")
    parser.add_argument("--reps", type=int, help="rounds (default 3, 1 with --quick)")
    parser.add_argument("--only", action="append", help="run only workloads whose key starts with this (repeatable)")
    parser.add_argument("--json", help="write every run's raw result and the medians to this file")
    parser.add_argument("--markdown", help="write the table and the targets to this file")
    parser.add_argument("--log", help="append the servers' and clients' standard error here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bins = Bins(args.swift_bin, args.c_bin)
    reps = args.reps or (1 if args.quick else 3)
    items = workloads(bins, args.quick, args.only)
    log = open(args.log, "ab") if args.log else None
    results = {w.key: {impl: [] for impl in w.impls} for w in items}
    started = time.monotonic()
    try:
        for w in items:
            # Many-connection echo swings the most: two more rounds when there are several.
            rounds = reps + 2 if reps >= 3 and w.key.startswith("echo") else reps
            for rep in range(rounds):
                for impl in w.impls:
                    result = w.run(impl)
                    results[w.key][impl].append(result)
                    shown = result.get("error") or fmt(result.get(w.metric, 0) * w.scale)
                    print(f"  [{time.monotonic() - started:6.1f} s] {w.key:20} round {rep + 1}/{rounds} {NAMES[impl]:15} {shown}",
                          file=sys.stderr, flush=True)
    finally:
        kill_all()
    table, medians = summarize(items, results, reps)
    goals = targets(medians)
    uname = os.uname()
    header = (f"{reps} interleaved round(s){' (--quick)' if args.quick else ''}; medians; kernel {uname.release}, "
              f"{os.cpu_count()} CPUs; {time.monotonic() - started:.0f} s in all.")
    text = f"{header}\n\n{table}\n\nTargets:\n{goals}\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reps": reps, "quick": args.quick, "kernel": uname.release, "results": results, "medians": medians}, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    finally:
        kill_all()
