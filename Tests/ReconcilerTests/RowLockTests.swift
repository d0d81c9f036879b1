import CitrusTestKit
import Foundation
import Postgres
import Testing

/// Issue 22, item 2, end to end: a `servers` row held by another transaction delays that row,
/// never the fleet, and never keeps a frozen leader's lock from a standby. The real daemon binary,
/// a real Postgres, the simulator; the other transaction is a plain second connection.
@Suite("A row locked by another transaction delays only itself", .serialized)
struct RowLockTests {
    static let quick = World.quick

    @Test(
        "a transaction that inserted a row referring to a server (FOR KEY SHARE) holds it while its deletion is asked: the deletion and five rows inserted meanwhile go through"
    )
    func foreignKeyReferenceDoesNotStallTheFleet() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let held = try await world.insert("referenced")
            try await world.converge(timeout: .seconds(30), daemon: daemon)

            // The platform's own table, referring to servers: an insert holds FOR KEY SHARE on the
            // server's row until its transaction ends.
            try await world.db.query(
                "CREATE TABLE server_notes (server_id uuid NOT NULL REFERENCES servers(id), note text)"
            )
            let platform = try await PostgresConnection.connect(world.databaseURL + "?application_name=platform-job")
            try await platform.query("BEGIN")
            try await platform.query("INSERT INTO server_notes VALUES (\(held), 'in use')")
            // An UPDATE that changes no key does not wait for FOR KEY SHARE: this one commits.
            try await world.requestDeletion(held)
            let took = try await Self.fiveRowsConverge(
                world,
                daemon: daemon,
                while: "another transaction referred to a row"
            )
            // The reference does not conflict with the daemon's write at all: the deletion proceeds.
            let deleted = try await eventually(timeout: .seconds(30)) { try await world.row(held)?.status == "deleted" }
            let heldRow = try await world.row(held)
            #expect(deleted, "the referenced row was not deleted: \(String(describing: heldRow))")
            print(
                "figure: 5 rows inserted while a transaction held FOR KEY SHARE on another converged in \(Self.ms(took))"
            )

            try await platform.query("COMMIT")
            await platform.close()
            try await world.converge(timeout: .seconds(30), daemon: daemon)
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    @Test(
        "a row held FOR UPDATE by another transaction is skipped, named in the journal with its holder, and created once when released; rows inserted meanwhile converge"
    )
    func lockedRowIsSkippedAndRetried() async throws {
        try await World.with { world in
            // Locked before the daemon starts, so its first write of the row (the create's intent)
            // meets the lock.
            let held = try await world.insert("held")
            let platform = try await PostgresConnection.connect(world.databaseURL + "?application_name=platform-job")
            try await platform.query("BEGIN")
            try await platform.query("SELECT id FROM servers WHERE id = \(held) FOR UPDATE")

            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let took = try await Self.fiveRowsConverge(world, daemon: daemon, while: "another transaction held a row")

            // The held row: no intent written, so no create sent; the journal says which row and who.
            let row = try #require(try await world.row(held))
            #expect(row.status == "creating", "\(row)")
            #expect(world.everCreated(for: held).isEmpty, "a create was sent for a row whose intent was not written")
            let id = held.uuidString.lowercased()
            let named = daemon.output.split(separator: "\n").filter {
                $0.contains(id) && $0.contains("locked by another transaction")
            }
            #expect(!named.isEmpty, "the journal does not name the locked row:\n\(daemon.output.suffix(3000))")
            #expect(
                named.contains { $0.contains("platform-job") },
                "the journal does not say who holds the row: \(named.prefix(3))"
            )
            #expect(!daemon.output.contains("lost the database session"), "\(daemon.output.suffix(3000))")
            #expect(try await world.leader() != nil, "the daemon no longer leads")
            print(
                "figure: 5 rows inserted while a transaction held another FOR UPDATE converged in \(Self.ms(took)); the held row was skipped \(named.count) times: \(named.first ?? "")"
            )

            try await platform.query("ROLLBACK")
            await platform.close()
            try await world.converge(timeout: .seconds(30), daemon: daemon)
            #expect(
                world.everCreated(for: held).count == 1,
                "\(world.everCreated(for: held).count) droplets for the held row"
            )
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    @Test(
        "a leader frozen (SIGSTOP) while its statement waits for a lock (the table held by a long migration) is replaced within 30 s; the new leader converges the rest once the lock goes"
    )
    func leaderFrozenInALockWaitIsReplaced() async throws {
        try await World.with { world in
            let replicas = [
                "alpha": try world.replica("alpha", Self.quick), "beta": try world.replica("beta", Self.quick),
            ]
            defer {
                for process in replicas.values {
                    process.signal(SIGCONT)
                    process.signal(SIGKILL)
                }
            }
            let (leaderName, leader, standbyName, standby) = try await world.leaderAndStandby(of: replicas)
            try #require(
                try await eventually(timeout: .seconds(30)) {
                    try await world.db.query(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = \(standbyName)"
                    ).single().decode(Int64.self, "n") > 0
                },
                "the standby never connected: \(standby.output.suffix(2000))"
            )
            try await world.insert("before")
            try await world.converge(timeout: .seconds(30), daemon: leader)

            // A row lock no longer makes the leader wait; a table lock still does (every read of
            // the pass), up to the leader's lock_timeout. Freeze the leader inside such a wait.
            let migration = try await PostgresConnection.connect(world.databaseURL + "?application_name=migration")
            try await migration.query("BEGIN")
            try await migration.query("LOCK TABLE servers IN ACCESS EXCLUSIVE MODE")
            let waiting = try await eventually(timeout: .seconds(30), every: .milliseconds(10)) {
                try await world.db.query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = \(leaderName) AND wait_event_type = 'Lock'"
                ).single().decode(Int64.self, "n") > 0
            }
            try #require(waiting, "the leader's session never waited for the lock:\n\(leader.output.suffix(3000))")
            leader.signal(SIGSTOP)
            let frozenAt = Date()

