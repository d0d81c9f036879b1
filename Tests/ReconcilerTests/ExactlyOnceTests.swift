import CitrusTestKit
import DigitalOcean
import DigitalOceanHTTP
import DigitalOceanSimulator
import Foundation
import Logging
import Postgres
import Testing

/// Issue 10 ("Exactly once, proven"), end to end: the real daemon binary against a real Postgres
/// and the simulator, in the three situations that once made a second droplet or a bad failover:
/// an identity that already has a droplet, a create that waits long in the rate budget and is
/// answered 500 after the droplet was made, and a leader frozen with SIGSTOP. Serialized, like the
/// other end-to-end suites: two cores cannot run two worlds side by side without timing noise.
@Suite("Exactly once: identities adopted, long budget waits, a frozen leader", .serialized)
struct ExactlyOnceTests {
    static let quick = World.quick
    static let quiet = Logger(label: "exactly-once", factory: { _ in SwiftLogNoOpLogHandler() })
    /// The daemon's defaults (`DecisionConfiguration.createSendWindow`, `createRequestTimeout`):
    /// a create is sent within the send window after its intent, or withdrawn.
    static let sendWindow: TimeInterval = 5
    /// Slack for comparing the simulator's clock with the daemon's estimate of the database's
    /// (one machine, but the estimate errs early by up to one round trip).
    static let clockSlack: TimeInterval = 0.25

    // MARK: Identity

