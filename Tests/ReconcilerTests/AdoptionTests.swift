import CitrusTestKit
import DigitalOcean
import DigitalOceanHTTP
import DigitalOceanSimulator
import Foundation
import Logging
import ReconcileCore
import Reconciler
import Testing

/// Issue 23: rows without their droplet ids adopted for the price of the fleet's list, and a new
/// row served ahead of any backlog. The simulator lists two droplets a page, so a fleet of ten is a
/// list of five pages.
@Suite("Adoption in bulk and a fair share of reads")
struct AdoptionTests {
    /// An hour before the test: rows as a restore or a platform moving its fleet leaves them,
    /// older than any list the daemon makes.
    static let longAgo = Date(timeIntervalSinceNow: -3_600)

    func withFleet(
        loop configure: @escaping (inout ReconcilerConfiguration) -> Void = { _ in },
        _ body: (FleetReconciler, InMemoryRepository, SimulatorHarness.Running) async throws -> Void
    ) async throws {
        try await LoopTests().withFleet(client: { $0.pageSize = 2 }, loop: configure, body)
    }

    /// `count` active droplets named `name` that carry the identities of rows not yet in the table.
    func injectIdentified(_ count: Int, name: String, into sim: SimulatorHarness.Running) throws -> [(UUID, Int64)] {
        try (0..<count).map { _ in
            let id = UUID()
            let droplet = try sim.simulator.inject(
                SimulatorDropletInjection(name: name, tags: [FleetTags.fleet, FleetTags.identity(for: id)])
            )
            return (id, droplet.id)
        }
    }

    static func identityLookups(_ sim: SimulatorHarness.Running) -> [SimulatorRequestRecord] {
        sim.simulator.requestLog().filter { $0.route == "/v2/droplets" && $0.path.contains("citrus-server") }
    }

    static func creates(_ sim: SimulatorHarness.Running) -> [SimulatorRequestRecord] {
        sim.simulator.requestLog().filter { $0.method == "POST" && $0.route == "/v2/droplets" }
    }

    @Test("rows without droplet ids are adopted a slice of the list at a time: no lookup, no create, one list")
    func adoptedForThePriceOfTheList() async throws {
        try await withFleet(loop: {
            $0.listPagesPerSlice = 2
            $0.listSliceInterval = .zero
        }) { reconciler, repository, sim in
            let fleet = try injectIdentified(10, name: "moved", into: sim)
            for (id, _) in fleet { repository.insert(ServerRecord(id: id, name: "moved", createdAt: Self.longAgo)) }
            var passes = 0
            let adopted = try await eventually(timeout: .seconds(20)) {
                passes += 1
                _ = try await reconciler.fullPass()
                return repository.rows.allSatisfy { $0.state.status == .active }
            }
            #expect(adopted)
            for (id, dropletID) in fleet { #expect(repository.row(id)?.state.dropletID == dropletID) }
            #expect(Self.identityLookups(sim).isEmpty, "\(Self.identityLookups(sim).map(\.path))")
            #expect(Self.creates(sim).isEmpty)
            #expect(FleetViewTests.fleetPages(sim).count == 5, "one list of five pages")
            // Two pages, then (rows waiting on the list) slices of one page.
            #expect(passes == 4, "\(passes) passes")
        }
    }

    @Test("a new row's create leaves in the first pass, ahead of a backlog larger than the pass's reads")
    func newRowAheadOfTheBacklog() async throws {
        try await withFleet(loop: { $0.maxLookupsPerPass = 3 }) { reconciler, repository, sim in
            // Listed while their rows were away; then restored without their droplet ids: each
            // waits for its droplet's presence to be confirmed.
            let restored = try injectIdentified(8, name: "restored", into: sim)
            await reconciler.requestFullList()
            let listed = try await reconciler.fullPass()
            #expect(listed.listing == nil && listed.orphans == 8)
            for (id, _) in restored {
                repository.insert(
                    ServerRecord(
                        id: id,
                        name: "restored",
                        createdAt: Self.longAgo,
                        state: DaemonState(createAttemptedAt: Self.longAgo, createReachableUntil: Self.longAgo)
                    )
                )
            }
            let fresh = ServerRecord(id: UUID(), name: "fresh", createdAt: Date())
            repository.insert(fresh)
            sim.simulator.clearRequestLog()

            let summary = try await reconciler.fullPass()
            let created = Self.creates(sim)
            #expect(
                created.count == 1 && created.allSatisfy { $0.body?.contains(fresh.id.uuidString.lowercased()) == true }
            )
            #expect(repository.row(fresh.id)?.state.createAttemptedAt != nil)
            // The other two reads went to the backlog; six are left, and the status says so.
            #expect(Self.identityLookups(sim).count == 3)
            #expect(summary.backlog.lookups == 6 && summary.backlog.presence == 6, "\(summary.backlog)")
            #expect(summary.oneLine.contains("waiting: 6 lookups (about"), "\(summary.oneLine)")

            let converged = try await eventually(timeout: .seconds(20)) {
                _ = try await reconciler.fullPass()
                return repository.rows.allSatisfy { $0.state.status == .active }
            }
            #expect(converged)
            for (id, dropletID) in restored { #expect(repository.row(id)?.state.dropletID == dropletID) }
            #expect(Self.creates(sim).count == 1)
        }
    }

    @Test("a NOTIFY's quick pass looks up the new row first, whatever waits for its first create before it")
    func quickPassServesTheNewRowFirst() async throws {
        try await withFleet(loop: { $0.maxLookupsPerPass = 2 }) { reconciler, repository, sim in
            let moved = try injectIdentified(6, name: "moved", into: sim)
            await reconciler.requestFullList()
            _ = try await reconciler.fullPass()
            for (id, _) in moved { repository.insert(ServerRecord(id: id, name: "moved", createdAt: Self.longAgo)) }
            let fresh = ServerRecord(id: UUID(), name: "fresh", createdAt: Date())
            repository.insert(fresh)
            sim.simulator.clearRequestLog()

            _ = try await reconciler.quickPass()
            let created = Self.creates(sim)
            #expect(
                created.count == 1 && created.allSatisfy { $0.body?.contains(fresh.id.uuidString.lowercased()) == true }
            )
        }
    }

