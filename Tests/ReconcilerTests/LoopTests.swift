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
import Testing

/// Rows in memory, with the store's semantics: compare-and-set on a revision bumped by every write.
final class InMemoryRepository: ServerRepository, Sendable {
    private let state = Mutex<(rows: [UUID: ServerRecord], events: [AuditEvent], writes: Int)>(([:], [], 0))

    func insert(_ row: ServerRecord) { state.withLock { $0.rows[row.id] = row } }
    /// `DELETE FROM servers WHERE id = …`.
    func remove(_ id: UUID) { state.withLock { $0.rows[id] = nil } }
    var rows: [ServerRecord] { state.withLock { Array($0.rows.values) } }
    var events: [AuditEvent] { state.withLock { $0.events } }
    var writes: Int { state.withLock { $0.writes } }
    func row(_ id: UUID) -> ServerRecord? { state.withLock { $0.rows[id] } }

    /// Live rows only, oldest first, as the Postgres store reads them.
    func fetchServers() async throws -> [ServerRecord] { inStoreOrder.filter { $0.state.status != .deleted } }

    func fetchUnattemptedServers() async throws -> [ServerRecord] {
        inStoreOrder.filter {
            $0.state.status == .creating && $0.state.createAttemptedAt == nil && $0.state.dropletID == nil
                && $0.deleteRequestedAt == nil
        }
    }

    /// By `created_at`, then id, as the Postgres store orders its reads.
    private var inStoreOrder: [ServerRecord] {
        rows.sorted { $0.createdAt != $1.createdAt ? $0.createdAt < $1.createdAt : $0.id.uuidString < $1.id.uuidString }
    }

    /// No agents table here: the row's write and its entries are all there is to it.
    func update(
        id: UUID,
        expectedRevision: Int64,
        to newState: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent]
    ) async throws -> Int64? {
        state.withLock { state in
            guard var row = state.rows[id], row.revision == expectedRevision else { return nil }
            row.state = newState
            row.revision += 1
            state.rows[id] = row
            state.writes += 1
            state.events += events
            return row.revision
        }
    }

    func record(_ event: AuditEvent) async throws { state.withLock { $0.events.append(event) } }

    func recordFullView(_ record: FullViewRecord) async throws { fullViews.withLock { $0.append(record) } }
    func recordBacklog(_ line: String?) async throws { backlogs.withLock { $0.append(line) } }
    /// Every backlog line recorded, oldest first.
    let backlogs = Mutex<[String?]>([])
    /// Every full view recorded, oldest first.
    let fullViews = Mutex<[FullViewRecord]>([])

    func now() async throws -> Date { Date() }
}

