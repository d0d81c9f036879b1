import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOcean
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

@Suite("Token rotation while requests are in flight")
struct TokenRotationTests {
    @Test("replaceToken: a request in flight finishes with the old token, the next ones carry the new one")
    func replaceTokenMidFlight() async throws {
        let old = "dop_v1_old_\(UUID().uuidString)"
        let new = "dop_v1_new_\(UUID().uuidString)"
        var configuration = SimulatorHarness.testConfiguration()
        configuration.tokens = [old]
        try await withClient(simulator: configuration, token: old) { client, sim in
            sim.simulator.updateFaults { $0.latencySeconds = 1 }
            async let inFlight = client.listDroplets(tag: "citrus-host")
            let arrived = try await eventually { sim.simulator.requestLog().count == 1 }
            try #require(arrived, "the first request never reached the simulator")

            // Rotation as the daemon's reload does it: both accepted, swap, then only the new one.
            sim.simulator.setTokens([old, new])
            #expect(client.replaceToken(DigitalOceanToken(new)))
            #expect(!client.replaceToken(DigitalOceanToken(new)), "the same token again is no change")
            sim.simulator.setTokens([new])
            #expect(sim.simulator.tokens == [new])
            _ = try await inFlight
            sim.simulator.updateFaults { $0.latencySeconds = 0 }

            _ = try await client.listDroplets(tag: "citrus-host")
            let statuses = sim.simulator.requestLog().map(\.status)
            #expect(statuses == [200, 200], "no request failed across the rotation: \(statuses)")
            // The configuration still says what the client was made with; requests use the new one.
            #expect(client.configuration.token.value == old)
        }
    }

    @Test("after replaceToken the old token is no longer sent")
    func oldTokenIsGone() async throws {
        let old = "dop_v1_old_\(UUID().uuidString)"
        let new = "dop_v1_new_\(UUID().uuidString)"
        var configuration = SimulatorHarness.testConfiguration()
        configuration.tokens = [old]
        try await withClient(simulator: configuration, token: old) { client, sim in
            client.replaceToken(DigitalOceanToken(new))
            let failure = await #expect(throws: DigitalOceanError.self) {
                try await client.listDroplets(tag: "citrus-host")
            }
            #expect(failure?.code == .unauthorized)
            #expect(sim.simulator.requestLog().last?.status == 401)
        }
    }
}
