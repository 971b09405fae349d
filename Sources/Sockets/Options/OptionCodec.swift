import Glibc
import CSocketShims
import SystemPackage

/// Why a value cannot be encoded, or why the kernel's bytes cannot be decoded.
struct InvalidOptionValue: Error {
    let why: String
    init(_ why: String) { self.why = why }
}

/// How one option's value is laid out: the buffer the kernel gets, and the conversions.
///
/// `encode` writes the C value into a zeroed, 16-byte-aligned buffer of `capacity` bytes and
/// returns the length to pass to `setsockopt`; it validates first and never makes a system
/// call. `decode` gets exactly the bytes `getsockopt` reported.
struct OptionCodec<Value: Sendable>: Sendable {
    let capacity: Int
    let encode: @Sendable (Value, UnsafeMutableRawBufferPointer) throws(InvalidOptionValue) -> Int
    let decode: @Sendable (UnsafeRawBufferPointer) throws(InvalidOptionValue) -> Value
}

// MARK: - Building blocks

@inline(__always)
func store<T: BitwiseCopyable>(_ value: T, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
    buffer.storeBytes(of: value, as: T.self)
    return MemoryLayout<T>.size
}

@inline(__always)
func load<T: BitwiseCopyable>(_ type: T.Type, _ buffer: UnsafeRawBufferPointer, _ what: String) throws(InvalidOptionValue) -> T {
    guard buffer.count == MemoryLayout<T>.size else {
        throw InvalidOptionValue("the kernel returned \(buffer.count) bytes; expected \(MemoryLayout<T>.size) (\(what))")
    }
    return buffer.loadUnaligned(as: T.self)
}

/// A C `int`; some IPv4 options answer with one byte when asked with a short buffer, so one
/// byte is accepted too.
func loadInt(_ buffer: UnsafeRawBufferPointer) throws(InvalidOptionValue) -> Int32 {
    if buffer.count == 1 { return Int32(buffer[0]) }
    return try load(Int32.self, buffer, "an int")
}

/// The number of whole `unit`s in a duration, or `nil` if it is not a whole number of them.
func wholeUnits(_ duration: Duration, attosecondsPerUnit: Int64) -> Int64? {
    let (seconds, attoseconds) = duration.components
    guard attoseconds % attosecondsPerUnit == 0 else { return nil }
    let perSecond = 1_000_000_000_000_000_000 / attosecondsPerUnit
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: perSecond)
    guard !overflow else { return nil }
    let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / attosecondsPerUnit)
    return overflow2 ? nil : total
}

/// Units for durations the kernel counts in whole seconds, milliseconds or microseconds.
enum DurationUnit {
    case seconds, milliseconds, microseconds

    var attoseconds: Int64 {
        switch self {
        case .seconds: return 1_000_000_000_000_000_000
        case .milliseconds: return 1_000_000_000_000_000
        case .microseconds: return 1_000_000_000_000
        }
    }

    var name: String {
        switch self {
        case .seconds: return "seconds"
        case .milliseconds: return "milliseconds"
        case .microseconds: return "microseconds"
        }
    }

    func duration(_ count: Int64) -> Duration {
        switch self {
        case .seconds: return .seconds(count)
        case .milliseconds: return .milliseconds(count)
        case .microseconds: return .microseconds(count)
        }
    }
}

// MARK: - Codecs

extension OptionCodec where Value == Bool {
    /// An `int` flag: 0 or 1 (any nonzero value reads as true).
    static var bool: OptionCodec<Bool> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in store(Int32(value ? 1 : 0), buffer) },
            decode: { buffer throws(InvalidOptionValue) in try loadInt(buffer) != 0 })
    }
}

extension OptionCodec where Value == Int {
    /// A C `int` restricted to `range`; `meaning` says what the number is, for errors.
    static func int(_ range: ClosedRange<Int>, _ meaning: String = "value") -> OptionCodec<Int> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard range.contains(value), let raw = Int32(exactly: value) else {
                    throw InvalidOptionValue("\(meaning) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in Int(try loadInt(buffer)) })
    }

    /// A C `int` that must lie in one of `ranges` (for options with holes, such as a TTL of
    /// -1 or 1...255).
    static func int(oneOf ranges: [ClosedRange<Int>], _ meaning: String) -> OptionCodec<Int> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard ranges.contains(where: { $0.contains(value) }), let raw = Int32(exactly: value) else {
                    let allowed = ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)...\($0.upperBound)" }
                    throw InvalidOptionValue("\(meaning) \(value) is not \(allowed.joined(separator: " or "))")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in Int(try loadInt(buffer)) })
    }

    /// A C `unsigned int` (stored in an `int`-sized slot), restricted to `range`.
    static func unsigned(_ range: ClosedRange<Int>, _ meaning: String = "value") -> OptionCodec<Int> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard range.contains(value), let raw = UInt32(exactly: value) else {
                    throw InvalidOptionValue("\(meaning) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in Int(try load(UInt32.self, buffer, "an unsigned int")) })
    }
}

