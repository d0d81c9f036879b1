import CitrusTestKit
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import Timekeeping

@testable import SystemdSupport

@Suite("Watchdog pings only while the loop makes progress")
struct WatchdogTests {
    final class Pings: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func record() { count.withLock { $0 += 1 } }
    }

    final class PingTimes: Sendable {
        private let times = Mutex<[Int]>([])
        var value: [Int] { times.withLock { $0 } }
        func record(_ second: Int) { times.withLock { $0.append(second) } }
    }

    @Test func healthIsProgressWithinTheInterval() {
        let start = Duration.seconds(1_000)
        #expect(SystemdWatchdog.isHealthy(lastProgress: start, now: start + .seconds(29), interval: .seconds(30)))
        #expect(!SystemdWatchdog.isHealthy(lastProgress: start, now: start + .seconds(30), interval: .seconds(30)))
    }

    @Test("the time without a sign of life, for /healthz: since the last progress, or a wait within its deadline")
    func quietTimeFollowsProgressAndWaits() {
        let clock = ManualClock()
        let waits = BoundedWaits(clock: clock)
        let watchdog = SystemdWatchdog(
            interval: .seconds(30),
            clock: clock,
            waits: waits,
            logger: Logger(label: "test")
        ) {}
        #expect(watchdog.sinceLastSignOfLife() == .zero)
        clock.advance(by: .seconds(40))
        #expect(watchdog.sinceLastSignOfLife() == .seconds(40))
        watchdog.progress()
        #expect(watchdog.sinceLastSignOfLife() == .zero)
        clock.advance(by: .seconds(45))
        #expect(watchdog.sinceLastSignOfLife() == .seconds(45))
    }

    @Test func pingsWhileProgressingStopsWhenStuckAndResumes() async throws {
        let pings = Pings()
        let watchdog = SystemdWatchdog(interval: .milliseconds(600), logger: Logger(label: "test")) { pings.record() }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await watchdog.run() }

                // A healthy loop: progress every 100 ms for 1.2 s → a ping every 300 ms.
                for _ in 0..<12 {
                    watchdog.progress()
                    try await Task.sleep(for: .milliseconds(100))
                }
                let healthy = pings.value
                #expect(healthy >= 3)

                // The loop hangs: after at most one interval the pings stop for good.
                try await Task.sleep(for: .milliseconds(900))
                let afterHang = pings.value
                try await Task.sleep(for: .milliseconds(900))
                #expect(pings.value == afterHang, "no WATCHDOG=1 while the loop is stuck")
                #expect(afterHang - healthy <= 3)

                // It recovers: pings resume.
                watchdog.progress()
                try await Task.sleep(for: .milliseconds(450))
                watchdog.progress()
                try await Task.sleep(for: .milliseconds(200))
                #expect(pings.value > afterHang)

                trigger.triggerGracefulShutdown()
                try await group.next()
            }
        }
    }

    @Test func withoutAWatchdogItSendsNothingAndEndsOnShutdown() async throws {
        let pings = Pings()
        let watchdog = SystemdWatchdog(interval: nil, logger: Logger(label: "test")) { pings.record() }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await watchdog.run() }
                watchdog.progress()
                try await Task.sleep(for: .milliseconds(200))
                trigger.triggerGracefulShutdown()
                try await group.next()
            }
        }
        #expect(pings.value == 0)
    }

    @Test("cancelling its task ends the watchdog while it waits to ping, without another wait", .timeLimit(.minutes(1)))
    func endsWhenCancelled() async throws {
        let clock = ManualClock()
        let pings = Pings()
        let watchdog = SystemdWatchdog(interval: .seconds(30), clock: clock, logger: Logger(label: "test")) {
            pings.record()
        }
        let run = Task { try await watchdog.run() }
        await clock.waitForSleeps(1)
        run.cancel()
        try await run.value
        #expect(clock.sleepsBegun == 1)
        #expect(pings.value == 1)
    }

    // MARK: Waiting on DigitalOcean

    /// Runs a watchdog of `WatchdogSec=30s` on a manual clock beside `loop`, which never reports
    /// progress, for `seconds` of virtual time moved a second at a time; returns when each ping
    /// came (seconds of uptime). `loop` sleeps on the same clock; after each second both it and
    /// the watchdog are asleep again before time moves on.
    func pings(
        over seconds: Int,
        grace: Duration = .seconds(10),
        loop: @escaping @Sendable (ManualClock, BoundedWaits) async throws -> Void
    ) async throws -> [Int] {
        let clock = ManualClock()
        let waits = BoundedWaits(clock: clock, grace: grace)
        let times = PingTimes()
        let watchdog = SystemdWatchdog(
            interval: .seconds(30),
            clock: clock,
            waits: waits,
            logger: Logger(label: "test")
        ) {
            times.record(Int(clock.uptime().components.seconds))
        }
        let run = Task { try await watchdog.run() }
        let loopTask = Task { try await loop(clock, waits) }
        defer {
            run.cancel()
            loopTask.cancel()
        }
        for _ in 0..<seconds {
            while clock.sleeperCount < 2 { try await Task.sleep(for: .milliseconds(1)) }
            clock.advance(by: .seconds(1))
        }
        while clock.sleeperCount < 2 { try await Task.sleep(for: .milliseconds(1)) }
        return times.value
    }

    @Test(
        "a loop waiting on DigitalOcean answers slower than WatchdogSec, each within its deadline, keeps the pings going",
        .timeLimit(.minutes(1))
    )
    func slowAnswersWithinTheirDeadlinesArePings() async throws {
        // A brownout: every request runs into its 30 s timeout, then a backoff, then again; the
        // loop reports no progress for the whole 200 s.
        let times = try await pings(over: 200) { clock, waits in
            while true {
                try await waits.waiting(atMost: .seconds(30)) { try await clock.sleep(for: .seconds(30)) }
                try await waits.waiting(atMost: .seconds(1)) { try await clock.sleep(for: .seconds(1)) }
            }
        }
        // A ping every 15 s (WatchdogSec / 2), from start to end: systemd never waits 30 s.
        #expect(times == Array(stride(from: 0, through: 195, by: 15)), "pings at \(times)")
    }

    @Test(
        "a call that outlives its deadline (the timeout never fires) stops the pings once its grace is over",
        .timeLimit(.minutes(1))
    )
    func callPastItsDeadlineStopsThePings() async throws {
        let times = try await pings(over: 120) { clock, waits in
            // Registered as ending within 30 s; nothing enforces it.
            try await waits.waiting(atMost: .seconds(30)) { try await clock.sleep(for: .seconds(3_600)) }
        }
        // Alive up to the deadline and its 10 s grace (a ping at 30 s), then nothing: systemd's
        // WatchdogSec=30s expires 30 s after the last ping, 60 s after the call was sent.
        #expect(times == [0, 15, 30], "pings at \(times)")
    }

    @Test(
        "a loop stuck outside any bounded wait (a deadlock, an await that never returns) stops the pings after its last wait",
        .timeLimit(.minutes(1))
    )
    func stuckAfterAWaitStopsThePings() async throws {
        let times = try await pings(over: 120) { clock, waits in
            // A request answered in 20 s, then a hang that is no request (here: a sleep of an hour).
            try await waits.waiting(atMost: .seconds(30)) { try await clock.sleep(for: .seconds(20)) }
            try await clock.sleep(for: .seconds(3_600))
        }
        // The answer at 20 s was the last sign of life: pings until 45 s (25 s after it), not at 60 s.
        #expect(times == [0, 15, 30, 45], "pings at \(times)")
    }

    @Test("cancelling its task ends a watchdog that has nothing to watch", .timeLimit(.minutes(1)))
    func endsWhenCancelledWithoutAnInterval() async throws {
        let watchdog = SystemdWatchdog(interval: nil, logger: Logger(label: "test")) {}
        let run = Task { try await watchdog.run() }
        run.cancel()
        try await run.value
    }
}
