import CitrusTestKit
import DigitalOcean
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
    var rows: [ServerRecord] { state.withLock { Array($0.rows.values) } }
    var events: [AuditEvent] { state.withLock { $0.events } }
    var writes: Int { state.withLock { $0.writes } }
    func row(_ id: UUID) -> ServerRecord? { state.withLock { $0.rows[id] } }

    /// Live rows only, as the Postgres store reads them.
    func fetchServers() async throws -> [ServerRecord] { rows.filter { $0.state.status != .deleted } }

    func fetchUnattemptedServers() async throws -> [ServerRecord] {
        rows.filter {
            $0.state.status == .creating && $0.state.createAttemptedAt == nil && $0.state.dropletID == nil
                && $0.deleteRequestedAt == nil
        }
    }

    func update(id: UUID, expectedRevision: Int64, to newState: DaemonState) async throws -> Int64? {
        state.withLock { state in
            guard var row = state.rows[id], row.revision == expectedRevision else { return nil }
            row.state = newState
            row.revision += 1
            state.rows[id] = row
            state.writes += 1
            return row.revision
        }
    }

    /// No agents table here: the row's write is all there is to it.
    func update(
        id: UUID,
        expectedRevision: Int64,
        to newState: DaemonState,
        agentKeySHA256: String
    ) async throws -> Int64? {
        try await update(id: id, expectedRevision: expectedRevision, to: newState)
    }

    func record(_ event: AuditEvent) async throws { state.withLock { $0.events.append(event) } }

    func recordFullView(_ record: FullViewRecord) async throws { fullViews.withLock { $0.append(record) } }
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
        _ body: (FleetReconciler, InMemoryRepository, SimulatorHarness.Running) async throws -> Void
    ) async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configure(&configuration)
        try await SimulatorHarness.withSimulator(configuration: configuration) { sim in
            var clientConfiguration = DigitalOceanClient.Configuration(
                token: DigitalOceanToken(sim.token),
                baseURL: sim.baseURL
            )
            clientConfiguration.retry.maximumAttempts = 2
            clientConfiguration.retry.initialBackoff = .milliseconds(10)
            clientConfiguration.requestTimeout = .seconds(2)
            let client = DigitalOceanClient(configuration: clientConfiguration, logger: Self.logger)
            let repository = InMemoryRepository()
            var loop = ReconcilerConfiguration()
            loop.decision.settlePeriod = .milliseconds(500)
            loop.decision.createSendWindow = .milliseconds(500)
            loop.decision.createRequestTimeout = clientConfiguration.requestTimeout
            let reconciler = FleetReconciler(
                repository: repository,
                cloud: DigitalOceanFleet(client: client),
                configuration: loop,
                logger: Self.logger
            )
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
