import Foundation
import Glibc
import SocketSyscalls
import Synchronization

// One implementation of what tests need to build private networks: running `ip`, `nft`, `tc`
// and other programs, network namespaces with a veth link between them, and moving a thread
// into a namespace (and back).

/// A command that could not be started or exited with a status other than 0.
public struct CommandFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a program found on PATH with `arguments` (the first is the program), waits for it and
/// returns its standard output.
///
/// Started with ``spawn(_:searchPath:input:closeOtherDescriptors:)``; standard error is collected for the failure
/// message.
/// - Throws: ``CommandFailure`` when it cannot start or exits with a status other than 0.
@discardableResult
public func runCommand(_ arguments: [String]) throws -> String {
    let child = try spawn(arguments)
    defer { close(child.output); close(child.errors) }

    // Read both pipes until both end, so that neither can fill up and stall the child.
    var collected: [[UInt8]] = [[], []]
    var open = [true, true]
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while open[0] || open[1] {
        var fds = [pollfd(fd: open[0] ? child.output : -1, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: open[1] ? child.errors : -1, events: Int16(POLLIN), revents: 0)]
        if poll(&fds, 2, -1) < 0 {
            if errno == EINTR { continue }
            break
        }
        for index in 0..<2 where open[index] && fds[index].revents != 0 {
            let count = read(fds[index].fd, &buffer, buffer.count)
            if count > 0 {
                collected[index] += buffer[..<count]
            } else if count == 0 || errno != EINTR {
                open[index] = false
            }
        }
    }
    var status: CInt = 0
    while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else {
        let message = String(decoding: collected[1], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        throw CommandFailure("\(arguments.joined(separator: " ")) failed (wait status \(status)): \(message)")
    }
    return String(decoding: collected[0], as: UTF8.self)
}

/// Runs `body` on a thread of its own and waits for it (at most `seconds`).
///
/// For work that changes the calling thread's namespaces: the thread ends afterwards, and what
/// it changed with it, so the test's own threads stay where they were.
public func onDedicatedThread<T: Sendable>(
    seconds: Double = 120, _ body: @escaping @Sendable () throws -> T
) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        let outcome = Result { try body() }
        result.withLock { $0 = outcome }
        done.signal()
    }
    thread.stackSize = 4 << 20
    thread.start()
    guard done.wait(timeout: .now() + seconds) == .success, let outcome = result.withLock({ $0 }) else {
        throw CommandFailure("the thread did not finish within \(seconds) s")
    }
    return try outcome.get()
}

/// Runs `body` on a new thread that first moves into a new network namespace of its own
/// (`unshare(CLONE_NEWNET)` affects the calling thread only). That namespace has only `lo`,
/// down; it goes away when the thread ends. Needs CAP_SYS_ADMIN: tests that call it carry
/// `.requires(.networkNamespaces)`.
public func inNewNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    try onDedicatedThread {
        let host = readNamespaceLink()
        do { try Syscall.unshare(Syscall.newNetworkNamespace) } catch {
            throw CommandFailure("unshare(CLONE_NEWNET): \(error)")
        }
        let own = readNamespaceLink()
        guard !own.isEmpty, own != host else { throw CommandFailure("still in the host's network namespace (\(own))") }
        return try body()
    }
}

/// The calling thread's network namespace, as `/proc/thread-self/ns/net` names it.
public func readNamespaceLink() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = readlink("/proc/thread-self/ns/net", &buffer, buffer.count - 1)
    return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
}

/// A network namespace of a test's own (`ip netns add`), with a unique name per run.
///
/// Sockets are made inside it with ``enter(_:)`` or ``onThread(_:)``: a socket stays in the
/// namespace it was created in, and can then be used from any thread. Call ``delete()`` when
/// done (in a `defer`). Needs CAP_SYS_ADMIN and CAP_NET_ADMIN: tests that make one carry
/// `.requires(.networkNamespaces)` (scripts/test-unprivileged.sh shows them skipped).
public final class NetworkNamespace: Sendable {
    public let name: String
    private static let counter = Atomic<Int>(0)

    /// Creates `/run/netns/PREFIX-PID-N`.
    public init(prefix: String) throws {
        let number = Self.counter.add(1, ordering: .relaxed).newValue
        name = "\(prefix)-\(getpid())-\(number)"
        try runCommand(["ip", "netns", "add", name])
    }

