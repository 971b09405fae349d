import Glibc
import SocketSyscalls
public import SystemPackage

extension Socket {
    /// Binds a Unix socket to a filesystem path whose socket file gets exactly `permissions`,
    /// and is never in the filesystem with looser ones, not even for an instant.
    ///
    /// Connecting to a Unix socket needs write permission on its file, so the mode decides
    /// who may connect: `[.ownerReadWrite]` (0600) lets only this user (and root) in,
    /// `[.ownerReadWrite, .groupReadWrite]` (0660) this group too. The usual
    /// `bind` then `chmod` leaves a moment in which anyone the umask allows can connect; here
    /// the mode is set on the socket before `bind(2)` (Linux creates the file with the
    /// socket's mode less the umask, so it can only be stricter), and bits the umask removed
    /// are added back afterwards on the socket file itself (opened with `O_NOFOLLOW` and
    /// checked to be a socket, so a symbolic link put in its place is never followed).
    ///
    /// Like `bind`, this fails with `EADDRINUSE` when something already exists at the path;
    /// it never removes anything.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for an abstract or unnamed address,
    ///   or permissions beyond 0o777 (set-user-id, set-group-id, sticky); else the errors of
    ///   `fchmod`, `bind` and `chmod`. If adding bits back fails, the socket file is removed
    ///   (the socket itself stays bound to the name: close it).
    public func bind(to address: UnixSocketAddress, permissions: FilePermissions) throws(SocketError) {
        guard address.kind == .path else {
            throw SocketError.invalid("bind", address.description, "permissions apply only to a filesystem path, not to \(address.kind == .abstract ? "an abstract name" : "an unnamed address")")
        }
        let mode = mode_t(permissions.rawValue)
        guard mode & ~0o777 == 0 else {
            throw SocketError.invalid("bind", address.description, "permissions 0o\(String(mode, radix: 8)) go beyond 0o777")
        }
        let shown = address.description
        try call("fchmod", address: shown) { fd throws(Errno) in try Syscall.fchmod(fd, mode) }
        try bind(to: .unix(address))
        // The file is named by the address's bytes, which need not be UTF-8: use them, never
        // the printed form.
        do {
            if try Syscall.linkMode(address.bytes) & 0o777 != mode {
                try Syscall.changeSocketFileMode(address.bytes, mode)
            }
        } catch {
            // Leave nothing behind: the file this bind created goes (the socket stays bound
            // to the name, which no one can reach now).
            try? Syscall.removeSocketFile(address.bytes)
            throw SocketError("chmod", address: shown, errno: error)
        }
    }
}
