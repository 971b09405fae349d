import ArgumentParser
import Foundation
import Sockets
import SystemPackage
import Synchronization

// MARK: - Failures

/// A failure to report: its message (printed after `sock: `) and the exit status.
struct ToolError: Error, CustomStringConvertible {
    /// 1: something failed at run time.
    static let runtimeStatus: Int32 = 1
    /// 64 (`EX_USAGE`): the command line was wrong.
    static let usageStatus: Int32 = 64

    let message: String
    let status: Int32

    static func usage(_ message: String) -> ToolError { ToolError(message: message, status: usageStatus) }
    static func runtime(_ message: String) -> ToolError { ToolError(message: message, status: runtimeStatus) }

    init(message: String, status: Int32) {
        self.message = message
        self.status = status
    }

    /// Classifies any error: the library's input checks (a malformed address, a port out of
    /// range, an over-long Unix path) are usage errors; everything else is a runtime failure.
    init(_ error: any Error) {
        switch error {
        case let error as ToolError:
            self = error
        case let error as SocketError:
            if case .invalidArgument = error.reason {
                self = .usage(error.description)
            } else {
                self = .runtime(error.description)
            }
        case let error as ValidationError:
            self = .usage(error.message)
        case let error as Errno:
            self = .runtime(Console.describe(error))
        default:
            self = .runtime(String(describing: error))
        }
    }

    var description: String { message }
}

// MARK: - Standard streams

/// Writes to standard output and standard error with `write(2)`, unbuffered, so that binary
/// data and text never interleave out of order, and a closed reader gives `EPIPE`.
enum Console {
    /// Serialises writers so that each call's bytes stay together.
    private static let outputLock = LockedValue<Void>(())

    /// Writes bytes to standard output.
    static func write(_ bytes: UnsafeRawBufferPointer) throws(ToolError) {
        do {
            try outputLock.withLock { _ in
                _ = try FileDescriptor.standardOutput.writeAll(bytes)
            }
        } catch {
            throw ToolError.runtime("write(stdout): \(describe(error))")
        }
    }

    /// Writes text to standard output.
    static func out(_ text: String) throws(ToolError) {
        let bytes = Array(text.utf8)
        try bytes.withBytes { (buffer) throws(ToolError) in try write(buffer) }
    }

    /// Writes a line to standard error (best effort: there is nowhere to report its failure).
    static func error(_ line: String) {
        let text = line.hasSuffix("\n") ? line : line + "\n"
        _ = try? FileDescriptor.standardError.writeAll(text.utf8)
    }

    /// Writes text to standard error without adding a newline (for `\r` progress lines).
    static func errorRaw(_ text: String) {
        _ = try? FileDescriptor.standardError.writeAll(text.utf8)
    }

    /// Opens /dev/null on standard input, output or error if one was closed, so that no
    /// socket can be given descriptor 0, 1 or 2 and be read or written by mistake.
    static func ensureStandardDescriptors() {
        while let fd = try? FileDescriptor.open("/dev/null", .readWrite) {
            if fd.rawValue > 2 {
                try? fd.close()
                return
            }
        }
    }

    /// Whether standard error is a terminal (live progress lines only make sense there).
    static var errorIsTerminal: Bool { ProcessSupport.isTerminal(2) }

    /// Whether standard input is a terminal.
    static var inputIsTerminal: Bool { ProcessSupport.isTerminal(0) }

    /// Reads from standard input; 0 at end-of-file.
    static func read(into buffer: UnsafeMutableRawBufferPointer) throws(ToolError) -> Int {
        try read(.standardInput, name: "stdin", into: buffer)
    }

