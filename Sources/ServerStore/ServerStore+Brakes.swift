#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore

/// The destroy brake's records (migration 16): what the budget counts, the operator's
/// allowances (`citrus-reconciler destroys allow`), and what `status` says of them.
extension ServerStore {
    /// The destroys sent in the last hour by the database's clock (`destroy_sending` and
    /// `destroy_requested` entries, one per droplet, orphans' included; duplicates are
    /// `duplicate_resolved` and not counted; the kinds are literals so the partial index applies),
    /// and the allowance in force, if any. One statement.
    public func destroyLedger() async throws -> DestroyLedger {
        let rows = try await connection.query(
            """
            SELECT droplet_id, accepted_at, NULL::timestamptz AS allowed_until, NULL::text AS allowed_by,
                   NULL::timestamptz AS braked_since FROM (
                SELECT droplet_id, max(created_at) FILTER (WHERE kind = 'destroy_requested') AS accepted_at
                FROM server_events
                WHERE kind IN ('destroy_requested', 'destroy_sending')
                  AND created_at > clock_timestamp() - interval '1 hour' AND droplet_id IS NOT NULL
                GROUP BY droplet_id
            ) destroyed
            UNION ALL (
                SELECT NULL, NULL, allowed_until, created_by || COALESCE(': ' || reason, ''), NULL
                FROM destroy_allowances
                WHERE allowed_until > clock_timestamp() AND created_at <= clock_timestamp()
                ORDER BY allowed_until DESC LIMIT 1
            )
            UNION ALL (
                SELECT NULL, NULL, NULL, kind, created_at FROM server_events
                WHERE kind IN ('destroys_braked', 'destroys_released')
                ORDER BY id DESC LIMIT 1
            )
            """
        )
        var ledger = DestroyLedger()
        for row in rows {
            if let droplet = try row.decode(Int64?.self, "droplet_id") {
                ledger.destroyedInHour.insert(droplet)
                if let at = try row.decode(Date?.self, "accepted_at") { ledger.acceptedAt[droplet] = at }
            } else if let until = try row.decode(Date?.self, "allowed_until") {
                ledger.allowedUntil = until
                ledger.allowedBy = try row.decode(String?.self, "allowed_by")
            } else if let since = try row.decode(Date?.self, "braked_since") {
                let kind = try row.decode(String?.self, "allowed_by")
                if kind == AuditKind.destroysBraked.rawValue { ledger.brakedSince = since }
            }
        }
        return ledger
    }

    /// An operator's allowance, as recorded.
    public struct DestroyAllowance: Sendable, Hashable {
        public var allowedUntil: Date
        public var createdAt: Date
        public var createdBy: String
        public var reason: String?
    }

    /// Allows destroys past the budget until `until` (or for `duration` from now, by the
    /// database's clock), recorded with the session's user and `reason`, and wakes the daemon
    /// (NOTIFY: a payload that names no row asks for a full pass). One statement.
    public func allowDestroys(until: Date?, for duration: Duration?, reason: String?) async throws -> DestroyAllowance {
        let seconds = duration.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        let rows = try await connection.query(
            """
            WITH granted AS (
                INSERT INTO destroy_allowances (allowed_until, reason)
                VALUES (COALESCE(\(until), clock_timestamp() + make_interval(secs => \(seconds))), \(reason))
                RETURNING allowed_until, created_at, created_by, reason
            ), woken AS (
                SELECT pg_notify(\(Migration.notificationChannel), 'destroys-allowed') FROM granted
            )
            SELECT allowed_until, created_at, created_by, reason, (SELECT count(*) FROM woken) AS woken FROM granted
            """
        )
        guard let row = rows.first else {
            throw PostgresError(code: .decoding, message: "INSERT INTO destroy_allowances returned no row")
        }
        return try Self.allowance(row)
    }

    /// What `destroys status` and `status` show: destroys in the last hour, the allowances not
    /// yet over, and the daemon's last word on the brake (a `destroys_braked` or
    /// `destroys_released` entry), if it ever braked.
    public func destroyBrakeReport() async throws -> (
        destroyedInHour: Int, allowances: [DestroyAllowance], lastWord: AuditEvent?
    ) {
        let counted = try await connection.query(
            """
            SELECT count(DISTINCT droplet_id) AS n FROM server_events
            WHERE kind IN ('destroy_requested', 'destroy_sending')
              AND created_at > clock_timestamp() - interval '1 hour' AND droplet_id IS NOT NULL
            """
        )
        let allowances = try await connection.query(
            """
            SELECT allowed_until, created_at, created_by, reason FROM destroy_allowances
            WHERE allowed_until > clock_timestamp() ORDER BY allowed_until DESC
            """
        )
        let words = try await connection.query(
            """
            SELECT kind, message, created_at FROM server_events
            WHERE kind IN (\(AuditKind.destroysBraked.rawValue), \(AuditKind.destroysReleased.rawValue))
            ORDER BY id DESC LIMIT 1
            """
        )
        let lastWord = try words.first.flatMap { row -> AuditEvent? in
            guard let kind = AuditKind(rawValue: try row.decode(String.self, "kind")) else { return nil }
            return AuditEvent(
                kind: kind,
                at: try row.decode(Date.self, "created_at"),
                message: try row.decode(String.self, "message")
            )
        }
        return (
            try counted.first?.decode(Int.self, "n") ?? 0,
            try allowances.map(Self.allowance),
            lastWord
        )
    }

    private static func allowance(_ row: PostgresRow) throws -> DestroyAllowance {
        DestroyAllowance(
            allowedUntil: try row.decode(Date.self, "allowed_until"),
            createdAt: try row.decode(Date.self, "created_at"),
            createdBy: try row.decode(String.self, "created_by"),
            reason: try row.decode(String?.self, "reason")
        )
    }
}
