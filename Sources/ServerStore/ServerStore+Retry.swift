#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore

/// `citrus-reconciler retry`: a failed row put back in line, with its audit entry, in one
/// statement.
extension ServerStore {
    /// What a retry found.
    public enum RetryOutcome: Sendable, Equatable {
        /// The row was failed and is `creating` again; `reason` was its `last_error`.
        case retried(reason: String?)
        /// The row is not failed: nothing was changed.
        case notFailed(status: String)
        /// Its deletion is requested: a retry would fight it, so nothing was changed.
        case deletionRequested
        case noSuchRow
    }

    /// Puts failed row `id` back to `creating`, keeping its identity (its id, so its droplet's
    /// identity tag) and its create history (so a create that may still be in flight is waited
    /// for, never doubled). What made it fail is cleared: the droplet it recorded (a live droplet
    /// carrying its identity is bound again by the next pass; none, and one is created), its
    /// addresses, errors, backoff, failed placements and what it last saw of its droplet. One
    /// statement, so the entry is written exactly when the row is; the daemon's own writes
    /// compare revisions, so one decided on the failed row cannot land over it.
    public func retry(id: UUID) async throws -> RetryOutcome {
        let rows = try await connection.query(
            """
            WITH old AS (
                SELECT id, name, status, last_error, digital_ocean_id, delete_requested_at
                FROM servers WHERE id = \(id) FOR UPDATE
            ), retried AS (
                UPDATE servers s SET
                    status = 'creating', digital_ocean_id = NULL, ip_address = NULL, ipv6_address = NULL,
                    last_error = NULL, failed_placements = 0, transient_failures = 0, next_attempt_at = NULL,
                    agent_awaited_since = NULL, droplet_name = NULL, droplet_region = NULL, droplet_size = NULL,
                    droplet_image = NULL, drift = NULL, drift_since = NULL, change_goal = NULL, change_target = NULL,
                    change_step = NULL, change_action_id = NULL, change_sent_at = NULL, change_failure = NULL,
                    updated_at = now()
                FROM old
                WHERE s.id = old.id AND old.status = 'failed' AND old.delete_requested_at IS NULL
                RETURNING s.id
            ), woken AS (
                -- The daemon's notify trigger wakes on the platform's columns only; a retry wakes it too.
                SELECT pg_notify(\(Migration.notificationChannel), id::text) FROM retried
            ), audited AS (
                INSERT INTO server_events (server_id, server_name, kind, message, droplet_id, from_status, to_status)
                SELECT old.id, old.name, \(AuditKind.retryRequested.rawValue),
                       'server ' || old.name || ' is back in line at an operator''s request (it was failed: '
                           || COALESCE(old.last_error, 'no reason recorded')
                           || '); the next pass binds the droplet that carries its identity, or creates one, once',
                       CASE WHEN old.digital_ocean_id ~ '^[0-9]{1,18}$' THEN old.digital_ocean_id::bigint END,
                       'failed', 'creating'
                FROM old WHERE EXISTS (SELECT 1 FROM retried)
            )
            SELECT old.status, old.last_error, old.delete_requested_at IS NOT NULL AS deletion,
                   EXISTS (SELECT 1 FROM retried) AS retried, (SELECT count(*) FROM woken) AS woken
            FROM old
            """
        )
        guard let row = rows.first else { return .noSuchRow }
        if try row.decode(Bool.self, "retried") { return .retried(reason: try row.decode(String?.self, "last_error")) }
        if try row.decode(Bool.self, "deletion") { return .deletionRequested }
        return .notFailed(status: try row.decode(String.self, "status"))
    }
}
