import CitrusTestKit
import Foundation
import Synchronization
import Testing

@testable import DigitalOcean

private let t0 = Date(timeIntervalSince1970: 1_700_000_000)

private func configuration(
    perMinute: Int = 250,
    perHour: Int = 5000,
    reserve: Int = 0,
    margin: Duration = .zero,
    readHeadroomPerMinute: Int? = 0,
    readHeadroomPerHour: Int? = 0
) -> RateBudget.Configuration {
    var c = RateBudget.Configuration(perMinute: perMinute, perHour: perHour, reserve: reserve)
    c.safetyMargin = margin
    c.readHeadroomPerMinute = readHeadroomPerMinute
    c.readHeadroomPerHour = readHeadroomPerHour
    return c
}

/// Sends `count` requests as fast as the ledger allows, in virtual time; every answer comes at once.
private func drive(
    _ ledger: inout RateLedger,
    count: Int,
    priority: RequestPriority,
    from start: Date,
    answer: (UInt64, Date) -> RateLimitHeaders = { _, _ in RateLimitHeaders() }
) -> [Date] {
    var now = start
    var times: [Date] = []
    for _ in 0..<count {
        while case .wait(let until) = ledger.decide(priority: priority, now: now) {
            #expect(until > now)
            now = until
        }
        let sequence = ledger.grant(priority: priority, now: now)
        ledger.observe(answer(sequence, now), sequence: sequence, now: now)
        times.append(now)
    }
    return times
}

/// The most requests in any window of `seconds` (a window holds times t with start <= t < start + seconds).
func peak(_ times: [Date], window seconds: TimeInterval) -> Int {
    let sorted = times.sorted()
    var best = 0
    var low = 0
    for high in sorted.indices {
        while sorted[high].timeIntervalSince(sorted[low]) >= seconds { low += 1 }
        best = max(best, high - low + 1)
    }
    return best
}

@Suite struct RateLedgerTests {
    @Test func aBurstOf500CreatesIsSpreadTo250PerMinute() {
        var ledger = RateLedger(configuration: configuration())
        let times = drive(&ledger, count: 500, priority: .mutation, from: t0)
        #expect(peak(times, window: 60) == 250)
        // The first 250 go at once, the next 250 as the first ones leave the window.
        #expect(times[249] == t0)
        #expect(times[250] == t0.addingTimeInterval(60))
        #expect(times[499].timeIntervalSince(t0) == 60)
    }

    @Test func theSafetyMarginDelaysReuseOfASlot() {
        var ledger = RateLedger(configuration: configuration(perMinute: 30, margin: .milliseconds(500)))
        let times = drive(&ledger, count: 31, priority: .mutation, from: t0)
        #expect(times[30] == t0.addingTimeInterval(60.5))
    }

    @Test func theHourlyLimitOfThisProcessHolds() {
        var ledger = RateLedger(configuration: configuration(perMinute: 1000, perHour: 1500))
        let times = drive(&ledger, count: 3000, priority: .mutation, from: t0)
        #expect(peak(times, window: 3600) == 1500)
        #expect(peak(times, window: 60) <= 1000)
    }

    @Test func readsLeaveHeadroomToMutations() {
        var ledger = RateLedger(configuration: configuration(perMinute: 250, readHeadroomPerMinute: nil))
        let reads = drive(&ledger, count: 225, priority: .read, from: t0)
        // A tenth of the minute window stays free for mutations...
        #expect(reads.allSatisfy { $0 == t0 })
        #expect(ledger.decide(priority: .read, now: t0) == .wait(until: t0.addingTimeInterval(60)))
        // ...which can use it at once.
        let mutations = drive(&ledger, count: 25, priority: .mutation, from: t0)
        #expect(mutations.allSatisfy { $0 == t0 })
        #expect(ledger.decide(priority: .mutation, now: t0) == .wait(until: t0.addingTimeInterval(60)))
    }

