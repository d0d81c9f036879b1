import CitrusTestKit
import Foundation
import Logging
import Synchronization
import Testing

@testable import DigitalOcean
@testable import DigitalOceanHTTP
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// The budget against the simulator, with limits and windows shrunk (both sides configured alike) so
/// that each test runs in seconds.
@Suite struct RateBudgetSimulatorTests {
    /// Runs `count` operations with at most `width` at a time.
    private func run(_ count: Int, width: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async throws
    {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(width, count) {
                let index = next
                group.addTask { try await operation(index) }
                next += 1
            }
            while try await group.next() != nil, next < count {
                let index = next
                group.addTask { try await operation(index) }
                next += 1
            }
            try await group.waitForAll()
        }
    }

    private func budget(
        perMinute: Int,
        perHour: Int,
        minuteWindow: Duration = .seconds(60),
        hourWindow: Duration = .seconds(3600),
        reserve: Int = 0
    ) -> RateBudget {
        var c = RateBudget.Configuration(
            perMinute: perMinute,
            perHour: perHour,
            minuteWindow: minuteWindow,
            hourWindow: hourWindow,
            reserve: reserve
        )
        c.safetyMargin = .milliseconds(100)
        c.fallbackPause = .seconds(5)
        c.probeTimeout = .seconds(5)
        return c.budget
    }

    private func longest429Streak(_ records: [SimulatorRequestRecord]) -> Int {
        var longest = 0
        var current = 0
        for record in records {
            current = record.status == 429 ? current + 1 : 0
            longest = max(longest, current)
        }
        return longest
    }

    private func seconds(_ duration: Duration) -> Double { duration.timeInterval }

