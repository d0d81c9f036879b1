import ArgumentParser
import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import Timekeeping

@main
struct CitrusBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-bench",
        abstract:
            "Benchmarks of the real citrus-reconciler binary against a throwaway Postgres and citrus-do-sim, side by side with a naive baseline.",
        subcommands: [Run.self, Naive.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every scenario and print one Markdown table (progress goes to stderr).",
        discussion:
            "Needs the release binaries citrus-reconciler and citrus-do-sim (next to this one unless --bin-dir), Postgres 15 server binaries, and root or a user that can run initdb. Nothing leaves 127.0.0.1."
    )

    @Option(help: "Directory holding citrus-reconciler and citrus-do-sim (default: this executable's).")
    var binDir: String?

    @Flag(help: "Small sizes, to check the benchmark itself works (figures are not comparable to the goals).")
    var quick = false

    @Flag(help: "Keep the scratch directory (logs of every process) instead of removing it.")
    var keep = false

    @Flag(help: "Only the decision's CPU at --decision-rows rows × as many droplets (no database, no daemon; seconds).")
    var decisionOnly = false

    @Option(
        help: ArgumentHelp(
            "Only these scenarios, the daemon alone (no baseline beside it), one line each: \(OnlyScenario.names).",
            valueName: "scenario"
        )
    )
    var only: [OnlyScenario] = []

    @Option(help: "Rows (and droplets) for --decision-only.")
    var decisionRows = 10_000

    @Flag(
        help:
            "Also measure the 50,000-server steady figure: one whole full-list cycle, about 20 minutes more (bench.sh --scale)."
    )
    var scale = false

    @Flag(help: "Only the scale scenarios (10,000 and 50,000 servers, the watchdog under systemd) and their table.")
    var scaleOnly = false

    @Flag(
        help:
            "Only the watchdog under systemd over a seeded 50,000-server fleet (3,000 with --quick); prints its outcome."
    )
    var watchdogOnly = false

    @Option(
        name: .customLong("scale-size"),
        help:
            "A fleet size for the scale scenarios, repeated for several (default: 10,000 and 50,000); with --only brownout, its fleet (default 2,000); with --only adoption, its fleet (default 50,000)."
    )
    var scaleSizes: [Int] = []

    @Flag(help: "Skip the watchdog step of the scale scenarios.")
    var skipWatchdog = false

    @Flag(help: "Skip the scale scenarios (the table of the scenarios before issue 15, about 6 minutes).")
    var skipScale = false

    @Option(
        help:
            "The repository checkout, for deploy/install.sh and the shipped unit (the watchdog step; default: the current directory)."
    )
    var repository: String?

    func run() async throws {
        if decisionOnly {
            let decision = decisionCPU(rows: decisionRows, runs: 51)
            let sorted = decision.cpuMilliseconds.sorted()
            let size = decisionRows.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
            print(
                String(
                    format:
                        "decision, %@ rows × %@ droplets: median %.1f ms CPU (%.1f–%.1f ms, %d runs), %d actions",
                    size,
                    size,
                    sorted[sorted.count / 2],
                    sorted.first ?? 0,
                    sorted.last ?? 0,
                    sorted.count,
                    decision.actions
                )
            )
            return
        }
        guard !(scaleOnly && skipScale) else {
            throw ValidationError("--scale-only and --skip-scale exclude each other")
        }
        let started = ContinuousClock.now
        let loadAtStart = Machine.current().load
        let binDirectory =
            binDir.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("citrus-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        progress("scratch directory \(work.path)")

        let conditions = BenchResults.Conditions(
            latencyRows: quick ? 20 : 100,
            latencyGapMilliseconds: 150,
            convergeRows: quick ? 20 : 100,
            faultRows: quick ? 20 : 50,
            lostCreateProbability: 0.2,
            burstRows: quick ? 300 : 500,
            steadyServers: quick ? 200 : 1000,
            largeServers: quick ? 2000 : 10_000,
            bootSeconds: 10
        )

        let cluster = try await PostgresCluster.start()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let env = try BenchEnvironment(binDirectory: binDirectory, workDirectory: work, cluster: cluster, http: http)
        let repositoryURL = URL(fileURLWithPath: repository ?? FileManager.default.currentDirectoryPath)
        if watchdogOnly {
            do {
                let servers = quick ? 3_000 : 50_000
                let database = try await env.migratedDatabase()
                let simulator = try await env.startSimulator("watchdog-sim")
                try await seedFleet(env, simulator: simulator, database: database, count: servers, recordObserved: true)
                let outcome = try await watchdogUnderSystemd(
                    env,
                    fleet: SeededFleet(database: database, simulator: simulator, servers: servers),
                    repository: repositoryURL
                )
                await simulator.stop()
                print("watchdog: " + ScaleReport.watchdog(outcome).0)
                if case .measured(let proof) = outcome {
                    for line in proof.watchdogTimeouts + proof.withheld + proof.fullListLines { print("  \(line)") }
                    for status in proof.statuses { print("  STATUS=\(status)") }
                }
            } catch {
                progress("failed: \(error); logs in \(work.path)")
            }
            try? await http.shutdown()
            cluster.destroy()
            if !keep { try? FileManager.default.removeItem(at: work) }
            return
        }
        do {
            if !only.isEmpty {
                print(
                    try await Self.measure(
                        only: only,
                        env,
                        conditions: conditions,
                        repository: repositoryURL,
                        brownoutServers: scaleSizes.first ?? 2_000,
                        adoptionServers: scaleSizes.first ?? 50_000
                    )
                )
            } else {
                let results =
                    scaleOnly ? nil : try await Self.measure(env, conditions: conditions, quick: quick)
                let scaleResults =
                    skipScale
                    ? nil
                    : try await Self.measureScale(
                        env,
                        sizes: scaleSizes.isEmpty ? (quick ? [1_000, 3_000] : [10_000, 50_000]) : scaleSizes.sorted(),
                        quick: quick,
                        largeSteady: scale,
                        watchdog: !skipWatchdog,
                        repository: repositoryURL
                    )
                let elapsed = ContinuousClock.now - started
                print(
                    Report.render(
                        results,
                        scale: scaleResults,
                        machine: .current(),
                        loadAtStart: loadAtStart,
                        wallSeconds: elapsed.timeInterval
                    )
                )
            }
        } catch {
            progress("failed: \(error); logs in \(work.path)")
            try? await http.shutdown()
            cluster.destroy()
            throw ExitCode.failure
        }
        try? await http.shutdown()
        cluster.destroy()
        if !keep { try? FileManager.default.removeItem(at: work) }
    }

    static func measure(
        _ env: BenchEnvironment,
        conditions c: BenchResults.Conditions,
        quick: Bool
    ) async throws -> BenchResults {
        progress("decision: 10,000 rows × 10,000 droplets, in process")
        let decision = decisionCPU(rows: 10_000, runs: quick ? 5 : 51)

        progress("two replicas: idle size, then SIGKILL the leader")
        let replicas = try await replicas(env, trials: 5)

        // The steady-state window needs whole resync minutes and little else: it runs alongside
        // the scenarios below, against its own simulator and database.
        progress("steady state: \(c.steadyServers) active servers (in the background, \(quick ? 1 : 3) resync cycles)")
        async let steady = steadyState(env, servers: c.steadyServers, cycles: quick ? 1 : 3)

        progress("INSERT → create: \(c.latencyRows) rows one by one, daemon then baseline")
        let latency = try await measureInsertToCreate(
            env,
            rows: c.latencyRows,
            gap: .milliseconds(c.latencyGapMilliseconds)
        )

        // The daemon and the baseline side by side, at the same time, on the same machine.
        progress("convergence: \(c.convergeRows) rows at once, daemon and baseline side by side")
        async let convergeD = convergeDaemon(
            env,
            name: "converge",
            rows: c.convergeRows,
            faults: [:],
            timeout: .seconds(150)
        )
        async let convergeN = convergeNaive(
            env,
            name: "converge",
            rows: c.convergeRows,
            faults: [:],
            timeout: .seconds(150)
        )
        let convergence = (try await convergeD, try await convergeN)

        progress(
            "faults: \(c.faultRows) rows, \(Int(c.lostCreateProbability * 100))% of create responses lost, side by side"
        )
        let lost = ["create_response_lost_probability": c.lostCreateProbability]
        async let faultsD = convergeDaemon(env, name: "faults", rows: c.faultRows, faults: lost, timeout: .seconds(150))
        async let faultsN = convergeNaive(env, name: "faults", rows: c.faultRows, faults: lost, timeout: .seconds(150))
        let faults = (try await faultsD, try await faultsN)

        progress("\(c.largeServers) servers: plan runs, then the daemon's size")
        let large = try await largeFleet(env, servers: c.largeServers, planRuns: 3)

        progress("burst: \(c.burstRows) rows under 250/min and 5,000/h, side by side (up to 4 minutes)")
        async let burstD = burstDaemon(env, rows: c.burstRows, timeout: .seconds(240))
        async let burstN = burstNaive(env, rows: c.burstRows, timeout: .seconds(240))
        let burst = (try await burstD, try await burstN)

        progress("waiting for the steady-state window to close")
        return BenchResults(
            conditions: c,
            decision: decision,
            replicas: replicas,
            latency: latency,
            convergence: convergence,
            faults: faults,
            largeFleet: large,
            burst: burst,
            steady: try await steady
        )
    }
}

