import CitrusTestKit
import DigitalOcean
import DigitalOceanSimulator
import Foundation
import Logging
import ReconcileCore
import Reconciler
import Testing

/// The full list and the passes between: what each costs at DigitalOcean, against the simulator
/// with pages of two droplets, so that a fleet of ten is a list of five pages.
@Suite("Full lists and the passes between them")
struct FleetViewTests {

    /// The loop tests' fleet, with pages of two droplets and renames that take 200 ms.
    func withFleet(
        configure: (inout ReconcilerConfiguration) -> Void = { _ in },
        _ body: (FleetReconciler, InMemoryRepository, SimulatorHarness.Running) async throws -> Void
    ) async throws {
        try await LoopTests().withFleet(
            configure: { $0.actionTiming.rename = .milliseconds(200) },
            client: { $0.pageSize = 2 },
            loop: configure,
            body
        )
    }

    /// Requests that read a page of the whole fleet (tag `citrus-host`), as opposed to lookups.
    static func fleetPages(_ sim: SimulatorHarness.Running) -> [SimulatorRequestRecord] {
        sim.simulator.requestLog().filter {
            $0.route == "/v2/droplets" && $0.path.contains("citrus-host")
        }
    }

    @Test(
        "between full lists a new row costs its identity lookup, its create and reads of its own droplet: never a page of the fleet"
    )
    func newRowBetweenFullLists() async throws {
        try await withFleet { reconciler, repository, sim in
            for i in 0..<9 { repository.insert(ServerRecord(id: UUID(), name: "steady-\(i)", createdAt: Date())) }
            let converged = try await eventually(timeout: .seconds(20)) {
                _ = try await reconciler.fullPass()
                return repository.rows.allSatisfy { $0.state.status == .active }
            }
            #expect(converged)
            await reconciler.requestFullList()
            let listed = try await reconciler.fullPass()
            #expect(listed.listing == nil && listed.fullViewAge != nil)
            sim.simulator.clearRequestLog()

            let fresh = ServerRecord(id: UUID(), name: "fresh", createdAt: Date())
            repository.insert(fresh)
            #expect(try await reconciler.quickPass() == [fresh.id])
            let active = try await eventually(timeout: .seconds(20)) {
                _ = try await reconciler.fullPass()
                return repository.row(fresh.id)?.state.status == .active
            }
            #expect(active)
            let log = sim.simulator.requestLog()
            #expect(Self.fleetPages(sim).isEmpty, "a page of the fleet was read: \(log.map(\.path))")
            let dropletID = try #require(repository.row(fresh.id)?.state.dropletID)
            #expect(log.filter { $0.method == "POST" }.count == 1)
            let reads = log.filter { $0.method == "GET" && $0.route == "/v2/droplets/{droplet_id}" }
            #expect(!reads.isEmpty && reads.allSatisfy { $0.path == "/v2/droplets/\(dropletID)" })
            #expect(log.count == 2 + reads.count, "\(log.map(\.path))")
            #expect(repository.rows.allSatisfy { $0.state.status == .active })
        }
    }

    @Test(
        "a row inserted while its orphan's accepted destroy still lists gets a droplet of its own, not the departing one"
    )
    func departingOrphanIsNotAdopted() async throws {
        try await LoopTests().withFleet(
            configure: { $0.deleteTime = .seconds(60) },  // lists throughout the test
            loop: { $0.decision.orphanPolicy = .delete(grace: .zero) }
        ) { reconciler, repository, sim in
            let id = UUID()
            let departing = try sim.simulator.inject(
                SimulatorDropletInjection(name: "returns", tags: [FleetTags.fleet, FleetTags.identity(for: id)])
            )
            let destroyed = try await eventually(timeout: .seconds(10)) {
                await reconciler.requestFullList()
                _ = try await reconciler.fullPass()
                return sim.simulator.requestLog().contains { $0.method == "DELETE" }
            }
            #expect(destroyed)
            repository.insert(ServerRecord(id: id, name: "returns", createdAt: Date()))
            _ = try await reconciler.quickPass()
            let active = try await eventually(timeout: .seconds(20)) {
                await reconciler.requestFullList()
                _ = try await reconciler.fullPass()
                return repository.row(id)?.state.status == .active
            }
            #expect(active, "\(String(describing: repository.row(id)?.state))")
            let dropletID = repository.row(id)?.state.dropletID
            #expect(dropletID != nil && dropletID != departing.id, "bound to the droplet it saw destroyed")
            #expect(sim.simulator.requestLog().filter { $0.method == "POST" }.count == 1)
            #expect(sim.simulator.requestLog().filter { $0.method == "DELETE" }.count == 1)
        }
    }

