import Foundation
import Synchronization
import Testing
import Timekeeping

@testable import DigitalOceanModel

/// The faults the model learned for the deterministic simulation, driven through `handle(_:)`
/// as `citrus-do-sim` serves it: what a client sees, request by request, in moved time.
@Suite("DigitalOcean model faults")
struct ModelFaultTests {
    /// Time that moves only when the test says so.
    final class SteppedClock: DaemonClock {
        private let elapsed = Mutex<Double>(0)
        let origin = Date(timeIntervalSince1970: 1_800_000_000)

        func advance(_ seconds: Double) { elapsed.withLock { $0 += seconds } }
        func now() -> Date { origin.addingTimeInterval(elapsed.withLock { $0 }) }
        func uptime() -> Duration { .seconds(elapsed.withLock { $0 }) }
        func sleep(until deadline: Date) async throws {}
        func sleep(for duration: Duration) async throws {}
    }

    let clock = SteppedClock()

    func model(_ change: (inout SimulatorFaults) -> Void) throws -> SimulatedDigitalOcean {
        var configuration = SimulatorConfiguration()
        configuration.clock = clock
        configuration.seed = 7
        configuration.recordsEffects = true
        change(&configuration.faults)
        return try SimulatedDigitalOcean(configuration: configuration)
    }

    func send(_ model: SimulatedDigitalOcean, _ method: String, _ uri: String, body: JSONValue? = nil) -> Int? {
        let request = SimulatedDigitalOcean.Request(
            method: method,
            uri: uri,
            headers: [("Authorization", "Bearer \(SimulatorConfiguration.developmentToken)")],
            body: body?.serialized() ?? []
        )
        guard case .respond(let response, _) = model.handle(request) else { return nil }
        return response.status
    }

    static let create: JSONValue = .object([
        ("name", "web-1"), ("region", "sfo3"), ("size", "s-1vcpu-512mb-10gb"), ("image", "ubuntu-22-04-x64"),
        ("tags", .array(["citrus-host", "citrus-server:row-1"])),
    ])

    /// The ids of droplets a list shows.
    func listed(_ model: SimulatedDigitalOcean, _ uri: String) throws -> [Int64] {
        let request = SimulatedDigitalOcean.Request(
            method: "GET",
            uri: uri,
            headers: [("Authorization", "Bearer \(SimulatorConfiguration.developmentToken)")]
        )
        guard case .respond(let response, _) = model.handle(request) else { return [] }
        let document = try JSONValue.parse(response.body)
        return document["droplets"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
    }

    @Test("a late create is not answered, and its droplet exists only once it is carried out")
    func lateCreate() throws {
        let model = try model {
            $0.createLateProbability = 1
            $0.createLateSeconds = 40
        }
        #expect(send(model, "POST", "/v2/droplets", body: Self.create) == nil, "no answer")
        let id = try #require(model.droplets().first?.id)
        #expect(send(model, "GET", "/v2/droplets/\(id)") == 404)
        clock.advance(41)
        #expect(send(model, "GET", "/v2/droplets/\(id)") == 200)
        guard case .created(let droplet, _, _) = model.takeEffects().first else {
            Issue.record("no create effect")
            return
        }
        #expect(droplet.createdAt == clock.origin.addingTimeInterval(40))
    }

    @Test("a create can fail before its effect; any other request can fail after it, or lose its answer")
    func serverErrorsBeforeAndAfterTheEffect() throws {
        let before = try model { $0.createServerErrorBeforeEffectProbability = 1 }
        #expect(send(before, "POST", "/v2/droplets", body: Self.create) == 500)
        #expect(before.droplets().isEmpty)

        let after = try model { _ in }
        #expect(send(after, "POST", "/v2/droplets", body: Self.create) == 202)
        let id = try #require(after.droplets().first?.id)
        after.updateFaults { $0.serverErrorAfterEffectProbability = 1 }
        #expect(send(after, "DELETE", "/v2/droplets/\(id)") == 500)
        #expect(after.droplet(id: id)?.deleteRequestedAt != nil, "the delete was carried out")
        after.updateFaults {
            $0.serverErrorAfterEffectProbability = 0
            $0.responseLostProbability = 1
        }
        #expect(send(after, "GET", "/v2/droplets/\(id)") == nil)
    }

    @Test("lists by an identity tag lag on their own; GET by id can lag too")
    func separateLags() throws {
        let model = try model {
            $0.listLagSeconds = 2
            $0.identityTagLagSeconds = 10
            $0.lookupLagSeconds = 5
        }
        #expect(send(model, "POST", "/v2/droplets", body: Self.create) == 202)
        let id = try #require(model.droplets().first?.id)
        clock.advance(3)
        #expect(try listed(model, "/v2/droplets?tag_name=citrus-host") == [id])
        #expect(try listed(model, "/v2/droplets?tag_name=citrus-server:row-1").isEmpty)
        #expect(send(model, "GET", "/v2/droplets/\(id)") == 404)
        clock.advance(3)
        #expect(send(model, "GET", "/v2/droplets/\(id)") == 200)
        #expect(try listed(model, "/v2/droplets?tag_name=citrus-server:row-1").isEmpty)
        clock.advance(5)
        #expect(try listed(model, "/v2/droplets?tag_name=citrus-server:row-1") == [id])
    }

    @Test("a placement that fails after the 202: the droplet is gone (404) before it was ever active")
    func placementFailure() throws {
        let model = try model { $0.vanishProbability = 1 }
        #expect(send(model, "POST", "/v2/droplets", body: Self.create) == 202)
        let id = try #require(model.droplets().first?.id)
        clock.advance(60)
        #expect(send(model, "GET", "/v2/droplets/\(id)") == 404)
        #expect(model.droplet(id: id)?.activeAt == nil)
    }
}
