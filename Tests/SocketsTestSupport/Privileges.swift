import Foundation
public import Testing

// What tests need beyond an ordinary user's rights. The suite passes for a user without
// capabilities (scripts/test-unprivileged.sh runs it so): a test that needs a capability is
// skipped with `.requires(...)`, whose message names what is missing, or checks that the
// kernel's refusal is reported clearly, and root runs the whole of it.

/// A Linux capability, by its bit in the capability sets (`<linux/capability.h>`).
public struct Capability: Sendable, CustomStringConvertible {
    public let bit: Int
    public let name: String

    public static let setgid = Capability(bit: 6, name: "CAP_SETGID")
    public static let setuid = Capability(bit: 7, name: "CAP_SETUID")
    public static let netAdmin = Capability(bit: 12, name: "CAP_NET_ADMIN")
    public static let netRaw = Capability(bit: 13, name: "CAP_NET_RAW")
    public static let sysAdmin = Capability(bit: 21, name: "CAP_SYS_ADMIN")

    /// Whether this process has it in its effective set (`CapEff` in /proc/self/status).
    public var isEffective: Bool { effectiveCapabilities & (1 << UInt64(bit)) != 0 }

    public var description: String { name }
}

/// The effective capability set, read once: a test process does not change its own.
private let effectiveCapabilities: UInt64 = {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
        return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
    }
    return 0
}()

/// Capabilities that some tests need together, and what for.
public struct Privilege: Sendable {
    public let capabilities: [Capability]
    public let purpose: String

    /// Raw IP sockets and `AF_PACKET` sockets.
    public static let rawSockets = Privilege(capabilities: [.netRaw], purpose: "raw and packet sockets")
    /// `ip netns add` (it mounts under /run/netns) and `unshare(CLONE_NEWNET)`, and configuring
    /// the namespace's links.
    public static let networkNamespaces = Privilege(capabilities: [.sysAdmin, .netAdmin], purpose: "network namespaces")
    /// Starting a peer as another user (`setpriv --reuid`).
    public static let otherUsers = Privilege(capabilities: [.setuid, .setgid], purpose: "running a peer as another user")
    /// A UTS namespace of the test's own, to set a host name in.
    public static let utsNamespace = Privilege(capabilities: [.sysAdmin], purpose: "a UTS namespace")

    /// Whether this process has every one of ``capabilities``.
    public var isHeld: Bool { capabilities.allSatisfy(\.isEffective) }

    /// Why a test that needs this is skipped: `needs CAP_NET_RAW for raw and packet sockets
    /// (run as root)`.
    public var requirement: String {
        "needs \(capabilities.map(\.name).joined(separator: " and ")) for \(purpose) (run as root)"
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only where this process holds `privilege`; elsewhere it is skipped with
    /// ``Privilege/requirement`` as the reason.
    public static func requires(_ privilege: Privilege, sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        .enabled(if: privilege.isHeld, Comment(rawValue: privilege.requirement), sourceLocation: sourceLocation)
    }
}
