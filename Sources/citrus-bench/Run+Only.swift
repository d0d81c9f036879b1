import ArgumentParser
import Foundation

/// A scenario `citrus-bench run --only` can run by itself, to measure one figure while changing
/// the code that moves it, in seconds or a few minutes instead of the whole run.
enum OnlyScenario: String, ExpressibleByArgument, CaseIterable {
    case insertToCreate = "insert-to-create"
    case converge
    case burst
    case faults
    case brownout
    case adoption

    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension Run {
    /// The chosen scenarios, under the full run's conditions, one line of figures each.
    static func measure(
        only scenarios: [OnlyScenario],
        _ env: BenchEnvironment,
        conditions c: BenchResults.Conditions,
        repository: URL,
        brownoutServers: Int = 2_000,
        adoptionServers: Int = 50_000
    ) async throws -> String {
        var lines: [String] = []
        for scenario in scenarios {
            switch scenario {
            case .insertToCreate:
                progress("INSERT → create: \(c.latencyRows) rows one by one, the daemon alone")
                let daemon = try await measureInsertToCreate(
                    env,
                    rows: c.latencyRows,
                    gap: .milliseconds(c.latencyGapMilliseconds),
                    baseline: false
                ).daemon
                // Medians of each tenth of the run, in insert order: the fleet grows by a droplet
                // a row, so a cost that grows with it shows as a rising trend.
                let tenth = max(1, daemon.samples.count / 10)
                let trend = stride(from: 0, to: daemon.samples.count, by: tenth).compactMap { start in
                    Statistics.median(Array(daemon.samples[start..<min(start + tenth, daemon.samples.count)]))
                }
                lines.append(
                    "INSERT → create (\(c.latencyRows) rows, one every \(c.latencyGapMilliseconds) ms): median "
                        + "\(figure(daemon.median, "ms")), p99 \(figure(daemon.p99, "ms")) "
                        + "(\(daemon.samples.count) of \(daemon.expected) rows created); medians by tenth of the run: "
                        + trend.map { String(format: "%.1f", $0) }.joined(separator: ", ") + " ms"
                )
            case .converge:
                progress("convergence: \(c.convergeRows) rows at once, the daemon alone")
                let result = try await convergeDaemon(
                    env,
                    name: "converge",
                    rows: c.convergeRows,
                    faults: [:],
                    timeout: .seconds(150)
                )
                let t = result.tally
                lines.append(
                    "\(c.convergeRows) rows at once: \(figure(result.seconds, "s")) to all active; "
                        + String(format: "%.2f", result.requestsPerRow) + " requests per row "
                        + "(\(t.creates) creates, \(t.listPages) list pages, \(t.dropletGets) GETs by id); "
                        + "\(t.tooManyRequests) answered 429"
                )
            case .burst:
                progress("burst: \(c.burstRows) rows under 250/min and 5,000/h, the daemon alone (up to 4 minutes)")
                let result = try await burstDaemon(env, rows: c.burstRows, timeout: .seconds(240))
                lines.append(
                    "\(c.burstRows)-row burst: \(figure(result.secondsToAllCreates, "s")) to all creates sent "
                        + "(floor \(String(format: "%.0f", result.slidingFloorSeconds)) s: "
                        + "\(result.countedRequests) counted requests incl. \(result.listPages) list pages); "
                        + "\(result.tally.total) requests, \(result.tally.tooManyRequests) answered 429"
                )
            case .faults:
                progress("faults: 30 rows under 20% 5xx, 20% lost create answers, 10% created-then-500, 5 s list lag")
                let result = try await convergeUnderFaults(env, name: "stormy", rows: 30, timeout: .seconds(300))
                let t = result.tally
                lines.append(
                    "30 rows under faults: median \(figure(result.median, "s")), all \(figure(result.worst, "s")) "
                        + "to active (\(result.perRow.count) of 30 active); \(result.duplicates) duplicate droplets; "
                        + "\(t.total) requests (\(t.creates) creates, \(t.listPages) list pages, "
                        + "\(t.dropletGets) GETs by id), \(t.tooManyRequests) answered 429; "
                        + "\(result.faultedCreates) creates unanswered or answered 500"
                )
            case .brownout:
                // 2,000 by default, ten pages: the fleet is listed in one slice before the brownout
                // and again after. A fleet of more than one slice (--scale-size 50000) is caught
                // halfway through its first list.
                let servers = brownoutServers
                progress("brownout: seeding \(servers) servers")
                let database = try await env.migratedDatabase()
                let simulator = try await env.startSimulator("brownout-sim")
                try await seedFleet(env, simulator: simulator, database: database, count: servers, recordObserved: true)
                let outcome = try await brownoutUnderSystemd(
                    env,
                    fleet: SeededFleet(database: database, simulator: simulator, servers: servers),
                    repository: repository
                )
                await simulator.stop()
                switch outcome {
                case .notRun(let reason):
                    lines.append("brownout: not run: \(reason)")
                case .measured(let proof):
                    lines.append("brownout: " + proof.line)
                    for line in proof.watchdogTimeouts + proof.withheld { lines.append("  \(line)") }
                    for status in proof.statuses { lines.append("  STATUS=\(status)") }
                }
            case .adoption:
                // Twice the goal, and the moment issue 23 gave main's figure for the first start
                // (2,000 of 50,000 active after 10 minutes).
                let bound = Duration.seconds(600)
                for start in AdoptionStart.allCases {
                    progress(
                        "adoption \(start.rawValue) of \(AdoptionStart.allCases.count): \(start.summary), \(adoptionServers) servers at 250/min and 5,000/h (up to \(bound.components.seconds / 60) minutes)"
                    )
                    let result = try await adoption(
                        env,
                        start: start,
                        servers: adoptionServers,
                        bootSeconds: c.bootSeconds,
                        bound: bound
                    )
                    let line = result.line(bootSeconds: c.bootSeconds)
                    progress(line)
                    lines.append(line)
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func figure(_ value: Double?, _ unit: String) -> String {
        value.map { String(format: $0 < 10 ? "%.2f" : "%.1f", $0) + " " + unit } ?? "not measured"
    }
}
