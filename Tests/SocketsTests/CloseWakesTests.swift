import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

/// Every call that can block, each woken by `close()` from another thread: it must fail with
/// ``SocketError/Reason/closed``, never return as if the peer had closed (0 bytes, an empty
/// datagram) or succeed.
@Suite(.noDescriptorLeaks())
struct CloseWakesTests {
    enum BlockingCall: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case receive, receiveFrom, receiveDatagram, receiveMessage, receiveMessageWithControl, receiveBatch
        case receiveDescriptors, accept, connect, send, sendAll, sendBatch, sendFile, splice

        var testDescription: String { rawValue }

        /// The system call (x86-64 number) the blocked thread waits in.
        var syscallNumber: Int {
            switch self {
            case .receive, .receiveFrom: return 45  // recv is recvfrom on x86-64
            case .receiveDatagram, .receiveMessage, .receiveMessageWithControl, .receiveDescriptors: return 47  // recvmsg
            case .receiveBatch: return 299  // recvmmsg
            case .accept: return 288  // accept4
            case .connect: return 42
            case .send, .sendAll: return 44  // sendto
            case .sendBatch: return 307  // sendmmsg
            case .sendFile: return 40
            case .splice: return 275
            }
        }
    }

    /// A socket set up so that `call` blocks on it until closed, and what else the setup opened.
    struct Setup {
        var socket: Socket
        var others: [Socket] = []
        var file: CInt = -1
        var pipe: SplicePipe?

        func closeOthers() throws {
            for other in others { try other.close() }
            if file >= 0 { Glibc.close(file) }
            try pipe?.close()
        }
    }

    /// Clears both socket timeouts, so that only `close()` can end a wait.
    static func noTimeouts(_ socket: Socket) throws {
        try socket.set(.receiveTimeout, nil)
        try socket.set(.sendTimeout, nil)
    }

    /// Sends until the socket can take no more, so that the next blocking send waits.
    static func fill(_ socket: Socket) throws {
        try socket.setNonBlocking(true)
        let filler = [UInt8](repeating: 7, count: 512)
        while try filler.withUnsafeBytes({ try socket.trySend($0) }) != nil {}
        try socket.setNonBlocking(false)
    }

    static func setUp(_ call: BlockingCall) throws -> Setup {
        switch call {
        case .receive, .receiveFrom, .receiveDatagram, .receiveMessage, .receiveMessageWithControl, .receiveBatch:
            let socket = try Socket(.inet, .datagram)
            try socket.bind(to: .ipv4(.loopback, port: 0))
            return Setup(socket: socket)
        case .receiveDescriptors:
            let (socket, peer) = try Socket.pair(.unix, .stream)
            return Setup(socket: socket, others: [peer])
        case .accept:
            let (listener, _) = try CoreTest.tcpListener()
            try noTimeouts(listener)
            return Setup(socket: listener)
        case .connect:
            // Backlog 0 with one connection queued: further SYNs are dropped, so a connect waits.
            let (listener, address) = try CoreTest.tcpListener(backlog: 0)
            let queued = try Socket(.inet, .stream)
            try queued.connect(to: address)
            let client = try Socket(.inet, .stream)
            return Setup(socket: client, others: [listener, queued])
        case .send, .sendAll, .sendFile:
            let (client, server) = try CoreTest.tcpPair()
            try noTimeouts(client)
            try fill(client)
            var setup = Setup(socket: client, others: [server])
            if call == .sendFile {
                // A sparse 256 MiB file, unlinked at once: more than any socket buffer holds.
                let path = CoreTest.unixPath("sendfile")
                setup.file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
                unlink(path)
                #expect(ftruncate(setup.file, 256 << 20) == 0)
            }
            return setup
        case .sendBatch:
            // A Unix datagram sender blocks while its peer's queue is full.
            let (socket, peer) = try Socket.pair(.unix, .datagram)
            try fill(socket)
            return Setup(socket: socket, others: [peer])
        case .splice:
            let (client, server) = try CoreTest.tcpPair()
            try noTimeouts(server)
            return Setup(socket: server, others: [client], pipe: try SplicePipe())
        }
    }

    static func perform(_ call: BlockingCall, _ setup: Setup) throws -> String {
        let socket = setup.socket
        switch call {
        case .receive:
            return "received \(try socket.receive(maxLength: 100).count) bytes"
        case .receiveFrom:
            var buffer = [UInt8](repeating: 0, count: 100)
            let count = try buffer.withUnsafeMutableBytes { try socket.receiveFrom(into: $0).byteCount }
            return "received \(count) bytes"
        case .receiveDatagram:
            return "received \(try socket.receiveDatagram(maxLength: 100).bytes.count) bytes"
        case .receiveMessage:
            return "received \(try socket.receiveMessage(maxLength: 100).bytes.count) bytes"
        case .receiveMessageWithControl:
            let control = try ControlMessageBuffer()
            return "received \(try socket.receiveMessage(maxLength: 100, controlBuffer: control).bytes.count) bytes"
        case .receiveBatch:
            let batch = try DatagramBatch(capacity: 4, maximumDatagramSize: 100)
            return "received \(try socket.receiveBatch(into: batch)) datagrams"
        case .receiveDescriptors:
            return "received \(try socket.receiveDescriptors(maxCount: 1).descriptors.count) descriptors"
        case .accept:
            return "accepted \(try socket.accept().socket)"
        case .connect:
            try socket.connect(to: try setup.others[0].localAddress())
            return "connected"
        case .send:
            return "sent \(try socket.send([UInt8](repeating: 1, count: 256 << 20)))"
        case .sendAll:
            try socket.sendAll([UInt8](repeating: 1, count: 256 << 20))
            return "sent all"
        case .sendBatch:
            let batch = try DatagramBatch(capacity: 2, maximumDatagramSize: 512)
            try batch.append([UInt8](repeating: 1, count: 512))
            try batch.append([UInt8](repeating: 2, count: 512))
            return "sent \(try socket.sendBatch(batch, flags: [])) datagrams"
        case .sendFile:
            return "sent \(try socket.sendFile(from: setup.file)) bytes of the file"
        case .splice:
            return "spliced \(try socket.splice(into: try #require(setup.pipe), maxCount: 4096)) bytes"
        }
    }

    @Test(arguments: BlockingCall.allCases)
    func closeFailsTheBlockedCallWithClosed(call: BlockingCall) throws {
        let setup = try Self.setUp(call)
        let fd = setup.socket.descriptor
        let blocked = BackgroundThread { () throws -> String in
            do {
                return try Self.perform(call, setup)
            } catch let error as SocketError {
                return error.reason == .closed ? "closed" : "other: \(error)"
            }
        }
        #expect(CoreTest.eventually { CoreTest.threadIsBlocked(inSyscall: call.syscallNumber, onDescriptor: fd) },
                "\(call) never blocked")
        try setup.socket.close()
        let outcome = try blocked.join()
        if call == .send, outcome != "closed" {
            // One send that had queued part of its bytes when woken reports that part, as
            // send(2) does (the bytes still go out before the FIN); never all of them.
            let sent = Int(outcome.dropFirst("sent ".count)) ?? -1
            #expect((1..<(256 << 20)).contains(sent), "\(outcome)")
        } else {
            #expect(outcome == "closed", "\(outcome)")
        }
        #expect(CoreTest.descriptorLink(fd) == "", "the descriptor is closed once the call returned")
        try setup.closeOthers()
    }
}
