import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import ServerStore
import Testing

func migratedDatabase() async throws -> (url: String, connection: PostgresConnection) {
    let url = try await PostgresCluster.shared().createDatabase()
    let connection = try await PostgresConnection.connect(url)
    _ = try await Migrator().migrate(on: connection)
    return (url, connection)
}

/// Runs deploy/database-role.sql on `connection`'s database and connects as the daemon's role.
/// The role is the cluster's, not one database's: tests that run the script at once would update
/// its catalog rows together ("tuple concurrently updated"), so they take turns.
func connectAsDaemonRole(_ url: String, setUpWith connection: PostgresConnection) async throws -> PostgresConnection {
    let script = try String(
        contentsOf: LiveRowsAndFullViewTests.repositoryRoot.appendingPathComponent("deploy/database-role.sql"),
        encoding: .utf8
    )
    try await DaemonRoleScript.turns.run { try await connection.runScript(PostgresQuery(unsafeSQL: script)) }
    let daemonURL = url.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://citrus_reconciler@")
    precondition(daemonURL != url, "the test database's URL names no postgres user to replace")
    return try await PostgresConnection.connect(daemonURL)
}

/// One run of the role script at a time, across the test process. (An actor alone would not do:
/// it lets another call in while one awaits.)
actor DaemonRoleScript {
    static let turns = DaemonRoleScript()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func run(_ body: @Sendable () async throws -> Void) async throws {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        try await body()
    }
}

@discardableResult
func insertServer(_ connection: PostgresConnection, name: String) async throws -> UUID {
    try await connection.query("INSERT INTO servers (name) VALUES (\(name)) RETURNING id").single().decode(
        UUID.self,
        "id"
    )
}

@Suite("The server store")
struct StoreTests {
    @Test("update is compare-and-set on revision and refuses a stale one")
    func compareAndSet() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        let record = try #require(try await store.fetchServers().first)

        let attempted = Date(timeIntervalSince1970: 1_750_000_000.25)
        var state = record.state
        state.status = .provisioning
        state.dropletID = 4_200_000_001
        state.createAttemptedAt = attempted
        state.createAttempts = 1
        let written = try #require(try await store.update(id: id, expectedRevision: record.revision, to: state))
        #expect(written > record.revision)

        let after = try #require(try await store.fetchServers().first)
        #expect(after.revision == written)
        #expect(after.state == state)

        // A writer holding the old revision loses, and the row keeps the newer state.
        var stale = record.state
        stale.status = .failed
        stale.lastError = "should not land"
        #expect(try await store.update(id: id, expectedRevision: record.revision, to: stale) == nil)
        #expect(try await store.fetchServers().first?.state == state)

        // An operator's edit bumps the revision too, so the daemon's next write must re-read.
        try await connection.query("UPDATE servers SET size = 's-1vcpu-1gb' WHERE id = \(id)")
        #expect(try await store.update(id: id, expectedRevision: after.revision, to: stale) == nil)
        #expect(try await store.update(id: UUID(), expectedRevision: 0, to: stale) == nil)
    }

    @Test(
        "a row deleted and inserted again never shares a revision with its earlier life: a write decided on that life cannot land (migration 12)"
    )
    func noRevisionComesBack() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        let first = try #require(try await store.fetchServers().first)
        var state = first.state
        state.status = .provisioning
        let read = try #require(try await store.update(id: id, expectedRevision: first.revision, to: state))
        // A pass read the row at `read`; meanwhile it is deleted, inserted again, and edited once,
        // as often as it had been written (before migration 12 it was back at `read` then, and the
        // stale write below landed).
        try await connection.query("DELETE FROM servers WHERE id = \(id)")
        try await connection.query("INSERT INTO servers (id, name) VALUES (\(id), 'web-1')")
        var seen = [try #require(try await store.fetchServers().first).revision]
        try await connection.query("UPDATE servers SET size = 's-1vcpu-1gb' WHERE id = \(id)")
        seen.append(try #require(try await store.fetchServers().first).revision)
        #expect(seen.allSatisfy { $0 > read }, "\(seen) after \(read)")
        var stale = state
        stale.status = .failed
        stale.lastError = "decided on the row's earlier life"
        #expect(try await store.update(id: id, expectedRevision: read, to: stale) == nil)
        #expect(try await store.fetchServers().first?.state.status == .creating)
    }

    @Test("updated_at moves only with the daemon's writes")
    func updatedAt() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        try await connection.query("UPDATE servers SET updated_at = '2000-01-01Z' WHERE id = \(id)")
        let record = try #require(try await store.fetchServers().first)
        #expect(try await store.update(id: id, expectedRevision: record.revision, to: record.state) != nil)
        let updated = try await connection.query("SELECT updated_at FROM servers").single().decode(
            Date.self,
            "updated_at"
        )
        #expect(updated > Date(timeIntervalSinceNow: -60))
    }

    @Test("rows the daemon cannot interpret come back failed with a clear last_error, not a crash")
    func unreadableRows() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        try await connection.query(
            "INSERT INTO servers (name, digital_ocean_id, status) VALUES ('odd-id', 'droplet-abc', 'active')"
        )
        try await connection.query("INSERT INTO servers (name, status) VALUES ('odd-status', 'pending')")
        try await connection.query("INSERT INTO servers (name, digital_ocean_id) VALUES ('blank-id', '')")
        let rows = try await store.fetchServerRows()
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0.record.name, $0) })
        let oddID = try #require(byName["odd-id"])
        #expect(oddID.record.state.status == .failed)
        #expect(oddID.record.state.dropletID == nil)
        #expect(oddID.problem?.contains("droplet-abc") == true)
        #expect(oddID.record.state.lastError == oddID.problem)
        let oddStatus = try #require(byName["odd-status"])
        #expect(oddStatus.record.state.status == .failed)
        #expect(oddStatus.problem?.contains("pending") == true)
        let blank = try #require(byName["blank-id"])
        #expect(blank.problem == nil)
        #expect(blank.record.state.dropletID == nil)
        #expect(blank.record.state.status == .creating)
    }

    @Test("audit events are recorded and read back per server")
    func events() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = UUID()
        let at = Date(timeIntervalSince1970: 1_760_000_000.5)
        let first = AuditEvent(
            kind: .createAccepted,
            at: at,
            serverID: id,
            serverName: "web-1",
            dropletID: 42,
            fromStatus: .creating,
            toStatus: .provisioning,
            requestID: "req-1",
            message: "DigitalOcean accepted the droplet"
        )
        let second = AuditEvent(
            kind: .failed,
            at: at.addingTimeInterval(1),
            serverID: id,
            message: "name rejected: 'bad name'"
        )
        try await store.record(first)
        try await store.record(second)
        try await store.record(AuditEvent(kind: .orphanSeen, at: at, dropletID: 7, message: "orphan"))
        #expect(try await store.fetchEvents(serverID: id) == [first, second])
        #expect(try await store.fetchEvents(serverID: UUID()).isEmpty)
    }
}

