import Foundation
public import Sockets
public import Testing

// Limits that an ordinary user meets before root does: the soft limit on open descriptors
// (often 1,024) and net.core.rmem_max on receive buffers.

/// This process's limit on open descriptors once its soft limit is raised to the hard one
/// (done once, on first use, as `sock` and Go programs do at start), or why that failed.
public let raisedDescriptorLimit = Result { () throws(SocketError) in try ProcessSupport.raiseDescriptorLimit() }

/// `net.core.rmem_max`: the largest receive buffer `SO_RCVBUF` grants without
/// `CAP_NET_ADMIN` (0 if unreadable).
public let receiveBufferMaximum: Int = {
    let text = (try? String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8)) ?? ""
    return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
}()

/// Gives `socket` a receive buffer of `bytes` (the kernel doubles it for its bookkeeping):
/// with `SO_RCVBUFFORCE` where `CAP_NET_ADMIN` allows, else with `SO_RCVBUF`, which
/// `net.core.rmem_max` caps (see ``Trait/requiresReceiveBuffer(_:sourceLocation:)``).
public func reserveReceiveBuffer(_ socket: Socket, _ bytes: Int) throws(SocketError) {
    if Capability.netAdmin.isEffective {
        try socket.set(.forcedReceiveBufferSize, bytes)
    } else {
        try socket.set(.receiveBufferSize, bytes)
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only where this process may have `count` descriptors open at once, once
    /// its soft limit is raised to the hard one (``raisedDescriptorLimit``).
    public static func requiresDescriptors(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        let reason = switch raisedDescriptorLimit {
        case .success(let limit): "needs \(count) open descriptors; the hard RLIMIT_NOFILE is \(limit)"
        case .failure(let error): "needs \(count) open descriptors; the limit could not be raised: \(error)"
        }
        return .enabled(if: ((try? raisedDescriptorLimit.get()) ?? 0) >= count, Comment(rawValue: reason), sourceLocation: sourceLocation)
    }

    /// Runs the test only where ``reserveReceiveBuffer(_:_:)`` can grant `bytes`: with
    /// `CAP_NET_ADMIN`, or where `net.core.rmem_max` is at least that.
    public static func requiresReceiveBuffer(_ bytes: Int, sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        .enabled(
            if: Capability.netAdmin.isEffective || receiveBufferMaximum >= bytes,
            Comment(rawValue: "needs CAP_NET_ADMIN (SO_RCVBUFFORCE) or net.core.rmem_max of at least \(bytes) for its receive buffer (it is \(receiveBufferMaximum); run as root)"),
            sourceLocation: sourceLocation)
    }
}