    /// Reads from a file, pipe or device; 0 at end-of-file. A descriptor left non-blocking
    /// by whoever opened it is waited for with `poll`.
    static func read(_ file: FileDescriptor, name: String, into buffer: UnsafeMutableRawBufferPointer) throws(ToolError) -> Int {
        while true {
            do {
                return try file.read(into: buffer)
            } catch Errno.resourceTemporarilyUnavailable {
                var entries = [PollEntry(descriptor: file.rawValue, events: .readable)]
                _ = try? Socket.poll(&entries, timeout: .seconds(1))
            } catch {
                throw ToolError.runtime("read(\(name)): \(describe(error))")
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let errno = error as? Errno { return "\(errno.description) (\(errno.name ?? "errno \(errno.rawValue)"))" }
        return String(describing: error)
    }
}

// MARK: - Interrupts

/// Takes SIGINT, SIGTERM and SIGHUP on a thread of its own, runs the registered clean-up
/// actions (removing a Unix socket file, printing ping's summary), then exits 128 + signal.
enum Interrupts {
    private static let actions = LockedValue<[Int: @Sendable () -> Void]>([:])
    private static let nextKey = Atomic<Int>(0)
    private static let signals: [CInt] = [SIGINT, SIGTERM, SIGHUP]

    /// Blocks the signals (before any thread starts, so that all threads inherit the mask)
    /// and starts the thread that waits for them.
    static func install() {
        do {
            try ProcessSupport.blockSignals(signals)
        } catch {
            return  // keep the default actions: interrupts still stop the process
        }
        let thread = Thread {
            guard let signal = try? ProcessSupport.waitForSignal(signals) else { return }
            // An action may block (printing to a full pipe): exit after a while regardless.
            let done = Latch()
            startThread("interrupt-actions") {
                runActions()
                done.fire()
            }
            _ = done.wait(timeout: .seconds(2))
            Sock.exit(withError: ExitCode(128 + signal))
        }
        thread.name = "signals"
        thread.start()
    }

    /// Registers an action to run on interrupt; returns a key for ``remove(_:)``.
    @discardableResult
    static func onInterrupt(_ action: @escaping @Sendable () -> Void) -> Int {
        let key = nextKey.add(1, ordering: .relaxed).newValue
        actions.withLock { $0[key] = action }
        return key
    }

    /// Unregisters an action.
    static func remove(_ key: Int) {
        _ = actions.withLock { $0.removeValue(forKey: key) }
    }

    /// Runs and clears every action (also used on a normal exit).
    static func runActions() {
        let pending = actions.withLock { actions -> [@Sendable () -> Void] in
            defer { actions.removeAll() }
            return actions.sorted { $0.key < $1.key }.map(\.value)
        }
        for action in pending { action() }
    }
}

// MARK: - Address options

/// `-4` / `-6`.
struct FamilyOptions: ParsableArguments {
    @Flag(name: .customShort("4"), help: "Use IPv4 only.")
    var ipv4 = false

    @Flag(name: .customShort("6"), help: "Use IPv6 only.")
    var ipv6 = false

    func validate() throws {
        if ipv4 && ipv6 { throw ValidationError("-4 and -6 cannot be used together") }
    }

    /// The family asked for, or `nil` for either.
    var family: SocketDomain? {
        if ipv4 { return .inet }
        if ipv6 { return .inet6 }
        return nil
    }
}

/// Parses a port: a number 0...65535 or a service name from /etc/services.
func parsePort(_ text: String, protocol: String, allowZero: Bool) throws(ToolError) -> UInt16 {
    if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
        guard text.utf8.count <= 6, let value = Int(text), let port = UInt16(exactly: value) else {
            throw ToolError.usage("port \(text) is outside 0...65535")
        }
        if port == 0 && !allowZero { throw ToolError.usage("port 0 cannot be connected to") }
        return port
    }
    if text.hasPrefix("-"), Int(text) != nil {
        throw ToolError.usage("port \(text) is outside 0...65535")
    }
    guard !text.isEmpty, text.utf8.count < 64, let port = try? ServiceEntry(named: text, protocol: `protocol`).port else {
        throw ToolError.usage("unknown port or service \"\(text)\" (expected a number 0...65535 or a name from /etc/services)")
    }
    return port
}

/// Whether a host is written as an address (so it must parse as one, with no name lookup).
func looksNumeric(_ host: String) -> Bool {
    host.contains(":") || (!host.isEmpty && host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E })
}

/// Rejects text that cannot be a DNS host name before it reaches a resolver: letters,
/// digits, `-`, `_` and `.` only, at most 253 bytes, labels of 1...63 bytes.
func validateHostName(_ host: String) throws(ToolError) {
    let allowed = host.utf8.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x5F || byte == 0x2E
    }
    let labels = host.split(separator: ".", omittingEmptySubsequences: false)
    let trimmed = host.hasSuffix(".") ? labels.dropLast() : labels[...]
    guard allowed, !host.hasPrefix("-"), host.utf8.count <= 253, !trimmed.isEmpty,
        trimmed.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 })
    else {
        throw ToolError.usage("\"\(host.prefix(80))\" is not a valid host name or address")
    }
}

