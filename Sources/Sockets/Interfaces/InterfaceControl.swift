import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

extension NetworkInterface {
    /// The interface's MTU, the largest packet it sends, in bytes: `ioctl(SIOCGIFMTU)`.
    public func mtu() throws(SocketError) -> Int {
        try Self.mtu(named: name)
    }

    /// The MTU of the interface with this name: `ioctl(SIOCGIFMTU)` on a datagram socket.
    /// - Throws: `ENODEV` when there is no such interface; an invalid name (empty, over 15
    ///   bytes, or holding a NUL) before any call.
    public static func mtu(named name: String) throws(SocketError) -> Int {
        let request = try interfaceRequest(SIOCGIFMTU, "ioctl(SIOCGIFMTU)", name: name)
        return Int(request.ifr_ifru.ifru_mtu)
    }

    /// The current flags of the interface with this name: `ioctl(SIOCGIFFLAGS)`.
    ///
    /// The ioctl's field has 16 bits, so ``InterfaceFlags/lowerUp``, ``InterfaceFlags/dormant``
    /// and ``InterfaceFlags/echo`` never appear here; ``list()`` reports them.
    /// - Throws: `ENODEV` when there is no such interface.
    public static func flags(named name: String) throws(SocketError) -> InterfaceFlags {
        let request = try interfaceRequest(SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)", name: name)
        return InterfaceFlags(rawValue: UInt32(UInt16(bitPattern: request.ifr_ifru.ifru_flags)))
    }

    /// The link-layer address of the interface with this name, from its `AF_PACKET` record
    /// of `getifaddrs(3)`; `nil` if it has none.
    ///
    /// Not `ioctl(SIOCGIFHWADDR)`: that call does not say how many bytes the address has,
    /// while the `getifaddrs` record does.
    /// - Throws: `ENODEV` when there is no such interface.
    public static func hardwareAddress(named name: String) throws(SocketError) -> HardwareAddress? {
        try named(name).hardwareAddress
    }

    /// Runs an `SIOCGIF*` request for `name` on a datagram socket opened for it, and returns
    /// the filled `ifreq`.
    private static func interfaceRequest(_ request: some BinaryInteger, _ operation: StaticString, name: String) throws(SocketError) -> ifreq {
        let bytes = try validName(name, operation: operation.description)
        var value = ifreq()
        withUnsafeMutableBytes(of: &value.ifr_ifrn.ifrn_name) { target in
            // validName keeps the name below IFNAMSIZ, so the terminating NUL stays.
            target.copyBytes(from: bytes)
        }
        // Any socket will do for interface ioctls; IPv4 may be compiled out, Unix never is.
        let socket: Socket
        do {
            socket = try Socket(.inet, .datagram)
        } catch {
            socket = try Socket(.unix, .datagram)
        }
        defer { try? socket.close() }
        try socket.call(operation, address: name) { fd throws(Errno) in
            _ = try Syscall.ioctl(fd, UInt(request), &value)
        }
        return value
    }
}
