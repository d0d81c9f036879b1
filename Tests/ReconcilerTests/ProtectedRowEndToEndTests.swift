import CitrusTestKit
import Foundation
import Testing

/// `servers.protected` with the real daemon, Postgres and the simulator (issue 25, brakes).
@Suite("Protected rows, end to end")
struct ProtectedRowEndToEndTests {
    @Test(
        "a protected row's deletion is refused with its reason, beside a plain row that is deleted; unprotected, it goes"
    )
    func protectedRowRefused() async throws {
        try await World.with { world in
            let daemon = try world.daemon(World.quick)
            defer { daemon.signal(SIGKILL) }
            let kept = try await world.insert("kept")
            let plain = try await world.insert("plain")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            let droplet = try #require(try await world.row(kept)?.dropletID)

            try await world.db.query("UPDATE servers SET protected = true WHERE id = \(kept)")
            try await world.requestDeletion(kept)
            try await world.requestDeletion(plain)
            let plainDeleted = try await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                try await world.row(plain)?.status == "deleted"
            }
            #expect(plainDeleted)
            let refused = try await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                try await world.row(kept)?.lastError?.contains("the row is protected") == true
            }
            let row = try await world.row(kept)
            #expect(refused, "\(String(describing: row))")
            #expect(row?.status == "active", "\(String(describing: row))")
            #expect(world.droplets(for: kept).map(\.id) == [droplet])
            #expect(
                !world.requests(method: "DELETE").contains { $0.path.hasSuffix("/\(droplet)") },
                "the protected droplet's DELETE was sent"
            )

            try await world.db.query("UPDATE servers SET protected = false WHERE id = \(kept)")
            let deleted = try await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                try await world.row(kept)?.status == "deleted"
            }
            let final = try await world.row(kept)
            #expect(deleted, "\(String(describing: final))")
            #expect(world.droplets(for: kept).isEmpty)
            #expect(daemon.isRunning)
        }
    }
}
