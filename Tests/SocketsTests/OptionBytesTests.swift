import Glibc
import Sockets
import Testing

/// Option values to and from the bytes `getsockopt`/`setsockopt` use, without a socket.
@Suite(.noDescriptorLeaks())
struct OptionBytesTests {
    @Test func decodeAndEncodeAgreeWithTheKernel() throws {
        let socket = try Socket(.inet, .stream)
        try socket.set(.linger, .seconds(3))
        try socket.set(.timeToLive, 42)
        let lingerBytes = try socket.getOption(level: SOL_SOCKET, name: SO_LINGER, maxLength: 64)
        #expect(try SocketOption<Duration?>.linger.decode(lingerBytes) == .seconds(3))
        #expect(try SocketOption<Duration?>.linger.encode(.seconds(3)) == lingerBytes)
        let ttlBytes = try socket.getOption(level: Int32(IPPROTO_IP), name: IP_TTL, maxLength: 4)
        #expect(try SocketOption<Int>.timeToLive.decode(ttlBytes) == 42)
        #expect(try SocketOption<Int>.timeToLive.encode(42) == ttlBytes)
        // A one-byte int, as some IPv4 options answer a short buffer.
        #expect(try SocketOption<Int>.timeToLive.decode([42]) == 42)
        let typeBytes = try socket.getOption(level: SOL_SOCKET, name: SO_TYPE, maxLength: 4)
        #expect(try ReadOnlySocketOption<SocketType>.socketType.decode(typeBytes) == .stream)
    }

    @Test func badBytesAndValuesAreErrorsNamingTheOption() throws {
        let short = #expect(throws: SocketError.self) { _ = try SocketOption<Duration?>.linger.decode([1, 0, 0]) }
        #expect(short?.description.contains("decode SO_LINGER") == true)
        #expect(short?.description.contains("expected 8") == true)
        let tooShortInfo = #expect(throws: SocketError.self) { _ = try ReadOnlySocketOption<TCPInfo>.tcpInfo.decode([UInt8](repeating: 0, count: 103)) }
        #expect(tooShortInfo?.description.contains("TCP_INFO") == true)
        let outOfRange = #expect(throws: SocketError.self) { _ = try SocketOption<Int>.timeToLive.encode(0) }
        #expect(outOfRange?.description.contains("encode IP_TTL") == true)
        #expect(try SocketOption<Duration?>.receiveTimeout.encode(.nanoseconds(1)).count == MemoryLayout<timeval>.size)
        #expect(try SocketOption<Duration?>.receiveTimeout.decode(SocketOption<Duration?>.receiveTimeout.encode(.nanoseconds(1))) == .microseconds(1))
    }
}
