import ArgumentParser
import Sockets
import SocketsAsync

/// `sock scan`: a TCP connect scan with many non-blocking connects in flight.
struct Scan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find open TCP ports with many non-blocking connects at once.",
        usage: "sock scan [-w SECS] [--concurrency N] [--using async|epoll|poll] [-4|-6] [-v] HOST PORTS",
        discussion: """
            Prints each open port (`PORT/tcp open`) on standard output in order, and a summary \
            on standard error. A port is closed when the connection is refused and filtered \
            when nothing answers within -w seconds. Scan only hosts you are allowed to.

            By default (--using async) each connect is a task on the SocketsAsync event loop, \
            at most --concurrency at a time, each with its own deadline. --using epoll or poll \
            runs the same scan on one thread over the synchronous core, waiting with epoll(7) \
            or poll(2) directly, for comparison.

            Examples:
              sock scan 127.0.0.1 22,80,443,8000-8100
              sock scan -w 0.5 --concurrency 1000 ::1 1-65535
            """
    )

    enum Driver: String, ExpressibleByArgument, CaseIterable {
        case async, epoll, poll
    }

    @Option(name: [.customShort("w"), .customLong("timeout")], help: ArgumentHelp("Seconds to wait for each connect.", valueName: "SECS"))
    var timeout = 1.0

    @Option(help: "How many connects to have in flight at once (1...10000).")
    var concurrency = 256

    @Option(name: .customLong("using"), help: "What waits for the connects: async (the event loop), epoll or poll.")
    var driver: Driver = .async

    @OptionGroup var family: FamilyOptions

    @Flag(name: .shortAndLong, help: "Also print closed and filtered ports.")
    var verbose = false

    @Argument(help: "The host to scan.")
    var host: String

    @Argument(help: "Ports: numbers and ranges separated by commas, like 22,80,8000-8100.")
    var ports: String

    func validate() throws {
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency \(concurrency) is outside 1...10000") }
    }

    func run() async throws {
        let portList = try Self.parsePorts(ports)
        let waitLimit = try seconds(timeout, option: "-w")
        guard let base = try resolveEndpoint(host: host, port: 1, family: family.family, type: .stream).first else {
            throw ToolError.runtime("no address for \(host)")
        }
        let start = ContinuousClock.now
        let results: [UInt16: PortState]
        if driver == .async {
            results = try await AsyncPortScanner(base: base, timeout: waitLimit, concurrency: concurrency).scan(portList)
        } else {
            results = try PortScanner(base: base, timeout: waitLimit, concurrency: concurrency, driver: driver).scan(portList)
        }
        let elapsed = start.duration(to: .now)
        var text = ""
        for (port, state) in results.sorted(by: { $0.key < $1.key }) where state == .open || verbose {
            text += "\(port)/tcp \(state.rawValue)\n"
        }
        try Console.out(text)
        let counts = Dictionary(grouping: results.values, by: { $0 }).mapValues(\.count)
        Console.error(
            "sock: scanned \(portList.count) port\(portList.count == 1 ? "" : "s") on \(Resolve.host(of: base)) in \(Format.duration(elapsed)) "
                + "with \(driver.rawValue): \(counts[.open] ?? 0) open, \(counts[.closed] ?? 0) closed, "
                + "\(counts[.filtered] ?? 0) filtered\((counts[.failed] ?? 0) > 0 ? ", \(counts[.failed] ?? 0) failed" : "")")
    }

    /// Parses `22,80,8000-8100` into sorted, distinct ports.
    static func parsePorts(_ text: String) throws(ToolError) -> [UInt16] {
        var ports = Set<UInt16>()
        guard !text.isEmpty, text.utf8.count <= 100_000 else { throw ToolError.usage("PORTS is empty or too long") }
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            func number(_ text: Substring) throws(ToolError) -> UInt16 {
                guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCII), let value = Int(text), (1...65_535).contains(value) else {
                    throw ToolError.usage("port \"\(text)\" in \"\(part)\" is not a number in 1...65535")
                }
                return UInt16(value)
            }
            let low = try number(bounds[0])
            let high = bounds.count == 2 ? try number(bounds[1]) : low
            guard low <= high else { throw ToolError.usage("port range \(part) runs backwards") }
            for port in low...high { ports.insert(port) }
        }
        return ports.sorted()
    }
}

/// What a scanned port turned out to be.
enum PortState: String, Sendable {
    case open, closed, filtered
    /// The connect failed for another reason (unreachable, permission, ...).
    case failed
}

/// Runs connects as tasks on the event loop, at most `concurrency` at a time, each with its
/// own deadline.
struct AsyncPortScanner {
    let base: SocketAddress
    let timeout: Duration
    let concurrency: Int
    let loop: EventLoop = .shared