    @Test func theReserveIsLeftToOtherUsersAndResetsArePaced() {
        var ledger = RateLedger(configuration: configuration(reserve: 10))
        let reset = t0.addingTimeInterval(30)
        // Somebody else has spent almost everything: 15 left.
        let first = ledger.grant(priority: .mutation, now: t0)
        ledger.observe(RateLimitHeaders(limit: 5000, remaining: 15, reset: reset), sequence: first, now: t0)
        for _ in 0..<5 {
            #expect(ledger.decide(priority: .mutation, now: t0) == .send)
            _ = ledger.grant(priority: .mutation, now: t0)
        }
        // 10 left (as far as we know): the reserve. Wait for the oldest counted request to expire.
        #expect(ledger.estimatedRemaining == 10)
        #expect(ledger.decide(priority: .mutation, now: t0) == .wait(until: reset))
        // At the reset one request goes, and only one: its answer says how much more room there is.
        let probe = ledger.grant(priority: .mutation, now: reset)
        #expect(ledger.decide(priority: .mutation, now: reset) != .send)
        #expect(ledger.decide(priority: .mutation, now: reset.addingTimeInterval(5)) != .send)
        let nextReset = reset.addingTimeInterval(4)
        ledger.observe(RateLimitHeaders(limit: 5000, remaining: 10, reset: nextReset), sequence: probe, now: reset)
        #expect(ledger.decide(priority: .mutation, now: reset) == .wait(until: nextReset))
        // If the answer shows room again, requests flow up to the reserve.
        let second = ledger.grant(priority: .mutation, now: nextReset)
        ledger.observe(
            RateLimitHeaders(limit: 5000, remaining: 13, reset: nextReset.addingTimeInterval(1)),
            sequence: second,
            now: nextReset
        )
        var sent = 0
        while ledger.decide(priority: .mutation, now: nextReset) == .send {
            _ = ledger.grant(priority: .mutation, now: nextReset)
            sent += 1
        }
        #expect(sent == 3)
    }

    @Test func aStaleReportDoesNotRaiseTheEstimate() {
        var ledger = RateLedger(configuration: configuration())
        let older = ledger.grant(priority: .read, now: t0)
        let newer = ledger.grant(priority: .read, now: t0)
        ledger.observe(RateLimitHeaders(remaining: 100), sequence: newer, now: t0)
        ledger.observe(RateLimitHeaders(remaining: 101), sequence: older, now: t0)
        #expect(ledger.estimatedRemaining == 100)
        _ = ledger.grant(priority: .read, now: t0)
        #expect(ledger.estimatedRemaining == 99)
    }

    @Test func readsWaitAboveTheReserveMutationsDoNot() {
        var ledger = RateLedger(configuration: configuration(reserve: 10, readHeadroomPerHour: 20))
        let reset = t0.addingTimeInterval(100)
        let s = ledger.grant(priority: .read, now: t0)
        ledger.observe(RateLimitHeaders(remaining: 25, reset: reset), sequence: s, now: t0)
        #expect(ledger.decide(priority: .read, now: t0) == .wait(until: reset))
        #expect(ledger.decide(priority: .mutation, now: t0) == .send)
    }

