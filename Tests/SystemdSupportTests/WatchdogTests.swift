import CitrusTestKit
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import SystemdSupport

@Suite("Watchdog pings only while the loop makes progress")
struct WatchdogTests {
    final class Pings: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func record() { count.withLock { $0 += 1 } }
    }

    @Test func healthIsProgressWithinTheInterval() {
        let start = Duration.seconds(1_000)
        #expect(SystemdWatchdog.isHealthy(lastProgress: start, now: start + .seconds(29), interval: .seconds(30)))
        #expect(!SystemdWatchdog.isHealthy(lastProgress: start, now: start + .seconds(30), interval: .seconds(30)))
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

    @Test("cancelling its task ends a watchdog that has nothing to watch", .timeLimit(.minutes(1)))
    func endsWhenCancelledWithoutAnInterval() async throws {
        let watchdog = SystemdWatchdog(interval: nil, logger: Logger(label: "test")) {}
        let run = Task { try await watchdog.run() }
        run.cancel()
        try await run.value
    }
}
