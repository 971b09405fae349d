import Glibc
import SocketSyscalls
import SystemPackage

/// A socket option that can be read and written: its level, its name, and how its value is
/// laid out in memory.
///
/// ```swift
/// try socket.set(.reuseAddress, true)
/// let size = try socket.get(.receiveBufferSize)
/// ```
///
/// The predefined keys live in constrained extensions (`SocketOption<Bool>.reuseAddress`,
/// `SocketOption<Int>.receiveBufferSize`, ...). Options the kernel only reports are
/// ``ReadOnlySocketOption``s; the two it only accepts are ``WriteOnlySocketOption``s; so a
/// wrong direction does not compile. For anything not listed, use the `init(level:name:cName:)`
/// initialisers or the raw ``Socket/getOption(level:name:maxLength:)``.
public struct SocketOption<Value: Sendable>: Sendable, CustomStringConvertible {
    /// The protocol level: `SOL_SOCKET`, `IPPROTO_TCP`, `IPPROTO_IP`, `IPPROTO_IPV6`, ...
    public let level: Int32
    /// The option's number at that level, such as `SO_RCVBUF`.
    public let name: Int32
    /// The C name, such as `SO_RCVBUF`, used in error messages.
    public let cName: String
    let codec: OptionCodec<Value>

    init(_ level: Int32, _ name: Int32, _ cName: String, _ codec: OptionCodec<Value>) {
        self.level = level
        self.name = name
        self.cName = cName
        self.codec = codec
    }

    public var description: String { cName }
}

/// A socket option that the kernel reports but does not let a program set, such as
/// `SO_TYPE` or `TCP_INFO`. Read it with `socket.get(_:)`; there is no setter.
public struct ReadOnlySocketOption<Value: Sendable>: Sendable, CustomStringConvertible {
    /// The protocol level.
    public let level: Int32
    /// The option's number at that level.
    public let name: Int32
    /// The C name, used in error messages.
    public let cName: String
    let codec: OptionCodec<Value>

    init(_ level: Int32, _ name: Int32, _ cName: String, _ codec: OptionCodec<Value>) {
        self.level = level
        self.name = name
        self.cName = cName
        self.codec = codec
    }

    public var description: String { cName }
}

/// A socket option that the kernel accepts but does not report back (`getsockopt` fails with
/// `ENOPROTOOPT`), such as `SO_RCVBUFFORCE`.
public struct WriteOnlySocketOption<Value: Sendable>: Sendable, CustomStringConvertible {
    /// The protocol level.
    public let level: Int32
    /// The option's number at that level.
    public let name: Int32
    /// The C name, used in error messages.
    public let cName: String
    let codec: OptionCodec<Value>

    init(_ level: Int32, _ name: Int32, _ cName: String, _ codec: OptionCodec<Value>) {
        self.level = level
        self.name = name
        self.cName = cName
        self.codec = codec
    }

    public var description: String { cName }
}

extension SocketOption where Value == Bool {
    /// A flag option not predefined here: an `int` that is 0 or 1.
    public init(level: Int32, name: Int32, cName: String) {
        self.init(level, name, cName, .bool)
    }
}

extension SocketOption where Value == Int {
    /// An integer option not predefined here: a C `int`; values outside `Int32` are rejected.
    public init(level: Int32, name: Int32, cName: String) {
        self.init(level, name, cName, .int(Int(Int32.min)...Int(Int32.max)))
    }
}

extension ReadOnlySocketOption where Value == Int {
    /// An integer option not predefined here, read as a C `int`.
    public init(level: Int32, name: Int32, cName: String) {
        self.init(level, name, cName, .int(Int(Int32.min)...Int(Int32.max)))
    }
}

// MARK: - Reading and writing

extension Socket {
    /// Reads an option: `getsockopt(2)`, with the value decoded to its Swift type.
    ///
    /// ```swift
    /// let noDelay = try socket.get(.tcpNoDelay)
    /// ```
    /// - Throws: ``SocketError`` naming the call and the option, such as
    ///   `getsockopt(IP_MTU): Transport endpoint is not connected (ENOTCONN)`.
    public func get<Value>(_ option: SocketOption<Value>) throws(SocketError) -> Value {
        try readOption(option.level, option.name, option.cName, option.codec)
    }

    /// Reads a read-only option: `getsockopt(2)`.
    public func get<Value>(_ option: ReadOnlySocketOption<Value>) throws(SocketError) -> Value {
        try readOption(option.level, option.name, option.cName, option.codec)
    }