/// The addresses for HOST and PORT: a numeric host is parsed (never looked up), a name is
/// resolved with `getaddrinfo`.
func resolveEndpoint(
    host rawHost: String, port: UInt16, family: SocketDomain?, type: SocketType, passive: Bool = false
) throws(ToolError) -> [SocketAddress] {
    var host = rawHost
    if host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { throw ToolError.usage("empty host name") }
    guard host.utf8.count <= 253 || looksNumeric(host) else {
        throw ToolError.usage("host name \"\(host.prefix(40))...\" is longer than 253 bytes")
    }
    if looksNumeric(host) {
        let address: SocketAddress
        do {
            address = try SocketAddress(host: host, port: Int(port))
        } catch {
            throw ToolError.usage(error.description)
        }
        if let family, address.domain != family {
            throw ToolError.usage("\(host) is not an \(family == .inet ? "IPv4" : "IPv6") address")
        }
        return [address]
    }
    try validateHostName(host)
    let found: [AddressInfo]
    do {
        found = try AddressInfo.lookup(host: host, service: nil, family: family ?? .unspecified, type: type, flags: passive ? .passive : [])
    } catch {
        throw ToolError(error)
    }
    var addresses: [SocketAddress] = []
    for entry in found {
        var address = entry.address
        address.setPort(port)
        if !addresses.contains(address) { addresses.append(address) }
    }
    guard !addresses.isEmpty else {
        throw ToolError.runtime("getaddrinfo(\(host)): no \(family.map { $0 == .inet ? "IPv4 " : "IPv6 " } ?? "")address")
    }
    return addresses
}

extension SocketAddress {
    /// Changes the port of an IP address.
    mutating func setPort(_ port: UInt16) {
        switch self {
        case .ipv4(var address):
            address.port = port
            self = .ipv4(address)
        case .ipv6(var address):
            address.port = port
            self = .ipv6(address)
        default:
            break
        }
    }
}

/// Parses a number of seconds given on the command line into a duration.
func seconds(_ value: Double, option: String, minimum: Double = 0.001, maximum: Double = 86_400 * 365) throws(ToolError) -> Duration {
    guard value.isFinite, value >= minimum, value <= maximum else {
        throw ToolError.usage("\(option) \(value) is outside \(minimum)...\(maximum) seconds")
    }
    return .nanoseconds(Int64(value * 1e9))
}

// MARK: - Formatting

enum Format {
    /// `1.5 MiB`.
    static func bytes(_ count: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = count
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// `2.91 GB/s` (decimal units, as network rates are usually given).
    static func rate(_ bytesPerSecond: Double) -> String {
        let units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"]
        var value = bytesPerSecond
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return String(format: unit == 0 ? "%.0f %@" : "%.2f %@", value, units[unit])
    }

    /// `12.3 ms`, `45 µs`, `1.20 s`.
    static func duration(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds >= 1 { return String(format: "%.2f s", seconds) }
        if seconds >= 0.001 { return String(format: "%.1f ms", seconds * 1e3) }
        return String(format: "%.0f µs", seconds * 1e6)
    }

    /// A number with thousands separators: `1,234,567`.
    static func count(_ value: Double) -> String {
        let whole = Int(value.rounded())
        var digits = String(abs(whole))
        var groups: [String] = []
        while digits.count > 3 {
            groups.insert(String(digits.suffix(3)), at: 0)
            digits.removeLast(3)
        }
        groups.insert(digits, at: 0)
        return (whole < 0 ? "-" : "") + groups.joined(separator: ",")
    }

    /// Pads to a column width.
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// Rows as a table with a header and aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : pad(cell, widths[index])
            }.joined(separator: "  ")
        }
        var text = line(header) + "\n"
        text += line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }

    /// Text as a JSON string literal.
    static func json(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// Runs `body` on a new thread (a real one: the blocking I/O here would starve a pool).
func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.stackSize = 512 * 1024
    thread.start()
}

/// A one-shot flag that threads can wait on with a deadline.
final class Latch: Sendable {
    private let state = LockedValue<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func fire() {
        let first = state.withLock { fired -> Bool in
            defer { fired = true }
            return !fired
        }
        if first { semaphore.signal() }
    }

    var isFired: Bool { state.withLock { $0 } }

    /// Waits until fired or until `timeout` passes; `true` when fired.
    func wait(timeout: Duration) -> Bool {
        if isFired { return true }
        let nanoseconds = max(0, min(Int(timeout.seconds * 1e9), Int(Int32.max) * 1000))
        if semaphore.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success {
            semaphore.signal()  // let other waiters through too
            return true
        }
        return isFired
    }
}

extension Array {
    /// `withUnsafeBytes` keeping the closure's error type (the standard one is `rethrows`).
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }

    /// `withUnsafeMutableBytes` keeping the closure's error type.
    mutating func withMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBytes { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }
}
