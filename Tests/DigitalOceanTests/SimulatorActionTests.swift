import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// The simulator on a clock the test moves, with DigitalOcean's own pace for actions (a rename
/// 2 s, a power_off 8 s, a resize 45 s): the test moves the clock past an action to end it.
func actionTestConfiguration(clock: ManualClock) -> SimulatorConfiguration {
    var configuration = SimulatorHarness.testConfiguration()
    configuration.clock = clock
    return configuration
}

/// A client against a simulator whose time is `clock`, started at the real time (so that
/// `ratelimit-reset` means what the client's budget expects).
func withActionClient<T: Sendable>(
    _ body: (DigitalOceanClient, SimulatorHarness.Running, ManualClock) async throws -> T
) async throws -> T {
    let clock = ManualClock(start: Date())
    return try await withClient(simulator: actionTestConfiguration(clock: clock)) { client, sim in
        try await body(client, sim, clock)
    }
}

/// Polls `GET /v2/actions/{id}` until the action has finished, for at most `timeout` (real time).
func finished(
    _ client: DigitalOceanClient,
    _ id: Int64,
    timeout: Duration = .seconds(5)
) async throws -> DropletAction {
    let deadline = ContinuousClock.now + timeout
    while true {
        let action = try await client.action(id: id)
        if action.status.isFinished || ContinuousClock.now >= deadline { return action }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Each action through the real client against the simulator: what it answers, how long it runs,
/// what it changes, and the droplet locked meanwhile.
@Suite struct SimulatorActionTests {
    @Test func renameRunsLockedAndChangesTheNameWhenItCompletes() async throws {
        try await withActionClient { client, sim, clock in
            let injected = try sim.simulator.inject(.init(name: "old-name", region: "ams3"))
            let (action, requestID) = try await client.performDropletAction(
                dropletID: injected.id,
                .rename(name: "new-name.example.com")
            )
            #expect(action.status == .inProgress && action.completedAt == nil)
            #expect(action.type == "rename")
            #expect(action.resourceID == injected.id && action.resourceType == "droplet")
            #expect(action.regionSlug == "ams3")
            #expect(action.startedAt.map { abs($0.timeIntervalSince(clock.now())) < 1 } == true)
            #expect(action.id != injected.actionID)
            #expect(requestID != nil && requestID == sim.simulator.requestLog().last?.requestID)

            // While it runs: locked, the old name, and any other action is busy.
            clock.advance(by: .milliseconds(1900))
            let during = try await client.droplet(id: injected.id)
            #expect(during.locked && during.name == "old-name")
            let busy = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: injected.id, .powerOff)
            }
            #expect(busy?.code == .busy && busy?.isTransient == true)
            #expect(busy?.message.contains("Droplet already has a pending event.") == true)
            #expect(busy?.apiErrorID == "unprocessable_entity" && busy?.httpStatus == 422)
            #expect(try await client.action(id: action.id).status == .inProgress)

            // Two seconds after it started: done.
            clock.advance(by: .milliseconds(100))
            let done = try await client.action(id: action.id)
            #expect(done.status == .completed)
            #expect(done.completedAt.flatMap { end in done.startedAt.map { end.timeIntervalSince($0) } } == 2)
            let after = try await client.droplet(id: injected.id)
            #expect(!after.locked && after.name == "new-name.example.com")
            #expect(try await client.listDroplets(tag: nil).map(\.name) == ["new-name.example.com"])
        }
    }

    @Test func powerOffResizeAndPowerOnChangeStatusAndSize() async throws {
        try await withActionClient { client, sim, clock in
            let injected = try sim.simulator.inject(.init(name: "grow-1", size: "s-1vcpu-1gb"))
            let before = try await client.droplet(id: injected.id)
            #expect(before.status == .active && before.memory == 1024 && before.vcpus == 1 && before.disk == 25)

            let off = try await client.performDropletAction(dropletID: injected.id, .powerOff).action
            clock.advance(by: .milliseconds(7900))
            #expect(try await client.droplet(id: injected.id).status == .active)  // not before it completes
            clock.advance(by: .milliseconds(100))
            #expect(try await client.action(id: off.id).status == .completed)
            let powered = try await client.droplet(id: injected.id)
            #expect(powered.status == .off && !powered.locked)
            #expect(powered.publicIPv4 == before.publicIPv4)  // an off droplet keeps its addresses

            // CPU and memory only: the disk stays as it was.
            let cpu = try await client.performDropletAction(
                dropletID: injected.id,
                .resize(size: "s-2vcpu-4gb", disk: false)
            ).action
            clock.advance(by: .seconds(45))
            #expect(try await client.action(id: cpu.id).status == .completed)
            let resized = try await client.droplet(id: injected.id)
            #expect(resized.sizeSlug == "s-2vcpu-4gb" && resized.memory == 4096 && resized.vcpus == 2)
            #expect(resized.disk == 25 && resized.status == .off)

            // With its disk: the disk grows too, and it takes longer.
            let disk = try await client.performDropletAction(
                dropletID: injected.id,
                .resize(size: "s-4vcpu-8gb", disk: true)
            ).action
            clock.advance(by: .seconds(45))
            #expect(try await client.action(id: disk.id).status == .inProgress)
            clock.advance(by: .seconds(60))
            #expect(try await client.action(id: disk.id).status == .completed)
            let grown = try await client.droplet(id: injected.id)
            #expect(grown.sizeSlug == "s-4vcpu-8gb" && grown.memory == 8192 && grown.vcpus == 4 && grown.disk == 160)

            let on = try await client.performDropletAction(dropletID: injected.id, .powerOn).action
            clock.advance(by: .seconds(8))
            #expect(try await client.action(id: on.id).status == .completed)
            #expect(try await client.droplet(id: injected.id).status == .active)

            // The droplet's history, newest first, its create last.
            let history = try await client.dropletActions(dropletID: injected.id)
            #expect(history.map(\.type) == ["power_on", "resize", "resize", "power_off", "create"])
            #expect(history.allSatisfy { $0.status == .completed && $0.resourceID == injected.id })
            #expect(history.last?.id == injected.actionID)
            #expect(try await client.action(id: injected.actionID).type == "create")
        }
    }

    /// The one test on the wall clock: short timings set for it, and an action that ends by itself.
    @Test func timingsAreConfigurableAndActionsEndOnTheirOwn() async throws {
        let defaults = SimulatorConfiguration().actionTiming
        #expect(defaults.rename == .seconds(2) && defaults.powerOff == .seconds(8) && defaults.powerOn == .seconds(8))
        #expect(defaults.duration(type: "resize", disk: false) == .seconds(45))
        #expect(defaults.duration(type: "resize", disk: true) > .seconds(45))

        var configuration = SimulatorHarness.testConfiguration()
        configuration.actionTiming = .uniform(.milliseconds(150))
        try await withClient(simulator: configuration) { client, sim in
            let droplet = try sim.simulator.inject(.init(name: "timed-1"))
            let started = ContinuousClock.now
            let action = try await client.performDropletAction(dropletID: droplet.id, .powerOff).action
            let record = try #require(sim.simulator.action(id: action.id))
            #expect(abs(record.endsAt.timeIntervalSince(record.startedAt) - 0.15) < 0.001)
            let done = try await finished(client, action.id)
            #expect(done.status == .completed)
            #expect(ContinuousClock.now - started >= .milliseconds(150))
            #expect(try await client.droplet(id: droplet.id).status == .off)
        }
    }

    @Test func digitalOceansRefusalsAre422sWithItsWords() async throws {
        try await withActionClient { client, sim, _ in
            let on = try sim.simulator.inject(.init(name: "on-1", size: "s-1vcpu-2gb"))
            let off = try sim.simulator.inject(.init(name: "off-1", size: "s-1vcpu-2gb"))
            try sim.simulator.changeOutOfBand(dropletID: off.id, ["type": "power_off"])

            let refused: [(Int64, DropletActionRequest, String)] = [
                (
                    on.id, .resize(size: "s-2vcpu-4gb", disk: false),
                    "Droplet must be powered off before it can be resized."
                ),
                (
                    off.id, .resize(size: "s-1vcpu-1gb", disk: false),
                    "Size can not decrease size of Droplet's disk image."
                ),
                (
                    off.id, .resize(size: "s-64vcpu-1tb", disk: false),
                    "You specified an invalid size for Droplet resize."
                ),
                (off.id, .powerOff, "Droplet is already powered off."),
                (on.id, .powerOn, "Droplet is already powered on."),
            ]
            for (id, request, message) in refused {
                let error = await expectFailure { () async throws(DigitalOceanError) in
                    try await client.performDropletAction(dropletID: id, request)
                }
                #expect(error?.code == .validation, "\(request)")
                #expect(error?.httpStatus == 422 && error?.apiErrorID == "unprocessable_entity")
                #expect(error?.message.contains(message) == true, "\(String(describing: error)) should say \(message)")
            }
            #expect(sim.simulator.actions().count == 1)  // only the out-of-band power_off

            // What the client would not send: straight to the API.
            let url = sim.baseURL + "/v2/droplets/\(on.id)/actions"
            for (body, words) in [
                (#"{"type":"rename","name":"bad_name"}"#, "Only valid hostname characters are allowed."),
                (#"{"type":"rename"}"#, "Name is required."),
                (#"{"type":"reboot"}"#, "does not perform reboot actions"),
                (#"{"type":"fly"}"#, "fly is not a valid action type."),
                (#"{"name":"x"}"#, "Type is required."),
            ] {
                let answer = try await raw(.POST, url, token: sim.token, body: body)
                #expect(answer.status == 422, "\(body)")
                #expect(String(decoding: answer.body, as: UTF8.self).contains(words), "\(body)")
            }
            #expect(try await raw(.POST, url, token: sim.token, body: "not json").status == 400)

            // Unknown droplets and actions: 404.
            let missing = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: 42, .powerOn)
            }
            #expect(missing?.code == .notFound)
            #expect(
                await expectFailure { () async throws(DigitalOceanError) in try await client.action(id: 42) }?.code
                    == .notFound
            )
            #expect(
                await expectFailure { () async throws(DigitalOceanError) in
                    try await client.dropletActions(dropletID: 42)
                }?.code == .notFound
            )
        }
    }

    @Test func aBootingOrDeletedDropletHasAPendingEvent() async throws {
        try await withActionClient { client, sim, clock in
            let created = try await client.createDroplet(DropletCreateRequest(name: "booting-1"))
            #expect(try await client.droplet(id: created.droplet.id).locked)
            let booting = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: created.droplet.id, .powerOff)
            }
            #expect(booting?.code == .busy)
            #expect(try await client.action(id: created.actions[0].id).status == .inProgress)
            clock.advance(by: .seconds(1))  // booted
            #expect(try await client.action(id: created.actions[0].id).status == .completed)
            #expect(try await client.droplet(id: created.droplet.id).locked == false)

            let injected = try sim.simulator.inject(.init(name: "doomed-1"))
            _ = try await client.deleteDroplet(id: injected.id)
            let deleting = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: injected.id, .rename(name: "x1"))
            }
            #expect(deleting?.code == .busy)
        }
    }

    @Test func actionsAreCountedAuthenticatedAndLoggedLikeEveryRequest() async throws {
        try await withActionClient { client, sim, _ in
            let droplet = try sim.simulator.inject(.init(name: "logged-1"))
            let (action, requestID) = try await client.performDropletAction(
                dropletID: droplet.id,
                .powerOff
            )
            _ = try await client.action(id: action.id)
            _ = try await client.dropletActions(dropletID: droplet.id)
            let log = sim.simulator.requestLog()
            #expect(
                log.map(\.route) == [
                    "/v2/droplets/{droplet_id}/actions", "/v2/actions/{action_id}", "/v2/droplets/{droplet_id}/actions",
                ]
            )
            #expect(log[0].method == "POST" && log[0].status == 201 && log[0].requestID == requestID)
            #expect(log[0].body == #"{"type":"power_off"}"#)
            #expect(sim.simulator.requestCount(method: "POST", route: "/v2/droplets/{droplet_id}/actions") == 1)

            let refused = try await raw(.POST, sim.baseURL + "/v2/droplets/\(droplet.id)/actions", token: "nope")
            #expect(refused.status == 401)

            // The same windows as every request: two more fill this minute.
            sim.simulator.setRateLimits(SimulatorRateLimits(perMinute: 5, perHour: 100))
            _ = try await client.action(id: action.id)
            _ = try await client.action(id: action.id)
            let limited = try await raw(
                .POST,
                sim.baseURL + "/v2/droplets/\(droplet.id)/actions",
                token: sim.token,
                body: #"{"type":"power_on"}"#
            )
            #expect(limited.status == 429 && limited.header("retry-after") != nil)
        }
    }

    @Test func listsArePagedNewestFirstWithLinksAndMeta() async throws {
        try await withActionClient { _, sim, _ in
            let droplet = try sim.simulator.inject(.init(name: "paged-1"))
            for name in ["a1", "a2", "a3"] {
                try sim.simulator.changeOutOfBand(dropletID: droplet.id, ["type": "rename", "name": .string(name)])
            }
            let url = sim.baseURL + "/v2/droplets/\(droplet.id)/actions"
            let first = try JSONValue.parse(try await raw(.GET, url + "?per_page=3", token: sim.token).body)
            #expect(first["meta"]?["total"] == 4)
            #expect(
                first["actions"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["rename", "rename", "rename"]
            )
            let ids = first["actions"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
            #expect(ids == ids.sorted(by: >))
            let next = try #require(first["links"]?["pages"]?["next"]?.stringValue)
            #expect(next.hasSuffix("/v2/droplets/\(droplet.id)/actions?per_page=3&page=2"))
            let second = try JSONValue.parse(try await raw(.GET, next, token: sim.token).body)
            #expect(second["actions"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["create"])
            #expect(second["links"]?["pages"]?["prev"] != nil && second["links"]?["pages"]?["next"] == nil)
            let single = try JSONValue.parse(try await raw(.GET, url, token: sim.token).body)
            #expect(single["links"] == .object([]))
        }
    }

    /// The action object carries only `action.yml`'s properties.
    @Test func renderedActionsUseOnlyTheSpecsProperties() async throws {
        let spec = try #require(SchemaValidationTests.specDirectory())
        let model = try String(
            contentsOf: spec.appendingPathComponent("specification/resources/actions/models/action.yml"),
            encoding: .utf8
        )
        // Property names: the keys indented by two spaces under `properties:`.
        let properties = Set(
            model.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("  "), !line.hasPrefix("   "), line.hasSuffix(":") else { return nil }
                return String(line.dropFirst(2).dropLast())
            }
        )
        #expect(properties.isSuperset(of: ["id", "status", "type", "started_at", "completed_at", "region_slug"]))
        try await withActionClient { _, sim, _ in
            let droplet = try sim.simulator.inject(.init(name: "spec-1"))
            let answer = try await raw(
                .POST,
                sim.baseURL + "/v2/droplets/\(droplet.id)/actions",
                token: sim.token,
                body: #"{"type":"power_off"}"#
            )
            #expect(answer.status == 201)
            guard case .object(let pairs) = try JSONValue.parse(answer.body)["action"] else {
                Issue.record("no action object")
                return
            }
            #expect(Set(pairs.map(\.0)) == properties)
            let action = try JSONValue.parse(answer.body)["action"]
            #expect(action?["status"] == "in-progress" && action?["completed_at"] == .null)
            #expect(action?["region"]?["slug"] == "sfo3" && action?["resource_type"] == "droplet")
        }
    }
}
