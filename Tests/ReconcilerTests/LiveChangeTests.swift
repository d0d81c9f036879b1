import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Postgres
import Testing

/// Changes to a live row (issue 13), end to end: the real daemon against a real Postgres and the
/// simulator, with actions that take a few hundred milliseconds and faults aimed at single steps.
@Suite("Changes to a live row: rename, resize, drift", .serialized)
struct LiveChangeIntegrationTests {
    static let quick = ["--fast-interval", "1s", "--resync-interval", "5s", "--settle-period", "3s"]

    static func configuration(seed: UInt64) -> SimulatorConfiguration {
        var configuration = SimulatorHarness.testConfiguration(seed: seed)
        configuration.actionTiming = .uniform(.milliseconds(400))
        return configuration
    }

    struct Live: Sendable {
        var status: String
        var dropletName: String?
        var dropletSize: String?
        var drift: String?
        var changeGoal: String?
        var refused: String?
        var lastError: String?
    }

    static func live(_ world: World, _ id: UUID) async throws -> Live {
        let row = try await world.db.query(
            """
            SELECT status, droplet_name, droplet_size, drift, change_goal, refused_change, last_error
            FROM servers WHERE id = \(id)
            """
        ).single()
        return Live(
            status: try row.decode(String.self, "status"),
            dropletName: try row.decode(String?.self, "droplet_name"),
            dropletSize: try row.decode(String?.self, "droplet_size"),
            drift: try row.decode(String?.self, "drift"),
            changeGoal: try row.decode(String?.self, "change_goal"),
            refused: try row.decode(String?.self, "refused_change"),
            lastError: try row.decode(String?.self, "last_error")
        )
    }

    /// Inserts a row and waits for it to be active; returns its id and droplet.
    static func activeRow(
        _ world: World,
        _ name: String,
        size: String = "s-1vcpu-512mb-10gb"
    ) async throws -> (
        UUID, Int64
    ) {
        let id = try await world.insert(name, size: size)
        let active = try await eventually(timeout: .seconds(30)) {
            let status = try await world.row(id)?.status
            let dropletName = try await live(world, id).dropletName
            return status == "active" && dropletName == name
        }
        #expect(active, "\(name) never became active")
        let droplet = try #require(try await world.row(id)?.dropletID)
        return (id, droplet)
    }

    static func daemonActions(_ world: World, droplet: Int64) -> [SimulatedAction] {
        world.simulator.actions().filter { $0.dropletID == droplet && !$0.outOfBand }
    }

    static func kinds(_ world: World, server id: UUID, after mark: Int64) async throws -> [String] {
        try await world.events(after: mark).filter { $0.serverID == id }.map(\.kind)
    }

    // MARK: Rename

