/// Whether a database session travels somewhere it could be read: a non-local host without TLS.
///
/// libpq's default `sslmode=prefer` quietly falls back to clear text when the server offers no
/// TLS, and `sslmode=verify-full` needs a root certificate that `DynamicUser=` services of libpq
/// 15 do not find by themselves. The daemon says so once at start-up instead of staying silent.
public enum TransportSecurity {
    /// A warning for the journal when a session to `host` is not encrypted and `host` is not this
    /// machine; nil when all is well. Pure, for tests.
    public static func warning(host: String?, encrypted: Bool) -> String? {
        guard !encrypted, let host, !isLocal(host) else { return nil }
        return
            "the database connection to \(host) is not encrypted: passwords and rows cross the network in clear text; set sslmode=verify-full and sslrootcert=/etc/ssl/certs/ca-certificates.crt in the connection string"
    }

    /// This machine: a Unix socket directory (or libpq's default socket), `localhost`, or a
    /// loopback address (127.0.0.0/8, ::1).
    public static func isLocal(_ host: String) -> Bool {
        let host = host.lowercased()
        if host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") { return true }
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        if host == "::1" || host == "[::1]" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
