import Foundation
import Glibc
import Sockets
import SystemPackage
import Testing

/// Runs `body` on its own thread; ``join()`` waits for its result.
///
/// The body (and so whatever it captured, such as sockets) is released before the result is
/// published, so that the descriptor-leak check after the test never sees it still open.
final class BackgroundWork<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var body: (@Sendable () throws -> Value)?
    private var result: Result<Value, any Error>?

    init(_ body: @escaping @Sendable () throws -> Value) {
        self.body = body
        Thread { [self] in
            let outcome = run()
            condition.lock()
            result = outcome
            condition.broadcast()
            condition.unlock()
        }.start()
    }

    private func run() -> Result<Value, any Error> {
        condition.lock()
        let work = body
        body = nil
        condition.unlock()
        guard let work else { return .failure(Errno.invalidArgument) }
        return Result { try work() }
    }

    func join() throws -> Value {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let result { return try result.get() }
            condition.wait()
        }
    }
}

/// An order-sensitive checksum of 64-bit words (FNV-1a style), cheap enough for 100 MiB in a
/// debug build.
struct WordChecksum: Equatable {
    var state: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ words: UnsafeBufferPointer<UInt64>) {
        for word in words { state = (state ^ word) &* 0x0000_0100_0000_01B3 }
    }
}

/// A connected TCP pair over 127.0.0.1.
func tcpPair() throws -> (client: Socket, server: Socket) {
    let listener = try Socket(.inet, .stream)
    try listener.bind(to: .ipv4(.loopback, port: 0))
    try listener.listen()
    let client = try Socket(.inet, .stream)
    try client.connect(to: try listener.localAddress())
    let (server, _) = try listener.accept()
    try setReceiveTimeout(server, seconds: 30)
    try setReceiveTimeout(client, seconds: 30)
    return (client, server)
}

/// A temporary file under /tmp, deleted (and closed) when the value goes away.
final class TemporaryFile {
    let path: String
    let fd: CInt

    init(contents: [UInt8] = []) throws {
        path = "/tmp/sockets-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        if !contents.isEmpty {
            let written = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == contents.count else { throw Errno(rawValue: errno) }
        }
    }

    func contents() -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let count = pread(fd, &chunk, chunk.count, offset)
            if count <= 0 { break }
            bytes += chunk[..<count]
            offset += off_t(count)
        }
        return bytes
    }

    deinit {
        Glibc.close(fd)
        unlink(path)
    }
}