/// The loop's act phase against the in-process simulator, with rows in memory: no Postgres needed.
@Suite("Reconcile passes")
struct LoopTests {
    static let logger = Logger(label: "loop-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    func withFleet(
        configure: (inout SimulatorConfiguration) -> Void = { _ in },
        client configureClient: (inout DigitalOceanClient.Configuration) -> Void = { _ in },
        loop configureLoop: (inout ReconcilerConfiguration) -> Void = { _ in },
        _ body: (FleetReconciler, InMemoryRepository, SimulatorHarness.Running) async throws -> Void
    ) async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configure(&configuration)
        try await SimulatorHarness.withSimulator(configuration: configuration) { sim in
            var clientConfiguration = DigitalOceanClient.Configuration(
                token: DigitalOceanToken(sim.token),
                baseURL: sim.baseURL
            )
            configureClient(&clientConfiguration)
            clientConfiguration.retry.maximumAttempts = 2
            clientConfiguration.retry.initialBackoff = .milliseconds(10)
            clientConfiguration.requestTimeout = .seconds(2)
            let client = DigitalOceanClient(configuration: clientConfiguration, logger: Self.logger)
            let repository = InMemoryRepository()
            var loop = ReconcilerConfiguration()
            loop.decision.settlePeriod = .milliseconds(500)
            loop.decision.createSendWindow = .milliseconds(500)
            loop.decision.createRequestTimeout = clientConfiguration.requestTimeout
            configureLoop(&loop)
            let reconciler = Daemon.assemble(
                repository: repository,
                cloud: DigitalOceanFleet(client: client),
                configuration: loop,
                logger: Self.logger
            ).reconciler
            do {
                try await body(reconciler, repository, sim)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    func row(_ name: String, region: String = "sfo3") -> ServerRecord {
        ServerRecord(id: UUID(), name: name, region: region, createdAt: Date())
    }

    @Test("the intent is written before the create leaves, and the accepted id right after")
    func intentBeforeCreate() async throws {
        try await withFleet { reconciler, repository, sim in
            let r = row("intent-first")
            repository.insert(r)
            _ = try await reconciler.fullPass()
            let after = try #require(repository.row(r.id))
            #expect(after.state.status == .provisioning)
            #expect(after.state.createAttemptedAt != nil)
            #expect(after.state.createAttempts == 1)
            let created = try #require(sim.simulator.droplets().first)
            #expect(after.state.dropletID == created.id)
            #expect(created.tags.contains("citrus-host") && created.tags.contains(r.identityTag))
            let kinds = repository.events.map(\.kind)
            #expect(kinds.firstIndex(of: .createRequested)! < kinds.firstIndex(of: .createAccepted)!)
        }
    }

    @Test("a create whose response is lost is not re-sent before the settle period; then the droplet is adopted")
    func lostResponseIsNotResent() async throws {
        try await withFleet { reconciler, repository, sim in
            sim.simulator.updateFaults { $0.createResponseLostProbability = 1 }
            let r = row("lost-response")
            repository.insert(r)
            _ = try await reconciler.fullPass()
            sim.simulator.updateFaults { $0.createResponseLostProbability = 0 }
            let uncertain = try #require(repository.row(r.id))
            #expect(uncertain.state.status == .creating)
            #expect(uncertain.state.lastError?.contains("outcome unknown") == true)
            #expect(repository.events.contains { $0.kind == .createUncertain })
            // Passes during and after the settle period: never a second create; the droplet is found.
            for _ in 0..<6 {
                _ = try await reconciler.fullPass()
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(sim.simulator.requestLog().filter { $0.method == "POST" }.count == 1)
            let settled = try #require(repository.row(r.id))
            #expect(settled.state.dropletID == sim.simulator.droplets().first?.id)
            #expect(settled.state.status != .creating)
        }
    }

    @Test("a create refused with 429 was not performed: the intent is cleared and the row backs off, never fails")
    func rateLimitedCreateBacksOff() async throws {
        try await withFleet(configure: { $0.rateLimits.perMinute = 1 }) { reconciler, repository, sim in
            let r = row("limited")
            repository.insert(r)
            _ = try? await reconciler.fullPass()  // the list takes the one request of the minute
            let after = try #require(repository.row(r.id))
            #expect(after.state.status == .creating)
            #expect(sim.simulator.droplets().isEmpty)
            #expect(after.state.createAttemptedAt == nil, "a refused create must not leave an intent behind")
            #expect(after.state.nextAttemptAt != nil && after.state.transientFailures == 1)
            #expect(after.state.lastError?.contains("retrying") == true)
            #expect(sim.simulator.requestLog().contains { $0.method == "POST" && $0.status == 429 })
        }
    }

    @Test("a locally invalid row fails without a request; a row DigitalOcean refuses fails with its words")
    func permanentErrorsFailOnlyTheirRow() async throws {
        try await withFleet { reconciler, repository, sim in
            let bad = row("under_score")
            let unknownRegion = row("nowhere", region: "mars1")
            let good = row("fine")
            [bad, unknownRegion, good].forEach(repository.insert)
            _ = try await reconciler.fullPass()
            #expect(repository.row(bad.id)?.state.status == .failed)
            #expect(repository.row(bad.id)?.state.lastError?.contains("nothing was sent") == true)
            #expect(repository.row(unknownRegion.id)?.state.status == .failed)
            #expect(repository.row(unknownRegion.id)?.state.lastError?.lowercased().contains("region") == true)
            #expect(repository.row(good.id)?.state.status == .provisioning)
            #expect(!sim.simulator.requestLog().contains { $0.body?.contains("under_score") == true })
        }
    }

    @Test("a converged fleet costs no request between full lists, one list request per full list, and writes nothing")
    func steadyStateIsCheap() async throws {
        try await withFleet { reconciler, repository, sim in
            for i in 0..<5 { repository.insert(row("steady-\(i)")) }
            let converged = try await eventually(timeout: .seconds(20)) {
                _ = try await reconciler.fullPass()
                return repository.rows.allSatisfy { $0.state.status == .active }
            }
            #expect(converged)
            sim.simulator.clearRequestLog()
            let writes = repository.writes
            for _ in 0..<3 { _ = try await reconciler.fullPass() }
            #expect(sim.simulator.requestLog().isEmpty, "passes between full lists read only what waits")
            await reconciler.requestFullList()
            let summary = try await reconciler.fullPass()
            #expect(summary.fullViewAge.map { $0 < .seconds(5) } == true)
            #expect(sim.simulator.requestLog().count == 1)
            #expect(sim.simulator.requestLog().allSatisfy { $0.method == "GET" && $0.route == "/v2/droplets" })
            #expect(repository.writes == writes)
        }
    }
}

/// A meeting point for one task and a test: `hold()` suspends until `release()`, and `reached()`
/// returns once something holds. No clock, no sleeps. `reached()` also returns when the test is
/// cancelled (its time limit), so a loop that never gets there fails the test instead of hanging it.
final class Gate: Sendable {
    private struct State {
        var holder: CheckedContinuation<Void, Never>?
        var released = false
        var reached = false
        var watchers: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWatcher: UInt64 = 0
    }

    private let state = Mutex(State())

    func hold() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, watchers) = state.withLock { state in
                state.reached = true
                defer { state.watchers = [:] }
                if state.released { return (true, Array(state.watchers.values)) }
                state.holder = continuation
                return (false, Array(state.watchers.values))
            }
            for watcher in watchers { watcher.resume() }
            if resumeNow { continuation.resume() }
        }
    }