extension Run {
    /// Fleets of `sizes` servers (10,000 and 50,000; 1,000 and 3,000 with --quick) at DigitalOcean's
    /// real limits, one after the other, each but the largest with a whole full-list cycle (the
    /// largest with one only when `largeSteady`), then the watchdog under systemd over the largest.
    static func measureScale(
        _ env: BenchEnvironment,
        sizes: [Int],
        quick: Bool,
        largeSteady: Bool,
        watchdog runWatchdog: Bool,
        repository: URL
    ) async throws -> ScaleResults {
        let bootSeconds = 10.0
        let largest = sizes.last ?? 50_000
        progress("decision: \(largest) rows × \(largest) droplets, in process")
        let decision = decisionCPU(rows: largest, runs: quick ? 3 : 21)

        var results: [ScaleResult] = []
        var largeFleet: SeededFleet?
        for (index, servers) in sizes.enumerated() {
            let isLargest = index == sizes.count - 1
            let steady = !isLargest || largeSteady
            progress(
                "scale: \(servers) servers at 250/min and 5,000/h\(steady ? ", with one whole full-list cycle" : "")"
            )
            var (result, fleet) = try await scaleFleet(env, servers: servers, steady: steady, bootSeconds: bootSeconds)
            if !steady {
                result.steadyNote =
                    "not measured here: opt-in, `bash scripts/bench.sh --scale` (about 20 minutes more)"
            }
            results.append(result)
            if isLargest {
                largeFleet = fleet
            } else {
                await fleet.simulator.stop()
            }
        }

        var watchdog = WatchdogOutcome.notRun("skipped (--skip-watchdog)")
        if runWatchdog, let largeFleet {
            do {
                watchdog = try await watchdogUnderSystemd(env, fleet: largeFleet, repository: repository)
            } catch {
                progress("watchdog step failed: \(error)")
                watchdog = .notRun("the step failed: \(error)")
            }
        }
        await largeFleet?.simulator.stop()
        return ScaleResults(
            bootSeconds: bootSeconds,
            fleets: results,
            decision: decision,
            watchdog: watchdog,
            largeSteady: largeSteady
        )
    }
}

