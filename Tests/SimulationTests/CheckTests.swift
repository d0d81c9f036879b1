import DigitalOceanModel
import Foundation
import ReconcileCore
import Testing

@testable import Simulation

/// Each family of the simulation's checks (Sources/Simulation/Checks), driven by hand through the
/// place that observes its facts: a check that stops judging fails its test. The texts are exact:
/// `SimulationWorld.Outcome.kind(of:)` and the regression seeds' notes rely on them. (Identity and
/// destroys are also in `SimulationTests.invariantsBite`, status order in `statusOrder`.)
@Suite("The simulation's checks bite")
struct CheckTests {
    /// A world with one row, `web-1`, and no replica running.
    static func world() -> (SimulationWorld, row: UUID) {
        let world = SimulationWorld(seed: 1, verbose: false)
        let row = UUID()
        world.labels[row] = "web-1"
        world.database.insert(.init(id: row, name: "web-1"))
        return (world, row)
    }

    /// The violations without their `at … s: ` stamp.
    static func texts(_ world: SimulationWorld) -> [String] {
        world.violations.map { $0.replacing(#/^at [0-9.]+ s: /#, with: "") }
    }

    /// Moves the world's time on by `seconds`, firing what is due meanwhile.
    static func pass(_ seconds: TimeInterval, in world: SimulationWorld) {
        let until = world.time.now.addingTimeInterval(seconds)
        world.time.schedule(at: until) {}
        while world.time.advance(limit: until) {}
    }

    /// A create through the model, as a replica's request arrives; the new droplet's id.
    static func create(_ name: String, tags: [String], in world: SimulationWorld) -> Int64? {
        let body: JSONValue = .object([
            ("name", .string(name)), ("region", "sfo3"), ("size", "s-1vcpu-512mb-10gb"),
            ("image", "ubuntu-22-04-x64"), ("tags", .array(tags.map { .string($0) })),
        ])
        let response = world.deliver("POST", "/v2/droplets", body: body, by: "r1.1")
        return response.flatMap { try? JSONValue.parse($0.body) }?["droplet"]?["id"]?.intValue
    }

    static func tags(of row: UUID) -> [String] { ["citrus-host", "citrus-server:" + row.uuidString.lowercased()] }

    static func action(_ fields: [(String, JSONValue)], on droplet: Int64, in world: SimulationWorld) {
        world.deliver("POST", "/v2/droplets/\(droplet)/actions", body: .object(fields), by: "r1.1")
    }

    @Test("identity: a second droplet for one identity is a violation, counted once per create")
    func identity() throws {
        let (world, row) = Self.world()
        let first = try #require(Self.create("web-1", tags: Self.tags(of: row), in: world))
        #expect(world.violations.isEmpty)
        let second = try #require(Self.create("web-1", tags: Self.tags(of: row), in: world))
        #expect(
            Self.texts(world) == ["r1.1 created a second droplet \(second) for web-1 while droplet \(first) existed"]
        )
        #expect(world.createsTakenEffect[row] == 2)
    }

    @Test("identity: a row bound to a droplet destroyed before the pass that bound it began")
    func staleBinding() throws {
        let (world, row) = Self.world()
        let database = world.database!
        let droplet = try #require(Self.create("web-1", tags: Self.tags(of: row), in: world))
        world.destroyByHand(droplet)
        Self.pass(10, in: world)
        let session = try database.openSession(owner: "r1.1")
        #expect(database.tryLock(session))
        let read = try #require(database.liveRows(session: session).first { $0.id == row })
        _ = database.write(
            session: session,
            id: row,
            expectedRevision: read.revision,
            state: DaemonState(status: .provisioning, dropletID: droplet)
        )
        let destroyedAt = try #require(world.goneAt(droplet))
        #expect(
            Self.texts(world) == [
                "web-1 bound to droplet \(droplet), destroyed at \(world.clock(destroyedAt)) before the pass that"
                    + " bound it began (10.000 s): a binding on a stale read"
            ]
        )
    }

