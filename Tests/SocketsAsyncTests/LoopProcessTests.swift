import Glibc
import Sockets
import SocketsAsync
import Testing

/// What private event loops leave in the whole process once shut down: nothing. Run in a
/// process of their own, where no other test has started the shared loop (and with the leak
/// check for blocking tests, which does not warm the shared loop up first).
@Suite(.noDescriptorLeaks())
struct LoopProcessTests {
    /// The names of this process's threads, from `/proc/self/task/*/comm`.
    static func threadNames() -> [String] {
        guard let directory = opendir("/proc/self/task") else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard Int(tid) != nil, let file = fopen("/proc/self/task/\(tid)/comm", "re") else { continue }
            var line = [CChar](repeating: 0, count: 64)
            if fgets(&line, Int32(line.count), file) != nil {
                names.append(String(decoding: line.prefix(while: { $0 != 0 && $0 != 10 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            fclose(file)
        }
        return names
    }

    /// What each open descriptor is (`socket:[...]`, `anon_inode:[eventpoll]`, ...).
    static func descriptorKinds() -> [String] {
        openDescriptors().sorted().map { fd in
            var target = [CChar](repeating: 0, count: 256)
            let length = readlink("/proc/self/fd/\(fd)", &target, target.count - 1)
            return length > 0 ? String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        }
    }

    @Test func privateLoopsLeaveNoThreadOrDescriptorAndNeverStartTheSharedOne() async throws {
        guard FreshProcess.isChild else {
            return try FreshProcess.run("LoopProcessTests/privateLoopsLeaveNoThreadOrDescriptorAndNeverStartTheSharedOne")
        }
        let descriptorsBefore = Self.descriptorKinds()
        let first = try EventLoop(name: "private-one")
        let second = try EventLoop(name: "private-two")
        // Each loop thread names itself as it starts.
        var started = 0
        for _ in 0..<500 where started < 2 {
            started = Self.threadNames().filter { $0.hasPrefix("private-") }.count
            if started < 2 { usleep(10_000) }
        }
        #expect(started == 2)
        // Use both: an echo between sockets on different loops, with a deadline armed.
        let (left, right) = try AsyncSocket.pair(loop: first)
        let other = try AsyncSocket(try Socket(.inet, .datagram), loop: second)
        try await Task(executorPreference: first) {
            try await left.sendAll("ping")
            #expect(try await right.receive(exactly: 4, deadline: .now + .seconds(5)) == Array("ping".utf8))
        }.value
        try other.close()
        try left.close()
        try right.close()
        second.shutdown()
        first.shutdown()
        first.shutdown()

        let names = Self.threadNames()
        #expect(!names.contains { $0.hasPrefix("private-") }, "the loop threads ended: \(names)")
        #expect(!names.contains { $0.hasPrefix("SocketsAsync") }, "the shared loop never started: \(names)")
        #expect(Self.descriptorKinds() == descriptorsBefore, "no epoll or eventfd left behind")
    }
}