    @Test(
        "a droplet made ahead of time with a row's identity is adopted when the row arrives: same droplet, no create sent, never destroyed"
    )
    func dropletMadeAheadOfTimeIsAdopted() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 101)
        configuration.faults.listLagSeconds = 2
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            #expect(
                await eventually(timeout: .seconds(30)) { !Self.fleetLists(world).isEmpty },
                "the daemon never listed the fleet"
            )

            // Provisioned ahead of time through the API, as a platform tool would, and old enough
            // to show in lists before its row exists.
            let id = UUID()
            let tag = Self.identityTag(id)
            let madeAhead = try await Self.withClient(world) { client in
                let created = try await client.createDroplet(
                    DropletCreateRequest(name: "made-ahead", tags: ["citrus-host", tag])
                )
                let listed = await eventually(timeout: .seconds(20), every: .milliseconds(250)) {
                    (try? await client.listDroplets(tag: "citrus-host"))?.contains { $0.id == created.droplet.id }
                        ?? false
                }
                #expect(listed, "the droplet made ahead of time never showed in a list")
                return created.droplet.id
            }

            let insertedAt = Date()
            try await world.db.query("INSERT INTO servers (id, name) VALUES (\(id), 'made-ahead')")
            try await Self.expectBound(
                world,
                id,
                to: madeAhead,
                daemon: daemon,
                "the row did not bind to the droplet made ahead of time"
            )

            let row = try #require(try await world.row(id))
            #expect(row.dropletID == madeAhead, "\(row)")
            #expect(
                world.droplets(for: id).map(\.id) == [madeAhead],
                "live droplets with the identity: \(world.droplets(for: id).map(\.id))"
            )
            let creates = Self.creates(world, for: id)
            #expect(
                creates.count == 1,
                "\(creates.count) creates carried the identity; only the one made ahead of time may"
            )
            #expect(creates.allSatisfy { $0.time < insertedAt }, "a create for the row was sent after it was inserted")
            #expect(
                world.simulator.droplet(id: madeAhead)?.deleteRequestedAt == nil,
                "the adopted droplet was destroyed"
            )
            #expect(
                world.requests(method: "DELETE").isEmpty,
                "destroys were sent: \(world.requests(method: "DELETE").map(\.path))"
            )

            let events = try await world.events().filter { $0.serverID == id }
            #expect(
                events.contains { $0.kind == "adopted" && $0.dropletID == madeAhead },
                "no adoption in server_events: \(events)"
            )
            #expect(!events.contains { $0.kind == "create_requested" }, "a create was decided for the row: \(events)")
            #expect(daemon.isRunning)
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    @Test(
        "a row deleted with SQL and inserted again with the same id gets its droplet back: one droplet, none created, none destroyed"
    )
    func rowInsertedAgainAdoptsItsDroplet() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 102)
        configuration.faults.listLagSeconds = 2
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("comes-back")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            let original = try #require(try await world.row(id)?.dropletID)

            try await world.db.query("DELETE FROM servers WHERE id = \(id)")
            // The daemon sees the droplet without its row (an orphan: reported, left alone).
            let seenAsOrphan = try await eventually(timeout: .seconds(30)) {
                try await world.events().contains { $0.kind == "orphan_seen" && $0.dropletID == original }
            }
            #expect(seenAsOrphan, "the daemon never looked at the fleet while the row was gone")
            let mark = try await world.events().last?.id ?? 0
            try await world.db.query("INSERT INTO servers (id, name) VALUES (\(id), 'comes-back')")

            try await Self.expectBound(
                world,
                id,
                to: original,
                daemon: daemon,
                "the row inserted again did not get its droplet back"
            )

            #expect(
                world.droplets(for: id).map(\.id) == [original],
                "live droplets with the identity: \(world.droplets(for: id).map(\.id))"
            )
            #expect(
                world.everCreated(for: id).count == 1,
                "droplets ever made for the identity: \(world.everCreated(for: id).map(\.id))"
            )
            #expect(
                Self.creates(world, for: id).count == 1,
                "\(Self.creates(world, for: id).count) creates carried the identity"
            )
            #expect(world.simulator.droplet(id: original)?.deleteRequestedAt == nil, "the droplet was destroyed")
            #expect(
                world.requests(method: "DELETE").isEmpty,
                "destroys were sent: \(world.requests(method: "DELETE").map(\.path))"
            )

            let after = try await world.events(after: mark).filter { $0.serverID == id }
            #expect(
                after.contains { $0.kind == "adopted" && $0.dropletID == original },
                "no adoption in server_events: \(after)"
            )
            #expect(
                !after.contains { $0.kind == "create_requested" },
                "a create was decided for the row inserted again: \(after)"
            )
            #expect(daemon.isRunning)
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    // MARK: The rate budget

    @Test(
        "creates that wait a minute in the rate budget and are answered 500 after the droplet was made: one droplet per row, each sent within the send window of its intent"
    )
    func longBudgetWaitThenServerError() async throws {
        // The daemon's minute window is DigitalOcean's (60 s, no flag shortens it), so this takes
        // a real minute: the budget lets `perMinute` requests go (lists included), the rest of the
        // creates wait about a minute for the window to open.
        let perMinute = 12
        let rowCount = perMinute + 2
        var configuration = SimulatorHarness.testConfiguration(seed: 202)
        configuration.faults.createServerErrorProbability = 0.5
        // A droplet made by a create answered 500 stays out of lists for longer than the settle
        // period: a settle period counted from a decision taken a minute before the send would
        // be long over, and a list would "prove" the droplet missing.
        configuration.faults.listLagSeconds = 4
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(Self.quick + ["--rate-per-minute", "\(perMinute)"])
            defer { daemon.signal(SIGKILL) }
            #expect(
                await eventually(timeout: .seconds(30)) { !Self.fleetLists(world).isEmpty },
                "the daemon never listed the fleet"
            )

            let started = Date()
            try await world.db.query(
                "INSERT INTO servers (name) SELECT 'budget-' || g FROM generate_series(1, \(unsafeSQL: String(rowCount))) AS g"
            )
            // The first wave: what the minute's budget lets go at once. Then every create still
            // waiting in the budget is performed and answered 500.
            var firstWave = 0
            var lastChange = Date()
            let waveOver = await eventually(timeout: .seconds(40), every: .milliseconds(100)) {
                let count = Self.creates(world).count
                if count != firstWave {
                    firstWave = count
                    lastChange = Date()
                }
                return count > 0 && Date().timeIntervalSince(lastChange) >= 3
            }
            #expect(waveOver, "no creates were sent")
            try #require(
                firstWave < rowCount,
                "the budget held no create back (\(firstWave) sent at once); the test proved nothing"
            )
            world.simulator.updateFaults { $0.createServerErrorProbability = 1 }

            try await world.converge(timeout: .seconds(120), daemon: daemon)
            let took = Date().timeIntervalSince(started)
            #expect(try await world.unsettledRows().isEmpty)
            #expect(
                world.requests(method: "DELETE").isEmpty,
                "destroys were sent: \(world.requests(method: "DELETE").map(\.path))"
            )

            let intents = try await Self.intents(world)
            #expect(intents.count == rowCount)
            var waitedLong: [Double] = []
            for intent in intents {
                let name = intent.name
                let creates = Self.creates(world, for: intent.id)
                #expect(creates.count == 1, "\(name): \(creates.count) creates carried its identity")
                #expect(
                    world.everCreated(for: intent.id).count == 1,
                    "\(name): \(world.everCreated(for: intent.id).count) droplets made"
                )
                guard let create = creates.first, let attemptedAt = intent.attemptedAt,
                    let reachableUntil = intent.reachableUntil
                else {
                    Issue.record("\(name): no create, or no intent recorded (\(intent))")
                    continue
                }
                // The intent is written when the create leaves the budget, and the create leaves
                // within the send window of it; the settle bound written with it covers the send.
                let gap = create.time.timeIntervalSince(attemptedAt)
                #expect(
                    gap >= -Self.clockSlack && gap <= Self.sendWindow + Self.clockSlack,
                    "\(name): create sent \(gap) s after its intent"
                )
                #expect(
                    reachableUntil > create.time,
                    "\(name): create sent after its recorded reachable-until \(reachableUntil)"
                )
                let wait = create.time.timeIntervalSince(intent.createdAt)
                if wait > 30 {
                    waitedLong.append(wait)
                    #expect(
                        create.status == 500,
                        "\(name): waited \(wait) s in the budget, answered \(String(describing: create.status))"
                    )
                }
            }
            // The scenario must have happened, or the test proved nothing.
            #expect(
                waitedLong.count >= rowCount - firstWave,
                "only \(waitedLong.count) creates waited long in the budget"
            )
            let answered500 = Self.creates(world).filter { $0.status == 500 }
            #expect(answered500.count >= waitedLong.count)

            // Every create_requested event's request reached the simulator within the send window.
            let requested = try await world.events().filter { $0.kind == "create_requested" }
            #expect(requested.count == rowCount, "\(requested.count) create intents audited for \(rowCount) rows")
            for event in requested {
                guard let server = event.serverID else { continue }
                let sent = Self.creates(world, for: server).contains {
                    let gap = $0.time.timeIntervalSince(event.at)
                    return gap >= -Self.clockSlack && gap <= Self.sendWindow + Self.clockSlack
                }
                #expect(
                    sent,
                    "create_requested at \(event.at) for \(server): no create reached DigitalOcean within the send window"
                )
            }
            print(
                "figure: \(rowCount) rows at \(perMinute) requests/minute: \(firstWave) creates at once, \(waitedLong.count) waited \(String(format: "%.0f", median(waitedLong))) s (median) in the budget and were answered 500 (\(answered500.count) creates answered 500 in all); converged in \(String(format: "%.0f", took)) s with \(world.requests().count) requests; \(intents.filter { Self.creates(world, for: $0.id).count > 1 }.count) rows got a second create"
            )
            #expect(daemon.isRunning)
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    // MARK: Leadership

    @Test(
        "a leader frozen with SIGSTOP is replaced within 30 s, rows inserted meanwhile converge through the standby, and the resumed leader sends nothing"
    )
    func frozenLeaderIsReplaced() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 303)
        // Slow answers, so the freeze lands while a create is in flight and others wait behind it.
        configuration.faults.latencySeconds = 1
        try await World.with(simulator: configuration) { world in
            let flags = Self.quick + ["--max-concurrent-calls", "1"]
            let replicas = ["alpha": try world.replica("alpha", flags), "beta": try world.replica("beta", flags)]
            // A stopped process is continued before it is killed.
            defer {
                for process in replicas.values {
                    process.signal(SIGCONT)
                    process.signal(SIGKILL)
                }
            }
            let (leaderName, leader, standbyName, standby) = try await world.leaderAndStandby(of: replicas)
            let standbyWaiting = try await eventually(timeout: .seconds(30)) {
                try await world.db.query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = \(standbyName)"
                ).single().decode(
                    Int.self,
                    "n"
                ) > 0
            }
            #expect(standbyWaiting, "the standby never connected: \(standby.output.suffix(2000))")
            #expect(
                await eventually(timeout: .seconds(30)) { !Self.fleetLists(world).isEmpty },
                "the leader never listed the fleet"
            )

            // A burst the leader works through one create at a time; freeze it mid-request.
            try await world.db.query(
                "INSERT INTO servers (name) SELECT 'in-flight-' || g FROM generate_series(1, 4) AS g"
            )
            #expect(
                await eventually(timeout: .seconds(20), every: .milliseconds(5)) { !Self.creates(world).isEmpty },
                "no create was sent"
            )
            try await Task.sleep(for: .milliseconds(200))
            leader.signal(SIGSTOP)
            let frozenAt = Date()
            world.simulator.updateFaults { $0.latencySeconds = 0 }
            let queued = try await world.db.query("SELECT count(*) AS n FROM servers WHERE create_attempted_at IS NULL")
                .single().decode(
                    Int.self,
                    "n"
                )
            #expect(
                queued >= 2,
                "the freeze did not land mid-burst (\(queued) rows without an intent); the test proved nothing"
            )

            for i in 1...3 { try await world.insert("during-freeze-\(i)") }
            var successor: String?
            let tookOver = try await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
                successor = try await world.leader()
                return successor != nil && successor != leaderName
            }
            let takeover = Date().timeIntervalSince(frozenAt)
            try #require(tookOver, "no replica took over within 30 s of the freeze: \(standby.output.suffix(2000))")
            #expect(successor == standbyName)
            try await world.converge(
                timeout: .seconds(max(1, 30 - Date().timeIntervalSince(frozenAt))),
                daemon: standby
            )
            let converged = Date().timeIntervalSince(frozenAt)
            #expect(converged <= 30, "the fleet converged \(converged) s after the freeze")
            let rows = try await world.rows()
            #expect(rows.count == 7)
            for row in rows {
                #expect(row.status == "active", "\(row)")
                #expect(
                    world.everCreated(for: row.id).count == 1,
                    "\(row.name): \(world.everCreated(for: row.id).count) droplets made"
                )
            }

            // Resume the old leader: it still holds a plan (the in-flight create's answer, the
            // creates queued behind it), but its lease is long over. It must send and write nothing.
            let revisions = Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0.revision) })
            let eventMark = try await world.events().last?.id ?? 0
            let logMark = leader.output.utf8.count
            let resumedAt = Date()
            leader.signal(SIGCONT)
            try await Task.sleep(for: .seconds(8))
            let resumedLog = String(decoding: leader.output.utf8.dropFirst(logMark), as: UTF8.self)

            let mutating = world.requests().filter { $0.time >= resumedAt && $0.method != "GET" }
            #expect(
                mutating.isEmpty,
                "mutating requests after the old leader resumed: \(mutating.map { "\($0.method) \($0.path)" })"
            )
            #expect(
                !resumedLog.contains("creating droplet"),
                "the resumed leader decided a create:\n\(resumedLog.suffix(3000))"
            )
            #expect(
                !resumedLog.contains("destroying droplet"),
                "the resumed leader destroyed a droplet:\n\(resumedLog.suffix(3000))"
            )
            #expect(
                resumedLog.contains("lost the database session that held leadership")
                    || resumedLog.contains("lost leadership"),
                "the resumed leader does not say it lost leadership:\n\(resumedLog.suffix(3000))"
            )
            let rewritten = try await world.rows().filter { revisions[$0.id] != $0.revision }
            #expect(rewritten.isEmpty, "rows written after the old leader resumed: \(rewritten)")
            let newEvents = try await world.events(after: eventMark)
            #expect(newEvents.isEmpty, "audit events written after the old leader resumed: \(newEvents)")
            #expect(try await world.leader() == standbyName, "leadership moved again after the old leader resumed")
            #expect(try await world.invariantViolations().isEmpty)
            #expect(leader.isRunning, "the resumed leader exited: \(resumedLog.suffix(2000))")
            print(
                "figure: leader frozen (SIGSTOP): lock taken by the standby after \(Self.ms(takeover)), 7 rows (3 inserted during the freeze) converged \(Self.ms(converged)) after the freeze; resumed, the old leader sent \(mutating.count) mutating requests in 8 s"
            )

            for process in [leader, standby] {
                await process.stop()
                #expect(process.exitStatus == 0, "a replica did not stop cleanly: \(process.output.suffix(2000))")
            }
        }
    }

    // MARK: Helpers

    static func identityTag(_ id: UUID) -> String { "citrus-server:\(id.uuidString.lowercased())" }

    /// Creates the simulator received, optionally only those carrying a row's identity tag.
    static func creates(_ world: World, for id: UUID? = nil) -> [SimulatorRequestRecord] {
        let creates = world.requests(method: "POST", route: "/v2/droplets")
        guard let id else { return creates }
        let tag = identityTag(id)
        return creates.filter { $0.body?.contains(tag) == true }
    }

    /// The daemon's lists of the whole fleet (each full pass starts with one).
    /// Waits for the row to be active on `droplet` (`failure` says what it means if it is not),
    /// for the fleet to converge, and for one more full pass over the settled fleet, in case the
    /// daemon had second thoughts.
    static func expectBound(
        _ world: World,
        _ id: UUID,
        to droplet: Int64,
        daemon: ChildProcess,
        _ failure: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let bound = try await eventually(timeout: .seconds(30)) {
            let row = try await world.row(id)
            return row?.status == "active" && row?.dropletID == droplet
        }
        let row = try await world.row(id)
        #expect(bound, "\(failure): \(String(describing: row))", sourceLocation: sourceLocation)
        try await world.converge(timeout: .seconds(30), daemon: daemon)
        let convergedAt = Date()
        #expect(
            await eventually(timeout: .seconds(20)) { fleetLists(world).contains { $0.time > convergedAt } },
            sourceLocation: sourceLocation
        )
    }

    static func fleetLists(_ world: World) -> [SimulatorRequestRecord] {
        world.requests(method: "GET", route: "/v2/droplets").filter { $0.path.contains("tag_name=citrus-host") }
    }

    /// A client of the simulator's API with the world's token, shut down after `body`.
    static func withClient<T: Sendable>(
        _ world: World,
        _ body: (DigitalOceanClient) async throws -> T
    ) async throws -> T {
        let client = DigitalOceanClient(
            configuration: .init(token: DigitalOceanToken(world.sim.token), baseURL: world.sim.baseURL),
            logger: quiet
        )
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    struct Intent: Sendable {
        var id: UUID
        var name: String
        var createdAt: Date
        var attemptedAt: Date?
        var reachableUntil: Date?
    }

    /// Each row's create bookkeeping: when it was inserted, its (latest) intent and the last
    /// instant that create could reach DigitalOcean.
    static func intents(_ world: World) async throws -> [Intent] {
        try await world.db.query(
            "SELECT id, name, created_at, create_attempted_at, create_reachable_until FROM servers ORDER BY name"
        ).map { row in
            Intent(
                id: try row.decode(UUID.self, "id"),
                name: try row.decode(String.self, "name"),
                createdAt: try row.decode(Date.self, "created_at"),
                attemptedAt: try row.decode(Date?.self, "create_attempted_at"),
                reachableUntil: try row.decode(Date?.self, "create_reachable_until")
            )
        }
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }
}