    @Test("destroys: a kept droplet, an untagged one, an orphan with orphans reported or before its grace")
    func destroys() throws {
        let (world, row) = Self.world()
        let kept = try #require(Self.create("web-1", tags: Self.tags(of: row), in: world))
        let untagged = try #require(Self.create("other", tags: ["web"], in: world))
        let gone = UUID()
        world.labels[gone] = "gone-1"
        let orphan = try #require(Self.create("gone-1", tags: Self.tags(of: gone), in: world))
        let young = try #require(Self.create("gone-1", tags: Self.tags(of: gone), in: world))
        let violationsOfCreates = world.violations.count  // the second droplet for gone-1
        world.deliver("DELETE", "/v2/droplets/\(kept)", by: "r1.1")
        world.deliver("DELETE", "/v2/droplets/\(untagged)", by: "r1.1")
        world.deliver("DELETE", "/v2/droplets/\(orphan)", by: "r1.1")
        world.orphanGrace = 60
        Self.pass(10, in: world)
        world.deliver("DELETE", "/v2/droplets/\(young)", by: "r1.1")
        #expect(
            Array(Self.texts(world).dropFirst(violationsOfCreates)) == [
                "r1.1 destroyed droplet \(kept), the one live row web-1 should keep",
                "r1.1 destroyed droplet \(untagged), which has no citrus-host tag",
                "r1.1 destroyed droplet \(orphan), an orphan, with orphans set to report",
                "r1.1 destroyed droplet \(young) of gone-1, an orphan for only 10.0 s (grace 60 s)",
            ]
        )
    }

    @Test("actions: on a droplet no row keeps, repeated while in progress, a power-on or a resize not allowed")
    func actions() throws {
        let (world, row) = Self.world()
        let droplet = try #require(Self.create("web-1", tags: Self.tags(of: row), in: world))
        let untagged = try #require(Self.create("other", tags: ["web"], in: world))
        Self.pass(60, in: world)  // booted
        Self.action([("type", "power_off")], on: untagged, in: world)
        Self.action([("type", "power_on")], on: droplet, in: world)
        Self.action([("type", "resize"), ("size", "s-1vcpu-1gb")], on: droplet, in: world)
        Self.action([("type", "power_off")], on: droplet, in: world)
        Self.action([("type", "power_off")], on: droplet, in: world)
        #expect(
            Self.texts(world) == [
                "r1.1 sent power_off to droplet \(untagged), which no row of the fleet keeps",
                "r1.1 powered on droplet \(droplet), which no daemon powered off",
                "r1.1 sent a resize to droplet \(droplet) while it is powered on",
                "r1.1 sent power_off to droplet \(droplet) while the same action was in progress",
            ]
        )
        #expect(world.poweredOffByDaemon == [droplet, untagged], "as sent, whether DigitalOcean takes them or not")
    }

    @Test("leadership: a row written by a session without the lock, a mutating request without the lease")
    func leadership() throws {
        let (world, row) = Self.world()
        let database = world.database!
        let session = try database.openSession(owner: "r1.1")
        let revision = try #require(database.rows[row]).revision
        let written = database.write(
            session: session,
            id: row,
            expectedRevision: revision,
            state: DaemonState(status: .failed)
        )
        #expect(database.tryLock(session))
        _ = database.write(session: session, id: row, expectedRevision: try #require(written), state: DaemonState())
        let process = SimulatedProcess(world: world, name: "r2.1", skew: 0, perMinute: 250)
        process.recordSend("GET /v2/droplets/7", creating: nil, mutating: false)
        process.recordSend("DELETE /v2/droplets/7", creating: nil, mutating: true)
        process.stop()
        #expect(
            Self.texts(world) == [
                "row web-1 written by session \(session) of r1.1, which does not hold leadership",
                "r2.1 sent DELETE /v2/droplets/7 without the lease (it no longer leads)",
            ]
        )
    }

    @Test("budget: more requests within a minute than the replica's budget")
    func budget() {
        let (world, _) = Self.world()
        let process = SimulatedProcess(world: world, name: "r1.1", skew: 0, perMinute: 3)
        for _ in 0..<4 { process.recordSend("GET /v2/droplets", creating: nil, mutating: false) }
        Self.pass(61, in: world)
        process.recordSend("GET /v2/droplets", creating: nil, mutating: false)
        process.stop()
        #expect(Self.texts(world) == ["r1.1 sent 4 requests within a minute, over its budget of 3"])
    }

    @Test("convergence: a row still creating at the end did not converge; before the end it is only not yet")
    func convergence() {
        let (world, _) = Self.world()
        #expect(!ConvergenceChecks.converged(final: false, in: world))
        #expect(world.violations.isEmpty)
        #expect(!ConvergenceChecks.converged(final: true, in: world))
        #expect(Self.texts(world) == ["web-1 did not converge: still creating"])
    }
}
