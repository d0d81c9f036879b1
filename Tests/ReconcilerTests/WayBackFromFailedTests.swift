import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import ReconcileCore
import Reconciler
import Testing

/// Issue 25, "a way back from `failed`": what DigitalOcean cannot do now is not a reason to fail
/// a row for good. The real daemon against the simulator and a real Postgres.
@Suite("A way back from failed", .serialized)
struct WayBackFromFailedTests {
    static let quick = World.quick

    @Test(
        "a create refused 422 for the account's droplet limit waits, says why, and converges once the limit is raised"
    )
    func dropletLimitWaits() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 2501)
        configuration.faults.dropletLimit = 0
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("over-the-limit")
            var row: World.Row?
            let refused = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                row = try await world.row(id)
                return row?.lastError?.contains("droplet limit") == true
            }
            #expect(refused, "the refusal never reached the row: \(String(describing: row))")
            #expect(row?.status == "creating", "a limit failed the row: \(String(describing: row))")
            #expect(row?.lastError?.contains("raise the account's droplet limit") == true, "\(String(describing: row))")
            // Still waiting a few passes later: a limit is not a reason to give up.
            try await Task.sleep(for: .seconds(3))
            row = try await world.row(id)
            #expect(row?.status == "creating" && row?.dropletID == nil, "\(String(describing: row))")
            let refusals = world.requests(method: "POST", route: "/v2/droplets").count
            #expect(refusals >= 1)

            world.simulator.updateFaults { $0.dropletLimit = 10 }
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            try await world.expectEveryRowActiveAndCreatedOnce()
            let events = try await world.events().filter { $0.serverID == id }
            #expect(!events.contains { $0.kind == "failed" }, "\(events)")
            #expect(daemon.isRunning)
        }
    }

    @Test("rows whose placements fail (30% of new droplets vanish before active) all converge, one live droplet each")
    func failedPlacementsArePlacedAgain() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 2502)
        configuration.faults.vanishProbability = 0.3
        try await World.with(simulator: configuration) { world in
            // Ten placements a row: all ten failing, 0.3¹⁰ a row, would fail it by design.
            let daemon = try world.daemon(Self.quick + ["--max-placements", "10"])
            defer { daemon.signal(SIGKILL) }
            for i in 0..<20 { try await world.insert("placed-\(i)") }
            try await world.converge(timeout: .seconds(150), daemon: daemon)
            var placedAgain = 0
            for row in try await world.rows() {
                #expect(row.status == "active", "\(row)")
                let created = world.everCreated(for: row.id)
                let placed = created.filter { $0.vanishedAt == nil }
                #expect(placed.map(\.id) == [row.dropletID].compactMap { $0 }, "\(row): made \(created.map(\.id))")
                if created.count > 1 { placedAgain += 1 }
            }
            #expect(placedAgain > 0, "no placement failed: the test proved nothing")
            let events = try await world.events().filter { $0.kind == "placement_failed" }
            #expect(events.count >= placedAgain, "\(events)")
            print(
                "figure: 20 rows, 30% of placements failing: \(placedAgain) rows placed again, \(events.count) placements failed"
            )
            #expect(daemon.isRunning)
        }
    }
}

extension WayBackFromFailedTests {
    @Test("every placement failing: the row is placed again up to the bound, then fails saying so")
    func everyPlacementFails() async throws {
        try await LoopTests().withFleet(
            configure: { $0.faults.vanishProbability = 1 },
            loop: {
                $0.decision.maxPlacements = 3
                $0.decision.settlePeriod = .milliseconds(200)
            }
        ) { reconciler, repository, sim in
            let row = ServerRecord(id: UUID(), name: "never-placed", createdAt: Date())
            repository.insert(row)
            var trail: [String] = []
            let failed = try await eventually(timeout: .seconds(60)) {
                _ = try await reconciler.fullPass()
                let state = repository.row(row.id)?.state
                let step =
                    "\(state?.status.rawValue ?? "-") \(state?.dropletID.map(String.init) ?? "-") \(state?.failedPlacements ?? -1)"
                if trail.last != step { trail.append(step) }
                return state?.status == .failed
            }
            #expect(failed, "\(trail)")
            let state = repository.row(row.id)?.state
            #expect(state?.failedPlacements == 3, "\(trail)")
            #expect(
                state?.lastError?.contains("placement of 3 droplets failed") == true,
                "\(String(describing: state))"
            )
            #expect(sim.simulator.requestLog().filter { $0.method == "POST" }.count == 3, "\(trail)")
        }
    }

    @Test("retry puts a failed row back in line: exactly one droplet, the same identity, once only")
    func retryMakesExactlyOne() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 2504)
        configuration.faults.vanishProbability = 1
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(World.quick + ["--max-placements", "1"])
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("retried")
            let failed = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                try await world.row(id)?.status == "failed"
            }
            let failedRow = try await world.row(id)
            #expect(failed, "\(String(describing: failedRow))")
            #expect(try await world.row(id)?.lastError?.contains("placement of 1 droplets failed") == true)
            world.simulator.updateFaults { $0.vanishProbability = 0 }

            let retry = try await world.command(["retry", "retried"])
            #expect(retry.status == 0, "\(retry.output)")
            #expect(retry.output.contains("is back in line"), "\(retry.output)")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            let row = try #require(try await world.row(id))
            #expect(row.status == "active")
            #expect(world.droplets(for: id).map(\.id) == [row.dropletID].compactMap { $0 })
            #expect(world.everCreated(for: id).count == 2, "the vanished placement and the retry's one")

            let again = try await world.command(["retry", id.uuidString])
            #expect(again.status == 1, "\(again.output)")
            #expect(again.output.contains("is active, not failed"), "\(again.output)")
            let events = try await world.events().filter { $0.serverID == id }
            #expect(events.filter { $0.kind == "retry_requested" }.count == 1, "\(events)")
        }
    }

    @Test("retry of a failed row whose droplet still lives binds that droplet again: no create")
    func retryBindsTheLiveDroplet() async throws {
        try await World.with { world in
            let daemon = try world.daemon(World.quick)
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("still-there")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            let droplet = try #require(try await world.row(id)?.dropletID)
            // As an agent that never connected leaves it: failed, its droplet running for inspection.
            try await world.db.query(
                "UPDATE servers SET status = 'failed', last_error = 'agent did not connect in time' WHERE id = \(id)"
            )
            let retry = try await world.command(["retry", "still-there"])
            #expect(retry.status == 0, "\(retry.output)")
            let bound = try await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                let row = try await world.row(id)
                return row?.status == "active" && row?.dropletID == droplet
            }
            let boundRow = try await world.row(id)
            #expect(bound, "\(String(describing: boundRow))")
            #expect(world.everCreated(for: id).count == 1, "a second droplet was made")
            #expect(world.droplets(for: id).map(\.id) == [droplet])
        }
    }
}