    func reached() async {
        let id = state.withLock { state in
            state.nextWatcher += 1
            return state.nextWatcher
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    if state.reached || Task.isCancelled { return true }
                    state.watchers[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.watchers.removeValue(forKey: id) }?.resume()
        }
    }

    func release() {
        let holder = state.withLock { state in
            state.released = true
            defer { state.holder = nil }
            return state.holder
        }
        holder?.resume()
    }
}

/// The in-memory rows, counting the loop's reads (a full pass reads every live row, a quick pass
/// the rows waiting for their first create). The first quick pass can be held right after its
/// read, so a test acts while that pass runs.
final class CountingRepository: ServerRepository, Sendable {
    let memory = InMemoryRepository()
    let firstQuickRead = Gate()
    private let holdsFirstQuickRead: Bool
    private let reads = Mutex((full: 0, quick: 0))

    init(holdingFirstQuickRead: Bool = false) {
        holdsFirstQuickRead = holdingFirstQuickRead
    }

    var fullPasses: Int { reads.withLock { $0.full } }
    var quickPasses: Int { reads.withLock { $0.quick } }

    func fetchServers() async throws -> [ServerRecord] {
        reads.withLock { $0.full += 1 }
        return try await memory.fetchServers()
    }

    func fetchUnattemptedServers() async throws -> [ServerRecord] {
        let rows = try await memory.fetchUnattemptedServers()
        let count = reads.withLock { reads in
            reads.quick += 1
            return reads.quick
        }
        if holdsFirstQuickRead && count == 1 { await firstQuickRead.hold() }
        return rows
    }

    func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent]
    ) async throws -> Int64? {
        try await memory.update(
            id: id,
            expectedRevision: expectedRevision,
            to: state,
            agentKey: agentKey,
            events: events
        )
    }

    func record(_ event: AuditEvent) async throws { try await memory.record(event) }
    func recordFullView(_ record: FullViewRecord) async throws { try await memory.recordFullView(record) }
    func recordBacklog(_ line: String?) async throws { try await memory.recordBacklog(line) }
    func now() async throws -> Date { try await memory.now() }
}

