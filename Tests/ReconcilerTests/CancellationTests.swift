import CitrusTestKit
import DigitalOcean
import DigitalOceanAdapter
import DigitalOceanHTTP
import Foundation
import Logging
import Postgres
import PostgresAdapter
import ReconcileCore
import Reconciler
import ServerStore
import Synchronization
import Testing
import Timekeeping

/// A lease that campaigns as the test says and remembers whether it was given up.
final class ScriptedLease: LeadershipLease {
    enum Campaign { case wins, loses, fails }
    private let state: Mutex<(campaign: Campaign, leading: Bool, resigned: Bool, campaigns: Int)>

    init(_ campaign: Campaign) { state = Mutex((campaign, false, false, 0)) }

    var isLeading: Bool { state.withLock { $0.leading } }
    var mayAct: Bool { isLeading }
    var resigned: Bool { state.withLock { $0.resigned } }
    var campaigns: Int { state.withLock { $0.campaigns } }

    func campaign() async throws -> Bool {
        let campaign = state.withLock {
            $0.campaigns += 1
            return $0.campaign
        }
        switch campaign {
        case .wins:
            state.withLock { $0.leading = true }
            terms.withLock { $0 += 1 }
            return true
        case .loses: return false
        case .fails: throw PostgresUnreachable()
        }
    }

    func renew() async -> Bool { isLeading }

    var renewEvery: Duration { .milliseconds(2500) }

    var term: Int { terms.withLock { $0 } }
    private let terms = Mutex(0)

    func resign() async {
        state.withLock {
            $0.leading = false
            $0.resigned = true
        }
    }

    struct PostgresUnreachable: Error {}
}

/// service-lifecycle's contract: a service ends when its task is cancelled. Every long-running
/// part is cancelled here while it waits (on an injected clock, so no test sleeps), and must end
/// without beginning another wait: a loop that treated a cancelled wait as "nothing happened"
/// would spin, and this suite's time limit would catch it.
@Suite("Services end when their task is cancelled", .timeLimit(.minutes(1)))
struct CancellationTests {
    static let logger = Logger(label: "cancellation-tests") { _ in SwiftLogNoOpLogHandler() }

