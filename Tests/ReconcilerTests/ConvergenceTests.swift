import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Postgres
import Testing

/// The real daemon binary against a real Postgres and the simulator. Serialized: each test runs a
/// daemon, a cluster and a simulator, and two cores are not enough to run several side by side
/// without timing noise.
@Suite("Reconcile loop, end to end", .serialized)
struct ConvergenceTests {
    static let quick = World.quick

    @Test("50 rows converge to active with exactly one droplet each and addresses recorded")
    func fiftyRowsConverge() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            // Give the daemon its first pass, so the latency below is the NOTIFY path, not start-up.
            #expect(
                await eventually(timeout: .seconds(30)) {
                    !world.requests(method: "GET", route: "/v2/droplets").isEmpty
                }
            )

            var insertedAt: [UUID: Date] = [:]
            for i in 0..<50 {
                let id = try await world.insert("web-\(i).example.com")
                insertedAt[id] = Date()
                try await Task.sleep(for: .milliseconds(20))
            }
            try await world.converge(timeout: .seconds(90), daemon: daemon)

            let rows = try await world.rows()
            #expect(rows.count == 50)
            for row in rows {
                #expect(row.status == "active")
                #expect(world.everCreated(for: row.id).count == 1, "\(row.name) had more than one create performed")
                #expect(row.ipv4?.isEmpty == false && row.ipv6?.isEmpty == false)
            }

            // Figures for the issue: insert → create request latency, and requests per row.
            let creates = world.requests(method: "POST", route: "/v2/droplets")
            var latencies: [Double] = []
            for (id, at) in insertedAt {
                let tag = "citrus-server:\(id.uuidString.lowercased())"
                if let create = creates.first(where: { $0.body?.contains(tag) == true }) {
                    latencies.append(create.time.timeIntervalSince(at))
                }
            }
            #expect(latencies.count == 50)
            let total = world.requests().count
            print(
                "figure: insert→create median \(String(format: "%.1f", median(latencies) * 1000)) ms, worst \(String(format: "%.1f", (latencies.max() ?? .nan) * 1000)) ms over \(latencies.count); requests \(total) for 50 rows = \(String(format: "%.2f", Double(total) / 50)) per row"
            )
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "daemon did not stop cleanly: \(daemon.output.suffix(2000))")
        }
    }

    @Test("under 5xx, lost create responses, create-then-500 and list lag: exactly one droplet per row")
    func faultsStillConvergeToOneDropletPerRow() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 4242)
        configuration.faults.serverErrorProbability = 0.2
        configuration.faults.createResponseLostProbability = 0.2
        configuration.faults.createServerErrorProbability = 0.1
        configuration.faults.listLagSeconds = 5
        try await World.with(simulator: configuration) { world in
            // The settle period must outlast the list lag: that is what it is for.
            let daemon = try world.daemon([
                "--fast-interval", "1s", "--resync-interval", "10s", "--settle-period", "8s",
            ])
            defer { daemon.signal(SIGKILL) }
            for i in 0..<20 { try await world.insert("faulty-\(i)") }
            try await world.converge(timeout: .seconds(150), daemon: daemon)
            try await world.expectEveryRowActiveAndCreatedOnce()
            let lost = world.requests(method: "POST", route: "/v2/droplets").filter {
                $0.status == nil || $0.status == 500
            }
            #expect(!lost.isEmpty, "the faults never hit a create; the test proved nothing")
            await daemon.stop()
        }
    }

    @Test("SIGKILL at five random moments during a 40-row burst: one droplet per row, none orphaned, none stuck")
    func crashesDuringABurst() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 99)
        // Widen the window between request and answer, so kills land while creates are in flight.
        configuration.faults.latencySeconds = 0.3
        try await World.with(simulator: configuration) { world in
            var daemon = try world.daemon(Self.quick, name: "daemon-0")
            for i in 0..<40 { try await world.insert("burst-\(i)") }
            var generator = SystemRandomNumberGenerator()
            var killsDuringTheBurst = 0
            for kill in 1...5 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...900, using: &generator)))
                if try await world.rows().contains(where: { $0.status == "creating" }) { killsDuringTheBurst += 1 }
                daemon.signal(SIGKILL)
                await daemon.waitForExit(timeout: .seconds(10))
                daemon = try world.daemon(Self.quick, name: "daemon-\(kill)")
            }
            defer { daemon.signal(SIGKILL) }
            try await world.converge(timeout: .seconds(120), daemon: daemon)
            for row in try await world.rows() {
                #expect(
                    world.everCreated(for: row.id).count == 1,
                    "\(row.name): \(world.everCreated(for: row.id).count) creates performed"
                )
            }
            // The kills must have hit the burst, or the test proved nothing.
            #expect(killsDuringTheBurst > 0, "every kill came after the burst was over")
            let intents = try await world.db.query(
                "SELECT count(*) AS n FROM server_events WHERE kind = 'create_requested'"
            ).single().decode(
                Int.self,
                "n"
            )
            print(
                "figure: \(killsDuringTheBurst) of 5 kills while rows were still creating; \(intents) create intents recorded for 40 rows across 6 daemon lives"
            )
            await daemon.stop()
        }
    }

    @Test("deletion of active rows and of a row whose create is uncertain")
    func deletion() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let a = try await world.insert("doomed-a")
            let b = try await world.insert("doomed-b")
            let keep = try await world.insert("keeper")
            try await world.converge(timeout: .seconds(60), daemon: daemon)

            // The next create's response is lost: the row's create is uncertain when deletion is asked.
            world.simulator.updateFaults { $0.createResponseLostProbability = 1 }
            let uncertain = try await world.insert("uncertain")
            #expect(await eventually(timeout: .seconds(20)) { !world.everCreated(for: uncertain).isEmpty })
            world.simulator.updateFaults { $0.createResponseLostProbability = 0 }
            try await world.requestDeletion(uncertain)
            try await world.requestDeletion(a)
            try await world.requestDeletion(b)

            try await world.converge(timeout: .seconds(60), daemon: daemon)
            let rows = Dictionary(uniqueKeysWithValues: try await world.rows().map { ($0.id, $0) })
            #expect(rows[a]?.status == "deleted")
            #expect(rows[b]?.status == "deleted")
            #expect(rows[uncertain]?.status == "deleted")
            #expect(rows[keep]?.status == "active")
            #expect(world.droplets(for: uncertain).isEmpty, "the uncertain create's droplet was left behind")
            #expect(world.everCreated(for: uncertain).count == 1)
            await daemon.stop()
        }
    }

    @Test(
        "an orphan is left alone by default, destroyed with --orphans delete after its grace; untagged droplets are never touched"
    )
    func orphans() async throws {
        try await World.with { world in
            let orphan = try world.simulator.inject(SimulatorDropletInjection(name: "stray", tags: ["citrus-host"]))
            let foreign = try world.simulator.inject(
                SimulatorDropletInjection(name: "someone-elses", tags: ["other-team"])
            )
            var daemon = try world.daemon(Self.quick, name: "report")
            try await world.insert("legit")
            try await world.converge(timeout: .seconds(60), daemon: daemon, allowOrphans: [orphan.id])
            try await Task.sleep(for: .seconds(2))
            #expect(
                world.simulator.droplet(id: orphan.id)?.deleteRequestedAt == nil,
                "an orphan was destroyed without --orphans delete"
            )
            #expect(daemon.output.contains("\(orphan.id)"), "the orphan was not reported")
            await daemon.stop()

            let graceStarted = Date()
            daemon = try world.daemon(Self.quick + ["--orphans", "delete", "--orphan-grace", "3s"], name: "delete")
            defer { daemon.signal(SIGKILL) }
            #expect(
                await eventually(timeout: .seconds(30)) {
                    world.simulator.droplet(id: orphan.id)?.deleteRequestedAt != nil
                }
            )
            if let destroyedAt = world.simulator.droplet(id: orphan.id)?.deleteRequestedAt {
                #expect(destroyedAt.timeIntervalSince(graceStarted) >= 3, "destroyed before its grace period")
            }
            try await Task.sleep(for: .seconds(2))
            #expect(
                world.simulator.droplet(id: foreign.id)?.deleteRequestedAt == nil,
                "a droplet without the fleet tag was touched"
            )
            #expect(world.requests(method: "DELETE").allSatisfy { !$0.path.contains("\(foreign.id)") })
            await daemon.stop()
        }
    }

    @Test("invalid rows fail alone with a clear last_error; locally invalid ones send nothing; good rows converge")
    func badRowsFailAlone() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let badName = try await world.insert("not_valid name!")
            let badRegion = try await world.insert("fine-name", region: "mars1")
            let badSize = try await world.insert("fine-size", size: "s-999vcpu")
            let good = try await world.insert("good-one")
            let ok = try await eventually(timeout: .seconds(60)) {
                let rows = try await world.rows()
                return rows.filter { $0.status == "failed" }.count == 3
                    && rows.first { $0.id == good }?.status == "active"
            }
            let snapshot = try await world.rows()
            #expect(ok, "\(snapshot)")
            let rows = Dictionary(uniqueKeysWithValues: try await world.rows().map { ($0.id, $0) })
            #expect(rows[badName]?.lastError?.contains("name") == true, "\(rows[badName]?.lastError ?? "nil")")
            #expect(rows[badRegion]?.lastError?.contains("region") == true, "\(rows[badRegion]?.lastError ?? "nil")")
            #expect(rows[badSize]?.lastError?.contains("size") == true, "\(rows[badSize]?.lastError ?? "nil")")
            let posts = world.requests(method: "POST")
            #expect(
                !posts.contains { $0.body?.contains("not_valid") == true },
                "a locally invalid row reached DigitalOcean"
            )
            #expect(daemon.isRunning)
            await daemon.stop()
        }
    }

    @Test("Postgres restarted under the daemon: it reconnects and later rows converge")
    func postgresRestart() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            try await world.insert("before-restart")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            try await world.cluster.restart()
            let db = try await PostgresConnection.connect(world.databaseURL)
            try await db.query("INSERT INTO servers (name) VALUES ('after-restart')")
            let ok = try await eventually(timeout: .seconds(60)) {
                try await db.query("SELECT count(*) AS n FROM servers WHERE status = 'active'").single().decode(
                    Int.self,
                    "n"
                ) == 2
            }
            #expect(ok, "\(daemon.output.suffix(3000))")
            #expect(daemon.isRunning)
            await daemon.stop()
        }
    }

    @Test("plan on a database with pending work changes nothing")
    func planChangesNothing() async throws {
        try await World.with { world in
            try await world.insert("pending-a")
            let pending = try await world.insert("pending-b")
            try await world.requestDeletion(pending)
            let before = try await world.rows().map(\.revision)
            let plan = try await world.command(["plan"])
            #expect(plan.status == 0, "\(plan.output)")
            #expect(plan.output.contains("create"), "\(plan.output)")
            #expect(plan.output.contains("pending-a"))
            #expect(try await world.rows().map(\.revision) == before, "plan wrote to the database")
            #expect(world.requests().allSatisfy { $0.method == "GET" }, "plan sent a mutating request")
            let events = try await world.db.query("SELECT count(*) AS n FROM server_events").single().decode(
                Int.self,
                "n"
            )
            #expect(events == 0)
        }
    }
}