    @Test(
        "an orphan claimed again by its row between full lists, then orphaned again, waits a whole grace from then (--orphans delete)"
    )
    func orphanGraceStartsAfreshWhenItsRowComesAndGoes() async throws {
        try await withFleet(configure: { $0.decision.orphanPolicy = .delete(grace: .seconds(2)) }) {
            reconciler,
            repository,
            sim in
            let id = UUID()
            let droplet = try sim.simulator.inject(
                SimulatorDropletInjection(name: "comes-and-goes", tags: [FleetTags.fleet, FleetTags.identity(for: id)])
            )
            await reconciler.requestFullList()
            _ = try await reconciler.fullPass()  // first seen as an orphan
            try await Task.sleep(for: .milliseconds(2500))  // longer than its grace
            // Its row arrives (a pass between full lists binds it), then goes again.
            repository.insert(ServerRecord(id: id, name: "comes-and-goes", createdAt: Date()))
            let bound = try await eventually(timeout: .seconds(10)) {
                _ = try await reconciler.fullPass()
                return repository.row(id)?.state.dropletID == droplet.id
            }
            #expect(bound)
            repository.remove(id)
            sim.simulator.clearRequestLog()
            await reconciler.requestFullList()
            _ = try await reconciler.fullPass()  // an orphan again: its grace starts now
            #expect(
                sim.simulator.requestLog().filter { $0.method == "DELETE" }.isEmpty,
                "destroyed at once, its grace counted from before its row came"
            )
            try await Task.sleep(for: .milliseconds(2500))
            await reconciler.requestFullList()
            _ = try await reconciler.fullPass()
            #expect(sim.simulator.requestLog().filter { $0.method == "DELETE" }.count == 1, "destroyed past its grace")
        }
    }

    @Test(
        "a full list of many pages is read a slice per pass, and a page that fails is read again without starting over"
    )
    func slicedAndResumed() async throws {
        try await withFleet(configure: {
            $0.listPagesPerSlice = 2
            $0.listSliceInterval = .zero
        }) { reconciler, _, sim in
            // Ten orphans: a list of five pages, and nothing else to do.
            for i in 0..<10 {
                _ = try sim.simulator.inject(SimulatorDropletInjection(name: "stray-\(i)", tags: [FleetTags.fleet]))
            }
            let first = try await reconciler.fullPass()
            #expect(first.listing == PassSummary.ListProgress(read: 2, pages: 5))
            #expect(first.fullViewAge == nil)
            #expect(first.oneLine.contains("listing the fleet, page 2 of about 5"), "\(first.oneLine)")

            sim.simulator.updateFaults { $0.failNextRequests = 2 }  // the page and the client's retry
            await #expect {
                _ = try await reconciler.fullPass()
            } throws: { error in
                "\(error)".contains("listing the fleet stopped at page 3 (of about 5), which it will go on from")
            }

            let third = try await reconciler.fullPass()
            #expect(third.listing == PassSummary.ListProgress(read: 4, pages: 5))
            let last = try await reconciler.fullPass()
            #expect(last.listing == nil)
            #expect(last.orphans == 10)
            #expect(last.fullViewAge.map { $0 < .seconds(30) } == true)
            #expect(last.oneLine.contains("full view"), "\(last.oneLine)")

            let pages = Self.fleetPages(sim).map(\.path)
            #expect(
                pages.filter { !$0.contains("&page=") && !$0.contains("?page=") }.count == 1,
                "the list started over: \(pages)"
            )
            #expect(pages.filter { $0.contains("&page=3") || $0.contains("?page=3") }.count == 3, "\(pages)")
            #expect(pages.count == 7, "\(pages)")

            // Between full lists the orphans stay counted as the last full list saw them.
            let between = try await reconciler.fullPass()
            #expect(between.orphans == 10)
            #expect(Self.fleetPages(sim).count == 7)
        }
    }

    @Test("more rows waiting than the fleet has pages: one full list is cheaper than a lookup each, and is made")
    func manyWaitingRowsListTheFleet() async throws {
        try await withFleet { reconciler, repository, sim in
            for i in 0..<6 { repository.insert(ServerRecord(id: UUID(), name: "wave-\(i)", createdAt: Date())) }
            _ = try await reconciler.fullPass()  // the first full list (empty), then the creates
            sim.simulator.clearRequestLog()
            // Six rows wait for their droplets; the fleet is three pages of two: it is listed.
            _ = try await reconciler.fullPass()
            let log = sim.simulator.requestLog()
            #expect(Self.fleetPages(sim).count == 3, "\(log.map(\.path))")
            #expect(!log.contains { $0.route == "/v2/droplets/{droplet_id}" }, "\(log.map(\.path))")
        }
    }

    /// Five rows active in a fleet listed a page at a time, then a full list of three pages begun:
    /// its first page read, the droplets as they are now.
    func withListUnderWay(
        _ body: (FleetReconciler, InMemoryRepository, SimulatorHarness.Running) async throws -> Void
    ) async throws {
        try await withFleet(configure: {
            $0.listPagesPerSlice = 1
            $0.listSliceInterval = .zero
        }) { reconciler, repository, sim in
            for i in 0..<5 { repository.insert(ServerRecord(id: UUID(), name: "web-\(i)", createdAt: Date())) }
            let converged = try await eventually(timeout: .seconds(20)) {
                let summary = try await reconciler.fullPass()
                return summary.listing == nil && repository.rows.allSatisfy { $0.state.status == .active }
            }
            #expect(converged)
            await reconciler.requestFullList()
            let started = try await reconciler.fullPass()
            #expect(started.listing?.read == 1)
            try await body(reconciler, repository, sim)
        }
    }

    @Test(
        "a rename the daemon completed while a full list was being read is not mistaken for drift when the list ends: the fresher read wins"
    )
    func fresherReadsWinOverASlowList() async throws {
        try await withListUnderWay { reconciler, repository, sim in
            for var row in repository.rows {
                row.name += "-renamed"
                row.revision += 1
                repository.insert(row)
            }
            // Renames are sent and followed to completion while the list goes on.
            var last = try await reconciler.fullPass()
            let renamed = try await eventually(timeout: .seconds(20)) {
                last = try await reconciler.fullPass()
                return repository.rows.allSatisfy { $0.state.change == nil && $0.state.observed?.name == $0.name }
            }
            #expect(renamed)
            while last.listing != nil { last = try await reconciler.fullPass() }
            #expect(last.fullViewAge != nil)
            for row in repository.rows {
                #expect(row.state.drift == nil, "\(row.name): \(row.state.drift ?? "")")
                #expect(row.state.refused == nil, "\(row.name): \(String(describing: row.state.refused))")
            }
            let sent = sim.simulator.requestLog().filter { $0.route.hasSuffix("/actions") && $0.method == "POST" }
            #expect(sent.count == 5, "one rename per row: \(sent.map(\.path))")
        }
    }

    @Test(
        "a tag the daemon put on while a full list was being read is not put on again when the list ends, nor a backups change sent twice"
    )
    func stepsCarriedOutSurviveASlowList() async throws {
        try await withListUnderWay { reconciler, repository, sim in
            // The tag exists (a first request for one that does not is a 404 that makes it, and
            // the droplet is tagged after a back-off this test need not wait for).
            _ = sim.simulator.handle(
                .init(
                    method: "POST",
                    uri: "/v2/tags",
                    headers: [("Authorization", "Bearer \(sim.token)"), ("Content-Type", "application/json")],
                    body: Array(#"{"name": "web"}"#.utf8)
                )
            )
            #expect(sim.simulator.tags().contains("web"))
            // Backups switched as quickly as the renames: passes in a tight loop would otherwise
            // spend the minute's requests following them, and wait for the next.
            var timing = sim.simulator.actionTiming
            timing.backups = .milliseconds(200)
            sim.simulator.setActionTiming(timing)
            for var row in repository.rows {
                row.options = DropletOptions(tags: ["web"], backups: true)
                row.revision += 1
                repository.insert(row)
            }
            // Tags are carried out at once (204), backups followed to completion, while the list goes on.
            var last = try await reconciler.fullPass()
            let changed = try await eventually(timeout: .seconds(30)) {
                last = try await reconciler.fullPass()
                return repository.rows.allSatisfy { $0.state.change == nil }
                    && sim.simulator.requestLog().filter { $0.path.hasSuffix("/actions") && $0.method == "POST" }.count
                        >= 5
            }
            #expect(changed)
            while last.listing != nil { last = try await reconciler.fullPass() }
            #expect(last.fullViewAge != nil)
            // Passes after the list: nothing is sent again.
            for _ in 0..<3 { _ = try await reconciler.fullPass() }
            for row in repository.rows {
                #expect(row.state.change == nil, "\(row.name): \(String(describing: row.state.change))")
                #expect(row.state.drift == nil, "\(row.name): \(row.state.drift ?? "")")
            }
            let log = sim.simulator.requestLog().filter { $0.method == "POST" }
            let tags = log.filter { $0.path.hasPrefix("/v2/tags/web/resources") }
            let backups = log.filter { $0.path.hasSuffix("/actions") }
            #expect(tags.count == 5, "one tag request per droplet: \(log.map(\.path))")
            #expect(backups.count == 5, "one enable_backups per droplet: \(log.map(\.path))")
        }
    }
}