extension OptionCodec where Value == Int? {
    /// A C `int` where -1 means "off" (`nil`); other values must lie in `range`.
    static func intOrOff(_ range: ClosedRange<Int>, _ meaning: String, evenOnly: Bool = false) -> OptionCodec<Int?> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard let value else { return store(Int32(-1), buffer) }
                guard range.contains(value), let raw = Int32(exactly: value) else {
                    throw InvalidOptionValue("\(meaning) \(value) is outside \(range.lowerBound)...\(range.upperBound) (nil turns it off)")
                }
                if evenOnly && value % 2 != 0 {
                    throw InvalidOptionValue("\(meaning) \(value) must be even")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in
                let raw = try loadInt(buffer)
                return raw < 0 ? nil : Int(raw)
            })
    }
}

extension OptionCodec where Value == UInt32 {
    /// A C `unsigned int` (or `__u32`).
    static var uint32: OptionCodec<UInt32> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in store(value, buffer) },
            decode: { buffer throws(InvalidOptionValue) in try load(UInt32.self, buffer, "an unsigned int") })
    }

    /// An interface index, which the kernel stores in an `int`.
    static var interfaceIndex: OptionCodec<UInt32> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard let raw = Int32(exactly: value) else {
                    throw InvalidOptionValue("interface index \(value) is over \(Int32.max)")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in UInt32(bitPattern: try loadInt(buffer)) })
    }
}

extension OptionCodec where Value == UInt64 {
    /// A `__u64`.
    static var uint64: OptionCodec<UInt64> {
        OptionCodec(
            capacity: 8,
            encode: { value, buffer throws(InvalidOptionValue) in store(value, buffer) },
            decode: { buffer throws(InvalidOptionValue) in try load(UInt64.self, buffer, "a 64-bit value") })
    }
}

extension OptionCodec where Value == Duration {
    /// A duration the kernel keeps as an `int` count of `unit`s, restricted to `range` units.
    static func duration(_ unit: DurationUnit, _ range: ClosedRange<Int64>) -> OptionCodec<Duration> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard let count = wholeUnits(value, attosecondsPerUnit: unit.attoseconds) else {
                    throw InvalidOptionValue("\(value) is not a whole number of \(unit.name)")
                }
                guard range.contains(count), let raw = Int32(exactly: count) else {
                    throw InvalidOptionValue("\(value) is outside \(range.lowerBound)...\(range.upperBound) \(unit.name)")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in
                unit.duration(Int64(UInt32(bitPattern: try loadInt(buffer))))
            })
    }
}