    /// Runs `ip -n NAME arguments...`.
    @discardableResult
    public func ip(_ arguments: String...) throws -> String {
        try runCommand(["ip", "-n", name] + arguments)
    }

    /// Runs `ip -n NAME` with each line of `script` as the arguments (split on spaces).
    public func ip(lines script: String) throws {
        for line in script.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            try runCommand(["ip", "-n", name] + line.split(separator: " ").map(String.init))
        }
    }

    /// Runs a program inside the namespace: `ip netns exec NAME arguments...` (for `nft`, `tc`,
    /// `sysctl`).
    @discardableResult
    public func exec(_ arguments: String...) throws -> String {
        try runCommand(["ip", "netns", "exec", name] + arguments)
    }

    /// Runs `nft` inside the namespace with `command` (one nft command, e.g.
    /// `add rule inet t input drop`).
    @discardableResult
    public func nft(_ command: String) throws -> String {
        try runCommand(["ip", "netns", "exec", name, "nft"] + command.split(separator: " ").map(String.init))
    }

    /// Writes `value` to `/proc/sys/KEY` inside the namespace (`sysctl -w`).
    public func sysctl(_ key: String, _ value: String) throws {
        try runCommand(["ip", "netns", "exec", name, "sysctl", "-q", "-w", "\(key)=\(value)"])
    }

    /// Runs `body` with the calling thread in this namespace, then moves the thread back.
    public func enter<R>(_ body: () throws -> R) throws -> R {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        defer {
            if original >= 0 { close(original) }
            if target >= 0 { close(target) }
        }
        guard original >= 0, target >= 0 else {
            throw CommandFailure("cannot open the namespace files of \(name): \(String(cString: strerror(errno)))")
        }
        do { try Syscall.setNamespace(target, type: Syscall.newNetworkNamespace) } catch {
            throw CommandFailure("setns(\(name)): \(error)")
        }
        defer {
            // Moving back into the namespace it came from cannot fail for root; if it did, the
            // thread would stay here, so end the process rather than run tests in the wrong place.
            if (try? Syscall.setNamespace(original, type: Syscall.newNetworkNamespace)) == nil { abort() }
        }
        return try body()
    }

    /// Runs `body` on a thread of its own inside this namespace (see ``onDedicatedThread(seconds:_:)``).
    public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try onDedicatedThread { try self.enter(body) }
    }

    /// Deletes the namespace (`ip netns delete`); its interfaces go with it.
    public func delete() {
        _ = try? runCommand(["ip", "netns", "delete", name])
    }
}

/// Two namespaces, `client` and `server`, joined by a veth pair with the addresses of a
/// private /30: `clientAddress` (10.213.0.1, on `clientDevice`) and `serverAddress`
/// (10.213.0.2, on `serverDevice`). Every namespace has `lo` up. Each namespace is private, so
/// the same /30 serves every run; the namespace names are unique.
public final class TestNetwork: Sendable {
    public let client: NetworkNamespace
    public let server: NetworkNamespace
    public let clientAddress = "10.213.0.1"
    public let serverAddress = "10.213.0.2"
    public let clientDevice = "veth-c"
    public let serverDevice = "veth-s"

    /// Creates both namespaces and the link; removes what it made if a step fails.
    public init(prefix: String = "rel") throws {
        client = try NetworkNamespace(prefix: "\(prefix)c")
        do {
            server = try NetworkNamespace(prefix: "\(prefix)s")
        } catch {
            client.delete()
            throw error
        }
        do {
            try client.ip(lines: """
                link add \(clientDevice) type veth peer name \(serverDevice) netns \(server.name)
                addr add \(clientAddress)/30 dev \(clientDevice)
                link set \(clientDevice) up
                link set lo up
                """)
            try server.ip(lines: """
                addr add \(serverAddress)/30 dev \(serverDevice)
                link set \(serverDevice) up
                link set lo up
                """)
        } catch {
            remove()
            throw error
        }
    }

    /// Deletes both namespaces (and so the veth pair).
    public func remove() {
        client.delete()
        server.delete()
    }

    /// Makes a network, runs `body` with it and removes it afterwards, also when `body` throws.
    public static func with<T>(prefix: String = "rel", _ body: (TestNetwork) async throws -> T) async throws -> T {
        let network = try TestNetwork(prefix: prefix)
        do {
            let result = try await body(network)
            network.remove()
            return result
        } catch {
            network.remove()
            throw error
        }
    }
}