    /// The loop against the in-process simulator, rows in memory, waiting on `clock`.
    func withLoop(
        leadership: (any LeadershipLease)?,
        _ body: (ReconcileService, ManualClock, WakeSignal) async throws -> Void
    ) async throws {
        try await SimulatorHarness.withSimulator(configuration: SimulatorHarness.testConfiguration()) { sim in
            let client = DigitalOceanClient(
                configuration: DigitalOceanClient.Configuration(
                    token: DigitalOceanToken(sim.token),
                    baseURL: sim.baseURL
                ),
                logger: Self.logger
            )
            let clock = ManualClock()
            let daemon = Daemon.assemble(
                repository: InMemoryRepository(),
                cloud: DigitalOceanFleet(client: client),
                leadership: leadership,
                clock: clock,
                jitter: { 0 },
                logger: Self.logger
            )
            do {
                try await body(daemon.service, clock, daemon.wake)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// Cancels `run` once `clock` has seen `sleeps` sleeps begin, and expects it to end without
    /// another.
    func cancelWhileWaiting(_ run: Task<Void, any Error>, on clock: ManualClock, sleeps: Int = 1) async throws {
        await clock.waitForSleeps(sleeps)
        let begun = clock.sleepsBegun
        run.cancel()
        do {
            try await run.value
        } catch is CancellationError {
            // Ending by throwing CancellationError is ending too.
        }
        #expect(clock.sleepsBegun == begun, "no wait began after the cancellation")
    }

    @Test("the loop, waiting between passes, ends")
    func loopBetweenPasses() async throws {
        try await withLoop(leadership: nil) { service, clock, _ in
            let run = Task { try await service.run() }
            try await cancelWhileWaiting(run, on: clock)
        }
    }

    @Test("a standby's loop, waiting to campaign again, ends and gives up its session")
    func standby() async throws {
        let lease = ScriptedLease(.loses)
        try await withLoop(leadership: lease) { service, clock, _ in
            let run = Task { try await service.run() }
            // Two waits: the lease keeper's and the loop's (counting one raced the other's start).
            try await cancelWhileWaiting(run, on: clock, sleeps: 2)
        }
        #expect(lease.resigned)
    }

    @Test("a loop backing off from an unreachable database ends")
    func backingOff() async throws {
        try await withLoop(leadership: ScriptedLease(.fails)) { service, clock, _ in
            let run = Task { try await service.run() }
            // Two waits: the lease keeper's and the loop's.
            try await cancelWhileWaiting(run, on: clock, sleeps: 2)
        }
    }

    @Test("a replica backing off from an unreachable database is not hurried by news it cannot act on")
    func backingOffIgnoresNews() async throws {
        let lease = ScriptedLease(.fails)
        try await withLoop(leadership: lease) { service, clock, wake in
            // A NOTIFY (or a lost lease's wake-up) that arrived while the database went away. The
            // loop used to leave it pending, so every wait between campaigns returned at once:
            // thousands of campaigns and log lines a minute against a database that is down.
            wake.signal(row: nil)
            let run = Task { try await service.run() }
            // Time moves in steps of 100 ms until the eighth campaign. Backing off (no jitter:
            // half the ceiling) from 250 ms, doubling, to 2.5 s, that is 11.25 s in; a loop that
            // does not wait campaigns eight times before time moves at all.
            while lease.campaigns < 8, clock.uptime() < .seconds(120) {
                for _ in 0..<200 { await Task.yield() }
                if lease.campaigns < 8 { clock.advance(by: .milliseconds(100)) }
            }
            #expect(lease.campaigns >= 8)
            #expect(clock.uptime() >= .seconds(10), "the eighth campaign came \(clock.uptime()) in")
            run.cancel()
            _ = try? await run.value
        }
    }

    @Test("a leader's loop, renewing its lease while it waits, ends and resigns")
    func leader() async throws {
        let lease = ScriptedLease(.wins)
        try await withLoop(leadership: lease) { service, clock, _ in
            let run = Task { try await service.run() }
            // Two waits: the lease keeper's and the loop's.
            try await cancelWhileWaiting(run, on: clock, sleeps: 2)
        }
        #expect(lease.resigned)
    }

    @Test("the notification service, waiting to LISTEN again on a database that is not there, ends")
    func notificationsWhileRetrying() async throws {
        let clock = ManualClock()
        let service = NotificationService(
            connectionString: "postgresql://citrus@127.0.0.1:1/citrus?connect_timeout=5",
            wake: WakeSignal(clock: clock),
            clock: clock,
            logger: Self.logger
        )
        let run = Task { try await service.run() }
        try await cancelWhileWaiting(run, on: clock)
    }

    @Test("the notification service, listening, ends")
    func notificationsWhileListening() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url, logger: Self.logger)
            _ = try await Migrator().migrate(on: connection)
            await connection.close()
            let wake = WakeSignal(clock: ManualClock())
            let service = NotificationService(connectionString: url, wake: wake, logger: Self.logger)
            let run = Task { try await service.run() }
            // Listening begins with a resync request: anything before it was not heard.
            while !(try await wake.wait(for: .seconds(3600))) {}
            #expect(wake.take().resync)
            run.cancel()
            try await run.value
        }
    }
}

@Suite("Wake signal", .timeLimit(.minutes(1)))
struct WakeSignalTests {
    @Test("a wait ends with news, with shutdown, or when its time is up")
    func wakes() async throws {
        let clock = ManualClock()
        let wake = WakeSignal(clock: clock)
        let row = UUID()
        async let news = wake.wait(for: .seconds(60))
        await clock.waitForSleeps(1)
        wake.signal(row: row)
        #expect(try await news)
        let pending = wake.take()
        #expect(pending.rows == [row] && !pending.resync)

        async let quiet = wake.wait(for: .seconds(60))
        await clock.waitForSleeps(2)
        clock.advance(by: .seconds(60))
        #expect(try await !quiet)

        wake.shutdown()
        #expect(try await wake.wait(for: .seconds(60)))
    }

    @Test("a cancelled wait throws at once, news or not, instead of reporting that nothing happened")
    func cancelled() async throws {
        let clock = ManualClock()
        let wake = WakeSignal(clock: clock)
        let waiting = Task { try await wake.wait(for: .seconds(60)) }
        await clock.waitForSleeps(1)
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }

        wake.signal(row: nil)
        let alreadyCancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await wake.wait(for: .seconds(60))
        }
        await #expect(throws: CancellationError.self) { try await alreadyCancelled.value }
        #expect(wake.take().resync, "the news is still there for the next pass")
    }
}