/// What the loop does with NOTIFYs between full passes: the first is acted on at once (no
/// debounce: the clock here never moves), and what arrives during a quick pass is taken by one
/// quick pass right after it.
@Suite("Wake-ups: leading edge, then trailing", .timeLimit(.minutes(1)))
struct WakeUpTests {
    static let logger = Logger(label: "wake-up-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The loop over `repository` and the in-process simulator, on a clock that never moves. It
    /// has finished its first full pass and waits when `body` begins.
    func withLoop(
        _ repository: CountingRepository,
        _ body: (WakeSignal, ManualClock, SimulatedDigitalOcean) async throws -> Void
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
                repository: repository,
                cloud: DigitalOceanFleet(client: client),
                clock: clock,
                jitter: { 0 },
                logger: Self.logger
            )
            let run = Task { try await daemon.service.run() }
            await clock.waitForSleeps(1)
            #expect(repository.fullPasses == 1)
            do {
                try await body(daemon.wake, clock, sim.simulator)
            } catch {
                run.cancel()
                try? await client.shutdown()
                throw error
            }
            run.cancel()
            _ = try? await run.value
            try await client.shutdown()
        }
    }

    func row(_ name: String) -> ServerRecord {
        ServerRecord(id: UUID(), name: name, createdAt: Date())
    }

    /// The creates the simulator received, by the row whose identity tag each carried.
    func creates(_ simulator: SimulatedDigitalOcean, for rows: [ServerRecord]) -> [String: Int] {
        let bodies = simulator.requestLog().filter { $0.method == "POST" && $0.route == "/v2/droplets" }.compactMap(
            \.body
        )
        return Dictionary(
            uniqueKeysWithValues: rows.map { row in (row.name, bodies.count { $0.contains(row.identityTag) }) }
        )
    }

    @Test("a NOTIFY about a new row starts a quick pass at once: its create leaves with no time passing")
    func leadingEdge() async throws {
        let repository = CountingRepository()
        try await withLoop(repository) { wake, clock, simulator in
            let new = row("leading")
            repository.memory.insert(new)
            wake.signal(row: new.id)
            // The loop's next wait begins only once the quick pass is over.
            await clock.waitForSleeps(2)
            #expect(clock.uptime() == .zero)
            #expect(repository.quickPasses == 1)
            #expect(repository.fullPasses == 1, "a new row needs no full pass")
            #expect(creates(simulator, for: [new]) == ["leading": 1])
            #expect(repository.memory.row(new.id)?.state.createAttemptedAt != nil)
        }
    }

    @Test("NOTIFYs that arrive during a quick pass make exactly one more quick pass, right after, covering them all")
    func trailingPass() async throws {
        let repository = CountingRepository(holdingFirstQuickRead: true)
        try await withLoop(repository) { wake, clock, simulator in
            let first = row("first")
            repository.memory.insert(first)
            wake.signal(row: first.id)
            await repository.firstQuickRead.reached()
            // The first pass has read its rows; three more arrive while it runs.
            let later = [row("later-1"), row("later-2"), row("later-3")]
            for row in later {
                repository.memory.insert(row)
                wake.signal(row: row.id)
            }
            repository.firstQuickRead.release()
            await clock.waitForSleeps(2)
            #expect(clock.uptime() == .zero)
            #expect(repository.quickPasses == 2, "one pass at the leading edge, one trailing")
            #expect(repository.fullPasses == 1)
            #expect(creates(simulator, for: [first] + later) == ["first": 1, "later-1": 1, "later-2": 1, "later-3": 1])
        }
    }

    @Test("the tail of a burst a quick pass already read asks for no further pass")
    func burstTail() async throws {
        let repository = CountingRepository(holdingFirstQuickRead: true)
        try await withLoop(repository) { wake, clock, simulator in
            // One INSERT of three rows: all readable before the first of its notifications arrives.
            let burst = [row("burst-1"), row("burst-2"), row("burst-3")]
            burst.forEach(repository.memory.insert)
            wake.signal(row: burst[0].id)
            await repository.firstQuickRead.reached()
            for row in burst.dropFirst() { wake.signal(row: row.id) }
            repository.firstQuickRead.release()
            await clock.waitForSleeps(2)
            #expect(repository.quickPasses == 1)
            #expect(repository.fullPasses == 1)
            #expect(creates(simulator, for: burst) == ["burst-1": 1, "burst-2": 1, "burst-3": 1])
        }
    }

    @Test("a NOTIFY about a row that is not new (a deletion request) still asks for a full pass at once")
    func otherChangesNeedAFullPass() async throws {
        let repository = CountingRepository()
        try await withLoop(repository) { wake, clock, _ in
            var old = row("old")
            old.deleteRequestedAt = Date()
            repository.memory.insert(old)
            wake.signal(row: old.id)
            // The quick pass finds nothing new; the loop goes round to a full pass, then waits.
            await clock.waitForSleeps(2)
            #expect(clock.uptime() == .zero)
            #expect(repository.fullPasses == 2)
        }
    }
}
