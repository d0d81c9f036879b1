import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Testing

/// Issue 25, "a way back from `failed`": what DigitalOcean cannot do now is not a reason to fail
/// a row for good. The real daemon against the simulator and a real Postgres.
@Suite("A way back from failed", .serialized)
struct WayBackFromFailedTests {
    static let quick = ["--fast-interval", "1s", "--resync-interval", "10s", "--settle-period", "3s"]

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
}
