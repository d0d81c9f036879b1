import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Postgres
import Testing

/// Issue 22, item 4 and "a real Postgres failover, tested": a primary and a streaming standby, both
/// started by the test, and the real daemon binary given a multi-host connection string.
@Suite("Postgres replication and failover, end to end", .serialized)
struct FailoverTests {
    static let quick = World.quick

    @Test(
        "the primary stopped hard with creates in flight and its synchronous standby promoted: the daemon follows within 30 s and every row ends with one droplet"
    )
    func daemonFollowsThePromotedStandby() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 2201)
        // Slow answers and lagging lists: the stop lands among creates in flight, and the new
        // leader cannot see their droplets in a list at once.
        configuration.faults.latencySeconds = 1
        configuration.faults.listLagSeconds = 2
        try await World.withReplicatedDatabase(simulator: configuration) { world, primary, standby in
            try await primary.requireSynchronousStandby()
            let daemon = try world.daemon(Self.quick + ["--max-concurrent-calls", "4"])
            defer { daemon.signal(SIGKILL) }
            for i in 1...4 { try await world.insert("before-\(i)") }
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            #expect(
                !daemon.output.contains("replication is asynchronous"),
                "a synchronous standby was warned about:\n\(daemon.output.suffix(3000))"
            )

            // A burst the daemon works through four creates at a time; stop the primary mid-way.
            let creates = { world.requests(method: "POST", route: "/v2/droplets").count }
            let before = creates()
            for i in 1...12 { try await world.insert("burst-\(i)") }
            try #require(
                await eventually(timeout: .seconds(20), every: .milliseconds(10)) { creates() >= before + 3 },
                "the burst's creates did not start"
            )
            let pending = try await world.db.query("SELECT id FROM servers WHERE digital_ocean_id IS NULL").map {
                try $0.decode(UUID.self, "id")
            }
            let waiting = pending.count
            try await primary.stopImmediately()
            let stoppedAt = Date()
            // Rows with a create sent but no droplet recorded when the primary went.
            let sent = world.requests(method: "POST", route: "/v2/droplets").filter { $0.time <= stoppedAt }
            let inFlight = pending.filter { id in
                sent.contains { $0.body?.contains("citrus-server:\(id.uuidString.lowercased())") == true }
            }.count
            try #require(waiting >= 4, "the stop did not land mid-burst (\(waiting) rows without a droplet)")
            try await standby.promote()
            let promotedAt = Date()

            // The test's own session follows too: its string names both servers, read-write first.
            try await world.db.reconnect()
            try await world.db.query("SET synchronous_commit = on")
            let leads = await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
                (try? await world.leader()) != nil
            }
            let ledAgain = Date().timeIntervalSince(stoppedAt)
            #expect(
                leads && ledAgain <= 30,
                "the daemon did not lead on the promoted standby within 30 s (\(Self.seconds(ledAgain))):\n\(daemon.output.suffix(3000))"
            )
            // Rows progressing: the first row written by the daemon on the new primary.
            let progressed = try await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
                try await world.db.query(
                    "SELECT count(*) AS n FROM servers WHERE updated_at > \(stoppedAt)"
                ).single().decode(Int64.self, "n") > 0
            }
            let progressedAfter = Date().timeIntervalSince(stoppedAt)
            #expect(progressed, "no row was written on the promoted standby:\n\(daemon.output.suffix(3000))")

            for i in 1...3 { try await world.insert("after-\(i)") }
            try await world.converge(timeout: .seconds(90), daemon: daemon)
            let convergedAfter = Date().timeIntervalSince(stoppedAt)
            let rows = try await world.rows()
            #expect(rows.count == 19, "rows: \(rows.count)")
            for row in rows {
                let made = world.everCreated(for: row.id).count
                #expect(made == 1, "\(row.name): \(made) droplets made for its identity")
                #expect(
                    world.droplets(for: row.id).count == 1,
                    "\(row.name): \(world.droplets(for: row.id).count) live"
                )
            }
            #expect(daemon.isRunning, "\(daemon.output.suffix(2000))")
            print(
                "figure: failover: primary stopped (-m immediate) with \(waiting) of 16 rows without a droplet, \(inFlight) of them with a create sent; standby promoted in \(Self.seconds(promotedAt.timeIntervalSince(stoppedAt))); the daemon led on it \(Self.seconds(ledAgain)) after the stop and wrote its first row \(Self.seconds(progressedAfter)) after; all 19 rows converged, one droplet each, \(Self.seconds(convergedAfter)) after"
            )
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    @Test(
        "a synchronous standby that stops acknowledging: the daemon's intent waits for it (though the server's default synchronous_commit is off), and no create is sent until it is back"
    )
    func unconfirmedIntentSendsNothing() async throws {
        try await World.withReplicatedDatabase { world, primary, standby in
            try await primary.requireSynchronousStandby()
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            try await world.insert("before")
            try await world.converge(timeout: .seconds(30), daemon: daemon)

            // Every commit that asks for a standby now waits for one. The test clusters default to
            // synchronous_commit = off, which asks for none: only a session that sets it waits.
            try await standby.stop()
            try await world.db.query("SET synchronous_commit = off")
            let id = try await world.insert("unconfirmed")
            try await Task.sleep(for: .seconds(12))
            #expect(
                world.everCreated(for: id).isEmpty,
                "a create was sent for an intent no standby had:\n\(daemon.output.suffix(3000))"
            )
            let waiting = try await world.db.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
            ).single().decode(Int64.self, "n")
            #expect(waiting > 0, "no commit of the daemon waits for the standby")

            try await standby.start()
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            #expect(world.everCreated(for: id).count == 1)
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    @Test(
        "the journal warns when replication is asynchronous and when the server is a standby, which no replica leads from; a synchronous standby is not warned about"
    )
    func warnsWhenFailoverWouldBreakThePromise() async throws {
        try await World.withReplicatedDatabase { world, primary, standby in
            // Asynchronous replication: warned at start and on taking leadership.
            let asynchronous = try world.daemon(Self.quick, name: "asynchronous")
            defer { asynchronous.signal(SIGKILL) }
            #expect(
                await eventually(timeout: .seconds(30)) { asynchronous.output.contains("this replica now leads") },
                "\(asynchronous.output.suffix(3000))"
            )
            try await Task.sleep(for: .seconds(1))
            await asynchronous.stop()
            let warned = Self.warnings(asynchronous.output, containing: "replication is asynchronous")
            #expect(
                warned.contains { $0.contains("at start") } && warned.contains { $0.contains("on taking leadership") },
                "asynchronous replication was not warned about at start and on taking leadership:\n\(asynchronous.output.suffix(3000))"
            )

            // A single-host string naming the standby: warned, and no lead taken there.
            let onStandby = try world.daemon(
                ["--database-url", standby.url(database: world.databaseName)] + Self.quick,
                name: "on-standby"
            )
            defer { onStandby.signal(SIGKILL) }
            #expect(
                await eventually(timeout: .seconds(30)) {
                    !Self.warnings(onStandby.output, containing: "is a standby (in recovery)").isEmpty
                },
                "a standby was not warned about:\n\(onStandby.output.suffix(3000))"
            )
            try await Task.sleep(for: .seconds(3))
            #expect(!onStandby.output.contains("this replica now leads"), "\(onStandby.output.suffix(3000))")
            let standbyLocks = try await PostgresConnection.connect(standby.url(database: world.databaseName))
            let held = try await standbyLocks.query(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
            ).single().decode(Int64.self, "n")
            await standbyLocks.close()
            #expect(held == 0, "a replica took the advisory lock on the standby")
            await onStandby.stop()

            // Synchronous: no warning.
            try await primary.requireSynchronousStandby()
            let synchronous = try world.daemon(Self.quick, name: "synchronous")
            defer { synchronous.signal(SIGKILL) }
            #expect(
                await eventually(timeout: .seconds(30)) { synchronous.output.contains("this replica now leads") },
                "\(synchronous.output.suffix(3000))"
            )
            try await Task.sleep(for: .seconds(1))
            await synchronous.stop()
            #expect(
                Self.warnings(synchronous.output, containing: "replication").isEmpty
                    && Self.warnings(synchronous.output, containing: "standby").isEmpty,
                "\(synchronous.output.suffix(3000))"
            )
        }
    }

    static func warnings(_ output: String, containing text: String) -> [Substring] {
        output.split(separator: "\n").filter { $0.contains("warning") && $0.contains(text) }
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }
}