/// The baseline alone, against any DigitalOcean API URL (the simulator by default).
struct Naive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "The naive baseline alone: insert N rows, create each inline, poll each until active; print what it cost."
    )

    @Option(help: "A migrated citrus database (libpq URI).")
    var databaseURL: String

    @Option(name: .customLong("digitalocean-url"), help: "DigitalOcean API base URL.")
    var url: String

    @Option(name: .customLong("digitalocean-token-file"), help: "File holding the API token.")
    var tokenFile: String

    @Option(help: "Rows to provision at once.")
    var rows = 10

    @Option(help: "Seconds before giving up.")
    var timeout = 300

    func run() async throws {
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let connection = try await PostgresConnection.connect(databaseURL)
        let http = NaivePlatform.makeHTTPClient()
        let naive = NaivePlatform(baseURL: url, token: token, http: http)
        let start = Date()
        let outcomes = try await naive.provisionAll(
            count: rows,
            prefix: "naive",
            database: connection,
            timeout: .seconds(timeout)
        )
        let active = outcomes.compactMap(\.activeAt)
        print(
            "rows \(rows), active \(active.count), create attempts \(outcomes.map(\.createAttempts).reduce(0, +)), seconds \(String(format: "%.1f", (active.max() ?? Date()).timeIntervalSince(start)))"
        )
        try await http.shutdown()
        await connection.close()
    }
}

func progress(_ message: String) {
    let stamp = Date().formatted(.iso8601.time(includingFractionalSeconds: false))
    FileHandle.standardError.write(Data("[citrus-bench \(stamp)] \(message)\n".utf8))
}
