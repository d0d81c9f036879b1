import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// The simulator's responses and the client's request bodies, checked against DigitalOcean's official
/// OpenAPI files by `scripts/validate-do-schemas.py` (jsonschema + PyYAML).
@Suite struct SchemaValidationTests {
    static func specDirectory() -> URL? { OpenAPISchemas.specDirectory() }

    static func validate(
        _ documents: [(schema: String, json: Data)],
        in directory: URL
    ) throws
        -> OpenAPISchemas.Validation
    {
        try OpenAPISchemas.validate(documents, in: directory)
    }

    @Test func specIsFound() throws {
        #expect(
            Self.specDirectory() != nil,
            "the official spec files must be present; the schema test cannot pass without them"
        )
    }

    @Test func simulatorResponsesAndClientRequestsMatchTheOfficialSchemas() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("do-schemas-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var documents: [(schema: String, json: Data)] = []
        try await withClient { client, sim in
            let base = sim.baseURL
            let token = sim.token
            // The client's own create body, as the simulator received it.
            let created = try await client.createDroplet(
                DropletCreateRequest(
                    name: "schema-1.example.com",
                    tags: ["citrus-host", "citrus-server:0b9c"],
                    userData: "#!/bin/sh\necho hi\n"
                )
            )
            let sentBody = try #require(sim.simulator.requestLog().last { $0.method == "POST" }?.body)
            documents.append(("create-request", Data(sentBody.utf8)))
            // Minimal request, as the client encodes it without user data.
            documents.append(("create-request", try JSONEncoder().encode(DropletCreateRequest(name: "min"))))

            let createResponse = try await raw(
                .POST,
                base + "/v2/droplets",
                token: token,
                body:
                    #"{"name":"raw-1","region":"nyc3","size":"s-2vcpu-2gb","image":"debian-12-x64","backups":true,"ipv6":false}"#
            )
            #expect(createResponse.status == 202)
            documents.append(("create-response", createResponse.body))
            let multi = try await raw(
                .POST,
                base + "/v2/droplets",
                token: token,
                body: #"{"names":["m-1","m-2"],"size":"s-1vcpu-1gb","image":"ubuntu-24-04-x64","region":"ams3"}"#
            )
            #expect(multi.status == 202)
            documents.append(("create-response", multi.body))

            try await Task.sleep(for: .milliseconds(400))  // let them boot: networks filled in
            for i in 0..<5 {
                try sim.simulator.inject(.init(name: "inj-\(i)", tags: ["citrus-host"], active: i % 2 == 0))
            }
            for page in 1...3 {
                let list = try await raw(.GET, base + "/v2/droplets?per_page=2&page=\(page)", token: token)
                #expect(list.status == 200)
                documents.append(("list-response", list.body))
            }
            documents.append(
                (
                    "list-response",
                    try await raw(.GET, base + "/v2/droplets?tag_name=citrus-host&per_page=200", token: token).body
                )
            )
            documents.append(
                ("list-response", try await raw(.GET, base + "/v2/droplets?tag_name=nothing", token: token).body)
            )
            let get = try await raw(.GET, base + "/v2/droplets/\(created.droplet.id)", token: token)
            #expect(get.status == 200)
            documents.append(("get-response", get.body))

            let unauthorized = try await raw(.GET, base + "/v2/droplets", token: "nope")
            #expect(unauthorized.status == 401)
            documents.append(("error-401", unauthorized.body))
            let notFound = try await raw(.GET, base + "/v2/droplets/12345", token: token)
            #expect(notFound.status == 404)
            documents.append(("error-404", notFound.body))
            let invalid = try await raw(
                .POST,
                base + "/v2/droplets",
                token: token,
                body: #"{"name":"bad_name","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#
            )
            #expect(invalid.status == 422)
            documents.append(("error-422", invalid.body))
            let tooMany = try await raw(
                .POST,
                base + "/v2/droplets",
                token: token,
                body:
                    #"{"names":["a1","a2","a3","a4","a5","a6","a7","a8","a9","a10","a11"],"size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#
            )
            #expect(tooMany.status == 422)
            documents.append(("error-422", tooMany.body))
            sim.simulator.updateFaults { $0.failNextRequests = 1 }
            let serverError = try await raw(.GET, base + "/v2/droplets", token: token)
            #expect(serverError.status == 500)
            documents.append(("error-500", serverError.body))

            let delete = try await raw(.DELETE, base + "/v2/droplets/\(created.droplet.id)", token: token)
            #expect(delete.status == 204 && delete.body.isEmpty)
            #expect(delete.header("content-type") != nil)
            for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
                #expect(Int(delete.header(name) ?? "") != nil, "\(name) must be an integer header")
            }
            #expect(delete.header("x-request-id") != nil)

            sim.simulator.setRateLimits(SimulatorRateLimits(perMinute: 0, perHour: 100))
            let limited = try await raw(.GET, base + "/v2/droplets", token: token)
            #expect(limited.status == 429)
            #expect(limited.header("retry-after") != nil)
            documents.append(("error-429", limited.body))
        }

        let result = try Self.validate(documents, in: directory)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("validated \(documents.count) documents"), "\(result.output)")

        // The validator can fail: a droplet missing required fields and with a wrong id type.
        let broken = try Self.validate(
            [("get-response", Data(#"{"droplet":{"id":"x","name":"n","sizeSlug":"s"}}"#.utf8))],
            in: directory
        )
        #expect(broken.status != 0)
        #expect(broken.output.contains("FAIL"))
    }
}
