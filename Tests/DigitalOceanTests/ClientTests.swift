import CitrusTestKit
import Foundation
import Logging
import Testing

@testable import DigitalOcean
@testable import DigitalOceanHTTP
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

@Suite struct ClientAgainstSimulatorTests {
    @Test func listFollowsPaginationOver450Droplets() async throws {
        try await withClient { client, sim in
            for i in 0..<450 {
                try sim.simulator.inject(.init(name: "host-\(i)", tags: ["citrus-host", "citrus-server:\(i)"]))
            }
            for i in 0..<30 { try sim.simulator.inject(.init(name: "other-\(i)", tags: ["unrelated"])) }

            let droplets = try await client.listDroplets(tag: "citrus-host")

            #expect(droplets.count == 450)
            #expect(Set(droplets.map(\.id)).count == 450)
            #expect(droplets.allSatisfy { $0.tags.contains("citrus-host") })
            #expect(droplets.allSatisfy { $0.id > Int64(UInt32.max) })
            let paths = sim.simulator.requestLog().map(\.path)
            #expect(paths.count == 3)
            #expect(paths[0] == "/v2/droplets?tag_name=citrus-host&per_page=200")
            #expect(paths[1].contains("page=2") && paths[2].contains("page=3"))
            #expect(paths.allSatisfy { $0.contains("per_page=200") })
        }
    }

    @Test func createReturnsNewDropletThatBecomesActiveWithAddresses() async throws {
        try await withClient { client, sim in
            let request = DropletCreateRequest(
                name: "web-1.example.com",
                tags: ["citrus-host", "citrus-server:8a1f"],
                userData: "#cloud-config\n"
            )
            let created = try await client.createDroplet(request)

            #expect(created.droplet.status == .new)
            #expect(created.droplet.networks.v4.isEmpty && created.droplet.networks.v6.isEmpty)
            #expect(created.droplet.name == "web-1.example.com")
            #expect(created.droplet.region.slug == "sfo3" && created.droplet.sizeSlug == "s-1vcpu-512mb-10gb")
            #expect(created.droplet.image.slug == "ubuntu-22-04-x64")
            #expect(created.actions.first?.rel == "create")
            #expect(created.requestID != nil)
            #expect(created.requestID == sim.simulator.requestLog().last?.requestID)

            try await Task.sleep(for: .milliseconds(400))
            let droplet = try await client.droplet(id: created.droplet.id)
            #expect(droplet.status == .active)
            let ipv4 = try #require(droplet.publicIPv4)
            #expect(documentationPrefixes.contains { ipv4.hasPrefix($0) })
            #expect(droplet.publicIPv6?.hasPrefix("2001:db8:") == true)
            #expect(droplet.networks.v6.first?.netmask == 64)
            #expect(droplet.networks.v4.first { $0.type == "private" }?.gateway == nil)
            #expect(droplet.networks.v4.first { $0.type == "public" }?.netmask == "255.255.255.0")
        }
    }

