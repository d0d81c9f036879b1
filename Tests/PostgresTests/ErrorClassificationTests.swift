import Testing

@testable import Postgres

@Suite("Errors no wait can cure")
struct ErrorClassificationTests {
    @Test(
        "authentication failures are recognised by SQLSTATE or by libpq's words for them",
        arguments: [
            #"connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  password authentication failed for user "citrus""#,
            #"connection to server at "db", port 5432 failed: FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "citrus", database "citrus", no encryption"#,
            #"connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: FATAL:  Peer authentication failed for user "citrus""#,
            #"connection to server at "db", port 5432 failed: fe_sendauth: no password supplied"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "ghost" does not exist"#,
        ]
    )
    func authenticationFailures(message: String) {
        #expect(PostgresError(code: .connectionFailed, message: message).isAuthenticationFailure)
    }

    @Test("a server that is down, starting or unreachable is not an authentication failure: that is worth retrying")
    func transientFailuresAreNot() {
        for message in [
            #"connection to server at "127.0.0.1", port 5432 failed: Connection refused"#,
            #"connection to server at "db", port 5432 failed: FATAL:  the database system is starting up"#,
            #"could not translate host name "db" to address: Name or service not known"#,
            #"connection to server at "db", port 5432 failed: FATAL:  database "citrus" does not exist"#,
        ] {
            #expect(!PostgresError(code: .connectionFailed, message: message).isAuthenticationFailure, "\(message)")
        }
        #expect(PostgresError(code: .server, message: "x", sqlState: "28P01").isAuthenticationFailure)
        #expect(
            PostgresError(code: .server, message: "permission denied for table servers", sqlState: "42501")
                .isInsufficientPrivilege
        )
        #expect(!PostgresError(code: .server, message: "permission denied", sqlState: "42P01").isInsufficientPrivilege)
        #expect(
            !PostgresError(code: .server, message: "password authentication failed", sqlState: "57P01")
                .isAuthenticationFailure
        )
    }
}