    @Test func after429NothingGoesUntilRetryAfterThenOneProbeThenEvenSpacing() {
        var c = configuration(perMinute: 60, margin: .milliseconds(200))
        c.minuteWindow = .seconds(60)
        var ledger = RateLedger(configuration: c)
        let first = ledger.grant(priority: .mutation, now: t0)
        let inFlight = ledger.grant(priority: .mutation, now: t0)
        let until = ledger.rateLimited(
            RateLimitHeaders(remaining: 0, retryAfter: .seconds(5)),
            sequence: first,
            now: t0
        )
        #expect(until == t0.addingTimeInterval(5.2))
        #expect(ledger.decide(priority: .mutation, now: t0.addingTimeInterval(5)) == .wait(until: until))
        // A request that was already in flight is refused too: it does not start a second pause.
        ledger.rateLimited(
            RateLimitHeaders(remaining: 0, retryAfter: .seconds(5)),
            sequence: inFlight,
            now: t0.addingTimeInterval(0.1)
        )
        #expect(ledger.rateLimitedResponses == 2)

        let pauseEnd = t0.addingTimeInterval(5.4)
        #expect(ledger.decide(priority: .mutation, now: pauseEnd) == .send)
        let probe = ledger.grant(priority: .mutation, now: pauseEnd)
        // Only the probe: the rest wait for its answer, however much time passes (up to the probe timeout).
        #expect(ledger.decide(priority: .mutation, now: pauseEnd) != .send)
        #expect(ledger.decide(priority: .read, now: pauseEnd.addingTimeInterval(30)) != .send)
        let answered = pauseEnd.addingTimeInterval(0.05)
        ledger.observe(RateLimitHeaders(remaining: 4000), sequence: probe, now: answered)
        #expect(ledger.consecutiveRateLimited == 0)
        // Then evenly spaced, one per second at 60 per minute, for one minute window.
        let times = drive(&ledger, count: 10, priority: .mutation, from: answered)
        let gaps = zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) }
        #expect(gaps.allSatisfy { abs($0 - 1) < 1e-6 }, "gaps: \(gaps)")
        #expect(times[0].timeIntervalSince(pauseEnd) >= 1 - 1e-6)
    }

    @Test func aRefusedProbeStartsAnotherPauseAndProbe() {
        var ledger = RateLedger(configuration: configuration())
        let first = ledger.grant(priority: .mutation, now: t0)
        ledger.rateLimited(RateLimitHeaders(retryAfter: .seconds(2)), sequence: first, now: t0)
        let probeTime = t0.addingTimeInterval(2)
        let probe = ledger.grant(priority: .mutation, now: probeTime)
        let until = ledger.rateLimited(RateLimitHeaders(retryAfter: .seconds(3)), sequence: probe, now: probeTime)
        #expect(until == probeTime.addingTimeInterval(3))
        #expect(ledger.decide(priority: .mutation, now: probeTime.addingTimeInterval(2.9)) != .send)
        #expect(ledger.decide(priority: .mutation, now: until) == .send)
        _ = ledger.grant(priority: .mutation, now: until)
        #expect(ledger.decide(priority: .mutation, now: until) != .send)
    }

    @Test func aLostProbeIsReplacedByTheNextRequest() {
        var ledger = RateLedger(configuration: configuration())
        let first = ledger.grant(priority: .mutation, now: t0)
        ledger.rateLimited(RateLimitHeaders(retryAfter: .seconds(1)), sequence: first, now: t0)
        let later = t0.addingTimeInterval(1)
        let probe = ledger.grant(priority: .mutation, now: later)
        ledger.finished(sequence: probe, now: later)
        #expect(ledger.decide(priority: .mutation, now: later) == .send)
        _ = ledger.grant(priority: .mutation, now: later)
        #expect(ledger.decide(priority: .mutation, now: later) != .send)
    }

    @Test func hourly429WaitsForTheResetOrAFallback() {
        var c = configuration()
        c.fallbackPause = .seconds(90)
        var ledger = RateLedger(configuration: c)
        let reset = t0.addingTimeInterval(40)
        let first = ledger.grant(priority: .read, now: t0)
        #expect(ledger.rateLimited(RateLimitHeaders(remaining: 0, reset: reset), sequence: first, now: t0) == reset)
        #expect(ledger.pauseReason == .hourlyLimit)

        var other = RateLedger(configuration: c)
        let s = other.grant(priority: .read, now: t0)
        #expect(other.rateLimited(RateLimitHeaders(), sequence: s, now: t0) == t0.addingTimeInterval(90))
    }
}

@Suite struct RateBudgetActorTests {
    /// Starts `count` acquirers of `priority`, each recording its label when granted.
    private func start(
        _ count: Int,
        _ priority: RequestPriority,
        label: String,
        budget: RateBudget,
        into log: Log,
        group: inout ThrowingTaskGroup<Void, any Error>
    ) {
        for index in 0..<count {
            group.addTask {
                let permit = try await budget.acquire(priority: priority)
                log.append("\(label)\(index)", permit)
            }
        }
    }

    final class Log: Sendable {
        private let entries = Mutex<[(String, RateBudget.Permit)]>([])
        func append(_ label: String, _ permit: RateBudget.Permit) { entries.withLock { $0.append((label, permit)) } }
        var labels: [String] { entries.withLock { $0.map(\.0) } }
        var permits: [RateBudget.Permit] { entries.withLock { $0.map(\.1) } }
        var count: Int { entries.withLock { $0.count } }
    }

    private func waiting(_ budget: RateBudget) async -> Int {
        let s = await budget.snapshot
        return s.waitingMutations + s.waitingReads
    }