@Suite(.noDescriptorLeaks())
struct ZeroCopyTests {
    @Test func sendfileOf100MiBIsByteExact() throws {
        let chunkWords = 1 << 17  // 1 MiB
        let chunks = 100
        let file = try TemporaryFile()
        var expected = WordChecksum()
        var words = [UInt64](repeating: 0, count: chunkWords)
        var generator: UInt64 = 0x1234_5678_9ABC_DEF1
        for _ in 0..<chunks {
            words.withUnsafeMutableBufferPointer { buffer in
                for index in 0..<buffer.count {
                    // xorshift64
                    generator ^= generator << 13
                    generator ^= generator >> 7
                    generator ^= generator << 17
                    buffer[index] = generator
                }
                expected.add(UnsafeBufferPointer(buffer))
            }
            let written = words.withUnsafeBytes { Glibc.write(file.fd, $0.baseAddress, $0.count) }
            try #require(written == chunkWords * 8)
        }

        let (client, server) = try tcpPair()
        let reader = BackgroundWork { () throws -> (WordChecksum, Int) in
            var checksum = WordChecksum()
            var total = 0
            var buffer = [UInt64](repeating: 0, count: chunkWords)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try server.receive(exactly: $0) }
                total += count
                buffer.withUnsafeBufferPointer { checksum.add(UnsafeBufferPointer(rebasing: $0[..<(count / 8)])) }
                if count < chunkWords * 8 { return (checksum, total) }
            }
        }
        let sent = try client.sendFile(path: file.path)
        try client.shutdown(.write)
        let (checksum, total) = try reader.join()
        #expect(sent == Int64(chunks * chunkWords * 8))
        #expect(total == chunks * chunkWords * 8)
        #expect(checksum == expected)
    }

    @Test func sendfileOfARangeAndPastTheEnd() throws {
        let contents = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let file = try TemporaryFile(contents: contents)
        let (client, server) = try tcpPair()
        #expect(try client.sendFile(from: file.fd, offset: 100, count: 50) == 50)
        // Asking for more than the file holds stops at its end.
        #expect(try client.sendFile(from: file.fd, offset: 990, count: 500) == 10)
        // The file position was not used or moved.
        #expect(lseek(file.fd, 0, SEEK_CUR) == 1000)
        try client.shutdown(.write)
        var received: [UInt8] = []
        while true {
            let bytes = try server.receive(maxLength: 4096)
            if bytes.isEmpty { break }
            received += bytes
        }
        #expect(received == Array(contents[100..<150]) + Array(contents[990...]))
    }

    @Test func sendfileErrorsNameTheirCause() throws {
        let (client, _) = try tcpPair()
        let missing = "/tmp/sockets-test-missing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let error = #expect(throws: SocketError.self) { _ = try client.sendFile(path: missing) }
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.description.contains(missing) == true)
        #expect(throws: SocketError.self) { _ = try client.sendFile(from: 0, offset: -1) }
        #expect(throws: SocketError.self) { _ = try client.sendFile(from: 0, count: -1) }
    }

    @Test func sendfileToAClosedPeerGivesEPIPENotSIGPIPE() throws {
        let file = try TemporaryFile(contents: Array(repeating: 0x55, count: 1 << 20))
        let (client, server) = try tcpPair()
        try server.close()
        var failure: SocketError?
        // The first sends may still be accepted before the reset arrives.
        for _ in 0..<100 {
            do {
                _ = try client.sendFile(from: file.fd)
            } catch {
                failure = error
                break
            }
        }
        #expect(failure?.errno == .brokenPipe || failure?.errno == .connectionReset, "\(String(describing: failure))")
        #expect(failure?.operation == "sendfile")
        // That the process's SIGPIPE disposition stays as it was is checked in a process of
        // its own: ContractTests.zeroCopyCallsLeaveTheSIGPIPEDispositionAlone.
    }

    @Test func spliceMovesSocketDataIntoAFileAndAFileOntoASocket() throws {
        let contents = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let (client, server) = try tcpPair()
        let pipe = try SplicePipe()
        defer { try? pipe.close() }

        // Socket → pipe → file, written at an offset.
        let target = try TemporaryFile(contents: [0xEE, 0xEE])
        let sender = BackgroundWork { try client.sendAll(contents) }
        var fileOffset: Int64? = 2
        var moved = 0
        while moved < contents.count {
            let count = try server.splice(into: pipe, maxCount: 65536)
            try #require(count > 0)
            var pending = count
            while pending > 0 { pending -= try pipe.splice(toFile: target.fd, offset: &fileOffset, count: pending) }
            moved += count
        }
        try sender.join()
        #expect(fileOffset == Int64(2 + contents.count))
        #expect(target.contents() == [0xEE, 0xEE] + contents)

        // File → pipe → socket, read from an offset.
        let reader = BackgroundWork { () throws -> [UInt8] in
            var received: [UInt8] = []
            while received.count < contents.count {
                let bytes = try client.receive(maxLength: 65536)
                if bytes.isEmpty { break }
                received += bytes
            }
            return received
        }
        var readOffset: Int64? = 2
        var sent = 0
        while sent < contents.count {
            let count = try pipe.splice(fromFile: target.fd, offset: &readOffset, count: contents.count - sent)
            try #require(count > 0)
            var pending = count
            while pending > 0 { pending -= try server.splice(from: pipe, count: pending) }
            sent += count
        }
        #expect(try reader.join() == contents)
    }

    @Test func spliceAllRelaysBetweenConnectionsUntilEOF() throws {
        let contents = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let (inboundClient, inboundServer) = try tcpPair()
        let (outboundClient, outboundServer) = try tcpPair()
        let sender = BackgroundWork {
            try inboundClient.sendAll(contents)
            try inboundClient.shutdown(.write)
        }
        let reader = BackgroundWork { () throws -> [UInt8] in
            var received: [UInt8] = []
            while true {
                let bytes = try outboundServer.receive(maxLength: 1 << 16)
                if bytes.isEmpty { return received }
                received += bytes
            }
        }
        let relayed = try inboundServer.spliceAll(to: outboundClient)
        try outboundClient.shutdown(.write)
        try sender.join()
        #expect(relayed == Int64(contents.count))
        #expect(try reader.join() == contents)
    }

    @Test func teeCopiesPipeDataWithoutConsumingIt() throws {
        let (client, server) = try tcpPair()
        let first = try SplicePipe()
        let second = try SplicePipe()
        defer {
            try? first.close()
            try? second.close()
        }
        try client.sendAll("duplicated")
        #expect(try server.splice(into: first, maxCount: 100) == 10)
        #expect(try first.tee(into: second, count: 100) == 10)
        // Both pipes now hold the bytes: one goes to a socket, the other to a file.
        let file = try TemporaryFile()
        var offset: Int64? = 0
        #expect(try second.splice(toFile: file.fd, offset: &offset, count: 100) == 10)
        #expect(try server.splice(from: first, count: 10) == 10)
        #expect(try client.receive(maxLength: 100) == Array("duplicated".utf8))
        #expect(file.contents() == Array("duplicated".utf8))
    }

    @Test func closedPipeIsRefused() throws {
        let (client, _) = try tcpPair()
        let pipe = try SplicePipe()
        #expect(pipe.readDescriptor >= 0 && pipe.writeDescriptor >= 0)
        try pipe.close()
        try pipe.close()
        #expect(pipe.readDescriptor == -1)
        let error = #expect(throws: SocketError.self) { _ = try client.splice(from: pipe, count: 1) }
        #expect(error?.reason == .closed)
    }
}
