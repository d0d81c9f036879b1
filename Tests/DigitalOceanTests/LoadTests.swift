import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// Measures the simulator's sustained request rate over loopback: concurrent `GET /v2/droplets/{id}`
/// with keep-alive, bounded in count and time. Prints the figure; fails only if it is implausibly low.
@Suite struct LoadTests {
    @Test func sustainedRequestRate() async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.rateLimits = SimulatorRateLimits(perMinute: 10_000_000, perHour: 10_000_000)
        let total = Int(ProcessInfo.processInfo.environment["CITRUS_SIM_LOAD_REQUESTS"] ?? "") ?? 6000
        let concurrency = 16
        let timeLimit = Duration.seconds(60)

        try await SimulatorHarness.withSimulator(configuration: configuration) { sim in
            let droplet = try sim.simulator.inject(.init(name: "load-target", tags: ["citrus-host"]))
            var httpConfiguration = HTTPClient.Configuration()
            httpConfiguration.connectionPool = .init(
                idleTimeout: .seconds(30),
                concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency
            )
            let client = HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                configuration: httpConfiguration
            )
            let url = sim.baseURL + "/v2/droplets/\(droplet.id)"
            let token = sim.token
            let started = ContinuousClock.now
            let deadline = started + timeLimit
            let (succeeded, failed) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var ok = 0
                        var bad = 0
                        var index = worker
                        while index < total, ContinuousClock.now < deadline {
                            var request = HTTPClientRequest(url: url)
                            request.headers.add(name: "Authorization", value: "Bearer \(token)")
                            let response = try await client.execute(request, timeout: .seconds(10))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            if response.status.code == 200 { ok += 1 } else { bad += 1 }
                            index += concurrency
                        }
                        return (ok, bad)
                    }
                }
                var totals = (0, 0)
                for try await (ok, bad) in group {
                    totals.0 += ok
                    totals.1 += bad
                }
                return totals
            }
            let elapsed = ContinuousClock.now - started
            try await client.shutdown()
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(succeeded) / seconds
            print(
                "simulator sustained rate: \(succeeded) GETs in \(String(format: "%.2f", seconds)) s = \(Int(rate)) requests/s (concurrency \(concurrency), loopback, this build)"
            )
            #expect(failed == 0)
            #expect(succeeded + failed == total || ContinuousClock.now >= deadline)
            #expect(rate > 200)
            #expect(sim.simulator.requestCount(method: "GET", route: "/v2/droplets/{droplet_id}") == succeeded + failed)
        }
    }
}