    @Test func invalidRequestsFailLocallyWithoutSendingAnything() async throws {
        try await withClient { client, sim in
            let bad: [(DropletCreateRequest, String)] = [
                (DropletCreateRequest(name: "web_1"), "\"_\" at position 4"),
                (DropletCreateRequest(name: ""), "empty"),
                (DropletCreateRequest(name: "web-"), "end with a letter or a digit"),
                (DropletCreateRequest(name: String(repeating: "a", count: 256)), "at most 255"),
                (DropletCreateRequest(name: "ok", tags: ["citrus server"]), "only letters, digits, '_', '-' and ':'"),
                (DropletCreateRequest(name: "ok", tags: [String(repeating: "t", count: 256)]), "at most 255"),
                (DropletCreateRequest(name: "ok", userData: String(repeating: "x", count: 64 * 1024 + 1)), "64 KiB"),
            ]
            for (request, phrase) in bad {
                let error = await expectFailure { () async throws(DigitalOceanError) in
                    try await client.createDroplet(request)
                }
                #expect(error?.code == .validation)
                #expect(error?.isPermanent == true)
                #expect(
                    error?.description.contains(phrase) == true,
                    "\(String(describing: error)) should mention \(phrase)"
                )
            }
            #expect(sim.simulator.requestLog().isEmpty)
            // The limits themselves are allowed.
            try DropletCreateRequest(
                name: String(repeating: "a", count: 255),
                tags: [String(repeating: "t", count: 255)],
                userData: String(repeating: "x", count: 64 * 1024)
            ).validate()
        }
    }

    @Test func serverSideValidationIsPermanentWithDigitalOceansDetails() async throws {
        try await withClient { client, sim in
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.createDroplet(DropletCreateRequest(name: "web-1", region: "mars1"))
            }
            #expect(error?.code == .validation)
            #expect(error?.httpStatus == 422)
            #expect(error?.apiErrorID == "unprocessable_entity")
            #expect(error?.message.contains("invalid region") == true)
            #expect(error?.requestID != nil && error?.requestID == sim.simulator.requestLog().last?.requestID)
            #expect(error?.isPermanent == true)
        }
    }

    @Test func unauthorizedIsPermanentAndNeverShowsTheToken() async throws {
        let secret = "dop_v1_wrong_secret_value_123"
        try await withClient(token: secret) { client, sim in
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.listDroplets(tag: "citrus-host")
            }
            #expect(error?.code == .unauthorized)
            #expect(error?.isPermanent == true)
            #expect(error?.apiErrorID == "unauthorized")
            #expect(error.map { !"\($0)".contains(secret) && !String(reflecting: $0).contains(secret) } == true)
            #expect(!"\(client.configuration)".contains(secret))
            #expect(sim.simulator.requestLog().count == 1)  // not retried
        }
    }

    @Test func notFoundAndDeleteOutcomes() async throws {
        // Long enough that "still listed after the delete" holds on a loaded machine.
        var configuration = SimulatorHarness.testConfiguration()
        configuration.deleteTime = .seconds(2)
        try await withClient(simulator: configuration) { client, sim in
            let missing = await expectFailure { () async throws(DigitalOceanError) in try await client.droplet(id: 1) }
            #expect(missing?.code == .notFound)
            #expect(missing?.isPermanent == true)

            let injected = try sim.simulator.inject(.init(name: "doomed", tags: ["citrus-host"]))
            // Each outcome carries the request id DigitalOcean gave it.
            let deleted = try await client.deleteDroplet(id: injected.id)
            #expect(deleted.requestID != nil)
            #expect(deleted == .deleted(requestID: sim.simulator.requestLog().last?.requestID))
            let again = try await client.deleteDroplet(id: injected.id)
            #expect(again.requestID != nil && again.requestID != deleted.requestID)
            #expect(again == .alreadyGone(requestID: sim.simulator.requestLog().last?.requestID))
            // Still listed briefly after the delete, as the real API does, then gone.
            #expect(try await client.listDroplets(tag: "citrus-host").map(\.id) == [injected.id])
            #expect(try await eventually { (try? await client.listDroplets(tag: "citrus-host").isEmpty) == true })
            #expect(
                await expectFailure { () async throws(DigitalOceanError) in try await client.droplet(id: injected.id) }?
                    .code == .notFound
            )
            #expect(sim.simulator.droplet(id: injected.id)?.deletedAt != nil)
            guard case .alreadyGone = try await client.deleteDroplet(id: 999) else {
                Issue.record("a droplet that never existed is already gone")
                return
            }
        }
    }

    @Test func readsAreRetriedOnServerErrors() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.failNextRequests = 2 }
            _ = try await client.listDroplets(tag: "citrus-host")
            #expect(sim.simulator.requestLog().map(\.status) == [500, 500, 200])

            sim.simulator.clearRequestLog()
            sim.simulator.updateFaults { $0.failNextRequests = 100 }
            let error = await expectFailure { () async throws(DigitalOceanError) in try await client.droplet(id: 5) }
            #expect(error?.code == .server)
            #expect(error?.isTransient == true)
            #expect(error?.attempts == client.configuration.retry.maximumAttempts)
            #expect(sim.simulator.requestLog().count == client.configuration.retry.maximumAttempts)
        }
    }

    @Test func createWhoseResponseIsLostIsOutcomeUnknownAndNotResent() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.createResponseLostProbability = 1 }
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.createDroplet(
                    DropletCreateRequest(name: "lost-1", tags: ["citrus-host", "citrus-server:lost"])
                )
            }
            #expect(error?.code == .outcomeUnknown)
            #expect(error?.isTransient == true)
            #expect(sim.simulator.requestCount(method: "POST", route: "/v2/droplets") == 1)
            #expect(sim.simulator.requestLog().last?.status == nil)  // the connection was closed unanswered
            // It was performed: the droplet exists.
            #expect(sim.simulator.droplets().filter { $0.tags.contains("citrus-server:lost") }.count == 1)
        }
    }

    @Test func createAnswered5xxIsOutcomeUnknownAndNotResent() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.createServerErrorProbability = 1 }
            let afterCommit = await expectFailure { () async throws(DigitalOceanError) in
                try await client.createDroplet(DropletCreateRequest(name: "half-1"))
            }
            #expect(afterCommit?.code == .outcomeUnknown)
            #expect(afterCommit?.httpStatus == 500)
            #expect(sim.simulator.droplets().count == 1)

            sim.simulator.updateFaults {
                $0 = SimulatorFaults()
                $0.failNextRequests = 1
            }
            let beforeCommit = await expectFailure { () async throws(DigitalOceanError) in
                try await client.createDroplet(DropletCreateRequest(name: "half-2"))
            }
            #expect(beforeCommit?.code == .outcomeUnknown)
            #expect(sim.simulator.droplets().count == 1)
            #expect(sim.simulator.requestCount(method: "POST", route: "/v2/droplets") == 2)
        }
    }

    @Test func unreachableServerIsATransportError() async throws {
        // A port that was just free: bind the simulator, note its port, stop it.
        let port = try await SimulatorHarness.withSimulator { $0.port }
        var config = DigitalOceanClient.Configuration(
            token: DigitalOceanToken("t"),
            baseURL: "http://127.0.0.1:\(port)"
        )
        config.retry.maximumAttempts = 2
        config.retry.initialBackoff = .milliseconds(5)
        config.connectTimeout = .seconds(1)
        let client = DigitalOceanClient(
            configuration: config,
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let read = await expectFailure { () async throws(DigitalOceanError) in try await client.listDroplets(tag: nil) }
        #expect(read?.code == .transport)
        #expect(read?.attempts == 2)
        // Connection refused: the create never left, so it is not an unknown outcome.
        let create = await expectFailure { () async throws(DigitalOceanError) in
            try await client.createDroplet(DropletCreateRequest(name: "x1"))
        }
        #expect(create?.code == .transport)
        try await client.shutdown()
    }

    @Test func listLagHidesNewDropletsFromListsButNotFromGet() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.listLagSeconds = 1 }
            let created = try await client.createDroplet(DropletCreateRequest(name: "laggy", tags: ["citrus-host"]))
            #expect(try await client.listDroplets(tag: "citrus-host").isEmpty)
            #expect(try await client.droplet(id: created.droplet.id).id == created.droplet.id)
            #expect(try await eventually { (try? await client.listDroplets(tag: "citrus-host").count) == 1 })
        }
    }

    @Test func acceptedDropletCanVanishBeforeBecomingActive() async throws {
        try await withClient { client, sim in
            sim.simulator.updateFaults { $0.vanishProbability = 1 }
            let created = try await client.createDroplet(DropletCreateRequest(name: "ghost"))
            #expect(created.droplet.status == .new)
            try await Task.sleep(for: .milliseconds(400))
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.droplet(id: created.droplet.id)
            }
            #expect(error?.code == .notFound)
            #expect(sim.simulator.droplet(id: created.droplet.id)?.vanishedAt != nil)
            #expect(sim.simulator.droplet(id: created.droplet.id)?.activeAt == nil)
        }
    }
}
