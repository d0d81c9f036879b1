import CitrusTestKit
import Foundation
import Testing

/// The destroy brake with the real daemon, Postgres and the simulator (issue 25, brakes): a mass
/// deletion stopped by the budget while the rest of the fleet still converges, then allowed.
@Suite("Destroy brake, end to end")
struct DestroyBrakeEndToEndTests {
    @Test(
        "half of a 100-row fleet deleted at once: 20 destroyed, the rest held and said so, a new row still made; allowed, the rest go, each once"
    )
    func massDeletionBrakedThenAllowed() async throws {
        try await World.with { world in
            let daemon = try world.daemon(World.quick + MetricsEndpointTests.metricsFlags)
            defer { daemon.signal(SIGKILL) }
            try await world.db.query(
                "INSERT INTO servers (name) SELECT 'web-' || lpad(n::text, 3, '0') FROM generate_series(1, 100) AS n"
            )
            try await world.converge(timeout: .seconds(240), daemon: daemon)
            let fleet = try await world.rows()
            #expect(fleet.count == 100)
            let doomed = Array(fleet.sorted { $0.name < $1.name }.prefix(50))
            let droplets = Set(doomed.compactMap(\.dropletID))
            #expect(droplets.count == 50)
            let mark = try await world.events().last?.id ?? 0

            try await world.db.query(
                "UPDATE servers SET delete_requested_at = now() WHERE name <= 'web-050'"
            )
            // The default budget: 20% of a fleet of 100 an hour.
            let braked = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                try await world.events(after: mark).contains { $0.kind == "destroys_braked" }
            }
            #expect(braked, "no destroys_braked entry\n\(daemon.output.suffix(3000))")
            // Passes go on every second: what was braked stays braked.
            let late = try await world.insert("late-arrival")
            let lateActive = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                try await world.row(late)?.status == "active"
            }
            #expect(lateActive, "a row inserted while destroys were braked did not converge")
            try await Task.sleep(for: .seconds(3))
            let destroyedWhileBraked = try await world.events(after: mark).filter { $0.kind == "destroy_requested" }
            #expect(destroyedWhileBraked.count == 20, "\(destroyedWhileBraked)")
            let deletes = {
                world.requests(method: "DELETE").filter { request in
                    droplets.contains { request.path.hasSuffix("/\($0)") }
                }
            }
            #expect(deletes().count == 20)
            let deleted = try await world.rows().filter { $0.status == "deleted" }.count
            #expect(deleted <= 20)
            let endpoint = try await MetricsScrape.endpoint(of: daemon)
            let metrics = try MetricsScrape.values(try MetricsScrape.get(endpoint, "/metrics").body)
            #expect(metrics["citrus_destroys_braked"] == 1, "\(metrics.filter { $0.key.contains("destroys") })")
            #expect(metrics["citrus_destroys_waiting"] == 30, "\(metrics.filter { $0.key.contains("destroys") })")

            // A restarted daemon takes the brake over from the audit trail: nothing more goes, and
            // the brake is not announced twice.
            daemon.signal(SIGKILL)
            _ = await daemon.waitForExit(timeout: .seconds(10))
            let restarted = try world.daemon(World.quick + MetricsEndpointTests.metricsFlags, name: "daemon-2")
            defer { restarted.signal(SIGKILL) }
            let led = await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                restarted.output.contains("now leads")
            }
            #expect(led, "\(restarted.output.suffix(2000))")
            try await Task.sleep(for: .seconds(4))
            #expect(deletes().count == 20, "the restarted daemon sent more destroys")
            let brakedEntries = try await world.events(after: mark).filter { $0.kind == "destroys_braked" }
            #expect(brakedEntries.count == 1, "\(brakedEntries)")

            let status = try await world.command(["status"])
            #expect(status.output.contains("Destroys BRAKED"), "\(status.output.suffix(1500))")
            let destroysStatus = try await world.command(["destroys", "status"])
            #expect(destroysStatus.status == 0, "\(destroysStatus.output)")
            #expect(destroysStatus.output.contains("Destroys in the last hour: 20"), "\(destroysStatus.output)")

            let allow = try await world.command([
                "destroys", "allow", "--until", "10m", "--reason", "the test allows it",
            ])
            #expect(allow.status == 0, "\(allow.output)")
            #expect(allow.output.contains("destroys allowed past the budget until"), "\(allow.output)")
            let allGone = try await eventually(timeout: .seconds(120), every: .milliseconds(250)) {
                let rows = try await world.rows()
                return rows.filter { $0.status == "deleted" }.count == 50
            }
            let unsettled = try await world.rows().filter { $0.status != "active" && $0.status != "deleted" }
            #expect(allGone, "\(unsettled)")
            try await world.converge(timeout: .seconds(60), daemon: restarted)
            let events = try await world.events(after: mark)
            #expect(events.contains { $0.kind == "destroys_released" && $0.message.contains("allowed") })
            let after = try MetricsScrape.values(
                try MetricsScrape.get(try await MetricsScrape.endpoint(of: restarted), "/metrics").body
            )
            #expect(after["citrus_destroys_braked"] == 0 && after["citrus_destroys_waiting"] == 0)
            // Each of the 50 droplets destroyed exactly once; none of the 50 kept.
            #expect(deletes().count == 50, "\(deletes().map(\.path))")
            #expect(Set(deletes().map(\.path)).count == 50)
            let destroyedOnce = events.filter { $0.kind == "destroy_requested" }.compactMap(\.dropletID)
            #expect(destroyedOnce.count == 50 && Set(destroyedOnce) == droplets)
            #expect(try await world.rows().filter { $0.status == "active" }.count == 51)

            // For the record: the brake's journal lines as the daemon wrote them.
            for line in (daemon.output + "\n" + restarted.output).split(separator: "\n")
            where line.contains("destroys braked") || line.contains("destroys no longer braked") {
                print("BRAKE LINE: \(line)")
            }
            #expect(restarted.isRunning)
        }
    }
}