    @Test("a changed name is renamed in place: one rename action, followed to completion, audited; no create")
    func rename() async throws {
        try await World.with(simulator: Self.configuration(seed: 301)) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-a")
            let mark = try await world.events().last?.id ?? 0
            let creates = world.requests(method: "POST", route: "/v2/droplets").count

            let updatedAt = Date()
            try await world.db.query("UPDATE servers SET name = 'web-a-renamed' WHERE id = \(id)")
            let renamed = try await eventually(timeout: .seconds(20)) {
                let row = try await Self.live(world, id)
                return row.dropletName == "web-a-renamed" && row.changeGoal == nil
            }
            let row0 = try await Self.live(world, id)
            #expect(renamed, "not renamed: \(row0); log: \(daemon.output.suffix(2_000))")
            let seconds = Date().timeIntervalSince(updatedAt)
            print("UPDATE → droplet renamed and recorded: \(String(format: "%.1f", seconds)) s")

            #expect(world.simulator.droplet(id: droplet)?.name == "web-a-renamed")
            #expect(Self.daemonActions(world, droplet: droplet).map(\.type) == ["rename"])
            #expect(world.requests(method: "POST", route: "/v2/droplets").count == creates, "no create for a rename")
            let row = try await Self.live(world, id)
            #expect(row.status == "active" && row.drift == nil && row.lastError == nil)
            let kinds = try await Self.kinds(world, server: id, after: mark)
            #expect(kinds.contains("action_requested") && kinds.contains("action_accepted"))
            #expect(kinds.contains("change_completed"))
            #expect(!kinds.contains("drift_detected"), "a change being applied is not drift")
        }
    }

    @Test(
        "a rename while another row's create is uncertain: the rename completes, the other row gets exactly one droplet"
    )
    func renameWhileCreateUncertain() async throws {
        try await World.with(simulator: Self.configuration(seed: 302)) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-b")

            // The next create's answer is lost: the new row's create is uncertain for a settle period.
            world.simulator.updateFaults { $0.createResponseLostProbability = 1 }
            let other = try await world.insert("web-c")
            let reached = await eventually(timeout: .seconds(15)) { !world.everCreated(for: other).isEmpty }
            #expect(reached, "the other row's create never reached the simulator")
            world.simulator.updateFaults { $0.createResponseLostProbability = 0 }
            try await world.db.query("UPDATE servers SET name = 'web-b-renamed' WHERE id = \(id)")

            let renamed = try await eventually(timeout: .seconds(20)) {
                (try await Self.live(world, id)).dropletName == "web-b-renamed"
            }
            #expect(renamed, "log: \(daemon.output.suffix(2_000))")
            try await world.converge(timeout: .seconds(40), daemon: daemon)
            #expect(world.everCreated(for: other).count == 1, "exactly one droplet for the uncertain row")
            #expect(Self.daemonActions(world, droplet: droplet).map(\.type) == ["rename"])
        }
    }

    @Test("an errored rename is retried after the row's backoff and completes")
    func erroredRenameRetried() async throws {
        try await World.with(simulator: Self.configuration(seed: 303)) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-d")
            world.simulator.addActionFault(SimulatorActionFault(.errored, type: "rename"))
            try await world.db.query("UPDATE servers SET name = 'web-d-renamed' WHERE id = \(id)")
            let renamed = try await eventually(timeout: .seconds(30)) {
                let row = try await Self.live(world, id)
                return row.dropletName == "web-d-renamed" && row.changeGoal == nil
            }
            #expect(renamed, "log: \(daemon.output.suffix(2_000))")
            let actions = Self.daemonActions(world, droplet: droplet)
            #expect(actions.map(\.type) == ["rename", "rename"])
            #expect(actions.first?.ending == .errored)
        }
    }

    // MARK: Resize

    @Test("a resize whose power_off answer is lost: the droplet is read, not powered off twice; resized and powered on")
    func resizeWithLostPowerOff() async throws {
        try await World.with(simulator: Self.configuration(seed: 304)) { world in
            let daemon = try world.daemon(Self.quick + ["--resize", "allow"])
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-e")
            let mark = try await world.events().last?.id ?? 0
            world.simulator.addActionFault(SimulatorActionFault(.lostAnswer, type: "power_off"))
            try await world.db.query("UPDATE servers SET size = 's-1vcpu-1gb' WHERE id = \(id)")

            let resized = try await eventually(timeout: .seconds(40)) {
                let row = try await Self.live(world, id)
                return row.dropletSize == "s-1vcpu-1gb" && row.changeGoal == nil
            }
            let row0 = try await Self.live(world, id)
            #expect(resized, "not resized: \(row0); log: \(daemon.output.suffix(3_000))")
            #expect(Self.daemonActions(world, droplet: droplet).map(\.type) == ["power_off", "resize", "power_on"])
            let resize = Self.daemonActions(world, droplet: droplet).first { $0.type == "resize" }
            #expect(resize?.disk == false, "CPU and memory only by default")
            let after = try #require(world.simulator.droplet(id: droplet))
            #expect(after.size == "s-1vcpu-1gb" && after.apiStatus(at: Date()) == "active")
            let row = try await Self.live(world, id)
            #expect(row.status == "active" && row.drift == nil && row.refused == nil)
            let kinds = try await Self.kinds(world, server: id, after: mark)
            #expect(kinds.contains("action_uncertain"), "the lost answer is audited")
            #expect(kinds.filter { $0 == "action_completed" }.count >= 2, "each step is audited")
            #expect(kinds.contains("change_completed"))
        }
    }

    @Test(
        "a resize DigitalOcean refuses (a smaller disk) powers the droplet back on, is recorded as drift, and is not retried"
    )
    func resizeRefused() async throws {
        try await World.with(simulator: Self.configuration(seed: 305)) { world in
            let daemon = try world.daemon(Self.quick + ["--resize", "allow"])
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-f", size: "s-2vcpu-4gb")
            try await world.db.query("UPDATE servers SET size = 's-1vcpu-1gb' WHERE id = \(id)")
            let refused = try await eventually(timeout: .seconds(40)) {
                let row = try await Self.live(world, id)
                return row.refused == "size" && row.changeGoal == nil
            }
            #expect(refused, "log: \(daemon.output.suffix(3_000))")
            let row = try await Self.live(world, id)
            #expect(row.status == "active")
            #expect(row.drift?.contains("refused_change") == true)
            let after = try #require(world.simulator.droplet(id: droplet))
            #expect(after.size == "s-2vcpu-4gb" && after.apiStatus(at: Date()) == "active", "powered back on")
            #expect(Self.daemonActions(world, droplet: droplet).map(\.type) == ["power_off", "power_on"])

            // A few passes later: not tried again.
            try await Task.sleep(for: .seconds(4))
            #expect(Self.daemonActions(world, droplet: droplet).count == 2)
        }
    }

    @Test("without --resize a changed size is drift: nothing sent, status unchanged, status and plan show it")
    func resizeNotAllowedIsDrift() async throws {
        try await World.with(simulator: Self.configuration(seed: 306)) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-g")
            let mark = try await world.events().last?.id ?? 0
            try await world.db.query("UPDATE servers SET size = 's-2vcpu-2gb' WHERE id = \(id)")
            let drifted = try await eventually(timeout: .seconds(20)) { (try await Self.live(world, id)).drift != nil }
            #expect(drifted)
            let row = try await Self.live(world, id)
            #expect(row.status == "active")
            #expect(row.drift?.contains("--resize allow") == true)
            #expect(Self.daemonActions(world, droplet: droplet).isEmpty)
            #expect(try await Self.kinds(world, server: id, after: mark).filter { $0 == "drift_detected" }.count == 1)

            let status = try await world.command(["status"])
            #expect(status.output.contains("active (drift)"), "\(status.output)")
            #expect(status.output.contains("s-2vcpu-2gb (droplet: s-1vcpu-512mb-10gb)"), "\(status.output)")
            let plan = try await world.command(["plan"])
            #expect(plan.output.contains("drift    web-g"), "\(plan.output)")

            // Set back: the drift clears, once.
            try await world.db.query("UPDATE servers SET size = 's-1vcpu-512mb-10gb' WHERE id = \(id)")
            #expect(try await eventually(timeout: .seconds(20)) { (try await Self.live(world, id)).drift == nil })
            #expect(try await Self.kinds(world, server: id, after: mark).filter { $0 == "drift_cleared" }.count == 1)
        }
    }

    // MARK: Drift

    @Test("region and image cannot change in place: drift that says to delete and insert; the server keeps working")
    func regionAndImageDrift() async throws {
        try await World.with(simulator: Self.configuration(seed: 307)) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-h")
            try await world.db.query("UPDATE servers SET region = 'nyc3', image = 'debian-12-x64' WHERE id = \(id)")
            let drifted = try await eventually(timeout: .seconds(20)) {
                let drift = try await Self.live(world, id).drift ?? ""
                return drift.contains("region:") && drift.contains("image:")
            }
            let row0 = try await Self.live(world, id)
            #expect(drifted, "\(row0)")
            let row = try await Self.live(world, id)
            #expect(row.status == "active")
            #expect(row.drift?.contains("set delete_requested_at and insert a new row") == true)
            #expect(Self.daemonActions(world, droplet: droplet).isEmpty)
            #expect(world.droplets(for: id).count == 1, "nothing created or destroyed")
        }
    }

    @Test(
        "changes made at DigitalOcean are drift, not undone: a rename, and a power-off (powered on only by policy)"
    )
    func outOfBandChanges() async throws {
        try await World.with(simulator: Self.configuration(seed: 308)) { world in
            var daemon = try world.daemon(Self.quick + ["--resize", "allow"], name: "first")
            let (id, droplet) = try await Self.activeRow(world, "web-i")

            try world.simulator.changeOutOfBand(
                dropletID: droplet,
                .object([("type", .string("rename")), ("name", .string("by-hand"))])
            )
            let drifted = try await eventually(timeout: .seconds(20)) {
                (try await Self.live(world, id)).drift?.contains("renamed by-hand at DigitalOcean") == true
            }
            let row0 = try await Self.live(world, id)
            #expect(drifted, "\(row0)")
            try await Task.sleep(for: .seconds(3))
            #expect(Self.daemonActions(world, droplet: droplet).isEmpty, "not renamed back")
            #expect(world.simulator.droplet(id: droplet)?.name == "by-hand")

            // The operator takes the name: drift clears, nothing sent.
            try await world.db.query("UPDATE servers SET name = 'by-hand' WHERE id = \(id)")
            #expect(try await eventually(timeout: .seconds(20)) { (try await Self.live(world, id)).drift == nil })

            // Powered off by hand: reported, and left off.
            try world.simulator.changeOutOfBand(dropletID: droplet, .object([("type", .string("power_off"))]))
            let off = try await eventually(timeout: .seconds(20)) {
                (try await Self.live(world, id)).drift?.contains("powered off at DigitalOcean") == true
            }
            #expect(off)
            try await Task.sleep(for: .seconds(3))
            #expect(world.simulator.droplet(id: droplet)?.apiStatus(at: Date()) == "off")
            #expect(Self.daemonActions(world, droplet: droplet).isEmpty)
            #expect(try await Self.live(world, id).status == "active", "status unchanged")

            // With --powered-off power-on, it is powered on.
            daemon.signal(SIGKILL)
            _ = await daemon.waitForExit(timeout: .seconds(10))
            daemon = try world.daemon(Self.quick + ["--powered-off", "power-on"], name: "second")
            defer { daemon.signal(SIGKILL) }
            let on = try await eventually(timeout: .seconds(30)) {
                let drift = try await Self.live(world, id).drift
                return world.simulator.droplet(id: droplet)?.apiStatus(at: Date()) == "active" && drift == nil
            }
            #expect(on, "log: \(daemon.output.suffix(2_000))")
            #expect(Self.daemonActions(world, droplet: droplet).map(\.type) == ["power_on"])
        }
    }

    @Test("a droplet resized at DigitalOcean is drift, not resized back even with --resize allow")
    func outOfBandResize() async throws {
        try await World.with(simulator: Self.configuration(seed: 310)) { world in
            let daemon = try world.daemon(Self.quick + ["--resize", "allow"])
            defer { daemon.signal(SIGKILL) }
            let (id, droplet) = try await Self.activeRow(world, "web-k")
            for body: JSONValue in [
                .object([("type", .string("power_off"))]),
                .object([("type", .string("resize")), ("size", .string("s-1vcpu-1gb"))]),
                .object([("type", .string("power_on"))]),
            ] {
                try world.simulator.changeOutOfBand(dropletID: droplet, body)
            }
            let drifted = try await eventually(timeout: .seconds(20)) {
                (try await Self.live(world, id)).drift?.contains("resized to s-1vcpu-1gb at DigitalOcean") == true
            }
            let row = try await Self.live(world, id)
            #expect(drifted, "\(row)")
            #expect(row.status == "active")
            try await Task.sleep(for: .seconds(3))
            #expect(Self.daemonActions(world, droplet: droplet).isEmpty, "not resized back")
            #expect(world.simulator.droplet(id: droplet)?.size == "s-1vcpu-1gb")
        }
    }

    // MARK: Request ids

    @Test("every mutating request's DigitalOcean request id is in server_events and the log: create, rename, destroy")
    func requestIDsAudited() async throws {
        try await World.with(simulator: Self.configuration(seed: 309)) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let (id, _) = try await Self.activeRow(world, "web-j")
            try await world.db.query("UPDATE servers SET name = 'web-j2' WHERE id = \(id)")
            let renamed = try await eventually(timeout: .seconds(20)) {
                let row = try await Self.live(world, id)
                return row.changeGoal == nil && row.dropletName == "web-j2"
            }
            #expect(renamed)
            try await world.requestDeletion(id)
            #expect(try await eventually(timeout: .seconds(20)) { try await world.row(id)?.status == "deleted" })

            let mutating = world.simulator.requestLog().filter {
                ["POST", "DELETE"].contains($0.method) && $0.status.map { $0 < 300 } == true
            }
            #expect(Set(mutating.map(\.method)) == ["POST", "DELETE"])
            #expect(mutating.count == 3, "create, rename, destroy: \(mutating.map(\.path))")
            let recorded = try await world.db.query(
                "SELECT do_request_id FROM server_events WHERE do_request_id IS NOT NULL"
            )
            .map { try $0.decode(String.self, "do_request_id") }
            for request in mutating {
                #expect(
                    recorded.contains(request.requestID),
                    "\(request.method) \(request.path): \(request.requestID) not audited"
                )
                #expect(daemon.output.contains(request.requestID), "\(request.method) \(request.path): not in the log")
            }
        }
    }
}