    @Test(.timeLimit(.minutes(1)))
    func aBurstOf60AgainstA30PerWindowLimitIsPacedWithout429s() async throws {
        let window = 4.0
        var simulator = SimulatorHarness.testConfiguration()
        simulator.rateLimits = SimulatorRateLimits(perMinute: 30, perHour: 10_000, minuteWindowSeconds: window)
        let budget = budget(perMinute: 30, perHour: 10_000, minuteWindow: .seconds(window))
        try await withClient(simulator: simulator, budget: budget) { client, sim in
            let target = try sim.simulator.inject(.init(name: "read-target")).id
            let doomed = try (0..<20).map { try sim.simulator.inject(.init(name: "doomed-\($0)")).id }
            let started = ContinuousClock.now
            // 20 deletes and 40 reads, all at once.
            try await run(60, width: 60) { index in
                if index < 20 {
                    _ = try await client.deleteDroplet(id: doomed[index])
                } else {
                    _ = try await client.droplet(id: target)
                }
            }
            let elapsed = seconds(ContinuousClock.now - started)
            let log = sim.simulator.requestLog()
            let limited = log.filter { $0.status == 429 }.count
            let busiest = peak(log.map(\.time), window: window)
            print(
                "burst of 60 at 30 per \(Int(window)) s: \(log.count) requests in \(String(format: "%.2f", elapsed)) s, busiest window \(busiest), 429s \(limited), rate \(String(format: "%.1f", Double(log.count) / elapsed * window)) per window"
            )
            #expect(limited <= 1)
            #expect(longest429Streak(log) <= 1)
            #expect(busiest <= 30)
            // Spread over the windows rather than sent at once: 60 requests need at least two windows.
            #expect(elapsed >= window)
            let deleted = log.filter { $0.status == 204 }.count
            let read = log.filter { $0.status == 200 }.count
            #expect(deleted == 20)
            #expect(read == 40)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anotherUserSpendingTheHourSlowsUsDownAndTheReserveHolds() async throws {
        let hour = 6.0
        let perHour = 100
        let reserve = 20
        var simulator = SimulatorHarness.testConfiguration()
        simulator.rateLimits = SimulatorRateLimits(perMinute: 10_000, perHour: perHour, hourWindowSeconds: hour)
        let ours = budget(perMinute: 10_000, perHour: perHour, hourWindow: .seconds(hour), reserve: reserve)
        try await withClient(simulator: simulator, budget: ours) { client, sim in
            let mine = try sim.simulator.inject(.init(name: "ours")).id
            let theirs = try sim.simulator.inject(.init(name: "theirs")).id
            // Another tool with the same token and its own budget, no reserve.
            let other = DigitalOceanClient(
                configuration: client.configuration,
                rateBudget: budget(perMinute: 10_000, perHour: perHour, hourWindow: .seconds(hour)),
                logger: Logger(label: "other", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            let started = ContinuousClock.now
            let startedAt = Date()
            let ourElapsed: Double
            do {
                ourElapsed = try await withThrowingTaskGroup(of: Double?.self) { group in
                    group.addTask {
                        try await self.run(75, width: 10) { _ in _ = try await other.droplet(id: theirs) }
                        return nil
                    }
                    group.addTask {
                        try await self.run(30, width: 3) { _ in _ = try await client.droplet(id: mine) }
                        return self.seconds(ContinuousClock.now - started)
                    }
                    var elapsed = 0.0
                    for try await value in group { if let value { elapsed = value } }
                    return elapsed
                }
                try await other.shutdown()
            } catch {
                try? await other.shutdown()
                throw error
            }

            let log = sim.simulator.requestLog()
            let oursPath = "/v2/droplets/\(mine)"
            let our = log.filter { $0.path == oursPath }
            let theirLast = try #require(log.filter { $0.path != oursPath }.map(\.time).max())
            /// The requests the simulator counted in the hour window just after `record`.
            func used(at record: SimulatorRequestRecord) -> Int {
                log.filter {
                    $0.status != 429 && $0.time <= record.time && $0.time > record.time.addingTimeInterval(-hour)
                }.count
            }
            let peakUsed = our.map(used).max() ?? 0
            let afterOther = our.filter { $0.time > theirLast }
            let late = our.filter { $0.time >= startedAt.addingTimeInterval(hour - 0.5) }
            print(
                "hourly \(perHour) per \(Int(hour)) s, reserve \(reserve): ours 30 in \(String(format: "%.2f", ourElapsed)) s, \(late.count) after the first window; peak usage when ours were sent \(peakUsed); 429s \(log.filter { $0.status == 429 }.count)"
            )
            #expect(our.count == 30)
            let allOK = log.allSatisfy { $0.status == 200 }
            #expect(allOK)
            // Without the reserve all 100 fit at once; with it, ours had to wait for the other's requests to expire.
            #expect(ourElapsed >= hour - 0.5)
            #expect(late.count >= 5)
            // What the other tool spends while our view is one answer old is unknown to us: allow both
            // tools' concurrency (10 + 3) above the line.
            #expect(peakUsed <= perHour - reserve + 13)
            // Once the other tool has stopped, the reserve is exact.
            let usedAfterOther = afterOther.map(used)
            #expect(usedAfterOther.allSatisfy { $0 <= perHour - reserve }, "\(usedAfterOther)")
            #expect(await client.rateBudget.snapshot.rateLimitedResponses == 0)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func mutationsOvertakeQueuedReads() async throws {
        let window = 3.0
        var simulator = SimulatorHarness.testConfiguration()
        simulator.rateLimits = SimulatorRateLimits(perMinute: 5, perHour: 10_000, minuteWindowSeconds: window)
        var configuration = RateBudget.Configuration(perMinute: 5, perHour: 10_000, minuteWindow: .seconds(window))
        configuration.safetyMargin = .milliseconds(100)
        configuration.readHeadroomPerMinute = 0
        let budget = RateBudget(configuration: configuration)
        try await withClient(simulator: simulator, budget: budget) { client, sim in
            let target = try sim.simulator.inject(.init(name: "read-target")).id
            let doomed = try (0..<5).map { try sim.simulator.inject(.init(name: "doomed-\($0)")).id }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.run(12, width: 12) { _ in _ = try await client.droplet(id: target) } }
                #expect(try await eventually { await budget.snapshot.waitingReads == 7 })
                group.addTask { try await self.run(5, width: 5) { _ = try await client.deleteDroplet(id: doomed[$0]) } }
                #expect(try await eventually { await budget.snapshot.waitingMutations == 5 })
                try await group.waitForAll()
                let log = sim.simulator.requestLog()
                print("priorities: order at the simulator: \(log.map(\.method).joined(separator: " "))")
                // 5 per window: the first 5 reads went before the deletes queued; the next window is
                // the deletes', and the 7 queued reads come in the windows after.
                let lastDelete = try #require(log.lastIndex { $0.method == "DELETE" })
                let gets = log.indices.filter { log[$0].method == "GET" }
                let queuedReadsAfterDeletes = gets.dropFirst(5).allSatisfy { $0 > lastDelete }
                let reads = log.filter { $0.method == "GET" }.count
                let limited = log.filter { $0.status == 429 }.count
                #expect(queuedReadsAfterDeletes, "\(log.map(\.method))")
                #expect(reads == 12)
                #expect(limited == 0)
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func whenAnotherUserFillsTheMinuteWeGetOne429NotTwo() async throws {
        let window = 3.0
        var simulator = SimulatorHarness.testConfiguration()
        simulator.rateLimits = SimulatorRateLimits(perMinute: 10, perHour: 10_000, minuteWindowSeconds: window)
        let ours = budget(perMinute: 10, perHour: 10_000, minuteWindow: .seconds(window))
        try await withClient(simulator: simulator, budget: ours) { client, sim in
            let mine = try sim.simulator.inject(.init(name: "ours")).id
            let theirs = try sim.simulator.inject(.init(name: "theirs")).id
            let other = DigitalOceanClient(
                configuration: client.configuration,
                rateBudget: budget(perMinute: 10, perHour: 10_000, minuteWindow: .seconds(window)),
                logger: Logger(label: "other", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            do {
                // The other tool spends 8 of the 10; ours reads one after another, unaware.
                try await run(8, width: 8) { _ in _ = try await other.droplet(id: theirs) }
                try await other.shutdown()
            } catch {
                try? await other.shutdown()
                throw error
            }
            let started = ContinuousClock.now
            for _ in 0..<12 { _ = try await client.droplet(id: mine) }
            let elapsed = seconds(ContinuousClock.now - started)
            let minePath = "/v2/droplets/\(mine)"
            let log = sim.simulator.requestLog().filter { $0.path == minePath }
            let snapshot = await client.rateBudget.snapshot
            print(
                "minute shared with another tool: 12 reads in \(String(format: "%.2f", elapsed)) s, statuses \(log.map { $0.status ?? 0 })"
            )
            let limitedCount = log.filter { $0.status == 429 }.count
            #expect(limitedCount == 1)
            #expect(longest429Streak(log) == 1)
            #expect(snapshot.rateLimitedResponses == 1)
            #expect(snapshot.consecutiveRateLimitedResponses == 0)
            // Nothing of ours went between the 429 and the end of its retry-after.
            let limited = try #require(log.firstIndex { $0.status == 429 })
            let next = try #require(log.indices.contains(limited + 1) ? log[limited + 1] : nil)
            #expect(next.time.timeIntervalSince(log[limited].time) >= 1)
        }
    }
}

extension RateBudget.Configuration {
    var budget: RateBudget { RateBudget(configuration: self) }
}
