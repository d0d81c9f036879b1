#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Postgres
import Reconciler
import Timekeeping

extension PostgresConnection: LeaderSession {
    /// Refuses a standby (`tryAdvisoryLock` does): a replica connected to one (a single-host
    /// string naming it, or `target_session_attrs=any`) would otherwise lead from a read-only copy,
    /// unseen by the replicas on the primary, and every write of it would fail.
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
    /// that stopped acknowledging), so a frozen or partitioned leader frees the lock. Their
    /// statements wait at most `lockTimeout` for a row another transaction holds and run at most
    /// `statementTimeout`, so a leader frozen in the middle of one frees the lock as well; their
    /// commits are synchronous (`synchronous_commit = on`). (A commit's wait for a synchronous
    /// standby is not a statement's: it ends only when a standby has the commit.)
    public static func postgres(
        connectionString: String?,
        configuration: Configuration = Configuration(),
        clock: any DaemonClock = SystemClock(),
        logger: Logger
    ) -> Leadership {
        Leadership(configuration: configuration, clock: clock, logger: logger) {
            // A write the server acknowledged with a warning did not fully happen: above all a
            // commit whose wait for the synchronous standby was cancelled (a pass cancelled when
            // leadership is lost sends a cancel request), which stands on the primary alone and
            // could be lost to a failover. The write fails, so nothing is sent on its strength.
            var connection = PostgresConnection.Configuration()
            connection.warningsFail = true
            let session = try await PostgresConnection.connect(
                connectionString,
                configuration: connection,
                logger: logger
            )
            let limit = milliseconds(configuration.serverSilenceLimit)
            let keepalive = max(1, limit / 3000)
            // idle_session_timeout needs Postgres 14; the contract asks for 15 or later.
            // synchronous_commit is set, not assumed: a role or database default of `off` (or
            // `local`) would acknowledge an intent that a crash or a failover can still lose.
            try await session.runScript(
                """
                SET idle_session_timeout = \(unsafeSQL: String(limit));
                SET idle_in_transaction_session_timeout = \(unsafeSQL: String(limit));
                SET tcp_user_timeout = \(unsafeSQL: String(limit));
                SET tcp_keepalives_idle = \(unsafeSQL: String(keepalive));
                SET tcp_keepalives_interval = \(unsafeSQL: String(keepalive));
                SET tcp_keepalives_count = 2;
                SET lock_timeout = \(unsafeSQL: String(milliseconds(configuration.lockTimeout)));
                SET statement_timeout = \(unsafeSQL: String(milliseconds(configuration.statementTimeout)));
                SET synchronous_commit = on
                """
            )
            return session
        }
    }
}

/// A duration as whole milliseconds for a server setting (at least 1: 0 turns most timeouts off).
private func milliseconds(_ duration: Duration) -> Int {
    max(1, Int((duration.timeInterval * 1000).rounded()))
}
