import Foundation
import Logging
import Postgres

/// The `agents` table as the hub uses it: one database session, opened on first use and again
/// after it is lost. Queries are serialised by the session's actor.
actor AgentDirectory {
    private let connectionString: String?
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private var connection: PostgresConnection?
    /// After a failed attempt to connect, callers fail fast for a moment instead of each waiting
    /// for its own connect timeout.
    private var retryNotBefore: ContinuousClock.Instant?
    private static let retryPause: Duration = .milliseconds(500)

    init(connectionString: String?, connectTimeout: Duration, logger: Logger) {
        self.connectionString = connectionString
        var configuration = PostgresConnection.Configuration()
        configuration.connectTimeout = connectTimeout
        configuration.applicationName = "citrus-engine-sim"
        self.configuration = configuration
        self.logger = logger
    }

    /// Checks the presented secret and, when it holds, stamps `connected_at` (first time only)
    /// and `last_seen_at`. The hub's credential is compared with `agents.hub_credential_sha256`.
    /// The bootstrap key is compared with `agents.key_sha256`, and lets the agent in only while
    /// the daemon has not cleared it (single-use): then a new credential is made, its SHA-256
    /// stored in the same write, and the welcome hands it over. Never throws: a database problem
    /// is a refusal the agent can retry.
    func authenticate(agentID: UUID, key: PresentedKey) async -> AuthenticationOutcome {
        do {
            let rows = try await run(
                """
                SELECT key_sha256, hub_credential_sha256, connected_at IS NOT NULL AS connected
                FROM agents WHERE id = \(agentID)
                """
            )
            guard let row = rows.first else { return .refused(.unknownAgent) }
            switch key.kind {
            case .hubCredential:
                guard let stored = try row.decode(String?.self, "hub_credential_sha256"), !stored.isEmpty,
                    KeyDigest.matches(key, storedHex: stored)
                else { return .refused(.wrongCredential) }
                // Only if the credential is still the one just compared: a re-key clears it.
                let updated = try await run(
                    """
                    UPDATE agents SET connected_at = COALESCE(connected_at, now()), last_seen_at = now()
                    WHERE id = \(agentID) AND hub_credential_sha256 = \(stored)
                    """
                )
                return updated.affectedRows == 1 ? .accepted : .refused(.wrongCredential)
            case .bootstrapKey:
                guard let stored = try row.decode(String?.self, "key_sha256"), !stored.isEmpty else {
                    return .refused(try row.decode(Bool.self, "connected") ? .bootstrapKeyUsed : .noKeyStored)
                }
                guard KeyDigest.matches(key, storedHex: stored) else { return .refused(.wrongKey) }
                let credential = IssuedCredential.random()
                // Only if the key is still the one just compared: a re-key, or the daemon clearing
                // the used key, in between refuses.
                let updated = try await run(
                    """
                    UPDATE agents SET connected_at = COALESCE(connected_at, now()), last_seen_at = now(),
                        hub_credential_sha256 = \(credential.sha256)
                    WHERE id = \(agentID) AND key_sha256 = \(stored)
                    """
                )
                return updated.affectedRows == 1 ? .acceptedWithCredential(credential) : .refused(.wrongKey)
            }
        } catch {
            logger.warning(
                "cannot check an agent's key: database error",
                metadata: ["agent_id": "\(agentID.lowercased)", "error": "\(error)"]
            )
            return .refused(.databaseUnavailable)
        }
    }

    /// Sets `last_seen_at = now()`; false when the database could not be written.
    func recordHeartbeat(agentID: UUID) async -> Bool {
        do {
            try await run("UPDATE agents SET last_seen_at = now() WHERE id = \(agentID)")
            return true
        } catch {
            logger.warning(
                "cannot record a heartbeat: database error",
                metadata: ["agent_id": "\(agentID.lowercased)", "error": "\(error)"]
            )
            return false
        }
    }

    /// Opens the session now, so a misconfigured database shows up at start-up in the log.
    func warmUp() async {
        do {
            _ = try await session()
        } catch {
            logger.warning(
                "database not reachable yet; agents are refused until it is",
                metadata: ["error": "\(error)"]
            )
        }
    }

    func close() async {
        if let connection { await connection.close() }
        connection = nil
    }

    /// Runs `query`, reconnecting once if the session turns out to be gone.
    @discardableResult
    private func run(_ query: PostgresQuery) async throws(PostgresError) -> PostgresRows {
        let first = try await session()
        do {
            return try await first.query(query)
        } catch  where error.code == .connectionLost {
            if connection === first { connection = nil }
            return try await session().query(query)
        }
    }

    private func session() async throws(PostgresError) -> PostgresConnection {
        if let connection, await connection.isConnected { return connection }
        if let retryNotBefore, ContinuousClock.now < retryNotBefore {
            throw PostgresError(code: .connectionFailed, message: "the database was unreachable moments ago")
        }
        do {
            let opened = try await PostgresConnection.connect(
                connectionString,
                configuration: configuration,
                logger: logger
            )
            // Another caller may have connected while this one waited; keep one session.
            if let connection, await connection.isConnected {
                await opened.close()
                return connection
            }
            connection = opened
            retryNotBefore = nil
            logger.info("database session opened")
            return opened
        } catch {
            retryNotBefore = .now + Self.retryPause
            throw error
        }
    }
}

extension UUID {
    /// The protocol's spelling of an agent id.
    var lowercased: String { uuidString.lowercased() }
}
