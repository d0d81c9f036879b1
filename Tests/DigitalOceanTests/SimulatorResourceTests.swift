import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// The simulated account's SSH keys, VPCs, projects and tags, and the backup and shutdown actions,
/// through the real client: what DigitalOcean would answer, and what each changes on the droplet.
@Suite struct SimulatorResourceTests {
    static let sfo3VPC = SimulatedVPC.defaultID(region: "sfo3") ?? ""

    /// Waits for `id` to be active (boot is 300 ms in tests).
    static func active(_ client: DigitalOceanClient, _ id: Int64) async throws -> Droplet {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            let droplet = try await client.droplet(id: id)
            if droplet.status == .active || ContinuousClock.now >= deadline { return droplet }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func aCreateWithKeysAVPCAndTheAgentOffIsMadeAsAsked() async throws {
        try await withClient { client, sim in
            let vpc = try sim.simulator.addVPC(region: "sfo3", name: "fleet")
            let extra = try sim.simulator.addSSHKey(
                name: "ops",
                id: 700,
                fingerprint: "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"
            )
            let created = try await client.createDroplet(
                DropletCreateRequest(
                    name: "spec-1",
                    tags: ["citrus-host", "env:prod"],
                    ipv6: false,
                    monitoring: true,
                    backups: true,
                    sshKeys: [.id(SimulatedSSHKey.standard.id), .fingerprint(extra.fingerprint)],
                    vpcUUID: vpc.id,
                    withDropletAgent: false
                )
            )
            let record = try #require(sim.simulator.droplet(id: created.droplet.id))
            #expect(record.vpcUUID == vpc.id)
            #expect(record.sshKeyIDs == [SimulatedSSHKey.standard.id, 700])
            #expect(record.withDropletAgent == false)
            let droplet = try await Self.active(client, created.droplet.id)
            #expect(droplet.vpcUUID == vpc.id)
            #expect(droplet.features == [.privateNetworking, .backups, .monitoring])
            // The create's new tags now exist.
            #expect(sim.simulator.tags() == ["citrus-host", "env:prod"])

            // The body as the simulator received it, both ways.
            let body = try #require(sim.simulator.lastCreateRequest()?.body)
            #expect(body.contains(#""ssh_keys":[512189,"aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"]"#))
            #expect(body.contains(#""vpc_uuid":"\#(vpc.id)""#) && body.contains(#""with_droplet_agent":false"#))
            let overHTTP = try await raw(.GET, sim.baseURL + "/_sim/requests/last-create", token: nil)
            #expect(overHTTP.status == 200)
            #expect(String(decoding: overHTTP.body, as: UTF8.self).contains("with_droplet_agent"))
        }
    }

    @Test func withoutAVPCADropletIsInItsRegionsDefaultAndHasTheAgent() async throws {
        try await withClient { client, sim in
            let created = try await client.createDroplet(DropletCreateRequest(name: "plain-1", region: "sfo3"))
            let droplet = try await Self.active(client, created.droplet.id)
            #expect(droplet.vpcUUID == Self.sfo3VPC)
            #expect(droplet.features == [.privateNetworking, .dropletAgent, .ipv6, .monitoring])
            let vpcs = sim.simulator.vpcs()
            #expect(vpcs.filter(\.isDefault).count == 7 && Set(vpcs.map(\.region)).count == 7)
            let injected = try sim.simulator.inject(.init(name: "other", region: "ams3"))
            #expect(injected.vpcUUID == SimulatedVPC.defaultID(region: "ams3"))
        }
    }

    @Test func anUnknownKeyOrAVPCOfAnotherRegionIsA422() async throws {
        try await withClient { client, sim in
            let ams3 = try sim.simulator.addVPC(region: "ams3")
            let cases: [(DropletCreateRequest, String)] = [
                (
                    DropletCreateRequest(name: "k-1", sshKeys: [.id(999)]),
                    "You specified an invalid SSH key for Droplet creation: 999 is not a key of this account."
                ),
                (
                    DropletCreateRequest(
                        name: "k-2",
                        sshKeys: [.fingerprint("00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff")]
                    ),
                    "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\" is not a key of this account"
                ),
                (
                    DropletCreateRequest(name: "v-1", region: "sfo3", vpcUUID: ams3.id),
                    "VPC \(ams3.id) is in ams3, not sfo3"
                ),
                (
                    DropletCreateRequest(name: "v-2", vpcUUID: "11111111-2222-4333-8444-555555555555"),
                    "no VPC 11111111-2222-4333-8444-555555555555"
                ),
            ]
            for (request, words) in cases {
                let failure = await expectFailure { () async throws(DigitalOceanError) in
                    try await client.createDroplet(request)
                }
                #expect(failure?.httpStatus == 422 && failure?.code == .validation, "\(request.name)")
                #expect(failure?.message.contains(words) == true, "\(failure?.message ?? "")")
            }
            #expect(sim.simulator.droplets().isEmpty)

            // An id sent as a string names no key: DigitalOcean's ids are integers.
            let asString = try await raw(
                .POST,
                sim.baseURL + "/v2/droplets",
                token: sim.token,
                body: #"{"name":"s-1","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","ssh_keys":["512189"]}"#
            )
            #expect(asString.status == 422)
            // Without a region, the VPC's.
            let created = try await raw(
                .POST,
                sim.baseURL + "/v2/droplets",
                token: sim.token,
                body: #"{"name":"s-2","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","vpc_uuid":"\#(ams3.id)"}"#
            )
            #expect(created.status == 202)
            #expect(sim.simulator.droplets().first?.region == "ams3")
        }
    }

    @Test func tagsArePutOnAndTakenOffInPlace() async throws {
        try await withClient { client, sim in
            let a = try sim.simulator.inject(.init(name: "a", tags: ["citrus-host"]))
            let b = try sim.simulator.inject(.init(name: "b", tags: ["citrus-host"]))
            // The tag must exist first.
            let unknown = await expectFailure { () async throws(DigitalOceanError) in
                try await client.tagResources(tag: "team:web", dropletIDs: [a.id])
            }
            #expect(unknown?.code == .notFound)
            try await client.createTag(name: "team:web")
            try await client.createTag(name: "team:web")  // twice changes nothing
            #expect(sim.simulator.tags() == ["citrus-host", "team:web"])

            let requestID = try await client.tagResources(tag: "team:web", dropletIDs: [a.id, b.id])
            #expect(requestID != nil)
            #expect(try await client.droplet(id: a.id).tags == ["citrus-host", "team:web"])
            #expect(try await client.listDroplets(tag: "team:web").map(\.id) == [a.id, b.id])
            try await client.tagResources(tag: "team:web", dropletIDs: [a.id])  // already there: once
            #expect(try await client.droplet(id: a.id).tags == ["citrus-host", "team:web"])

            try await client.untagResources(tag: "team:web", dropletIDs: [a.id])
            #expect(try await client.droplet(id: a.id).tags == ["citrus-host"])
            #expect(try await client.droplet(id: b.id).tags == ["citrus-host", "team:web"])
            // The untag's body is logged like a POST's.
            let untag = try #require(sim.simulator.requestLog().last { $0.method == "DELETE" })
            #expect(untag.route == "/v2/tags/{tag_id}/resources")
            #expect(untag.body == #"{"resources":[{"resource_id":"\#(a.id)","resource_type":"droplet"}]}"#)

            let gone = await expectFailure { () async throws(DigitalOceanError) in
                try await client.tagResources(tag: "team:web", dropletIDs: [12345])
            }
            #expect(gone?.code == .notFound)
            let refused = await expectFailure { () async throws(DigitalOceanError) in
                try await client.tagResources(tag: "bad tag", dropletIDs: [a.id])
            }
            #expect(refused?.code == .validation && refused?.httpStatus == nil)  // never sent
        }
    }

    @Test func aLostTagAnswerIsAnUnknownOutcomeAndNotResent() async throws {
        try await withClient { client, sim in
            let a = try sim.simulator.inject(.init(name: "a"))
            try await client.createTag(name: "x")
            sim.simulator.updateFaults { $0.responseLostProbability = 1 }
            let lost = await expectFailure { () async throws(DigitalOceanError) in
                try await client.tagResources(tag: "x", dropletIDs: [a.id])
            }
            sim.simulator.updateFaults { $0.responseLostProbability = 0 }
            #expect(lost?.code == .outcomeUnknown)
            #expect(lost?.message.contains("read the droplet before sending it again") == true)
            #expect(sim.simulator.requestCount(method: "POST", route: "/v2/tags/{tag_id}/resources") == 1)
            #expect(sim.simulator.droplet(id: a.id)?.tags == ["x"])  // it was done
        }
    }

    @Test func dropletsAreAssignedToAProject() async throws {
        try await withClient { client, sim in
            let a = try sim.simulator.inject(.init(name: "a"))
            let b = try sim.simulator.inject(.init(name: "b"))
            #expect(sim.simulator.projectID(ofDroplet: a.id) == SimulatedProject.standard.id)
            let project = try sim.simulator.addProject(name: "fleet")
            let (assigned, requestID) = try await client.assignResources(
                projectID: project.id,
                urns: [DigitalOceanClient.dropletURN(a.id), DigitalOceanClient.dropletURN(b.id)]
            )
            #expect(requestID != nil)
            #expect(assigned.map(\.urn) == ["do:droplet:\(a.id)", "do:droplet:\(b.id)"])
            #expect(assigned.allSatisfy { $0.status == "ok" })
            #expect(sim.simulator.projectID(ofDroplet: a.id) == project.id)
            #expect(sim.simulator.projectID(ofDroplet: b.id) == project.id)

            let unknown = await expectFailure { () async throws(DigitalOceanError) in
                try await client.assignResources(
                    projectID: "11111111-2222-4333-8444-555555555555",
                    urns: [DigitalOceanClient.dropletURN(a.id)]
                )
            }
            #expect(unknown?.code == .notFound && unknown?.httpStatus == 404)
            let missing = try await client.assignResources(projectID: project.id, urns: ["do:droplet:12345"]).resources
            #expect(missing == [AssignedResource(urn: "do:droplet:12345", status: "not_found")])
            #expect(sim.simulator.requestCount(method: "POST", route: "/v2/projects/{project_id}/resources") == 3)
        }
    }

    @Test func backupsAreSwitchedAndShutdownPowersOff() async throws {
        try await withActionClient { client, sim, clock in
            let d = try sim.simulator.inject(.init(name: "b-1"))
            #expect(try await client.droplet(id: d.id).features.contains(.backups) == false)

            let enable = try await client.performDropletAction(dropletID: d.id, .enableBackups).action
            #expect(enable.type == "enable_backups" && enable.status == .inProgress)
            clock.advance(by: .seconds(3))
            #expect(try await client.action(id: enable.id).status == .completed)
            #expect(try await client.droplet(id: d.id).features.contains(.backups))
            #expect(sim.simulator.droplet(id: d.id)?.backups == true)

            let disable = try await client.performDropletAction(dropletID: d.id, .disableBackups).action
            clock.advance(by: .seconds(3))
            #expect(try await client.action(id: disable.id).status == .completed)
            #expect(try await client.droplet(id: d.id).features.contains(.backups) == false)

            let shutdown = try await client.performDropletAction(dropletID: d.id, .shutdown).action
            clock.advance(by: .seconds(14))
            #expect(try await client.droplet(id: d.id).status == .active)  // still stopping
            clock.advance(by: .seconds(1))
            #expect(try await client.action(id: shutdown.id).status == .completed)
            #expect(try await client.droplet(id: d.id).status == .off)
            let again = await expectFailure { () async throws(DigitalOceanError) in
                try await client.performDropletAction(dropletID: d.id, .shutdown)
            }
            #expect(again?.code == .validation && again?.message.contains("already powered off") == true)
        }
    }

    @Test func keysVPCsAndProjectsAreAddedThroughTheAdminAPI() async throws {
        try await withClient { _, sim in
            let keys = try await raw(.GET, sim.baseURL + "/_sim/ssh-keys", token: nil)
            #expect(String(decoding: keys.body, as: UTF8.self).contains(SimulatedSSHKey.standard.fingerprint))
            let key = try await raw(.POST, sim.baseURL + "/_sim/ssh-keys", token: nil, body: #"{"name":"ops"}"#)
            #expect(key.status == 201)
            #expect(sim.simulator.sshKeys().count == 2)
            #expect(sim.simulator.sshKeys().last.map { DropletCreateRequest.isMD5Fingerprint($0.fingerprint) } == true)
            let vpc = try await raw(
                .POST,
                sim.baseURL + "/_sim/vpcs",
                token: nil,
                body: #"{"region":"fra1","id":"11111111-2222-4333-8444-555555555555"}"#
            )
            #expect(vpc.status == 201)
            #expect(sim.simulator.vpcs().last?.region == "fra1")
            let badVPC = try await raw(.POST, sim.baseURL + "/_sim/vpcs", token: nil, body: #"{"region":"mars1"}"#)
            #expect(badVPC.status == 422)
            let project = try await raw(.POST, sim.baseURL + "/_sim/projects", token: nil, body: #"{"name":"p"}"#)
            #expect(project.status == 201 && sim.simulator.projects().count == 2)
            let noCreate = try await raw(.GET, sim.baseURL + "/_sim/requests/last-create", token: nil)
            #expect(noCreate.status == 404)
        }
    }

    @Test func resourcesSurviveARestartFromTheStateFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = SimulatorHarness.testConfiguration()
        configuration.stateDirectory = directory.path
        let first = try SimulatedDigitalOcean(configuration: configuration)
        _ = first.handle(
            .init(
                method: "POST",
                uri: "/_sim/vpcs",
                headers: [("content-type", "application/json")],
                body: Array(#"{"region":"lon1","id":"11111111-2222-4333-8444-555555555555"}"#.utf8)
            )
        )
        let second = try SimulatedDigitalOcean(configuration: configuration)
        #expect(second.vpcs().last?.id == "11111111-2222-4333-8444-555555555555")
    }
}
