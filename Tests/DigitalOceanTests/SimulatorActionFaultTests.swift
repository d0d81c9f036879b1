import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// Faults aimed at actions, and changes made out of band through the admin API.
@Suite struct SimulatorActionFaultTests {
    @Test func aLostAnswerToThePowerOffIsOutcomeUnknownNotResentAndTheDropletGoesOff() async throws {
        try await withActionClient { client, sim, clock in
            let droplet = try sim.simulator.inject(.init(name: "lost-1"))
            sim.simulator.addActionFault(SimulatorActionFault(.lostAnswer, type: "power_off"))
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: droplet.id, .powerOff)
            }
            #expect(error?.code == .outcomeUnknown && error?.attempts == 1)
            #expect(error?.message.contains("may or may not have been performed") == true)
            #expect(sim.simulator.requestLog().map(\.status) == [nil])  // closed unanswered, sent once
            // It was performed: the action exists and the droplet goes off.
            let performed = try #require(sim.simulator.actions().first)
            #expect(performed.type == "power_off" && performed.dropletID == droplet.id)
            clock.advance(by: .seconds(8))
            #expect(try await client.action(id: performed.id).status == .completed)
            #expect(try await client.droplet(id: droplet.id).status == .off)
            #expect(sim.simulator.faults.actionFaults.isEmpty)  // spent
        }
    }

    @Test func aServerErrorBeforeDoesNothingAndOneAfterPerforms() async throws {
        try await withActionClient { client, sim, clock in
            let droplet = try sim.simulator.inject(.init(name: "five-1"))
            sim.simulator.addActionFault(SimulatorActionFault(.serverError, dropletID: droplet.id))
            let before = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: droplet.id, .rename(name: "five-2"))
            }
            #expect(before?.code == .outcomeUnknown && before?.httpStatus == 500)
            #expect(sim.simulator.actions().isEmpty)
            #expect(try await client.droplet(id: droplet.id).name == "five-1")

            sim.simulator.addActionFault(SimulatorActionFault(.serverErrorAfter, type: "rename"))
            let after = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: droplet.id, .rename(name: "five-3"))
            }
            #expect(after?.code == .outcomeUnknown && after?.httpStatus == 500)
            let performed = try #require(sim.simulator.actions().first)
            clock.advance(by: .seconds(2))
            #expect(try await client.action(id: performed.id).status == .completed)
            #expect(try await client.droplet(id: droplet.id).name == "five-3")
            #expect(sim.simulator.requestCount(method: "POST", route: "/v2/droplets/{droplet_id}/actions") == 2)
        }
    }

    @Test func anErroredResizeLeavesTheDropletOffAndItsSizeAsItWas() async throws {
        try await withActionClient { client, sim, clock in
            let droplet = try sim.simulator.inject(.init(name: "err-1", size: "s-1vcpu-1gb"))
            try sim.simulator.changeOutOfBand(dropletID: droplet.id, ["type": "power_off"])
            sim.simulator.addActionFault(SimulatorActionFault(.errored, type: "resize", dropletID: droplet.id))
            let (action, _) = try await client.performDropletAction(
                dropletID: droplet.id,
                .resize(size: "s-2vcpu-4gb", disk: true)
            )
            #expect(action.status == .inProgress)  // accepted like any other
            clock.advance(by: .seconds(105))
            let ended = try await client.action(id: action.id)
            #expect(ended.status == .errored && ended.completedAt != nil)
            let after = try await client.droplet(id: droplet.id)
            #expect(after.status == .off && after.sizeSlug == "s-1vcpu-1gb" && after.disk == 25 && !after.locked)
        }
    }

    @Test func faultsStrikeOnlyTheActionsTheyAimAtAsManyTimesAsTheySay() async throws {
        try await withActionClient { client, sim, clock in
            let a = try sim.simulator.inject(.init(name: "aim-a"))
            let b = try sim.simulator.inject(.init(name: "aim-b"))
            sim.simulator.addActionFault(
                SimulatorActionFault(.serverError, type: "power_off", dropletID: b.id, count: 2)
            )
            // Another type on b, and the same type on a: untouched.
            _ = try await client.performDropletAction(dropletID: b.id, .rename(name: "aim-b2"))
            _ = try await client.performDropletAction(dropletID: a.id, .powerOff)
            #expect(sim.simulator.faults.actionFaults.first?.count == 2)
            clock.advance(by: .seconds(8))
            for _ in 0..<2 {
                let error = await expectFailure { () async throws(DigitalOceanError) in
                    try await client.performDropletAction(dropletID: b.id, .powerOff)
                }
                #expect(error?.httpStatus == 500)
            }
            #expect(sim.simulator.faults.actionFaults.isEmpty)
            _ = try await client.performDropletAction(dropletID: b.id, .powerOff)
            #expect(sim.simulator.actions().map(\.type) == ["rename", "power_off", "power_off"])

            // A refused action does not spend a fault: a is off, and a power_off is refused.
            sim.simulator.addActionFault(SimulatorActionFault(.serverError, type: "power_off"))
            let refused = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: a.id, .powerOff)
            }
            #expect(refused?.code == .validation && refused?.httpStatus == 422)
            #expect(sim.simulator.faults.actionFaults.count == 1)
        }
    }

    @Test func theAdminAPIAimsFaultsAndSetsTimings() async throws {
        try await withActionClient { client, sim, clock in
            let droplet = try sim.simulator.inject(.init(name: "admin-1"))
            let faults = try await raw(
                .POST,
                sim.baseURL + "/_sim/action-faults",
                token: nil,
                body: #"{"kind":"lost_answer","type":"power_off","droplet_id":\#(droplet.id)}"#
            )
            #expect(faults.status == 201)
            #expect(
                sim.simulator.faults.actionFaults == [
                    SimulatorActionFault(.lostAnswer, type: "power_off", dropletID: droplet.id)
                ]
            )
            let listed = try JSONValue.parse(try await raw(.GET, sim.baseURL + "/_sim/action-faults", token: nil).body)
            #expect(listed["action_faults"]?.arrayValue?.first?["kind"] == "lost_answer")
            #expect(
                try await raw(.POST, sim.baseURL + "/_sim/action-faults", token: nil, body: #"{"kind":"gremlins"}"#)
                    .status == 422
            )
            #expect(try await raw(.DELETE, sim.baseURL + "/_sim/action-faults", token: nil).status == 204)
            #expect(sim.simulator.faults.actionFaults.isEmpty)
            // Through the faults document as well.
            let put = try await raw(
                .PUT,
                sim.baseURL + "/_sim/faults",
                token: nil,
                body: #"{"action_faults":[{"kind":"errored","count":3}]}"#
            )
            #expect(put.status == 200)
            #expect(sim.simulator.faults.actionFaults == [SimulatorActionFault(.errored, count: 3)])
            sim.simulator.updateFaults { $0.actionFaults = [] }

            let settings = try await raw(
                .PUT,
                sim.baseURL + "/_sim/action-settings",
                token: nil,
                body: #"{"power_off_seconds":0.05,"resize_disk_seconds":2}"#
            )
            #expect(settings.status == 200)
            #expect(sim.simulator.actionTiming.powerOff == .milliseconds(50))
            #expect(sim.simulator.actionTiming.resizeDisk == .seconds(2))
            #expect(sim.simulator.actionTiming.rename == .seconds(2))  // untouched
            let shown = try JSONValue.parse(try await raw(.GET, sim.baseURL + "/_sim/action-settings", token: nil).body)
            #expect(shown["power_off_seconds"] == .double(0.05) && shown["rename_seconds"]?.doubleValue == 2)
            #expect(
                try await raw(.PUT, sim.baseURL + "/_sim/action-settings", token: nil, body: #"{"rename_seconds":-1}"#)
                    .status == 422
            )
            let action = try await client.performDropletAction(dropletID: droplet.id, .powerOff).action
            let record = try #require(sim.simulator.action(id: action.id))
            #expect(abs(record.endsAt.timeIntervalSince(record.startedAt) - 0.05) < 0.001)
        }
    }

    @Test func outOfBandChangesLandAtOnceOutsideTheAPI() async throws {
        try await withActionClient { client, sim, clock in
            let droplet = try sim.simulator.inject(.init(name: "hand-1", size: "s-1vcpu-1gb"))
            let base = sim.baseURL + "/_sim/droplets/\(droplet.id)/actions"
            for body in [
                #"{"type":"rename","name":"renamed-by-hand"}"#,
                #"{"type":"power_off"}"#,
                #"{"type":"resize","size":"s-2vcpu-4gb"}"#,
            ] {
                let answer = try await raw(.POST, base, token: nil, body: body)
                #expect(answer.status == 201, "\(body): \(String(decoding: answer.body, as: UTF8.self))")
            }
            let changed = try await client.droplet(id: droplet.id)
            #expect(changed.name == "renamed-by-hand" && changed.status == .off)
            #expect(changed.sizeSlug == "s-2vcpu-4gb" && changed.disk == 25 && !changed.locked)
            // In the droplet's history as completed actions; not in the API's request log.
            let history = try await client.dropletActions(dropletID: droplet.id)
            #expect(history.map(\.type) == ["resize", "power_off", "rename", "create"])
            #expect(history.allSatisfy { $0.status == .completed })
            let recorded = sim.simulator.actions()
            #expect(recorded.count == 3 && recorded.allSatisfy { $0.outOfBand })
            #expect(
                sim.simulator.requestLog().map(\.route) == [
                    "/v2/droplets/{droplet_id}", "/v2/droplets/{droplet_id}/actions",
                ]
            )

            // The same rules as the API, and the admin API's own.
            let refused = try await raw(.POST, base, token: nil, body: #"{"type":"power_off"}"#)
            #expect(refused.status == 422)
            #expect(String(decoding: refused.body, as: UTF8.self).contains("Droplet is already powered off."))
            #expect(
                try await raw(
                    .POST,
                    sim.baseURL + "/_sim/droplets/42/actions",
                    token: nil,
                    body: #"{"type":"power_on"}"#
                ).status == 404
            )
            let form = sim.simulator.handle(
                .init(
                    method: "POST",
                    uri: "/admin/droplets/\(droplet.id)/actions",
                    headers: [("content-type", "application/x-www-form-urlencoded")],
                    body: Array("type=power_on".utf8)
                )
            )
            guard case .respond(let formAnswer, _) = form else { throw SimulatorError("no answer") }
            #expect(formAnswer.status == 415)
            #expect(try await client.droplet(id: droplet.id).status == .off)

            try sim.simulator.changeOutOfBand(dropletID: droplet.id, ["type": "power_on"])
            #expect(try await client.droplet(id: droplet.id).status == .active)
            #expect(throws: SimulatorError.self) {
                try sim.simulator.changeOutOfBand(dropletID: droplet.id, ["type": "resize", "size": "s-4vcpu-8gb"])
            }
        }
    }

    @Test func actionsAndPowerSurviveARestartFromTheStateDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sim-actions-\(UUID().uuidString)"
        )
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = actionTestConfiguration(clock: ManualClock(start: Date()))
        configuration.stateDirectory = directory.path
        let first = try SimulatedDigitalOcean(configuration: configuration)
        let droplet = try first.inject(.init(name: "kept-1", size: "s-1vcpu-1gb"))
        try first.changeOutOfBand(dropletID: droplet.id, ["type": "power_off"])
        try first.changeOutOfBand(dropletID: droplet.id, ["type": "resize", "size": "s-2vcpu-2gb", "disk": true])

        let second = try SimulatedDigitalOcean(configuration: configuration)
        let kept = try #require(second.droplet(id: droplet.id))
        #expect(kept.poweredOffAt != nil && kept.size == "s-2vcpu-2gb" && kept.disk == nil)
        #expect(second.actions().map(\.type) == ["power_off", "resize"])
    }
}