    @Test func pacesToTheMinuteLimitWithAnInjectedClock() async throws {
        let clock = ManualClock()
        var c = configuration(perMinute: 5)
        c.minuteWindow = .seconds(10)
        let budget = RateBudget(configuration: c, clock: clock)
        let log = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            start(12, .mutation, label: "m", budget: budget, into: log, group: &group)
            #expect(try await eventually { log.count == 5 && clock.sleeperCount == 1 })
            #expect(await budget.snapshot.sentLastMinute == 5)
            #expect(await budget.snapshot.waitingMutations == 7)
            clock.advance(by: .milliseconds(9900))
            #expect(log.count == 5)
            clock.advance(by: .milliseconds(100))
            #expect(try await eventually { log.count == 10 && clock.sleeperCount == 1 })
            clock.advance(by: .seconds(10))
            #expect(try await eventually { log.count == 12 })
            try await group.waitForAll()
        }
    }

    @Test func mutationsOvertakeQueuedReads() async throws {
        let clock = ManualClock()
        var c = configuration(perMinute: 2)
        c.minuteWindow = .seconds(10)
        let budget = RateBudget(configuration: c, clock: clock)
        let log = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            start(2, .read, label: "first", budget: budget, into: log, group: &group)
            #expect(try await eventually { log.count == 2 })
            start(4, .read, label: "r", budget: budget, into: log, group: &group)
            #expect(try await eventually { await waiting(budget) == 4 })
            start(2, .mutation, label: "m", budget: budget, into: log, group: &group)
            #expect(try await eventually { await waiting(budget) == 6 })
            clock.advance(by: .seconds(10))
            #expect(try await eventually { log.count == 4 })
            #expect(Set(log.labels.suffix(2)) == ["m0", "m1"])
            // Reads still progress once no mutation waits.
            clock.advance(by: .seconds(10))
            #expect(try await eventually { log.count == 6 })
            clock.advance(by: .seconds(10))
            #expect(try await eventually { log.count == 8 })
            #expect(log.labels.suffix(4).allSatisfy { $0.hasPrefix("r") })
            try await group.waitForAll()
        }
    }

    @Test func after429WaitersAreReleasedOneProbeThenSpaced() async throws {
        let clock = ManualClock()
        var c = configuration(perMinute: 10, margin: .milliseconds(100))
        c.minuteWindow = .seconds(10)
        let budget = RateBudget(configuration: c, clock: clock)
        let log = Log()
        let first = try await budget.acquire(priority: .mutation)
        let until = await budget.rateLimited(RateLimitHeaders(remaining: 0, retryAfter: .seconds(3)), for: first)
        #expect(until == clock.now().addingTimeInterval(3.1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            start(6, .mutation, label: "m", budget: budget, into: log, group: &group)
            #expect(try await eventually { await waiting(budget) == 6 && clock.sleeperCount == 1 })
            #expect(await budget.snapshot.pausedUntil == until)
            clock.advance(by: .seconds(3))
            #expect(log.count == 0)
            clock.advance(by: .milliseconds(100))
            // One probe, not six.
            #expect(try await eventually { log.count == 1 && clock.sleeperCount == 1 })
            #expect(await budget.snapshot.probing)
            clock.advance(by: .seconds(30))
            try await Task.sleep(for: .milliseconds(50))
            #expect(log.count == 1, "nothing else before the probe is answered (or its timeout)")
            await budget.observe(RateLimitHeaders(remaining: 100), for: try #require(log.permits.first))
            // Then one per second (10 per 10 s), not all at once.
            for expected in 2...6 {
                #expect(try await eventually { log.count == expected && (expected == 6 || clock.sleeperCount == 1) })
                clock.advance(by: .seconds(1))
            }
            try await group.waitForAll()
        }
        #expect(await budget.snapshot.rateLimitedResponses == 1)
    }

    @Test func aCancelledWaiterLeavesTheLine() async throws {
        let clock = ManualClock()
        var c = configuration(perMinute: 1)
        c.minuteWindow = .seconds(10)
        let budget = RateBudget(configuration: c, clock: clock)
        try await budget.acquire(priority: .mutation)
        let log = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            let doomed = Task { try await budget.acquire(priority: .mutation) }
            #expect(try await eventually { await waiting(budget) == 1 })
            start(1, .read, label: "r", budget: budget, into: log, group: &group)
            #expect(try await eventually { await waiting(budget) == 2 })
            doomed.cancel()
            await #expect(throws: CancellationError.self) { try await doomed.value }
            #expect(try await eventually { await waiting(budget) == 1 })
            clock.advance(by: .seconds(10))
            #expect(try await eventually { log.count == 1 })
            try await group.waitForAll()
        }
    }
}