            var successor: String?
            let tookOver = try await eventually(timeout: .seconds(40), every: .milliseconds(100)) {
                successor = try await world.leader()
                return successor != nil && successor != leaderName
            }
            let takeover = Date().timeIntervalSince(frozenAt)
            #expect(
                tookOver && takeover <= 30,
                "no replica took over within 30 s of freezing a leader in a lock wait (\(Self.ms(takeover))): leader now \(successor ?? "none")\n\(standby.output.suffix(2000))"
            )
            try #require(tookOver)
            #expect(successor == standbyName)
            print(
                "figure: leader frozen (SIGSTOP) in a lock wait: the standby took the lock after \(Self.ms(takeover))"
            )

            try await migration.query("ROLLBACK")
            await migration.close()
            for i in 1...3 { try await world.insert("after-takeover-\(i)") }
            try await world.converge(timeout: .seconds(30), daemon: standby)
            for row in try await world.rows() {
                #expect(
                    world.everCreated(for: row.id).count == 1,
                    "\(row.name): \(world.everCreated(for: row.id).count) droplets"
                )
            }
            leader.signal(SIGCONT)
            for process in [leader, standby] {
                await process.stop()
                #expect(process.exitStatus == 0, "a replica did not stop cleanly: \(process.output.suffix(2000))")
            }
        }
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }

    /// Inserts five rows and expects each `active` within 30 s with one droplet, as rows inserted
    /// while `what` must be; returns how long they took.
    static func fiveRowsConverge(
        _ world: World,
        daemon: ChildProcess,
        while what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> TimeInterval {
        let started = Date()
        var inserted: [UUID] = []
        for i in 1...5 { inserted.append(try await world.insert("meanwhile-\(i)")) }
        let converged = try await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
            let rows = try await world.rows()
            return rows.filter { inserted.contains($0.id) && $0.status == "active" }.count == inserted.count
        }
        let took = Date().timeIntervalSince(started)
        let rows = try await world.rows()
        #expect(
            converged,
            "rows inserted while \(what) did not converge in 30 s: \(rows)\n\(daemon.output.suffix(3000))",
            sourceLocation: sourceLocation
        )
        for id in inserted {
            #expect(
                world.everCreated(for: id).count == 1,
                "\(id): \(world.everCreated(for: id).count) droplets",
                sourceLocation: sourceLocation
            )
        }
        return took
    }
}
