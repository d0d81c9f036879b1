import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Logging
import Postgres
import Testing

/// Issue 22, item 1, end to end: rows removed with SQL `DELETE` and inserted again with the same id
/// while their create is in flight or not yet listed (a platform retrying by delete-and-insert, an
/// ORM's upsert). Before `create_intents`, the row inserted again looked never attempted, one lookup
/// missed the lagging droplet, and a second create went out for 3 or 4 rows of 4.
@Suite("Create intents outlive their row", .serialized)
struct IntentOutlivesRowTests {
    @Test(
        "rows deleted and inserted again during their create, with lagging lists and creates answered 500 after their effect, get one droplet each"
    )
    func reinsertedDuringCreateGetsOneDroplet() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 2201)
        configuration.faults.listLagSeconds = 4
        configuration.faults.createServerErrorProbability = 0.5
        try await World.with(simulator: configuration) { world in
            // The settle period must exceed the list lag: that is the design's one assumption.
            let daemon = try world.daemon([
                "--fast-interval", "1s", "--resync-interval", "10s", "--settle-period", "8s",
            ])
            defer { daemon.signal(SIGKILL) }
            var ids: [UUID] = []
            for index in 1...4 {
                let name = "again-\(index)"
                let id = try await world.insert(name)
                ids.append(id)
                // As soon as the create's intent is recorded, the row goes and comes back.
                let attempted = try await eventually(timeout: .seconds(20), every: .milliseconds(10)) {
                    try await world.db.query(
                        "SELECT 1 FROM servers WHERE id = \(id) AND create_attempted_at IS NOT NULL"
                    ).count == 1
                }
                #expect(attempted, "no create was attempted for \(name)")
                try await world.db.query("DELETE FROM servers WHERE id = \(id)")
                try await world.db.query("INSERT INTO servers (id, name) VALUES (\(id), \(name))")
            }
            try await world.converge(timeout: .seconds(120), daemon: daemon)
            for id in ids {
                let made = world.everCreated(for: id).map(\.id)
                #expect(made.count == 1, "droplets ever made for \(id): \(made)")
                #expect(try await world.row(id)?.status == "active")
            }
            let recorded = try await world.db.query("SELECT count(DISTINCT server_id) AS n FROM create_intents")
            #expect(try recorded.single().decode(Int.self, "n") == 4, "every create's intent outlived its row")
            #expect(daemon.isRunning)
        }
    }
}
