// Fuzzes the typed option decoders with any bytes getsockopt might report (every C layout
// the library knows: int and one-byte int flags and ranges, unsigned, 64-bit, timeval,
// linger, in_addr, ucred, names, TCP_INFO of any length, the raw-int enums), checking that a
// decoded value that encodes decodes back to itself; and the encoders with any value,
// checking that what they accept decodes back to what was asked.
import Glibc
import Sockets
import SystemPackage

func fail(_ message: String) -> Never {
    let line = "FuzzOptions: property violated: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    abort()
}

/// Decode, and if the value can be set, encode and decode again: the same value.
func roundTrip<Value: Equatable>(_ option: SocketOption<Value>, _ bytes: UnsafeRawBufferPointer) {
    guard let value = try? option.decode(bytes) else { return }
    guard let encoded = try? option.encode(value) else { return }
    guard let again = try? option.decode(encoded) else { fail("\(option): encoded \(value) does not decode") }
    guard again == value else { fail("\(option): \(value) came back as \(again)") }
}

func decodeOnly<Value>(_ option: ReadOnlySocketOption<Value>, _ bytes: UnsafeRawBufferPointer) {
    guard let value = try? option.decode(bytes) else { return }
    _ = String(describing: value)
}

/// Encode a value from the input; what is accepted decodes back to the same value.
func encodeChecked<Value: Equatable>(_ option: SocketOption<Value>, _ value: Value, same: (Value, Value) -> Bool = (==)) {
    guard let encoded = try? option.encode(value) else { return }
    guard let decoded = try? option.decode(encoded) else { fail("\(option): \(value) encodes to undecodable \(encoded)") }
    guard same(value, decoded) else { fail("\(option): \(value) encoded as \(encoded) decodes to \(decoded)") }
}

/// The input as a reader of fixed-size values.
struct Reader {
    var bytes: UnsafeRawBufferPointer
    mutating func next<T: BitwiseCopyable>(_ type: T.Type) -> T? {
        guard bytes.count >= MemoryLayout<T>.size else { return nil }
        let value = bytes.loadUnaligned(as: T.self)
        bytes = UnsafeRawBufferPointer(rebasing: bytes[MemoryLayout<T>.size...])
        return value
    }
}

/// A timeval option keeps whole microseconds, rounding up: the decoded value is the asked
/// one rounded up to a microsecond.
func roundedUpToMicroseconds(_ asked: Duration?, _ decoded: Duration?) -> Bool {
    guard let asked, let decoded else { return asked == nil && decoded == nil }
    return decoded >= asked && decoded - asked < .microseconds(1)
}

let decoders: [@Sendable (UnsafeRawBufferPointer) -> Void] = [
    { roundTrip(SocketOption<Bool>.reuseAddress, $0) },
    { roundTrip(SocketOption<Int>.receiveBufferSize, $0) },
    { roundTrip(SocketOption<Int>.timeToLive, $0) },
    { roundTrip(SocketOption<Int>.tcpMaxSegment, $0) },
    { roundTrip(SocketOption<Int>.typeOfService, $0) },
    { roundTrip(SocketOption<Int?>.incomingCPU, $0) },
    { roundTrip(SocketOption<Int?>.ipv6Checksum, $0) },
    { roundTrip(SocketOption<UInt32>.mark, $0) },
    { roundTrip(SocketOption<UInt32>.ipv6MulticastInterface, $0) },
    { roundTrip(SocketOption<String>.bindToDevice, $0) },
    { roundTrip(SocketOption<String>.tcpCongestion, $0) },
    { roundTrip(SocketOption<Duration?>.linger, $0) },
    { roundTrip(SocketOption<Duration?>.receiveTimeout, $0) },
    { roundTrip(SocketOption<Duration?>.tcpFinWait2Timeout, $0) },
    { roundTrip(SocketOption<Duration>.busyPoll, $0) },
    { roundTrip(SocketOption<Duration>.tcpKeepIdle, $0) },
    { roundTrip(SocketOption<Duration>.tcpUserTimeout, $0) },
    { roundTrip(SocketOption<TimestampingFlags>.timestamping, $0) },
    { roundTrip(SocketOption<IPv4Address>.multicastInterface, $0) },
    { roundTrip(SocketOption<PathMTUDiscovery>.pathMTUDiscovery, $0) },
    { decodeOnly(ReadOnlySocketOption<TCPInfo>.tcpInfo, $0) },
    { decodeOnly(ReadOnlySocketOption<PeerCredentials>.peerCredentials, $0) },
    { decodeOnly(ReadOnlySocketOption<Errno?>.pendingError, $0) },
    { decodeOnly(ReadOnlySocketOption<SocketType>.socketType, $0) },
    { decodeOnly(ReadOnlySocketOption<SocketDomain>.socketDomain, $0) },
    { decodeOnly(ReadOnlySocketOption<UInt64>.cookie, $0) },
    { decodeOnly(ReadOnlySocketOption<Bool>.listening, $0) },
]

let encoders: [@Sendable (inout Reader) -> Void] = [
    { reader in if let raw = reader.next(Int64.self) { encodeChecked(SocketOption<Int>.receiveBufferSize, Int(raw)) } },
    { reader in if let raw = reader.next(Int64.self) { encodeChecked(SocketOption<Int>.timeToLive, Int(raw)) } },
    { reader in if let raw = reader.next(Int64.self) { encodeChecked(SocketOption<Int>.tcpMaxSegment, Int(raw)) } },
    { reader in if let raw = reader.next(Int64.self) { encodeChecked(SocketOption<Int>.tcpKeepCount, Int(raw)) } },
    { reader in if let raw = reader.next(Int64.self) { encodeChecked(SocketOption<Int?>.ipv6Checksum, raw < -1 ? nil : Int(raw)) } },
    { reader in if let raw = reader.next(UInt32.self) { encodeChecked(SocketOption<UInt32>.ipv6MulticastInterface, raw) } },
    { reader in if let raw = reader.next(UInt32.self) { encodeChecked(SocketOption<TimestampingFlags>.timestamping, TimestampingFlags(rawValue: raw)) } },
    { reader in
        let name = String(decoding: reader.bytes.prefix(40), as: UTF8.self)
        encodeChecked(SocketOption<String>.tcpCongestion, name)
    },
    { reader in
        guard let seconds = reader.next(Int64.self), let attoseconds = reader.next(Int64.self) else { return }
        let value = Duration(secondsComponent: seconds, attosecondsComponent: attoseconds % 1_000_000_000_000_000_000)
        encodeChecked(SocketOption<Duration?>.receiveTimeout, value, same: roundedUpToMicroseconds)
        encodeChecked(SocketOption<Duration?>.linger, value)
        encodeChecked(SocketOption<Duration?>.tcpFinWait2Timeout, value)
        encodeChecked(SocketOption<Duration>.tcpKeepIdle, value)
        encodeChecked(SocketOption<Duration>.tcpUserTimeout, value)
        encodeChecked(SocketOption<Duration>.busyPoll, value)
    },
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOptions(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    // A copy of exactly the payload's size: one byte read past it is an ASan report.
    let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: size - 1, alignment: 1)
    defer { payload.deallocate() }
    payload.copyMemory(from: UnsafeRawBufferPointer(start: data + 1, count: size - 1))
    let selector = Int(data[0])
    if selector < 128 {
        decoders[selector % decoders.count](UnsafeRawBufferPointer(payload))
    } else {
        var reader = Reader(bytes: UnsafeRawBufferPointer(payload))
        encoders[selector % encoders.count](&reader)
    }
    return 0
}
