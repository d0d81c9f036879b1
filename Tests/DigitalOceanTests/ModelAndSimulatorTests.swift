import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import DigitalOcean
@testable import DigitalOceanHTTP
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

@Suite struct DecodingTests {
    @Test func decodesWhatTheSpecAllowsAndPreservesUnknownStatuses() throws {
        let json = #"""
            {"droplets":[{"id":9007199254740993,"name":"a","memory":512,"vcpus":1,"disk":10,"locked":false,
            "status":"migrating","kernel":null,"created_at":"2020-07-21T18:37:44Z","features":[],"backup_ids":[],
            "next_backup_window":null,"snapshot_ids":[],"volume_ids":[],"size_slug":"s-1vcpu-512mb-10gb",
            "image":{"id":1,"slug":null,"name":"custom"},"region":{"slug":"sfo3","name":"SF3","features":[],"available":true,"sizes":[]},
            "size":{"slug":"s-1vcpu-512mb-10gb"},"tags":null,"brand_new_field":{"x":1},
            "networks":{"v4":[{"ip_address":"10.0.0.2","netmask":"255.255.0.0","type":"private","gateway":null},
                              {"ip_address":"203.0.113.9","netmask":"255.255.255.0","gateway":"203.0.113.1","type":"public"},
                              {"ip_address":"203.0.113.10","netmask":"255.255.255.0","gateway":"203.0.113.1","type":"public"}],
                        "v6":[{"ip_address":"2001:db8::5","netmask":64,"gateway":"2001:db8::1","type":"public"}]}}],
             "meta":{"total":1}}
            """#
        let page = try DigitalOceanJSON.decoder().decode(DropletListResponse.self, from: Data(json.utf8))
        let droplet = try #require(page.droplets?.first)
        #expect(droplet.id == 9_007_199_254_740_993)
        #expect(droplet.status == .unknown("migrating"))
        #expect(droplet.status.rawValue == "migrating")
        #expect(droplet.tags == [])
        #expect(droplet.image.slug == nil)
        #expect(droplet.publicIPv4 == "203.0.113.9")
        #expect(droplet.privateIPv4 == "10.0.0.2")
        #expect(droplet.publicIPv6 == "2001:db8::5")
        #expect(droplet.networks.v6[0].netmask == 64)
        #expect(page.links == nil)
        #expect(DropletStatus(rawValue: "archive") == .archive)
    }

    @Test func linksAndPagesAreOptionalAtEveryLevel() throws {
        for json in [
            #"{"droplets":[],"meta":{"total":0}}"#, #"{"droplets":[],"links":{}}"#,
            #"{"droplets":[],"links":{"pages":{}}}"#,
        ] {
            let page = try DigitalOceanJSON.decoder().decode(DropletListResponse.self, from: Data(json.utf8))
            #expect(page.links?.pages?.next == nil)
        }
    }

    @Test func rateLimitHeadersAreCaseInsensitive() {
        let headers = RateLimitHeaders(headers: [
            (name: "RateLimit-Limit", value: "5000"), (name: "rateLimit-remaining", value: "4816"),
            (name: "rateLimit-reset", value: "1444931833"), (name: "Retry-After", value: "7"),
        ])
        #expect(headers.limit == 5000 && headers.remaining == 4816)
        #expect(headers.reset == Date(timeIntervalSince1970: 1_444_931_833))
        #expect(headers.retryAfter == .seconds(7))
    }

    @Test func backoffIsCappedAndJittered() {
        var config = DigitalOceanClient.Configuration(token: DigitalOceanToken("t"))
        config.retry.initialBackoff = .milliseconds(100)
        config.retry.maximumBackoff = .seconds(1)
        let client = DigitalOceanClient(
            configuration: config,
            httpClient: HTTPClient.shared,
            logger: Logger(label: "t")
        )
        for attempt in 1...12 {
            let delay = client.backoff(attempt: attempt)
            let ceiling = min(Duration.seconds(1), .milliseconds(100) * (1 << min(attempt - 1, 20)))
            #expect(delay <= ceiling && delay >= ceiling / 2 - .milliseconds(1))
        }
    }
}

@Suite struct SimulatorBehaviourTests {
    func request(
        _ method: String,
        _ uri: String,
        body: String? = nil,
        token: String = SimulatorHarness.token
    ) -> SimulatedDigitalOcean.Request {
        .init(
            method: method,
            uri: uri,
            headers: [(name: "Authorization", value: "Bearer \(token)"), (name: "Host", value: "sim")],
            body: Array((body ?? "").utf8)
        )
    }

    func respond(_ outcome: SimulatedDigitalOcean.Outcome) throws -> SimulatedDigitalOcean.Response {
        guard case .respond(let response, _) = outcome else { throw SimulatorError("connection dropped") }
        return response
    }

    @Test func multiCreateAcceptsUpToTenNames() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        let ten = (1...10).map { "\"n\($0)\"" }.joined(separator: ",")
        let ok = try respond(
            sim.handle(
                request(
                    "POST",
                    "/v2/droplets",
                    body: #"{"names":[\#(ten)],"size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","tags":["t"]}"#
                )
            )
        )
        #expect(ok.status == 202)
        let body = try JSONValue.parse(ok.body)
        #expect(body["droplets"]?.arrayValue?.count == 10)
        #expect(body["links"]?["actions"]?.arrayValue?.count == 10)
        let eleven = try respond(
            sim.handle(
                request(
                    "POST",
                    "/v2/droplets",
                    body: #"{"names":[\#(ten),"n11"],"size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#
                )
            )
        )
        #expect(eleven.status == 422)
        #expect(try JSONValue.parse(eleven.body)["id"] == "unprocessable_entity")
        #expect(sim.droplets().count == 10)
    }

    @Test func createValidationMatchesDigitalOceansRules() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        let cases: [(String, Int)] = [
            (#"{"name":"ok-1","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","region":"nyc1"}"#, 202),
            (#"{"name":"ok-2","size":"s-1vcpu-1gb","image":129211873,"region":"nyc"}"#, 202),
            (#"{"name":"bad_1","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#, 422),
            (#"{"name":"bad-","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#, 422),
            (#"{"name":"ok","size":"huge","image":"ubuntu-22-04-x64"}"#, 422),
            (#"{"name":"ok","size":"s-1vcpu-1gb","image":"windows"}"#, 422),
            (#"{"name":"ok","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","region":"mars1"}"#, 422),
            (#"{"name":"ok","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","tags":["a b"]}"#, 422),
            (
                #"{"name":"ok","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","user_data":"\#(String(repeating: "x", count: 65537))"}"#,
                422
            ),
            (
                #"{"name":"ok","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","public_networking":false,"ipv6":true}"#,
                422
            ),
            (#"not json"#, 400),
        ]
        for (body, status) in cases {
            #expect(
                try respond(sim.handle(request("POST", "/v2/droplets", body: body))).status == status,
                "\(body.prefix(80))"
            )
        }
        #expect(sim.droplets().map(\.region) == ["nyc1", "nyc1"])
    }

    @Test func paginationLinksOnlyWhereTheyApply() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        for i in 0..<5 { try sim.inject(.init(name: "d\(i)")) }
        let first = try JSONValue.parse(respond(sim.handle(request("GET", "/v2/droplets?per_page=2"))).body)
        #expect(first["links"]?["pages"]?["next"] == "http://sim/v2/droplets?per_page=2&page=2")
        #expect(first["links"]?["pages"]?["last"] == "http://sim/v2/droplets?per_page=2&page=3")
        #expect(first["links"]?["pages"]?["prev"] == nil && first["links"]?["pages"]?["first"] == nil)
        #expect(first["meta"]?["total"] == 5)
        let last = try JSONValue.parse(respond(sim.handle(request("GET", "/v2/droplets?per_page=2&page=3"))).body)
        #expect(last["links"]?["pages"]?["next"] == nil && last["links"]?["pages"]?["last"] == nil)
        #expect(last["links"]?["pages"]?["prev"] == "http://sim/v2/droplets?per_page=2&page=2")
        #expect(last["droplets"]?.arrayValue?.count == 1)
        let single = try JSONValue.parse(respond(sim.handle(request("GET", "/v2/droplets"))).body)
        #expect(single["links"] == .object([]))
        #expect(single["droplets"]?.arrayValue?.count == 5)  // default per_page 20
    }

    @Test func stateDirectoryPersistsAcrossRestarts() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-state-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = SimulatorHarness.testConfiguration()
        configuration.stateDirectory = directory.path
        let first = try SimulatedDigitalOcean(configuration: configuration)
        let kept = try first.inject(.init(name: "kept", tags: ["citrus-host"]))
        _ = try respond(
            first.handle(
                request(
                    "POST",
                    "/v2/droplets",
                    body: #"{"name":"made","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#
                )
            )
        )

        let second = try SimulatedDigitalOcean(configuration: configuration)
        #expect(second.droplets().map(\.name) == ["kept", "made"])
        #expect(second.droplet(id: kept.id)?.tags == ["citrus-host"])
        let new = try second.inject(.init(name: "after"))
        #expect(new.id > second.droplets().map(\.id).dropLast().max() ?? 0)
    }

    @Test func seedMakesRunsRepeatable() throws {
        func run() throws -> [String] {
            let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration(seed: 7))
            var ids: [String] = []
            for name in ["a", "b", "c"] {
                let response = try respond(
                    sim.handle(
                        request(
                            "POST",
                            "/v2/droplets",
                            body: #"{"name":"\#(name)","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64"}"#
                        )
                    )
                )
                ids.append(response.header("x-request-id") ?? "")
            }
            return ids + sim.droplets().map { "\($0.id) \($0.vpcUUID)" }
        }
        #expect(try run() == run())
    }

    @Test func serverStopsOnGracefulShutdown() async throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        let server = try await SimulatorServer.bind(
            simulator: sim,
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                let health = try await raw(.GET, server.baseURL + "/_sim/health", token: nil)
                #expect(health.status == 200)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()  // run() returns
            }
        }
        await #expect(throws: (any Error).self) { _ = try await raw(.GET, server.baseURL + "/_sim/health", token: nil) }
    }

    @Test func adminEndpointChangesFaultsAtRunTime() async throws {
        try await SimulatorHarness.withSimulator { sim in
            let updated = try await raw(
                .PUT,
                sim.baseURL + "/_sim/faults",
                token: nil,
                body: #"{"list_lag_seconds":4,"fail_next_requests":1}"#
            )
            #expect(updated.status == 200)
            #expect(sim.simulator.faults.listLagSeconds == 4 && sim.simulator.faults.failNextRequests == 1)
            let injected = try await raw(
                .POST,
                sim.baseURL + "/_sim/droplets",
                token: nil,
                body: #"{"name":"orphan-1","tags":["citrus-host"],"active":false}"#
            )
            #expect(injected.status == 201)
            let listed = try JSONValue.parse(
                Array(try await raw(.GET, sim.baseURL + "/_sim/droplets", token: nil).body)
            )
            #expect(listed["droplets"]?.arrayValue?.first?["name"] == "orphan-1")
            #expect(try await raw(.GET, sim.baseURL + "/v2/droplets", token: sim.token).status == 500)
            let counts = try JSONValue.parse(Array(try await raw(.GET, sim.baseURL + "/_sim/counts", token: nil).body))
            #expect(counts["counts"]?.arrayValue?.first?["count"] == 1)
        }
    }
}
