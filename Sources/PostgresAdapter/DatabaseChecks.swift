import Logging
import Postgres
import ServiceLifecycle

/// Once, after start-up: warnings in the journal when the database session goes to another
/// machine without TLS (``TransportSecurity``), or when the database cannot keep the exactly-once
/// promise across a failover (``DatabaseDurability``). A session that cannot be opened is no news
/// here: start-up has just connected, and the loop reports its own failures.
public struct DatabaseChecks: Service {
    let connectionString: String?
    let logger: Logger

    public init(connectionString: String?, logger: Logger) {
        self.connectionString = connectionString
        self.logger = logger
    }

    public func run() async throws {
        guard let connection = try? await PostgresConnection.connect(connectionString, logger: logger) else { return }
        let host = await connection.serverHost
        let encrypted = await connection.isEncrypted
        // Not the session's synchronous_commit: this one is not the leader's, which sets its own.
        await DatabaseDurability.warn(on: connection, moment: "at start", checkingCommit: false, logger: logger)
        await connection.close()
        if let warning = TransportSecurity.warning(host: host, encrypted: encrypted) {
            logger.warning("\(warning)")
        } else {
            logger.debug("database transport", metadata: ["host": "\(host ?? "default")", "tls": "\(encrypted)"])
        }
    }
}
