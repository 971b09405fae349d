import Glibc
import CSocketShims
public import SystemPackage

// Network namespaces: a thread can move into another one, and sockets it creates afterwards
// belong there for good. Used by tools and tests that build their own private networks.

extension Syscall {
    /// `CLONE_NEWNET`: the network namespace type for ``setNamespace(_:type:)`` and ``unshare(_:)``.
    public static let newNetworkNamespace: CInt = 0x4000_0000

    /// `CLONE_NEWUTS`: the host name namespace type.
    public static let newUTSNamespace: CInt = 0x0400_0000

    /// The corresponding C function is `setns(2)`: moves the calling thread into the namespace
    /// that `fd` (an open `/proc/PID/ns/...` or `/run/netns/NAME` file) refers to.
    public static func setNamespace(_ fd: CInt, type: CInt) throws(Errno) {
        _ = try retryingInterrupts { cshim_setns(fd, type) }
    }

    /// The corresponding C function is `unshare(2)`: gives the calling thread new namespaces
    /// of the kinds in `flags` (for example ``newNetworkNamespace``).
    public static func unshare(_ flags: CInt) throws(Errno) {
        _ = try retryingInterrupts { cshim_unshare(flags) }
    }
}
