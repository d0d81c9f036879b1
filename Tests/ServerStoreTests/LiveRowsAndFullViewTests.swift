import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Testing

@testable import ServerStore

/// Issue 15: the reconciler reads live rows only (with the partial index that keeps that read
/// cheap however much history piles up), and the last full view of DigitalOcean is kept durably
/// for `status`.
@Suite("Live rows and the fleet view")
struct LiveRowsAndFullViewTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test("the live read leaves out deleted rows, keeps every other one (unreadable ones too), oldest first")
    func liveRowsOnly() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        for (name, status, age) in [
            ("gone", "deleted", 50), ("web-2", "active", 40), ("going", "deleting", 30), ("web-1", "active", 45),
            ("odd", "pending", 20), ("gone-too", "deleted", 10), ("new", "creating", 0),
        ] {
            try await connection.query(
                """
                INSERT INTO servers (name, status, created_at)
                VALUES (\(name), \(status), now() - make_interval(secs => \(age)))
                """
            )
        }
        let live = try await store.fetchLiveServers()
        #expect(live.map(\.name) == ["web-1", "web-2", "going", "odd", "new"])
        #expect(live.first { $0.name == "odd" }?.state.status == .failed, "an unknown status is shown, as failed")
        // The operator's read keeps the history.
        #expect(try await store.fetchServers().count == 7)
        let rows = try await store.fetchLiveServerRows()
        #expect(rows.map(\.record) == live)
        #expect(rows.first { $0.record.name == "odd" }?.problem?.contains("pending") == true)
    }

    @Test("with 20,000 deleted rows and 100 live, the planner reads the live rows through servers_live_by_age")
    func liveReadUsesThePartialIndex() async throws {
        let (_, connection) = try await migratedDatabase()
        try await connection.query(
            """
            INSERT INTO servers (name, status, created_at)
            SELECT 'history-' || n, 'deleted', now() - make_interval(secs => 100000 - n)
            FROM generate_series(1, 20000) AS n
            """
        )
        try await connection.query(
            """
            INSERT INTO servers (name, status, created_at)
            SELECT 'live-' || n, 'active', now() - make_interval(secs => 100 - n) FROM generate_series(1, 100) AS n
            """
        )
        try await connection.query("ANALYZE servers")
        try await connection.query("ANALYZE agents")
        let plan = try await connection.query(
            PostgresQuery(unsafeSQL: "EXPLAIN " + ServerStore.liveServersQuery)
        ).map { try $0.decode(String.self, "QUERY PLAN") }.joined(separator: "\n")
        #expect(plan.contains("servers_live_by_age"), "\(plan)")
        #expect(!plan.contains("Seq Scan on servers"), "\(plan)")
        #expect(try await ServerStore(connection: connection).fetchLiveServers().count == 100)
    }

    @Test("the full view is nil until recorded, then the last one recorded, in one row")
    func fullViewRoundTrip() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        #expect(try await store.fullView() == nil)

        let first = FullViewRecord(
            listedAt: Date(timeIntervalSince1970: 1_770_000_000.25),
            pages: 250,
            droplets: 50_000,
            took: .milliseconds(71_200),
            nextListAt: Date(timeIntervalSince1970: 1_770_001_200.5)
        )
        try await store.recordFullView(first)
        #expect(try await store.fullView() == first)

        let second = FullViewRecord(
            listedAt: Date(timeIntervalSince1970: 1_770_001_300),
            pages: 1,
            droplets: 3,
            took: .milliseconds(40),
            nextListAt: nil
        )
        try await store.recordFullView(second)
        #expect(try await store.fullView() == second)
        let count = try await connection.query("SELECT count(*) AS n FROM fleet_view").single()
        #expect(try count.decode(Int.self, "n") == 1)
    }

    @Test("the backlog is recorded before any full list (which stays nil), kept beside it, and cleared")
    func backlogRoundTrip() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        #expect(try await store.backlog() == nil)
        let line = "waiting: 50000 rows on the full list (about 1m40s)"
        try await store.recordBacklog(line)
        #expect(try await store.fullView() == nil, "no full list yet")
        let said = try #require(try await store.backlog())
        #expect(said.line == line)
        #expect(abs(said.at.timeIntervalSince(try await store.now())) < 5)

        let view = FullViewRecord(
            listedAt: Date(timeIntervalSince1970: 1_770_000_000),
            pages: 250,
            droplets: 50_000,
            took: .seconds(100)
        )
        try await store.recordFullView(view)
        #expect(try await store.fullView() == view)
        #expect(try await store.backlog()?.line == line)
        try await store.recordBacklog(nil)
        #expect(try await store.backlog() == nil)
        #expect(try await store.fullView() == view)
    }

    @Test("the daemon's least-privileged role (deploy/database-role.sql) reads live rows and keeps the full view")
    func daemonRole() async throws {
        let (url, connection) = try await migratedDatabase()
        try await insertServer(connection, name: "web-1")
        let daemon = try await connectAsDaemonRole(url, setUpWith: connection)
        let store = ServerStore(connection: daemon)
        #expect(try await store.fetchLiveServers().map(\.name) == ["web-1"])
        let view = FullViewRecord(
            listedAt: Date(timeIntervalSince1970: 1_770_000_000),
            pages: 1,
            droplets: 1,
            took: .zero
        )
        try await store.recordBacklog("waiting: 3 lookups (about 5s)")
        try await store.recordFullView(view)
        try await store.recordFullView(view)  // the second is the upsert's update
        #expect(try await store.fullView() == view)
        try await store.recordBacklog(nil)
        #expect(try await store.backlog() == nil)
        // Still least-privileged: the row is replaced, never removed.
        await #expect(throws: PostgresError.self) {
            try await daemon.query("DELETE FROM fleet_view")
        }
        await daemon.close()
    }
}