extension World {
    /// A world whose database lives on a primary with a streaming standby. `databaseURL` names
    /// both servers, the standby first: only a session that asks for a read-write server (the
    /// default for several hosts) reaches the primary. The test's own session commits
    /// synchronously, so its rows survive a failover as the daemon's do.
    static func withReplicatedDatabase<T: Sendable>(
        simulator configuration: SimulatorConfiguration = SimulatorHarness.testConfiguration(),
        _ body: (World, _ primary: PostgresCluster, _ standby: PostgresCluster) async throws -> T
    ) async throws -> T {
        try await withReplicatedPostgres { primary, standby in
            let single = try await primary.createDatabase()
            let name = String(single.split(separator: "/").last!)
            // The standby replays the new database a moment later; a session may go there first.
            let replayed = await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
                guard let session = try? await PostgresConnection.connect(standby.url(database: name)) else {
                    return false
                }
                await session.close()
                return true
            }
            try #require(replayed, "the standby never replayed the new database")
            let url = "postgresql://postgres@\(standby.host):\(standby.port),\(primary.host):\(primary.port)/\(name)"
            return try await World.with(
                cluster: primary,
                databaseURL: url,
                simulator: configuration,
                prepare: { try await $0.query("SET synchronous_commit = on") }
            ) { world in
                let result = try await body(world, primary, standby)
                await world.db.close()
                return result
            }
        }
    }

    /// The database's name, the last part of `databaseURL`.
    var databaseName: String { String(databaseURL.split(separator: "/").last!) }
}