    func scan(_ ports: [UInt16]) async throws(ToolError) -> [UInt16: PortState] {
        let outcome: Result<[UInt16: PortState], ToolError> = await loop.run {
            await withTaskGroup(of: (UInt16, PortState).self) { group in
                var results: [UInt16: PortState] = [:]
                var inFlight = 0
                var limit = concurrency
                var pending = ports[...]
                while let port = pending.first {
                    if inFlight >= limit, let (done, state) = await group.next() {
                        results[done] = state
                        inFlight -= 1
                        continue
                    }
                    let socket: AsyncSocket
                    do throws(SocketError) {
                        socket = try AsyncSocket(base.domain, .stream, loop: loop)
                    } catch {
                        if error.errno == .tooManyOpenFiles || error.errno == .tooManyOpenFilesInSystem, inFlight > 0 {
                            // Out of descriptors: go on with fewer at once.
                            limit = max(1, inFlight)
                            continue
                        }
                        group.cancelAll()
                        return .failure(ToolError(error))
                    }
                    pending.removeFirst()
                    var address = base
                    address.setPort(port)
                    let deadline = ContinuousClock.now.advanced(by: timeout)
                    inFlight += 1
                    group.addTask(executorPreference: loop) {
                        defer { try? socket.close() }
                        do throws(SocketError) {
                            try await socket.connect(to: address, deadline: deadline)
                            return (port, .open)
                        } catch {
                            return (port, PortScanner.state(for: error))
                        }
                    }
                }
                for await (port, state) in group { results[port] = state }
                return .success(results)
            }
        }
        return try outcome.get()
    }
}

/// Runs non-blocking connects, at most `concurrency` at a time, and waits for their outcome
/// with epoll or poll.
final class PortScanner {
    let base: SocketAddress
    let timeout: Duration
    let concurrency: Int
    let driver: Scan.Driver

    private struct Attempt {
        let port: UInt16
        let socket: Socket
        let deadline: ContinuousClock.Instant
    }

    init(base: SocketAddress, timeout: Duration, concurrency: Int, driver: Scan.Driver) {
        self.base = base
        self.timeout = timeout
        self.concurrency = concurrency
        self.driver = driver
    }

    func scan(_ ports: [UInt16]) throws(ToolError) -> [UInt16: PortState] {
        var results: [UInt16: PortState] = [:]
        var pending = ports[...]
        var inFlight: [CInt: Attempt] = [:]
        var limit = concurrency
        let epoll: Epoll?
        do {
            epoll = driver == .epoll ? try Epoll() : nil
        } catch {
            throw ToolError(error)
        }
        defer {
            for attempt in inFlight.values { try? attempt.socket.close() }
            try? epoll?.close()
        }
        var events = EpollEventBuffer(capacity: 256)
        while !pending.isEmpty || !inFlight.isEmpty {
            // Start connects up to the limit.
            while inFlight.count < limit, let port = pending.first {
                var address = base
                address.setPort(port)
                let socket: Socket
                do {
                    socket = try Socket(base.domain, .stream, nonBlocking: true)
                } catch {
                    if error.errno == .tooManyOpenFiles || error.errno == .tooManyOpenFilesInSystem, !inFlight.isEmpty {
                        // Out of descriptors: go on with fewer at once.
                        limit = max(1, inFlight.count)
                        break
                    }
                    throw ToolError(error)
                }
                pending.removeFirst()
                do {
                    if try socket.tryConnect(to: address) {
                        results[port] = .open
                        try? socket.close()
                        continue
                    }
                    let fd = socket.descriptor
                    try epoll?.add(socket, events: [.writable], data: UInt64(UInt32(bitPattern: fd)))
                    inFlight[fd] = Attempt(port: port, socket: socket, deadline: ContinuousClock.now.advanced(by: timeout))
                } catch {
                    results[port] = Self.state(for: error)
                    try? socket.close()
                }
            }
            guard !inFlight.isEmpty else { continue }
            // Wait for connects to finish, or for the earliest deadline.
            let earliest = inFlight.values.map(\.deadline).min() ?? .now
            let wait = max(.zero, ContinuousClock.now.duration(to: earliest))
            var ready: [CInt] = []
            do {
                if let epoll {
                    let count = try epoll.wait(into: &events, timeout: wait)
                    for index in 0..<count { ready.append(CInt(truncatingIfNeeded: events[index].data)) }
                } else {
                    var entries = inFlight.values.map { PollEntry($0.socket, events: .writable) }
                    if try Socket.poll(&entries, timeout: wait) > 0 {
                        ready = entries.filter(\.isReady).map(\.descriptor)
                    }
                }
            } catch {
                throw ToolError(error)
            }
            for fd in ready {
                guard let attempt = inFlight.removeValue(forKey: fd) else { continue }
                try? epoll?.remove(fd)
                do {
                    try attempt.socket.finishConnect()
                    results[attempt.port] = .open
                } catch {
                    results[attempt.port] = Self.state(for: error)
                }
                try? attempt.socket.close()
            }
            let now = ContinuousClock.now
            for (fd, attempt) in inFlight where attempt.deadline <= now {
                inFlight[fd] = nil
                try? epoll?.remove(fd)
                try? attempt.socket.close()
                results[attempt.port] = .filtered
            }
        }
        return results
    }

    static func state(for error: SocketError) -> PortState {
        if error.isTimeout { return .filtered }
        switch error.errno {
        case .connectionRefused?, .connectionReset?: return .closed
        case .timedOut?: return .filtered
        default: return .failed
        }
    }
}
