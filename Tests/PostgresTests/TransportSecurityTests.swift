import CitrusTestKit
import Postgres
import Testing

@Suite("Transport security: a warning when a session to another machine is not encrypted")
struct TransportSecurityTests {
    @Test(
        "warns exactly for a non-local host without TLS",
        arguments: [
            ("db.example.com", false, true),
            ("10.0.0.5", false, true),
            ("2001:db8::5", false, true),
            ("127.1.2.3x", false, true),
            ("db.example.com", true, false),
            ("10.0.0.5", true, false),
            ("127.0.0.1", false, false),
            ("127.8.9.10", false, false),
            ("localhost", false, false),
            ("LOCALHOST", false, false),
            ("::1", false, false),
            ("/var/run/postgresql", false, false),
            ("", false, false),
        ]
    )
    func decision(host: String, encrypted: Bool, warns: Bool) {
        let warning = TransportSecurity.warning(host: host, encrypted: encrypted)
        #expect((warning != nil) == warns, "\(host) encrypted=\(encrypted): \(warning ?? "no warning")")
        if let warning {
            #expect(warning.contains(host))
            #expect(
                warning.contains("sslrootcert=/etc/ssl/certs/ca-certificates.crt"),
                "names the form that works with libpq 15"
            )
        }
    }

    @Test("no session, no host: nothing to say")
    func noHost() {
        #expect(TransportSecurity.warning(host: nil, encrypted: false) == nil)
    }

    /// The test cluster over TCP on 127.0.0.1 without TLS: the accessors report it, and it is local.
    @Test("a session over TCP to 127.0.0.1 reports its host, no TLS, and no warning")
    func loopbackSession() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url + "?sslmode=disable")
            let host = await connection.serverHost
            let encrypted = await connection.isEncrypted
            await connection.close()
            #expect(host == "127.0.0.1")
            #expect(!encrypted)
            #expect(TransportSecurity.warning(host: host, encrypted: encrypted) == nil)
            #expect(await connection.serverHost == nil, "no session after close")
        }
    }
}
