import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import ServerStore
import Testing

/// The platform's schema before this daemon existed, with the columns it had then.
let originalSchema = """
    CREATE TABLE agents (id UUID PRIMARY KEY, name TEXT);
    CREATE TABLE IF NOT EXISTS servers (
        id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        name VARCHAR(255) NOT NULL,
        digital_ocean_id VARCHAR(255),
        region VARCHAR(50) NOT NULL,
        size VARCHAR(50) NOT NULL,
        ip_address VARCHAR(45),
        status VARCHAR(50) NOT NULL DEFAULT 'creating',
        agent_id UUID REFERENCES agents(id),
        created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
    );
    CREATE INDEX IF NOT EXISTS idx_servers_status ON servers(status);
    CREATE INDEX IF NOT EXISTS idx_servers_digital_ocean_id ON servers(digital_ocean_id);
    CREATE INDEX IF NOT EXISTS idx_servers_agent_id ON servers(agent_id);
    """

@Suite("Migrations")
struct MigrationTests {
    /// The migrations from `version` on, as an older schema applies them (versions may skip
    /// numbers: a branch's migration keeps the number it was given).
    static func versions(from version: Int) -> [Int] {
        Migration.all.map(\.version).filter { $0 >= version }
    }

    @Test("an empty database gets the whole schema, recorded in schema_migrations")
    func emptyDatabase() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let migrator = Migrator()
            #expect(try await migrator.pendingMigrations(on: connection).count == Migration.all.count)
            let applied = try await migrator.migrate(on: connection)
            #expect(applied.map(\.version) == Migration.all.map(\.version))
            #expect(try await migrator.pendingMigrations(on: connection).isEmpty)
            let recorded = try await connection.query(
                "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
            )
            #expect(try recorded.map { try $0.decode(Int.self, "version") } == Migration.all.map(\.version))
            // Defaults from the design contract apply to a minimal insert.
            let row = try await connection.query("INSERT INTO servers (name) VALUES ('web-1') RETURNING *").single()
            #expect(try row.decode(String.self, "region") == "sfo3")
            #expect(try row.decode(String.self, "size") == "s-1vcpu-512mb-10gb")
            #expect(try row.decode(String.self, "image") == "ubuntu-22-04-x64")
            #expect(try row.decode(String.self, "status") == "creating")
            #expect(try row.decode(Int64.self, "revision") >= 1, "from servers_revision_seq")
            #expect(try row.decode(Int.self, "create_attempts") == 0)
        }
    }

    @Test("the original schema with rows is upgraded in place; rows survive and gain defaults")
    func originalSchemaWithRows() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.runScript(PostgresQuery(unsafeSQL: originalSchema))
            let agent = UUID()
            let id = UUID()
            try await connection.query("INSERT INTO agents (id, name) VALUES (\(agent), 'hub')")
            try await connection.query(
                """
                INSERT INTO servers (id, name, digital_ocean_id, region, size, ip_address, status, agent_id)
                VALUES (\(id), 'legacy-1', '123456', 'nyc3', 's-2vcpu-2gb', '203.0.113.7', 'active', \(agent))
                """
            )
            try await connection.query(
                "INSERT INTO servers (name, region, size) VALUES ('legacy-2', 'ams3', 's-1vcpu-1gb')"
            )

            let applied = try await Migrator().migrate(on: connection)
            #expect(applied.count == Migration.all.count)

            let servers = try await ServerStore(connection: connection).fetchServers()
            #expect(servers.count == 2)
            let legacy = try #require(servers.first { $0.id == id })
            #expect(legacy.name == "legacy-1")
            #expect(legacy.region == "nyc3")
            #expect(legacy.size == "s-2vcpu-2gb")
            #expect(legacy.image == "ubuntu-22-04-x64")
            #expect(legacy.state.status == .active)
            #expect(legacy.state.dropletID == 123_456)
            #expect(legacy.state.ipv4 == "203.0.113.7")
            #expect(legacy.state.createAttempts == 0)
            let agentStill = try await connection.query("SELECT agent_id FROM servers WHERE id = \(id)").single()
            #expect(try agentStill.decode(UUID.self, "agent_id") == agent)
            let defaults = try await connection.query(
                "INSERT INTO servers (name) VALUES ('new') RETURNING region, size"
            ).single()
            #expect(try defaults.decode(String.self, "region") == "sfo3")
            #expect(try defaults.decode(String.self, "size") == "s-1vcpu-512mb-10gb")
        }
    }

    @Test(
        "migration 13: a role that writes the daemon's columns may write failed_placements too, so an upgrade needs no new grant"
    )
    func migrationThirteenGrantsTheWriters() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let upToTwelve = Migrator(migrations: Migration.all.filter { $0.version <= 12 })
            #expect(try await upToTwelve.migrate(on: connection).count == 12)
            let role = "citrus_writer_\(UInt32.random(in: 0...UInt32.max))"
            try await connection.query("CREATE ROLE \(identifier: role)")
            try await connection.query("GRANT UPDATE (status, create_attempts) ON TABLE servers TO \(identifier: role)")
            #expect(try await Migrator().migrate(on: connection).map(\.version) == Self.versions(from: 13))
            let granted = try await connection.query(
                "SELECT has_column_privilege(\(role), 'servers', 'failed_placements', 'UPDATE') AS granted"
            ).single().decode(Bool.self, "granted")
            #expect(granted)
            // Migration 16 likewise: the same writers may read the destroy brake's allowances.
            let readsAllowances = try await connection.query(
                "SELECT has_table_privilege(\(role), 'destroy_allowances', 'SELECT') AS granted"
            ).single().decode(Bool.self, "granted")
            #expect(readsAllowances)
            try await connection.query("REVOKE ALL ON TABLE servers, destroy_allowances FROM \(identifier: role)")
            try await connection.query("DROP ROLE \(identifier: role)")
        }
    }

    @Test("migration 9 on an empty database: the live-rows index and a fleet_view that holds one row at most")
    func migrationNineEmpty() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let upToEight = Migrator(migrations: Migration.all.filter { $0.version <= 8 })
            #expect(try await upToEight.migrate(on: connection).count == 8)
            let nine = Migrator(migrations: Migration.all.filter { $0.version <= 9 })
            #expect(try await nine.migrate(on: connection).map(\.version) == [9])
            let index = try await connection.query(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'servers' AND indexname = 'servers_live_by_age'"
            ).single().decode(String.self, "indexdef")
            #expect(index.contains("(created_at, id)") && index.contains("'deleted'"), "\(index)")
            try await connection.query(
                "INSERT INTO fleet_view (listed_at, pages, droplets, took_ms) VALUES (now(), 1, 0, 12)"
            )
            // A second row cannot exist: the key is true, and false is refused.
            await #expect(throws: PostgresError.self) {
                try await connection.query(
                    "INSERT INTO fleet_view (listed_at, pages, droplets, took_ms) VALUES (now(), 1, 0, 12)"
                )
            }
            await #expect(throws: PostgresError.self) {
                try await connection.query(
                    "INSERT INTO fleet_view (id, listed_at, pages, droplets, took_ms) VALUES (false, now(), 1, 0, 12)"
                )
            }
            let row = try await connection.query("SELECT next_list_at, recorded_at FROM fleet_view").single()
            #expect(try row.decode(Date?.self, "next_list_at") == nil)
            #expect(try row.decode(Date.self, "recorded_at") > Date(timeIntervalSinceNow: -60))
        }
    }

    @Test("migration 9 on a database with rows and history: rows untouched, live ones read, no full view yet")
    func migrationNineWithRows() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            _ = try await Migrator(migrations: Migration.all.filter { $0.version <= 8 }).migrate(on: connection)
            for (name, status) in [("old", "deleted"), ("web-1", "active"), ("web-2", "creating"), ("gone", "deleted")]
            {
                try await connection.query("INSERT INTO servers (name, status) VALUES (\(name), \(status))")
            }
            let read = "SELECT id::text || name || status || revision || updated_at AS row FROM servers ORDER BY name"
            let before = try await connection.query(PostgresQuery(unsafeSQL: read)).map {
                try $0.decode(String.self, "row")
            }

            #expect(try await Migrator().migrate(on: connection).map(\.version) == Self.versions(from: 9))
            let store = ServerStore(connection: connection)
            #expect(
                try await connection.query(PostgresQuery(unsafeSQL: read)).map { try $0.decode(String.self, "row") }
                    == before
            )
            #expect(Set(try await store.fetchLiveServers().map(\.name)) == ["web-1", "web-2"])
            #expect(try await store.fullView() == nil)
            #expect(try await Migrator().migrate(on: connection).isEmpty)
        }
    }

    @Test("migration 11: a full view recorded before it is kept, with no backlog; a backlog can then be recorded")
    func migrationElevenKeepsTheFullView() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            _ = try await Migrator(migrations: Migration.all.filter { $0.version <= 10 }).migrate(on: connection)
            let store = ServerStore(connection: connection)
            let view = FullViewRecord(
                listedAt: Date(timeIntervalSince1970: 1_770_000_000),
                pages: 3,
                droplets: 500,
                took: .seconds(2)
            )
            try await store.recordFullView(view)
            #expect(try await Migrator().migrate(on: connection).map(\.version) == Self.versions(from: 11))
            #expect(try await store.fullView() == view)
            #expect(try await store.backlog() == nil)
            try await store.recordBacklog("waiting: 2 lookups (about 5s)")
            #expect(try await store.backlog()?.line == "waiting: 2 lookups (about 5s)")
            #expect(try await store.fullView() == view)
            await connection.close()
        }
    }

    @Test(
        "migration 10: a create intent written to a row is recorded apart, outlives a DELETE of the row, and comes back with the row inserted again"
    )
    func migrationTenRecordsIntents() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            _ = try await Migrator(migrations: Migration.all.filter { $0.version <= 9 }).migrate(on: connection)
            let id = UUID()
            try await connection.query("INSERT INTO servers (id, name) VALUES (\(id), 'again')")
            #expect(try await Migrator().migrate(on: connection).map(\.version) == Self.versions(from: 10))
            let store = ServerStore(connection: connection)
            let row = try #require(try await store.fetchServers().first)
            let agent = UUID()
            var intent = row.state
            intent.createAttemptedAt = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 2).rounded())
            intent.createReachableUntil = intent.createAttemptedAt!.addingTimeInterval(35)
            intent.createAttempts = 1
            intent.agentID = agent
            let revision = try await store.update(
                id: id,
                expectedRevision: row.revision,
                to: intent,
                agentKeySHA256: "ab"
            )
            #expect(revision != nil)
            // A write that leaves the intent as it was records nothing more.
            var later = intent
            later.lastError = "create outcome unknown (HTTP 500)"
            #expect(try await store.update(id: id, expectedRevision: revision!, to: later) != nil)
            let count = "SELECT count(*) AS n FROM create_intents WHERE server_id = "
            #expect(try await connection.query("\(unsafeSQL: count)\(id)").single().decode(Int.self, "n") == 1)
            #expect(try await store.fetchUnattemptedServers().isEmpty)

            try await connection.query("DELETE FROM servers WHERE id = \(id)")
            try await connection.query("INSERT INTO servers (id, name) VALUES (\(id), 'again')")
            let back = try #require(try await store.fetchLiveServers().first)
            #expect(back.state.createAttemptedAt == intent.createAttemptedAt)
            #expect(back.state.createReachableUntil == intent.createReachableUntil)
            #expect(back.state.createAttempts == 1)
            #expect(back.state.agentID == agent, "the agent whose key the droplet carries")
            #expect(try await store.fetchUnattemptedServers().isEmpty, "not for the quick path: it may have a droplet")
            // A row bound to its droplet needs no record: the join stops there.
            var bound = back.state
            bound.dropletID = 42
            bound.status = .provisioning
            #expect(try await store.update(id: id, expectedRevision: back.revision, to: bound) != nil)
            #expect(try await store.fetchLiveServers().first?.state == bound)
        }
    }

    @Test("a second run applies nothing")
    func idempotent() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            #expect(try await Migrator().migrate(on: connection).count == Migration.all.count)
            #expect(try await Migrator().migrate(on: connection).isEmpty)
            #expect(
                try await connection.query("SELECT count(*) AS n FROM schema_migrations").single().decode(Int.self, "n")
                    == Migration.all.count
            )
        }
    }

    @Test("concurrent runs both succeed and exactly one applies")
    func concurrent() async throws {
        try await withTestDatabase { url in
            let first = try await PostgresConnection.connect(url)
            let second = try await PostgresConnection.connect(url)
            // Hold the migration lock so both runs are certainly waiting at the same time.
            let blocker = try await PostgresConnection.connect(url)
            try await blocker.query("BEGIN")
            try await blocker.query("SELECT pg_advisory_xact_lock(\(Migrator.lockKey))")
            async let a = Migrator().migrate(on: first)
            async let b = Migrator().migrate(on: second)
            try await Task.sleep(for: .milliseconds(300))
            let waiting = try await blocker.query(
                """
                SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                """
            ).single().decode(Int.self, "n")
            #expect(waiting == 2)
            try await blocker.query("COMMIT")
            let results = try await [a, b]
            #expect(results.map(\.count).sorted() == [0, Migration.all.count])
        }
    }

    @Test("a failing migration rolls back everything it did")
    func failingMigrationRollsBack() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let broken = Migrator(
                migrations: Migration.all + [Migration(version: 99, name: "broken", sql: "SELECT * FROM nowhere")]
            )
            await #expect(throws: PostgresError.self) { try await broken.migrate(on: connection) }
            #expect(try await Migrator().pendingMigrations(on: connection).count == Migration.all.count)
        }
    }
}