    @Test("in a pass that adopts a slice of the fleet, a new row's write comes before the backlog's")
    func newRowWrittenFirst() async throws {
        try await withFleet(loop: {
            $0.listPagesPerSlice = 1
            $0.listSliceInterval = .zero
        }) { reconciler, repository, sim in
            let moved = try injectIdentified(4, name: "moved", into: sim)
            let fresh = ServerRecord(id: UUID(), name: "fresh", createdAt: Date())
            repository.insert(fresh)
            #expect(try await reconciler.quickPass() == [fresh.id])
            try await Task.sleep(for: .milliseconds(500))  // the simulator boots a droplet in 300 ms
            for (id, _) in moved { repository.insert(ServerRecord(id: id, name: "moved", createdAt: Self.longAgo)) }
            await reconciler.requestFullList()

            let before = repository.events.count
            _ = try await reconciler.fullPass()
            let written = repository.events.dropFirst(before).compactMap(\.serverID)
            #expect(repository.row(fresh.id)?.state.status == .active)
            #expect(written.filter { $0 != fresh.id }.count >= 2, "the first page's two rows adopted")
            #expect(written.first == fresh.id, "\(written)")
        }
    }

    @Test(
        "a droplet destroyed by hand after its page was read is not bound when the list ends: a lookup decides, and the row gets a droplet of its own"
    )
    func destroyedAfterItsPage() async throws {
        try await withFleet(loop: {
            $0.listPagesPerSlice = 1
            $0.listSliceInterval = .zero
        }) { reconciler, repository, sim in
            // Pages in creation order: the row's droplet on page 1, two more droplets on page 2.
            let (id, doomed) = try injectIdentified(1, name: "doomed", into: sim)[0]
            for i in 0..<2 {
                _ = try sim.simulator.inject(SimulatorDropletInjection(name: "other-\(i)", tags: [FleetTags.fleet]))
            }
            let first = try await reconciler.fullPass()
            #expect(first.listing?.read == 1)
            // Destroyed by hand; then the row arrives without its droplet id (a restore).
            var configuration = DigitalOceanClient.Configuration(
                token: DigitalOceanToken(sim.token),
                baseURL: sim.baseURL
            )
            configuration.pageSize = 2
            let operatorClient = DigitalOceanClient(configuration: configuration, logger: LoopTests.logger)
            _ = try await operatorClient.deleteDroplet(id: doomed)
            try await operatorClient.shutdown()
            // The simulator takes 300 ms to destroy a droplet.
            try await Task.sleep(for: .milliseconds(600))
            repository.insert(ServerRecord(id: id, name: "doomed", createdAt: Self.longAgo))
            sim.simulator.clearRequestLog()

            let converged = try await eventually(timeout: .seconds(20)) {
                _ = try await reconciler.fullPass()
                return repository.row(id)?.state.status == .active
            }
            #expect(converged)
            let row = try #require(repository.row(id))
            #expect(row.state.dropletID != doomed)
            #expect(Self.identityLookups(sim).count >= 1)
            #expect(Self.creates(sim).count == 1)
            #expect(!repository.events.contains { $0.dropletID == doomed && $0.kind == .adopted })
        }
    }
}
