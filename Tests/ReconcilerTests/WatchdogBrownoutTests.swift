import CitrusTestKit
import DigitalOcean
import DigitalOceanAdapter
import DigitalOceanHTTP
import DigitalOceanSimulator
import Foundation
import Logging
import ReconcileCore
import Reconciler
import Synchronization
import SystemdSupport
import Testing
import Timekeeping

/// The watchdog as the daemon wires it (the loop's progress, and the client's waits on
/// DigitalOcean), in real time against the in-process simulator made slow: answers slower than the
/// watchdog's interval, then slower than the request timeout, so that each read times out and is
/// retried. No Postgres: rows in memory.
@Suite("The watchdog during a DigitalOcean brownout")
struct WatchdogBrownoutTests {
    static let logger = Logger(label: "watchdog-brownout", factory: { _ in SwiftLogNoOpLogHandler() })

    /// When each ping left, in real time.
    final class PingLog: Sendable {
        private let times = Mutex<[ContinuousClock.Instant]>([])
        func record() { times.withLock { $0.append(.now) } }

        /// The longest silence systemd would have seen from `start` to `end`.
        func longestGap(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Duration {
            let inside = times.withLock { $0 }.filter { $0 > start && $0 < end }
            let marks = [start] + inside + [end]
            return zip(marks, marks.dropFirst()).map { $1 - $0 }.max() ?? .zero
        }
    }

    @Test(
        "answers slower than WatchdogSec, then requests that time out and are retried: the pings never stop",
        .timeLimit(.minutes(2))
    )
    func slowAndTimingOutAnswersKeepThePingsGoing() async throws {
        // WatchdogSec=2s: a ping every second while the loop is alive.
        let interval = Duration.seconds(2)
        try await SimulatorHarness.withSimulator { sim in
            // Four droplets, two a page: a full list is two pages.
            for i in 0..<4 {
                _ = try sim.simulator.inject(SimulatorDropletInjection(name: "stray-\(i)", tags: [FleetTags.fleet]))
            }
            var configuration = DigitalOceanClient.Configuration(
                token: DigitalOceanToken(sim.token),
                baseURL: sim.baseURL
            )
            configuration.pageSize = 2
            configuration.requestTimeout = .seconds(4)
            configuration.retry.maximumAttempts = 2
            configuration.retry.initialBackoff = .milliseconds(200)
            let waits = BoundedWaits()
            let client = DigitalOceanClient(configuration: configuration, waits: waits, logger: Self.logger)
            let pings = PingLog()
            let watchdog = SystemdWatchdog(interval: interval, waits: waits, logger: Self.logger) { pings.record() }
            let reconciler = Daemon.assemble(
                repository: InMemoryRepository(),
                cloud: DigitalOceanFleet(client: client),
                hooks: ReconcileHooks(progress: { watchdog.progress() }),
                logger: Self.logger
            ).reconciler
            let watching = Task { try await watchdog.run() }
            defer { watching.cancel() }

            // Slow: every answer comes 3 s after its request, within the 4 s timeout.
            sim.simulator.updateFaults { $0.latencySeconds = 3 }
            let slowStart = ContinuousClock.now
            let listed = try await reconciler.fullPass()
            let slowEnd = ContinuousClock.now
            #expect(listed.orphans == 4, "the list did not complete: \(listed.oneLine)")
            #expect(slowEnd - slowStart >= .seconds(6), "the two pages were not slow")

            // A brownout: answers after 6 s, so each attempt runs into the 4 s timeout.
            await reconciler.requestFullList()
            sim.simulator.updateFaults { $0.latencySeconds = 6 }
            let brownoutStart = ContinuousClock.now
            await #expect(throws: (any Error).self) { _ = try await reconciler.fullPass() }
            let brownoutEnd = ContinuousClock.now
            sim.simulator.updateFaults { $0.latencySeconds = 0 }
            #expect(brownoutEnd - brownoutStart >= .seconds(8), "the read was not retried after its timeout")

            let slowGap = pings.longestGap(from: slowStart, to: slowEnd)
            let brownoutGap = pings.longestGap(from: brownoutStart, to: brownoutEnd)
            print(
                "figure: longest silence of a WatchdogSec=2s watchdog: \(DurationText.format(slowGap)) during 3 s answers, \(DurationText.format(brownoutGap)) during timeouts and retries"
            )
            #expect(slowGap < interval, "no ping for \(slowGap) while answers were slow")
            #expect(brownoutGap < interval, "no ping for \(brownoutGap) while requests timed out and were retried")
            try await client.shutdown()
        }
    }
}