@Suite("The NOTIFY trigger")
struct NotifyTriggerTests {
    @Test("fires on insert, user-column changes and delete, but not on the daemon's writes")
    func triggerFiltersDaemonWrites() async throws {
        let (url, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let listener = try await PostgresListener.start(url, channels: [Migration.notificationChannel])
        defer { listener.stop() }
        let recorder = NotificationRecorder(listener)
        let channel = Migration.notificationChannel

        let id = try await insertServer(connection, name: "web-1")
        let inserted = await recorder.first { $0.payload(on: channel) == id.uuidString.lowercased() }
        #expect(inserted != nil)

        // The daemon's write: no notification.
        var mark = recorder.all.count
        let record = try #require(try await store.fetchServers().first)
        var state = record.state
        state.status = .provisioning
        state.dropletID = 9
        #expect(try await store.update(id: id, expectedRevision: record.revision, to: state) != nil)
        #expect(await recorder.none(from: mark, within: .milliseconds(500)) { $0.payload(on: channel) != nil })

        // Each user column wakes the daemon.
        for change in [
            "name = 'web-2'", "region = 'nyc3'", "size = 's-1vcpu-1gb'", "image = 'debian-12-x64'",
            "delete_requested_at = now()", "ssh_keys = ARRAY['512190']", "vpc_uuid = 'v'", "tags = ARRAY['web']",
            "ipv6 = false", "monitoring = false", "backups = true", "with_droplet_agent = false", "project_id = 'p'",
        ] {
            mark = recorder.all.count
            try await connection.query("UPDATE servers SET \(unsafeSQL: change) WHERE id = \(id)")
            #expect(await recorder.first(from: mark) { $0.payload(on: channel) != nil } != nil, "\(change)")
        }
        // An update that changes no user column (same value) does not.
        mark = recorder.all.count
        try await connection.query("UPDATE servers SET name = 'web-2' WHERE id = \(id)")
        #expect(await recorder.none(from: mark, within: .milliseconds(300)) { $0.payload(on: channel) != nil })

        mark = recorder.all.count
        try await connection.query("DELETE FROM servers WHERE id = \(id)")
        #expect(await recorder.first(from: mark) { $0.payload(on: channel) == id.uuidString.lowercased() } != nil)
    }

    @Test("NOTIFY delivery latency, insert to listener, median of 100")
    func latency() async throws {
        let (url, connection) = try await migratedDatabase()
        let listener = try await PostgresListener.start(url, channels: [Migration.notificationChannel])
        defer { listener.stop() }
        let recorder = NotificationRecorder(listener)
        var samples: [Duration] = []
        for index in 0..<100 {
            let sent = ContinuousClock.now
            let id = try await insertServer(connection, name: "latency-\(index)")
            let arrived = try #require(
                await recorder.first { $0.payload(on: Migration.notificationChannel) == id.uuidString.lowercased() }
            )
            samples.append(arrived.entry.arrived - sent)
        }
        samples.sort()
        let median = samples[50]
        print("NOTIFY latency insert→listener over 100: median \(median), p90 \(samples[90]), max \(samples[99])")
        #expect(median < .milliseconds(100))
    }
}

@Suite("A row's write and its audit entries")
struct TransitionWriteTests {
    @Test("the entries are stored with the row, in their order; a write that misses stores neither")
    func entriesGoWithTheRow() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        let record = try #require(try await store.fetchServers().first)
        var active = record.state
        active.status = .active
        active.dropletID = 42
        let at = Date(timeIntervalSince1970: 1_750_000_000.125)
        var change = Transition(row: record, from: record.state, to: active, at: at, requestID: "req-7")
        change.append(.createAccepted, droplet: 42, statuses: true, message: "accepted, it's \"quoted\"")
        #expect(change.events.count == 2)

        let written = try await store.update(
            id: id,
            expectedRevision: record.revision,
            to: active,
            agentKey: nil,
            events: change.events
        )
        #expect(written != nil)
        let stored = try await store.fetchEvents(serverID: id)
        #expect(stored == change.events)

        // A stale revision: neither the row nor the entries land.
        var stale = record.state
        stale.status = .failed
        let missed = try await store.update(
            id: id,
            expectedRevision: record.revision,
            to: stale,
            agentKey: nil,
            events: Transition(row: record, from: record.state, to: stale, at: at).events
        )
        #expect(missed == nil)
        #expect(try await store.fetchEvents(serverID: id) == change.events)
        #expect(try await store.fetchServers().first?.state.status == .active)
    }
}
