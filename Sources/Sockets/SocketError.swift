public import SystemPackage
import SocketSyscalls

/// Every failure in this library: what was attempted, on which address, and why.
///
/// Its ``description`` is the line a user wants in a log, for example
/// `connect(127.0.0.1:9): Connection refused (ECONNREFUSED)`.
public struct SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Why an operation failed.
    public enum Reason: Sendable, Equatable {
        /// The kernel refused the call with this errno.
        case system(Errno)
        /// `getaddrinfo`/`getnameinfo` failed with an `EAI_*` code (negative on glibc);
        /// for `EAI_SYSTEM`, `systemError` holds the errno.
        case addressInfo(code: Int32, systemError: Errno?)
        /// The input was rejected before any system call (a malformed address, a port above
        /// 65535, an over-long Unix path, an option value of the wrong size, ...).
        case invalidArgument(String)
        /// The socket was already closed (or its descriptor released) by this process.
        case closed
        /// The operation's deadline passed before it could complete.
        case timedOut
    }

    /// The call or operation that failed, such as `connect` or `parse IPv4 address`.
    public let operation: String
    /// The address involved, as text, when there is one.
    public let address: String?
    /// Why it failed.
    public let reason: Reason
    /// For `EAGAIN` from a call on a blocking socket: the socket timeout that ran out.
    let expiredSocketTimeout: SocketTimeoutOption?

    /// The socket options whose expiry a blocking call reports as `EAGAIN`.
    enum SocketTimeoutOption: String, Sendable {
        case receive = "SO_RCVTIMEO"
        case send = "SO_SNDTIMEO"
    }

    /// Creates an error.
    public init(_ operation: String, address: String? = nil, reason: Reason) {
        self.init(operation, address: address, reason: reason, expiredSocketTimeout: nil)
    }

    init(_ operation: String, address: String?, reason: Reason, expiredSocketTimeout: SocketTimeoutOption?) {
        self.operation = operation
        self.address = address
        self.reason = reason
        self.expiredSocketTimeout = expiredSocketTimeout
    }

    /// An error from an errno.
    public init(_ operation: String, address: String? = nil, errno: Errno) {
        self.init(operation, address: address, reason: .system(errno))
    }

    /// An error for input rejected before any system call.
    public static func invalid(_ operation: String, _ input: String? = nil, _ why: String) -> SocketError {
        SocketError(operation, address: input, reason: .invalidArgument(why))
    }

    /// The errno behind this error, if any. A closed socket reports `EBADF`, a timeout
    /// `ETIMEDOUT`, and an invalid argument `EINVAL`.
    public var errno: Errno? {
        switch reason {
        case .system(let code): return code
        case .addressInfo(_, let systemError): return systemError
        case .invalidArgument: return .invalidArgument
        case .closed: return .badFileDescriptor
        case .timedOut: return .timedOut
        }
    }

    /// Whether a non-blocking call would have blocked (`EAGAIN`), which is also how a blocking
    /// socket reports an expired `SO_RCVTIMEO`/`SO_SNDTIMEO`.
    public var isWouldBlock: Bool {
        if case .system(let code) = reason { return code == .resourceTemporarilyUnavailable }
        return false
    }

    /// Whether the operation ran out of time, however that was reported: a deadline or
    /// timeout of this library (``Reason/timedOut``), the kernel giving up (`ETIMEDOUT`, such
    /// as a connect with no answer or a keep-alive that failed), or a blocking socket's
    /// `SO_RCVTIMEO`/`SO_SNDTIMEO` running out (which the kernel reports as `EAGAIN`).
    ///
    /// `EAGAIN` from a non-blocking socket, or a call with ``MessageFlags/dontWait``, is "would
    /// block" (``isWouldBlock``), not a timeout.
    public var isTimeout: Bool {
        switch reason {
        case .timedOut: return true
        case .system(let code): return code == .timedOut || expiredSocketTimeout != nil
        default: return false
        }
    }

    /// The `EAI_*` code of a failed name lookup.
    public var addressInfoCode: Int32? {
        if case .addressInfo(let code, _) = reason { return code }
        return nil
    }

    /// The failure in words, without the operation: `Connection refused (ECONNREFUSED)`.
    public var reasonText: String {
        switch reason {
        case .system(let code):
            let name = code.name ?? "errno \(code.rawValue)"
            if let expiredSocketTimeout { return "\(code.description) (\(name): \(expiredSocketTimeout.rawValue) ran out)" }
            return "\(code.description) (\(name))"
        case .addressInfo(let code, let systemError):
            return AddressInfoFailure(code: code, systemError: systemError).description
        case .invalidArgument(let why):
            return why
        case .closed:
            return "socket is closed"
        case .timedOut:
            return "timed out (ETIMEDOUT)"
        }
    }

    public var description: String {
        if let address { return "\(operation)(\(address)): \(reasonText)" }
        return "\(operation): \(reasonText)"
    }
}

extension SocketError {
    /// Wraps an errno from the system layer.
    @usableFromInline
    static func system(_ operation: String, _ errno: Errno, address: String? = nil) -> SocketError {
        SocketError(operation, address: address, reason: .system(errno))
    }
}

/// The symbolic name of an `EAI_*` code.
func addressInfoCodeName(_ code: Int32) -> String {
    AddressInfoFailure.name(of: code)
}