    /// Writes an option: `setsockopt(2)`.
    ///
    /// ```swift
    /// try socket.set(.reuseAddress, true)
    /// try socket.set(.receiveTimeout, .seconds(2))
    /// ```
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` before any system call when the
    ///   value is out of the option's range (a negative buffer size, a TTL over 255, a device
    ///   name over 15 bytes, ...); otherwise the kernel's errno.
    public func set<Value>(_ option: SocketOption<Value>, _ value: Value) throws(SocketError) {
        try writeOption(option.level, option.name, option.cName, option.codec, value)
    }

    /// Writes a write-only option: `setsockopt(2)`.
    public func set<Value>(_ option: WriteOnlySocketOption<Value>, _ value: Value) throws(SocketError) {
        try writeOption(option.level, option.name, option.cName, option.codec, value)
    }

    // MARK: Raw access

    /// The largest value the raw ``getOption(level:name:maxLength:)`` reads.
    public static let maximumOptionLength = 1 << 16

    /// Reads any option as bytes: `getsockopt(2)` with a buffer of `maxLength` bytes.
    ///
    /// - Returns: the bytes the kernel wrote (it reports how many; never more than `maxLength`).
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a negative `maxLength` or one
    ///   over ``maximumOptionLength``, before any system call.
    public func getOption(level: Int32, name: Int32, maxLength: Int) throws(SocketError) -> [UInt8] {
        let operation = "getsockopt(level \(level), option \(name))"
        guard maxLength >= 0, maxLength <= Self.maximumOptionLength else {
            throw SocketError.invalid(operation, nil, "maxLength \(maxLength) is outside 0...\(Self.maximumOptionLength)")
        }
        // One spare byte so that a zero-length read still has somewhere to point.
        var bytes = [UInt8](repeating: 0, count: maxLength + 1)
        var length = socklen_t(maxLength)
        try optionCall(operation) { fd throws(Errno) in
            try bytes.withMutableBytesTyped { (buffer) throws(Errno) in
                guard let base = buffer.baseAddress else { return }
                try Syscall.getsockopt(fd, level: level, name: name, base, &length)
            }
        }
        return Array(bytes.prefix(min(Int(length), maxLength)))
    }

    /// Writes any option from bytes: `setsockopt(2)`. The bytes are passed as they are, so
    /// they must have the layout the kernel expects (native byte order for integers).
    public func setOption(level: Int32, name: Int32, bytes: [UInt8]) throws(SocketError) {
        let operation = "setsockopt(level \(level), option \(name))"
        guard bytes.count <= Self.maximumOptionLength else {
            throw SocketError.invalid(operation, nil, "\(bytes.count) bytes is over the \(Self.maximumOptionLength)-byte limit")
        }
        try optionCall(operation) { fd throws(Errno) in
            try bytes.withBytesTyped { (buffer) throws(Errno) in
                try Syscall.setsockopt(fd, level: level, name: name, buffer.baseAddress, socklen_t(buffer.count))
            }
        }
    }

    /// Reads any option whose value is a C `int`: `getsockopt(2)`.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the kernel returns a value
    ///   that is not 4 bytes long (read it with ``getOption(level:name:maxLength:)`` instead).
    public func getOption(level: Int32, name: Int32) throws(SocketError) -> Int32 {
        let bytes = try getOption(level: level, name: name, maxLength: MemoryLayout<Int32>.size)
        guard bytes.count == MemoryLayout<Int32>.size else {
            throw SocketError.invalid(
                "getsockopt(level \(level), option \(name))", nil,
                "the kernel returned \(bytes.count) bytes, not a 4-byte int; use getOption(level:name:maxLength:)")
        }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
    }

    /// Writes any option whose value is a C `int`: `setsockopt(2)`.
    public func setOption(level: Int32, name: Int32, value: Int32) throws(SocketError) {
        var value = value
        try optionCall("setsockopt(level \(level), option \(name))") { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: level, name: name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    // MARK: Implementation

    /// Like ``call(_:address:_:)``, with an operation name built at run time.
    func optionCall<R>(
        _ operation: @autoclosure () -> String, address: @autoclosure () -> String? = nil, _ body: (CInt) throws(Errno) -> R
    ) throws(SocketError) -> R {
        guard handle.enter() else { throw SocketError(operation(), address: address(), reason: .closed) }
        defer { handle.leave() }
        do {
            return try body(fd)
        } catch {
            throw SocketError(operation(), address: address(), errno: error)
        }
    }

    func readOption<Value>(_ level: Int32, _ name: Int32, _ cName: String, _ codec: OptionCodec<Value>) throws(SocketError) -> Value {
        try withUnsafeTemporaryAllocation(byteCount: codec.capacity, alignment: 16) { (buffer) throws(SocketError) -> Value in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            var length = socklen_t(buffer.count)
            try optionCall("getsockopt(\(cName))") { fd throws(Errno) in
                guard let base = buffer.baseAddress else { throw Errno.invalidArgument }
                try Syscall.getsockopt(fd, level: level, name: name, base, &length)
            }
            let returned = UnsafeRawBufferPointer(rebasing: buffer[..<min(Int(length), buffer.count)])
            do throws(InvalidOptionValue) {
                return try codec.decode(returned)
            } catch {
                throw SocketError.invalid("getsockopt(\(cName))", nil, error.why)
            }
        }
    }

    func writeOption<Value>(_ level: Int32, _ name: Int32, _ cName: String, _ codec: OptionCodec<Value>, _ value: Value) throws(SocketError) {
        try withUnsafeTemporaryAllocation(byteCount: codec.capacity, alignment: 16) { (buffer) throws(SocketError) in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            let length: Int
            do throws(InvalidOptionValue) {
                length = try codec.encode(value, buffer)
            } catch {
                throw SocketError.invalid("setsockopt(\(cName))", nil, error.why)
            }
            try optionCall("setsockopt(\(cName))") { fd throws(Errno) in
                try Syscall.setsockopt(fd, level: level, name: name, UnsafeRawPointer(buffer.baseAddress), socklen_t(length))
            }
        }
    }

    /// Checks that `value` is acceptable for `option` without any system call.
    func validate<Value>(_ option: SocketOption<Value>, _ value: Value) throws(SocketError) {
        try withUnsafeTemporaryAllocation(byteCount: option.codec.capacity, alignment: 16) { (buffer) throws(SocketError) in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            do throws(InvalidOptionValue) {
                _ = try option.codec.encode(value, buffer)
            } catch {
                throw SocketError.invalid("setsockopt(\(option.cName))", nil, error.why)
            }
        }
    }
}

// MARK: - Values as bytes, without a socket

/// Runs an option codec on caller bytes, turning its errors into ``SocketError``s.
private func decodeOption<Value>(_ codec: OptionCodec<Value>, _ cName: String, _ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Value {
    do throws(InvalidOptionValue) {
        return try codec.decode(bytes)
    } catch {
        throw SocketError.invalid("decode \(cName)", nil, error.why)
    }
}

/// Encodes a value into a new array as `setsockopt(2)` would get it.
private func encodeOption<Value>(_ codec: OptionCodec<Value>, _ cName: String, _ value: Value) throws(SocketError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: codec.capacity)
    let length = try withUnsafeTemporaryAllocation(byteCount: codec.capacity, alignment: 16) { (buffer) throws(SocketError) -> Int in
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let length: Int
        do throws(InvalidOptionValue) {
            length = try codec.encode(value, buffer)
        } catch {
            throw SocketError.invalid("encode \(cName)", nil, error.why)
        }
        bytes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[..<length])) }
        return length
    }
    bytes.removeSubrange(length...)
    return bytes
}

extension SocketOption {
    /// Decodes a value from the bytes `getsockopt(2)` reported for this option, as
    /// `Socket.get(_:)` does: for bytes read with the raw
    /// ``Socket/getOption(level:name:maxLength:)`` or kept from elsewhere. Reads only `bytes`.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the length or contents do not
    ///   fit this option's C type.
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Value {
        try decodeOption(codec, cName, bytes)
    }

    /// Decodes a value from an array (see ``decode(_:)-(UnsafeRawBufferPointer)``).
    public func decode(_ bytes: [UInt8]) throws(SocketError) -> Value {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try decode(buffer) }
    }

    /// Encodes a value as `setsockopt(2)` gets it, validating it first as
    /// `Socket.set(_:_:)` does; no system call.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a value out of range.
    public func encode(_ value: Value) throws(SocketError) -> [UInt8] {
        try encodeOption(codec, cName, value)
    }
}

extension ReadOnlySocketOption {
    /// Decodes a value from the bytes `getsockopt(2)` reported for this option (see
    /// ``SocketOption/decode(_:)-(UnsafeRawBufferPointer)``).
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Value {
        try decodeOption(codec, cName, bytes)
    }

    /// Decodes a value from an array.
    public func decode(_ bytes: [UInt8]) throws(SocketError) -> Value {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try decode(buffer) }
    }
}

extension WriteOnlySocketOption {
    /// Encodes a value as `setsockopt(2)` gets it, validating it first; no system call.
    public func encode(_ value: Value) throws(SocketError) -> [UInt8] {
        try encodeOption(codec, cName, value)
    }
}