extension OptionCodec where Value == Duration? {
    /// `struct timeval`, as `SO_RCVTIMEO`/`SO_SNDTIMEO` take it: `nil` is "no timeout" (zero).
    /// Positive durations are rounded up to whole microseconds, so that a tiny timeout does
    /// not become "none".
    static var timeval: OptionCodec<Duration?> {
        OptionCodec(
            capacity: MemoryLayout<Glibc.timeval>.size,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard let value else { return store(Glibc.timeval(), buffer) }
                guard value > .zero else {
                    throw InvalidOptionValue("timeout \(value) must be positive (nil means no timeout)")
                }
                var (seconds, attoseconds) = value.components
                var microseconds = (attoseconds + 999_999_999_999) / 1_000_000_000_000
                if microseconds == 1_000_000 {
                    seconds += 1
                    microseconds = 0
                }
                return store(Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(microseconds)), buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in
                let value = try load(Glibc.timeval.self, buffer, "a struct timeval")
                if value.tv_sec == 0 && value.tv_usec == 0 { return nil }
                return .seconds(Int64(value.tv_sec)) + .microseconds(Int64(value.tv_usec))
            })
    }

    /// `struct linger`: `nil` is off (`l_onoff` 0); a duration turns it on with that many
    /// seconds (zero: close resets the connection).
    static var linger: OptionCodec<Duration?> {
        OptionCodec(
            capacity: MemoryLayout<Glibc.linger>.size,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard let value else { return store(Glibc.linger(l_onoff: 0, l_linger: 0), buffer) }
                guard let seconds = wholeUnits(value, attosecondsPerUnit: DurationUnit.seconds.attoseconds) else {
                    throw InvalidOptionValue("linger time \(value) is not a whole number of seconds")
                }
                guard seconds >= 0, let raw = Int32(exactly: seconds) else {
                    throw InvalidOptionValue("linger time \(value) is outside 0...\(Int32.max) seconds")
                }
                return store(Glibc.linger(l_onoff: 1, l_linger: raw), buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in
                let value = try load(Glibc.linger.self, buffer, "a struct linger")
                return value.l_onoff == 0 ? nil : .seconds(Int64(value.l_linger))
            })
    }

    /// An `int` count of seconds where a negative value means "off" (`nil`).
    static func secondsOrOff(_ range: ClosedRange<Int64>) -> OptionCodec<Duration?> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                guard let value else { return store(Int32(-1), buffer) }
                guard let seconds = wholeUnits(value, attosecondsPerUnit: DurationUnit.seconds.attoseconds) else {
                    throw InvalidOptionValue("\(value) is not a whole number of seconds")
                }
                guard range.contains(seconds), let raw = Int32(exactly: seconds) else {
                    throw InvalidOptionValue("\(value) is outside \(range.lowerBound)...\(range.upperBound) seconds (nil turns it off)")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in
                let raw = try loadInt(buffer)
                return raw < 0 ? nil : .seconds(Int64(raw))
            })
    }
}

extension OptionCodec where Value == String {
    /// A NUL-terminated name of at most `maximumBytes` bytes (an interface name, a congestion
    /// control algorithm).
    static func name(maximumBytes: Int, _ meaning: String) -> OptionCodec<String> {
        OptionCodec(
            capacity: maximumBytes + 1,
            encode: { value, buffer throws(InvalidOptionValue) in
                let bytes = Array(value.utf8)
                guard bytes.count <= maximumBytes else {
                    throw InvalidOptionValue("\(meaning) \"\(value)\" is \(bytes.count) bytes; the limit is \(maximumBytes)")
                }
                guard !bytes.contains(0) else {
                    throw InvalidOptionValue("\(meaning) \"\(value)\" contains a NUL byte")
                }
                for (index, byte) in bytes.enumerated() { buffer[index] = byte }
                buffer[bytes.count] = 0
                return bytes.count + 1
            },
            decode: { buffer throws(InvalidOptionValue) in
                String(decoding: buffer.prefix(while: { $0 != 0 }), as: UTF8.self)
            })
    }
}

extension OptionCodec where Value == IPv4Address {
    /// A `struct in_addr` in network byte order.
    static var inAddr: OptionCodec<IPv4Address> {
        OptionCodec(
            capacity: MemoryLayout<in_addr>.size,
            encode: { value, buffer throws(InvalidOptionValue) in store(in_addr(s_addr: value.value.bigEndian), buffer) },
            decode: { buffer throws(InvalidOptionValue) in
                IPv4Address(value: UInt32(bigEndian: try load(in_addr.self, buffer, "a struct in_addr").s_addr))
            })
    }
}

extension OptionCodec where Value: RawRepresentable, Value.RawValue == Int32 {
    /// An `int` that maps to one of this library's `RawRepresentable` structs.
    static var rawInt: OptionCodec<Value> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in store(value.rawValue, buffer) },
            decode: { buffer throws(InvalidOptionValue) in
                let raw = try loadInt(buffer)
                guard let value = Value(rawValue: raw) else {
                    throw InvalidOptionValue("the kernel returned \(raw), which \(Value.self) cannot hold")
                }
                return value
            })
    }
}

extension OptionCodec where Value == Errno? {
    /// `SO_ERROR`: an errno, 0 for none.
    static var pendingError: OptionCodec<Errno?> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in store(value?.rawValue ?? 0, buffer) },
            decode: { buffer throws(InvalidOptionValue) in
                let raw = try loadInt(buffer)
                return raw == 0 ? nil : Errno(rawValue: raw)
            })
    }
}
