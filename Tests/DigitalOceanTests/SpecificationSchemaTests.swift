import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// Issue 25's requests as the simulator received them from the real client (a create with keys, a
/// VPC and the agent; a tag made, put on and taken off; a project assignment; the backup and
/// shutdown actions), and the simulator's answers to them, checked against DigitalOcean's official
/// OpenAPI files; and bodies DigitalOcean would refuse, which the check must refuse.
@Suite struct SpecificationSchemaTests {
    @Test func theNewRequestsAndAnswersMatchTheOfficialSchemas() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("do-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var documents: [(schema: String, json: Data)] = []
        var configuration = SimulatorHarness.testConfiguration()
        configuration.actionTiming = .uniform(.milliseconds(50))
        try await withClient(simulator: configuration) { client, sim in
            let base = sim.baseURL
            let token = sim.token
            /// The body of the newest logged request with `method` on `route`.
            func received(_ method: String, _ route: String) throws -> Data {
                let record = sim.simulator.requestLog().last { $0.method == method && $0.route == route }
                let body = try #require(record?.body)
                return Data(body.utf8)
            }
            let vpc = try sim.simulator.addVPC(region: "nyc3")
            let created = try await client.createDroplet(
                DropletCreateRequest(
                    name: "spec-1.example.com",
                    region: "nyc3",
                    tags: ["citrus-host", "env:prod"],
                    userData: "#!/bin/sh\necho hi\n",
                    sshKeys: [.id(SimulatedSSHKey.standard.id), .fingerprint(SimulatedSSHKey.standard.fingerprint)],
                    vpcUUID: vpc.id,
                    withDropletAgent: true
                )
            )
            documents.append(("create-request", Data(try #require(sim.simulator.lastCreateRequest()?.body).utf8)))
            let id = created.droplet.id

            try await client.createTag(name: "team:web")
            documents.append(("tag-create-request", try received("POST", "/v2/tags")))
            let tagCreated = try await raw(.POST, base + "/v2/tags", token: token, body: #"{"name":"team:web"}"#)
            #expect(tagCreated.status == 201)
            documents.append(("tag-create-response", tagCreated.body))
            let badTag = try await raw(.POST, base + "/v2/tags", token: token, body: #"{"name":"no spaces"}"#)
            #expect(badTag.status == 400)
            documents.append(("tag-error-400", badTag.body))

            try await client.tagResources(tag: "team:web", dropletIDs: [id])
            documents.append(("tag-resources-request", try received("POST", "/v2/tags/{tag_id}/resources")))
            let tag = try await raw(.GET, base + "/v2/tags/team:web", token: token)
            #expect(tag.status == 200)
            documents.append(("tag-get-response", tag.body))
            try await client.untagResources(tag: "team:web", dropletIDs: [id])
            documents.append(("untag-resources-request", try received("DELETE", "/v2/tags/{tag_id}/resources")))

            let project = try sim.simulator.addProject(name: "fleet")
            try await client.assignResources(projectID: project.id, urns: [DigitalOceanClient.dropletURN(id)])
            documents.append(("project-assign-request", try received("POST", "/v2/projects/{project_id}/resources")))
            let assigned = try await raw(
                .POST,
                base + "/v2/projects/\(project.id)/resources",
                token: token,
                body: #"{"resources":["do:droplet:\#(id)","do:droplet:12345"]}"#
            )
            #expect(assigned.status == 200)
            documents.append(("project-assign-response", assigned.body))
            let listed = try await raw(.GET, base + "/v2/projects/\(project.id)/resources", token: token)
            documents.append(("project-resources-response", listed.body))

            _ = try await SimulatorResourceTests.active(client, id)
            for action in [DropletActionRequest.enableBackups, .disableBackups, .shutdown] {
                while true {  // one at a time: each locks the droplet for its (test-short) run
                    do {
                        _ = try await client.performDropletAction(dropletID: id, action)
                        break
                    } catch let error as DigitalOceanError where error.code == .busy {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                documents.append(("action-request", try received("POST", "/v2/droplets/{droplet_id}/actions")))
            }
            let get = try await raw(.GET, base + "/v2/droplets/\(id)", token: token)
            documents.append(("get-response", get.body))
            // The simulator's 201 to an action, once the shutdown has ended.
            var powerOn = try await raw(
                .POST,
                base + "/v2/droplets/\(id)/actions",
                token: token,
                body: #"{"type":"power_on"}"#
            )
            for _ in 0..<100 where powerOn.status == 422 {
                try await Task.sleep(for: .milliseconds(20))
                powerOn = try await raw(
                    .POST,
                    base + "/v2/droplets/\(id)/actions",
                    token: token,
                    body: #"{"type":"power_on"}"#
                )
            }
            #expect(powerOn.status == 201)
            documents.append(("action-response", powerOn.body))
            // A refusal of a create's new fields is DigitalOcean's error body.
            let refused = try await raw(
                .POST,
                base + "/v2/droplets",
                token: token,
                body:
                    #"{"name":"r","region":"sfo3","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","vpc_uuid":"\#(vpc.id)"}"#
            )
            #expect(refused.status == 422)
            documents.append(("error-422", refused.body))
        }
        let result = try SchemaValidationTests.validate(documents, in: directory)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("validated \(documents.count) documents"), "\(result.output)")
    }

    /// Each of these is a body DigitalOcean's spec refuses: the check must say so, one by one.
    @Test(arguments: [
        ("tag-resources-request", #"{"resources":[{"resource_id":"1","resource_type":"server"}]}"#),
        ("tag-resources-request", #"{"resources":[{"resource_id":1,"resource_type":"droplet"}]}"#),
        ("untag-resources-request", #"{"droplets":[1]}"#),
        ("tag-create-request", #"{"name":"no spaces"}"#),
        ("project-assign-request", #"{"resources":["droplet:1"]}"#),
        ("action-request", #"{"type":"graceful_shutdown"}"#),
        ("create-request", #"{"name":"a","size":"s-1vcpu-1gb","image":"x","ssh_keys":[1.5]}"#),
        ("create-request", #"{"name":"a","size":"s-1vcpu-1gb","image":"x","vpc_uuid":5}"#),
        ("create-request", #"{"name":"a","size":"s-1vcpu-1gb","image":"x","with_droplet_agent":"yes"}"#),
    ])
    func aBodyDigitalOceanWouldRefuseFailsTheCheck(schema: String, body: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("do-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try SchemaValidationTests.validate([(schema, Data(body.utf8))], in: directory)
        #expect(result.status != 0 && result.output.contains("FAIL"), "\(result.output)")
    }
}
