import CitrusTestKit
import DigitalOcean
import DigitalOceanHTTP
import DigitalOceanSimulator
import Foundation
import Logging
import Postgres
import Testing

/// The real daemon binary (one or three replicas) against a real Postgres and the simulator, with
/// the world misbehaving: leaders killed, the simulator and Postgres restarted, the rate limit
/// tight or spent by someone else, every fault on. Each scenario ends with the fleet invariant
/// (exactly one droplet per live row, none for deleted rows, none the daemon made without a row)
/// and with no row left outside a final state. Serialized: each scenario runs its own cluster,
/// simulator and daemons, and two cores cannot run two of them side by side without timing noise.
@Suite("Chaos: replicas, restarts, rate limits and faults, end to end", .serialized)
struct ChaosTests {
    static let quick = World.quick
    static let quiet = Logger(label: "chaos", factory: { _ in SwiftLogNoOpLogHandler() })

    // MARK: Leadership

    @Test(
        "three replicas, the leader SIGKILLed ten times during a 60-row burst: one droplet per row; takeover time and requests per row"
    )
    func leaderKilledDuringBurst() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 2024)
        // Widen the window between request and answer, so kills land while creates are in flight.
        configuration.faults.latencySeconds = 0.2
        try await World.with(simulator: configuration) { world in
            // Each life of a replica has its own name: the session's application_name and the log file.
            var replicas: [String: ChildProcess] = [:]
            var lives = 0
            func start(_ slot: String) throws {
                lives += 1
                let name = "\(slot)-\(lives)"
                replicas[name] = try world.replica(name, Self.quick)
            }
            defer { for process in replicas.values { process.signal(SIGKILL) } }
            for slot in ["alpha", "beta", "gamma"] { try start(slot) }
            #expect(
                try await eventually(timeout: .seconds(30)) { try await world.leader() != nil },
                "no replica took the lock"
            )

            var takeovers: [Double] = []  // SIGKILL → the lock held by another replica
            var firstActions: [Double] = []  // SIGKILL → the new leader's first DigitalOcean request
            var ids: [UUID] = []
            var inFlightAtKill = 0
            for kill in 1...10 {
                // The burst arrives in waves, so every kill lands among fresh creates.
                for i in 0..<6 { ids.append(try await world.insert("burst-\(kill)-\(i)")) }
                try await Task.sleep(for: .milliseconds(Int.random(in: 50...800)))
                guard let leaderName = try await world.leader(), let leader = replicas[leaderName] else {
                    Issue.record("no known leader before kill \(kill)")
                    continue
                }
                inFlightAtKill += try await world.rows().filter { $0.status != "active" }.count
                let killedAt = Date()
                leader.signal(SIGKILL)
                var successor: String?
                let tookOver = try await eventually(timeout: .seconds(15), every: .milliseconds(5)) {
                    successor = try await world.leader()
                    return successor != nil && successor != leaderName
                }
                #expect(tookOver, "no replica took over after kill \(kill)")
                if tookOver { takeovers.append(Date().timeIntervalSince(killedAt)) }
                await leader.waitForExit(timeout: .seconds(10))
                replicas[leaderName] = nil
                try start(String(leaderName.split(separator: "-")[0]))
                // The new leader's first act is its full pass's list; nothing else talks to the simulator.
                if await eventually(
                    timeout: .seconds(10),
                    every: .milliseconds(10),
                    { world.requests().contains { $0.time > killedAt } }
                ),
                    let first = world.requests().first(where: { $0.time > killedAt })
                {
                    firstActions.append(first.time.timeIntervalSince(killedAt))
                }
                try await Task.sleep(for: .seconds(1))
            }
            #expect(inFlightAtKill > 0, "every kill landed on a settled fleet; the test proved nothing")

            let leaderProcess = try await world.leader().flatMap { replicas[$0] }
            try await world.converge(timeout: .seconds(120), daemon: leaderProcess)
            #expect(try await world.unsettledRows().isEmpty)
            let rows = try await world.expectEveryRowActiveAndCreatedOnce()
            #expect(rows.count == 60)

            let total = world.requests().count
            let byRoute = Dictionary(grouping: world.requests()) { "\($0.method) \($0.route)" }.mapValues(\.count)
            print(
                "figure: leader takeover after SIGKILL (lock taken by another replica): median \(Self.ms(median(takeovers))), worst \(Self.ms(takeovers.max())) over \(takeovers.count) kills"
            )
            print(
                "figure: SIGKILL → new leader's first DigitalOcean request: median \(Self.ms(median(firstActions))), worst \(Self.ms(firstActions.max())) over \(firstActions.count) kills"
            )
            print(
                "figure: 60-row burst with the leader killed 10 times: \(total) requests = \(String(format: "%.2f", Double(total) / 60)) per row \(byRoute.sorted { $0.key < $1.key })"
            )

            for process in replicas.values {
                await process.stop()
                #expect(process.exitStatus == 0, "a replica did not stop cleanly: \(process.output.suffix(2000))")
            }
        }
    }

    // MARK: Restarts

    @Test("the simulator restarted (droplets kept on disk) during a 40-row burst: one droplet per row")
    func simulatorRestartedDuringBurst() async throws {
        let stateDirectory = NSTemporaryDirectory() + "citrus-sim-state-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        var configuration = SimulatorHarness.testConfiguration(seed: 77)
        configuration.faults.latencySeconds = 0.2
        configuration.stateDirectory = stateDirectory
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            for i in 0..<40 { try await world.insert("sim-restart-\(i)") }
            #expect(
                await eventually(timeout: .seconds(20), every: .milliseconds(10)) {
                    world.requests(method: "POST").count >= 6
                }
            )

            // Down hard: listening socket and open connections closed, in-flight answers lost.
            await world.sim.server.close()
            let unsettledAtRestart = try await world.unsettledRows().count
            #expect(unsettledAtRestart > 0, "the burst was over before the restart; the test proved nothing")
            let before = world.sim.simulator.droplets().count
            try await Task.sleep(for: .seconds(3))

            let restarted = try SimulatedDigitalOcean(configuration: configuration)
            #expect(restarted.droplets().count == before, "the restarted simulator lost droplets")
            let server = try await SimulatorServer.bind(
                host: "127.0.0.1",
                port: world.sim.port,
                simulator: restarted,
                logger: Self.quiet
            )
            world.restartedSimulator.replace(with: restarted)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                try await world.converge(timeout: .seconds(90), daemon: daemon)
                #expect(try await world.unsettledRows().isEmpty)
                try await world.expectEveryRowActiveAndCreatedOnce()
                #expect(daemon.isRunning)
                print(
                    "figure: simulator down 3 s with \(unsettledAtRestart) of 40 rows unsettled; \(before) droplets survived the restart"
                )
                await daemon.stop()
                #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
                group.cancelAll()
            }
        }
    }

    @Test("Postgres restarted during a 40-row burst: the daemon regains leadership and every row ends with one droplet")
    func postgresRestartedDuringBurst() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 15)
        configuration.faults.latencySeconds = 0.2
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            for i in 0..<40 { try await world.insert("pg-restart-\(i)") }
            #expect(
                await eventually(timeout: .seconds(20), every: .milliseconds(10)) {
                    world.requests(method: "POST").count >= 6
                }
            )
            let unsettledAtRestart = try await world.unsettledRows().count
            #expect(unsettledAtRestart > 0, "the burst was over before the restart; the test proved nothing")
            try await world.cluster.restart()
            try await world.db.reconnect()
            // Rows that arrive after the restart too: the daemon's LISTEN session must be back.
            for i in 0..<10 { try await world.insert("pg-after-\(i)") }

            try await world.converge(timeout: .seconds(90), daemon: daemon)
            #expect(try await world.unsettledRows().isEmpty)
            let rows = try await world.expectEveryRowActiveAndCreatedOnce()
            #expect(rows.count == 50)
            #expect(daemon.isRunning)
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    // MARK: Rate limits
    //
    // These two need the rate budget that holds (pacing, a reserve, priorities, and no request
    // after a 429 until its wait has passed), which lands separately from this suite. Until it
    // does they are expected to fail on the 429 checks; convergence and one droplet per row must
    // hold already.

    @Test("30 requests a minute with 60 rows: all converge, and the daemon never gets two 429s in a row")
    func thirtyPerMinute() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 30)
        // An honest minute. The simulator's 30 a minute stands in for DigitalOcean's 250, and the
        // daemon is told the token's limit the way it knows DigitalOcean's by default: its own
        // budget must then pace every request (creates, lists, lookups) under it. (Reacting to a
        // 429 it could not foresee is the next test's subject.)
        configuration.rateLimits = SimulatorRateLimits(perMinute: 30)
        try await World.with(simulator: configuration) { world in
            let daemon = try world.daemon([
                "--fast-interval", "10s", "--resync-interval", "30s", "--settle-period", "5s", "--rate-per-minute",
                "30",
            ])
            defer { daemon.signal(SIGKILL) }
            let started = Date()
            for i in 0..<60 { try await world.insert("tight-\(i)") }
            try await world.converge(timeout: .seconds(170), daemon: daemon)
            let took = Date().timeIntervalSince(started)
            #expect(try await world.unsettledRows().isEmpty)
            try await world.expectEveryRowActiveAndCreatedOnce()
            let requests = world.requests()
            let limited = requests.filter { $0.status == 429 }
            let pairs = RateLimitAudit.consecutive429s(requests)
            let backToBack = pairs.count
            #expect(
                backToBack == 0,
                "two 429s in a row \(backToBack) times, at requests \(pairs.map { "#\($0.0.sequence)-#\($0.1.sequence)" })"
            )
            let early = RateLimitAudit.requestsBeforeRetryAfter(requests, limits: configuration.rateLimits)
            let tooEarly = early.count
            #expect(
                tooEarly == 0,
                "\(tooEarly) requests sent before a 429's retry-after had passed: \(early.map { "#\($0.sequence) \($0.method) \($0.route)" })"
            )
            print(
                "figure: 60 rows at 30 requests/minute converged in \(String(format: "%.0f", took)) s with \(requests.count) requests, \(limited.count) answered 429, \(pairs.count) back-to-back 429s"
            )
            await daemon.stop()
        }
    }

    @Test(
        "another client spends most of the token's budget at the same time: the daemon converges, no 429 for a request sent after a 429"
    )
    func anotherClientSpendsTheBudget() async throws {
        try await World.with { world in
            let other = DigitalOceanClient(
                configuration: .init(token: DigitalOceanToken(world.sim.token), baseURL: world.sim.baseURL),
                logger: Self.quiet
            )
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let otherTag = "other-tool"
            let started = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The other tool: 220 of the minute's 250 as fast as it can, then one a second, for
                // at most 150 s. Its requests are told apart by their tag filter.
                group.addTask {
                    var sent = 0
                    let deadline = ContinuousClock.now + .seconds(150)
                    while !Task.isCancelled, ContinuousClock.now < deadline {
                        _ = try? await other.listDroplets(tag: otherTag)
                        sent += 1
                        if sent >= 220 { try? await Task.sleep(for: .seconds(1)) }
                    }
                }
                #expect(
                    await eventually(timeout: .seconds(30)) {
                        world.requests().filter { $0.path.contains(otherTag) }.count >= 200
                    }
                )
                for i in 0..<30 { try await world.insert("shared-\(i)") }
                try await world.converge(timeout: .seconds(150), daemon: daemon)
                group.cancelAll()
            }
            try await other.shutdown()
            let took = Date().timeIntervalSince(started)
            #expect(try await world.unsettledRows().isEmpty)
            try await world.expectEveryRowActiveAndCreatedOnce()
            let all = world.requests()
            let daemons = all.filter { !$0.path.contains(otherTag) }
            let pairs = RateLimitAudit.consecutive429s(daemons)
            let backToBack = pairs.count
            // Requests already in flight together when the other tool spends the minute cannot be
            // recalled (README, rate budget): they may come back 429 together. What must never
            // happen is a 429 for a request sent after one was answered: the budget holds every
            // later request until the retry-after has passed.
            let afterAnAnswer = pairs.filter { $0.1.time.timeIntervalSince($0.0.time) > 0.1 }
            #expect(
                afterAnAnswer.isEmpty,
                "the daemon got two 429s in a row \(afterAnAnswer.count) times, at requests \(afterAnAnswer.map { "#\($0.0.sequence)-#\($0.1.sequence)" })"
            )
            #expect(backToBack < 4, "more 429s together than requests may be in flight (--max-concurrent-calls 4)")
            print(
                "figure: with another client using the token (\(all.count - daemons.count) requests), the daemon sent \(daemons.count) (\(daemons.filter { $0.status == 429 }.count) answered 429, \(pairs.count) back-to-back) and converged 30 rows in \(String(format: "%.0f", took)) s"
            )
            await daemon.stop()
        }
    }

    // MARK: Faults

    @Test(
        "every simulator fault at once: failed placements are placed again, and every row converges with one droplet"
    )
    func allFaultsAtOnce() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 31337)
        configuration.faults.serverErrorProbability = 0.15
        configuration.faults.createResponseLostProbability = 0.15
        configuration.faults.createServerErrorProbability = 0.1
        configuration.faults.listLagSeconds = 3
        configuration.faults.vanishProbability = 0.15
        configuration.faults.latencySeconds = 0.1
        try await World.with(simulator: configuration) { world in
            // The settle period must outlast the list lag: that is what it is for.
            let daemon = try world.daemon([
                "--fast-interval", "1s", "--resync-interval", "10s", "--settle-period", "5s",
            ])
            defer { daemon.signal(SIGKILL) }
            for i in 0..<30 { try await world.insert("stormy-\(i)") }
            try await world.converge(timeout: .seconds(150), daemon: daemon)
            #expect(try await world.unsettledRows().isEmpty)

            var failed = 0
            for row in try await world.rows() {
                let created = world.everCreated(for: row.id)
                let real = created.filter { $0.vanishedAt == nil }
                #expect(real.count <= 1, "\(row.name): \(real.count) droplets that did not vanish")
                switch row.status {
                case "active":
                    #expect(real.count == 1 && real.first?.id == row.dropletID, "\(row) created \(created.map(\.id))")
                case "failed":
                    // Only once every placement the daemon makes has failed (0.15³ a row).
                    failed += 1
                    #expect(row.lastError?.contains("placement of 3 droplets failed") == true, "\(row)")
                    #expect(created.count >= 3 && real.isEmpty, "\(row.name) failed with \(created.map(\.id))")
                default:
                    Issue.record("\(row) is not settled")
                }
            }
            // The faults must actually have hit, or the test proved nothing.
            let posts = world.requests(method: "POST", route: "/v2/droplets")
            #expect(posts.contains { $0.status == nil }, "no create response was lost")
            #expect(posts.contains { $0.status == 500 }, "no create was answered 500")
            let placedAgain = try await world.events().filter { $0.kind == "placement_failed" }.count
            #expect(placedAgain > 0, "no droplet vanished under a bound row")
            print(
                "figure: all faults on, 30 rows: \(30 - failed) active, \(failed) failed after 3 placements, \(placedAgain) placed again; \(world.requests().count) requests, \(posts.count) creates"
            )
            #expect(daemon.isRunning)
            await daemon.stop()
        }
    }

    static func ms(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite else { return "n/a" }
        return String(format: "%.0f ms", seconds * 1000)
    }
}
