import CitrusTestKit
import Foundation
import Logging
import Testing

@testable import DigitalOcean
@testable import DigitalOceanHTTP
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

@Suite struct RateLimitTests {
    @Test func budgetFollowsTheHeaders() async throws {
        try await withClient { client, sim in
            let start = Date()
            for _ in 0..<3 { _ = try await client.listDroplets(tag: "citrus-host") }
            let snapshot = await client.rateBudget.snapshot
            #expect(snapshot.limit == 5000)
            #expect(snapshot.remaining == 4997)
            let reset = try #require(snapshot.resetAt)
            // The oldest counted request expires one hour after it was made.
            #expect(abs(reset.timeIntervalSince(start) - 3600) < 3)
            #expect(snapshot.pausedUntil == nil)
        }
    }

    @Test func perMinute429PausesEveryCallerUntilRetryAfter() async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.rateLimits = SimulatorRateLimits(perMinute: 3, perHour: 1000, minuteWindowSeconds: 2)
        try await withClient(simulator: configuration) { client, sim in
            for _ in 0..<3 { _ = try await client.droplet(id: try sim.simulator.inject(.init(name: "a")).id) }
            // The fourth read gets a 429 and waits; a second caller arriving during the pause must wait too.
            async let first = client.listDroplets(tag: nil)
            #expect(try await eventually { await client.rateBudget.snapshot.pausedUntil != nil })
            let pause = await client.rateBudget.snapshot
            #expect(pause.pauseReason == .perMinuteLimit)
            let second = try await client.listDroplets(tag: nil)
            let firstResult = try await first
            #expect(firstResult.count == 3 && second.count == 3)

            let log = sim.simulator.requestLog()
            let limited = log.filter { $0.status == 429 }
            #expect(limited.count == 1)
            let limitedAt = try #require(limited.first?.time)
            let pausedUntil = try #require(pause.pausedUntil)
            // Nothing was sent during the pause.
            let duringPause = log.filter { $0.time > limitedAt && $0.time < pausedUntil.addingTimeInterval(-0.05) }
            #expect(duringPause.isEmpty, "requests during the pause: \(duringPause)")
            #expect(log.filter { $0.time > limitedAt }.count == 2)
        }
    }

    @Test func hourly429HasNoRetryAfterAndWaitsForTheReset() async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.rateLimits = SimulatorRateLimits(perMinute: 100, perHour: 2, hourWindowSeconds: 2)
        try await withClient(simulator: configuration, tweak: { $0.retry.maximumRateLimitWait = .zero }) {
            client,
            sim in
            // Another user of the same token spends the hourly budget; this client's budget has not seen it.
            var otherConfig = client.configuration
            otherConfig.retry.maximumRateLimitWait = .seconds(10)
            let other = DigitalOceanClient(
                configuration: otherConfig,
                logger: Logger(label: "other", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            _ = try await other.listDroplets(tag: nil)
            _ = try await other.listDroplets(tag: nil)
            // Knowing the budget is spent, the other client would wait for the reset rather than send.
            #expect(await other.rateBudget.earliestStart(priority: .read) != nil)
            try await other.shutdown()

            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.listDroplets(tag: nil)
            }
            #expect(error?.code == .rateLimited)
            #expect(error?.isTransient == true)
            #expect(error?.retryAfter == nil)
            let reset = try #require(error?.rateLimitResetAt)
            #expect(await client.rateBudget.snapshot.pauseReason == .hourlyLimit)
            let pausedUntil = try #require(await client.rateBudget.snapshot.pausedUntil)
            #expect(pausedUntil >= reset && pausedUntil < reset.addingTimeInterval(1))
            // A caller that may not wait is refused locally, without hitting the API again...
            let refused = await expectFailure { () async throws(DigitalOceanError) in
                try await client.listDroplets(tag: nil)
            }
            #expect(refused?.code == .rateLimited)
            #expect(refused?.rateLimitResetAt == pausedUntil)
            // ...and one that may waits until the reset.
            var patient = client.configuration
            patient.retry.maximumRateLimitWait = .seconds(10)
            let sameBudget = DigitalOceanClient(
                configuration: patient,
                rateBudget: client.rateBudget,
                logger: Logger(label: "patient", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            _ = try await sameBudget.listDroplets(tag: nil)
            try await sameBudget.shutdown()
            #expect(Date() >= reset)
            #expect(sim.simulator.requestLog().map(\.status) == [200, 200, 429, 200])
        }
    }

    @Test func retryAfterIsReportedOnPerMinuteLimit() async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.rateLimits = SimulatorRateLimits(perMinute: 1, perHour: 100, minuteWindowSeconds: 30)
        try await withClient(simulator: configuration, tweak: { $0.retry.maximumRateLimitWait = .seconds(1) }) {
            client,
            _ in
            _ = try await client.listDroplets(tag: nil)
            let error = await expectFailure { () async throws(DigitalOceanError) in
                try await client.listDroplets(tag: nil)
            }
            #expect(error?.code == .rateLimited)
            let retryAfter = try #require(error?.retryAfter)
            #expect(retryAfter > .seconds(20) && retryAfter <= .seconds(30))
        }
    }
}
