import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Testing

@testable import ServerStore

/// The destroy budget's count is durable (issue 25, brakes): read from `server_events` by the
/// database's clock, so a restart or a failover does not reset it, and the operator's allowance
/// is a row of `destroy_allowances`.
@Suite("The destroy ledger")
struct DestroyLedgerTests {
    /// One audit entry, stamped `ago` seconds before the database's now.
    static func event(_ connection: PostgresConnection, kind: AuditKind, droplet: Int64?, ago: Double) async throws {
        try await connection.query(
            """
            INSERT INTO server_events (kind, message, droplet_id, created_at)
            VALUES (\(kind.rawValue), 'test', \(droplet), clock_timestamp() - make_interval(secs => \(ago)))
            """
        )
    }

    @Test(
        "the last hour's destroy_requested droplets are counted once each, orphans too; older ones, duplicates and other kinds not; a new session counts the same"
    )
    func durableCount() async throws {
        let (url, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        #expect(try await store.destroyLedger() == DestroyLedger())
        try await Self.event(connection, kind: .destroyRequested, droplet: 1, ago: 2 * 3600)
        try await Self.event(connection, kind: .destroyRequested, droplet: 2, ago: 3590)
        try await Self.event(connection, kind: .destroyRequested, droplet: 3, ago: 600)
        try await Self.event(connection, kind: .destroyRequested, droplet: 3, ago: 60)  // sent again
        try await Self.event(connection, kind: .destroyRequested, droplet: 4, ago: 1)  // an orphan's
        try await Self.event(connection, kind: .destroySending, droplet: 8, ago: 2)  // its answer lost
        try await Self.event(connection, kind: .duplicateResolved, droplet: 5, ago: 1)
        try await Self.event(connection, kind: .destroyWithdrawn, droplet: 6, ago: 1)
        try await Self.event(connection, kind: .destroyRequested, droplet: nil, ago: 1)
        let ledger = try await store.destroyLedger()
        #expect(ledger.destroyedInHour == [2, 3, 4, 8])
        // Accepted (destroy_requested), the latest entry of each: not the one whose answer was lost.
        #expect(Set(ledger.acceptedAt.keys) == [2, 3, 4])
        let now = try await store.now()
        #expect(abs(try #require(ledger.acceptedAt[3]).timeIntervalSince(now) + 60) < 5)

        // A restarted daemon (a new session) reads the same count.
        let again = try await PostgresConnection.connect(url)
        #expect(try await ServerStore(connection: again).destroyLedger().destroyedInHour == [2, 3, 4, 8])
        await again.close()
    }

    @Test(
        "an allowance is in force until its end, recorded with the session's user and its reason; the latest end counts"
    )
    func allowance() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        try await connection.query(
            """
            INSERT INTO destroy_allowances (allowed_until, created_at, reason)
            VALUES (clock_timestamp() - interval '1 minute', clock_timestamp() - interval '1 hour', 'long over')
            """
        )
        #expect(try await store.destroyLedger().allowedUntil == nil, "an allowance that ended allows nothing")

        let now = try await store.now()
        let granted = try await store.allowDestroys(until: nil, for: .seconds(7200), reason: "platform migration")
        #expect(abs(granted.allowedUntil.timeIntervalSince(now) - 7200) < 5)
        #expect(granted.reason == "platform migration")
        #expect(!granted.createdBy.isEmpty)
        let ledger = try await store.destroyLedger()
        #expect(ledger.allowedUntil == granted.allowedUntil)
        #expect(ledger.allowedBy?.contains("platform migration") == true)

        let later = now.addingTimeInterval(3 * 3600)
        let longer = try await store.allowDestroys(until: later, for: nil, reason: nil)
        #expect(abs(longer.allowedUntil.timeIntervalSince(later)) < 0.001)
        #expect(try await store.destroyLedger().allowedUntil == longer.allowedUntil, "the latest end is in force")

        let report = try await store.destroyBrakeReport()
        #expect(report.allowances.count == 2)
        #expect(report.destroyedInHour == 0)
        #expect(report.lastWord == nil)
        #expect(try await store.destroyLedger().brakedSince == nil)
    }

    @Test("the brake's last word: braked since its entry until a release is written")
    func brakedSince() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        try await Self.event(connection, kind: .destroysReleased, droplet: nil, ago: 900)
        try await Self.event(connection, kind: .destroysBraked, droplet: nil, ago: 600)
        let since = try #require(try await store.destroyLedger().brakedSince)
        #expect(abs(since.timeIntervalSince(try await store.now()) + 600) < 5)
        #expect(try await store.destroyBrakeReport().lastWord?.kind == .destroysBraked)
        try await Self.event(connection, kind: .destroysReleased, droplet: nil, ago: 0)
        #expect(try await store.destroyLedger().brakedSince == nil)
        #expect(try await store.destroyBrakeReport().lastWord?.kind == .destroysReleased)
    }

    @Test("the daemon's role (deploy/database-role.sql) reads the ledger and records its sends, but allows nothing")
    func daemonRole() async throws {
        let (url, connection) = try await migratedDatabase()
        let daemon = try await connectAsDaemonRole(url, setUpWith: connection)
        let store = ServerStore(connection: daemon)
        try await store.record(
            AuditEvent(kind: .destroySending, at: try await store.now(), dropletID: 42, message: "sending")
        )
        _ = try await ServerStore(connection: connection).allowDestroys(until: nil, for: .seconds(60), reason: nil)
        let ledger = try await store.destroyLedger()
        #expect(ledger.destroyedInHour == [42])
        #expect(ledger.allowedUntil != nil)
        await #expect(throws: PostgresError.self) {
            _ = try await store.allowDestroys(until: nil, for: .seconds(60), reason: "the daemon allows itself")
        }
        await daemon.close()
    }

    @Test("with 20,000 other entries the count reads through idx_server_events_destroys")
    func countUsesTheIndex() async throws {
        let (_, connection) = try await migratedDatabase()
        try await connection.query(
            """
            INSERT INTO server_events (kind, message, droplet_id, created_at)
            SELECT 'status_changed', 'history', n, clock_timestamp() - make_interval(secs => n)
            FROM generate_series(1, 20000) AS n
            """
        )
        try await Self.event(connection, kind: .destroyRequested, droplet: 7, ago: 5)
        try await connection.query("ANALYZE server_events")
        let plan = try await connection.query(
            """
            EXPLAIN SELECT DISTINCT droplet_id FROM server_events
            WHERE kind IN ('destroy_requested', 'destroy_sending')
              AND created_at > clock_timestamp() - interval '1 hour'
              AND droplet_id IS NOT NULL
            """
        )
        let text = try plan.map { try $0.decode(String.self, "QUERY PLAN") }.joined(separator: "\n")
        #expect(text.contains("idx_server_events_destroys"), "\(text)")
    }
}
