// What both benchmark programs share: their command-line options and small helpers for
// reporting, so the Sockets and swift-nio sides parse and print alike.
import Glibc

/// The options of a benchmark client or server (see each program's usage line).
public struct BenchOptions: Sendable {
    /// `sync` or `async` (the Sockets side only).
    public var api = "sync"
    public var port = 0
    public var size = 64
    public var duration = 2.0
    public var warmup = 0.5
    /// Batch datagrams with `recvmmsg`/`sendmmsg`.
    public var mmsg = false

    public init(_ arguments: ArraySlice<String>) {
        var rest = arguments
        while let flag = rest.popFirst() {
            if flag == "--mmsg" { mmsg = true; continue }
            let value = rest.popFirst() ?? ""
            switch flag {
            case "--api": api = value
            case "--port": port = Int(value) ?? 0
            case "--size": size = Int(value) ?? 64
            case "--duration": duration = Double(value) ?? 2
            case "--warmup": warmup = Double(value) ?? 0.5
            default: fail("unknown option \(flag)")
            }
        }
    }
}

/// Prints `PROGRAM: message` on standard error and exits with status 1.
public func fail(_ message: String) -> Never {
    let program = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "bench"
    var text = "\(program): \(message)\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}

/// Prints a result line and flushes it at once (the driver reads it through a pipe).
public func emit(_ line: String) {
    print(line)
    fflush(nil)
}

/// A duration in seconds.
public func seconds(_ duration: Duration) -> Double {
    let (whole, atto) = duration.components
    return Double(whole) + Double(atto) * 1e-18
}

/// The instant `secs` seconds from now.
public func after(_ secs: Double) -> ContinuousClock.Instant {
    .now.advanced(by: .nanoseconds(Int64(secs * 1e9)))
}

/// The UDP sink's count: from the first datagram to the last before the sender's end marker.
public struct SinkCount {
    public var count = 0
    public var first = ContinuousClock.now
    public var last = ContinuousClock.now

    public init() {}

    /// Counts one datagram of `length` bytes; at an end marker (1 byte), prints the result.
    public mutating func record(_ length: Int, at now: ContinuousClock.Instant) {
        if length == 1 {
            if count > 0 {
                let secs = seconds(first.duration(to: last))
                emit("{\"datagrams\":\(count),\"seconds\":\(secs),\"rate\":\(secs > 0 ? Double(count) / secs : 0)}")
            }
            count = 0
            return
        }
        if count == 0 { first = now }
        count += 1
        last = now
    }
}
