#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Postgres
import Timekeeping

extension PostgresConnection: LeaderSession {
    public func tryLock(_ key: Int64) async throws -> Bool {
        try await tryAdvisoryLock(key)
    }

    public func unlock(_ key: Int64) async {
        _ = try? await advisoryUnlock(key)
    }

    public func ping() async throws {
        try await query("SELECT 1")
    }

    public var isOpen: Bool { isConnected }

    public nonisolated func isSessionLoss(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError else { return false }
        return error.code == .connectionLost || error.code == .connectionFailed
    }
}

extension Leadership where Session == PostgresConnection {
    /// Leadership over Postgres: a session-level advisory lock, on sessions the server ends once
    /// they have been silent for `serverSilenceLimit` (idle, idle in a transaction, or with a peer
    /// that stopped acknowledging), so a frozen or partitioned leader frees the lock.
    public static func postgres(
        connectionString: String?,
        configuration: Configuration = Configuration(),
        clock: any DaemonClock = SystemClock(),
        logger: Logger
    ) -> Leadership {
        Leadership(configuration: configuration, clock: clock, logger: logger) {
            let session = try await PostgresConnection.connect(connectionString, logger: logger)
            let limit = max(1, Int((configuration.serverSilenceLimit.timeInterval * 1000).rounded()))
            let keepalive = max(1, limit / 3000)
            // idle_session_timeout needs Postgres 14; the contract asks for 15 or later.
            try await session.runScript(
                """
                SET idle_session_timeout = \(unsafeSQL: String(limit));
                SET idle_in_transaction_session_timeout = \(unsafeSQL: String(limit));
                SET tcp_user_timeout = \(unsafeSQL: String(limit));
                SET tcp_keepalives_idle = \(unsafeSQL: String(keepalive));
                SET tcp_keepalives_interval = \(unsafeSQL: String(keepalive));
                SET tcp_keepalives_count = 2
                """
            )
            return session
        }
    }
}
