import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

// Fleets of 10,000 and 50,000 servers against the simulator at DigitalOcean's real limits (250 a
// minute, 5,000 an hour): what the daemon spends at rest over a whole full-list cycle, how fast
// it brings new rows up between full lists, what one full list costs, and its size.

// MARK: Results

struct FullListCost: Sendable {
    var span: FullListSpan
    /// The daemon's CPU so far (/proc/PID/stat) when its first page was seen, and at its
    /// `full list:` line (or, when it logs none, a few seconds after its last page), and when.
    var cpuAtStart: Double?
    var cpuAtEnd: Double?
    var endSeenAt: Date
    /// The daemon's own line for it, if it logs one.
    var daemonLine: String?
    var cpuSeconds: Double? { cpuAtStart.flatMap { start in cpuAtEnd.map { $0 - start } } }
}

struct SteadyCycle: Sendable {
    /// From one full list's first page to the next one's.
    var seconds: Double
    var tally: ScaleTally
    var pagesPerList: Int
    /// The daemon's CPU at rest: from the end of one full list to the first page of the next.
    var restCPUSeconds: Double?
    var restSeconds: Double
    var perHour: Double { Double(tally.total) / seconds * 3600 }
}

struct RowsToActive: Sendable {
    var rows: Int
    /// From just before the INSERT to the last row read `active`; nil if not all by the timeout.
    var seconds: Double?
    var active: Int
    /// What the simulator logged from the INSERT to the last row active.
    var tally: ScaleTally
    /// Whether a full list ran meanwhile (then the figure is not "at rest").
    var fullListMeanwhile: Bool
}

struct ScaleResult: Sendable {
    var servers: Int
    var seedSeconds: Double
    var firstList: FullListCost?
    /// nil when not measured; `steadyNote` says why.
    var steady: SteadyCycle?
    var steadyNote: String?
    var oneRow: RowsToActive?
    var twentyRows: RowsToActive?
    /// VmRSS at rest, 10 s after a full list ended, before any new row.
    var idle: ResidentSize?
    /// VmHWM at the end of the run (the peak over it).
    var peak: ResidentSize?
    /// Everything the daemon sent, from its start to its stop.
    var whole: ScaleTally
    var wholeSeconds: Double
    /// Every `full list:` line the daemon logged.
    var fullListLines: [String]
}

/// The simulator and database of a seeded fleet, for a later step to reuse (the caller stops the
/// simulator).
struct SeededFleet: Sendable {
    var database: String
    var simulator: SimulatorProcess
    /// Servers in the table and droplets at the simulator, all active.
    var servers: Int
}

// MARK: The scenario

/// `servers` active servers with their droplets, at DigitalOcean's real limits; the daemon at rest:
/// its first full list (cost, CPU), optionally one whole full-list cycle (steady requests an hour),
/// then one new row and 20 new rows between full lists, and its size.
func scaleFleet(
    _ env: BenchEnvironment,
    servers: Int,
    steady: Bool,
    bootSeconds: Double
) async throws -> (ScaleResult, SeededFleet) {
    let label = "scale-\(servers)"
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("\(label)-sim", bootSeconds: bootSeconds)
    do {
        let seedStart = ContinuousClock.now
        try await seedFleet(env, simulator: simulator, database: database, count: servers, recordObserved: true)
        let seedSeconds = (ContinuousClock.now - seedStart).timeInterval
        progress("\(label): seeded \(servers) droplets and rows in \(String(format: "%.0f", seedSeconds)) s")
        let result = try await measureScale(
            env,
            label: label,
            database: database,
            simulator: simulator,
            servers: servers,
            steady: steady,
            seedSeconds: seedSeconds
        )
        // The 21 rows it inserted are active servers too now.
        return (result, SeededFleet(database: database, simulator: simulator, servers: servers + 21))
    } catch {
        await simulator.stop()
        throw error
    }
}

private func measureScale(
    _ env: BenchEnvironment,
    label: String,
    database: String,
    simulator: SimulatorProcess,
    servers: Int,
    steady: Bool,
    seedSeconds: Double
) async throws -> ScaleResult {
    let pages = (servers + 199) / 200
    // The cadence the daemon should settle on (750 list requests an hour by default), and a bound
    // on one list (paced, it may take several minutes).
    let cadence = max(60, Double(pages) * 3600 / 750)
    let listBound = Duration.seconds(Int64(pages) * 3 + 120)

    let daemonStart = Date()
    let daemon = try env.startDaemon("\(label)-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }
    let tail = LogTail(daemon.logFile)
    var fullListLines: [String] = []
    func readDaemonLog() {
        fullListLines += tail.newLines().compactMap(fullListMessage(in:))
    }

    /// Waits for full list number `index` (from 0) to complete; measures the daemon's CPU over it.
    func completeList(_ index: Int, timeout: Duration) async throws -> FullListCost {
        var cpuAtStart: Double?
        var log: [LoggedRequest] = []
        let linesBefore = fullListLines.count
        var completedAt: ContinuousClock.Instant?
        let done = try await eventually(timeout: timeout, every: .milliseconds(250)) {
            guard daemon.isRunning else { return true }
            log = try await simulator.requests()
            readDaemonLog()
            let lists = FullListSpan.all(in: log)
            guard lists.count > index else { return false }
            if cpuAtStart == nil { cpuAtStart = processCPUSeconds(pid: daemon.pid) }
            if fullListLines.count > linesBefore { return true }
            guard lists[index].pages >= pages else { return false }
            // A daemon that logs no `full list:` line: its pass ends with the decision and its
            // writes; a few seconds after the last page it is at rest.
            if completedAt == nil { completedAt = .now }
            return ContinuousClock.now - completedAt! > .seconds(5)
        }
        guard daemon.isRunning else {
            throw BenchError("\(label): the daemon exited: \(daemon.output.suffix(3000))")
        }
        let lists = FullListSpan.all(in: log)
        guard done, lists.count > index, lists[index].pages >= pages else {
            throw BenchError(
                "\(label): full list \(index + 1) did not complete within \(timeout) (\(lists.last.map { "\($0.pages) of \(pages) pages" } ?? "no page"))"
            )
        }
        return FullListCost(
            span: lists[index],
            cpuAtStart: cpuAtStart,
            cpuAtEnd: processCPUSeconds(pid: daemon.pid),
            endSeenAt: Date(),
            daemonLine: fullListLines.count > linesBefore ? fullListLines[linesBefore] : nil
        )
    }

    progress("\(label): the daemon's first full list (\(pages) pages)")
    let firstList = try await completeList(0, timeout: listBound)
    progress(
        "\(label): first full list: \(firstList.span.pages) pages in \(String(format: "%.1f", firstList.span.seconds)) s"
            + (firstList.daemonLine.map { "; the daemon: \($0)" } ?? "; no `full list:` line from the daemon")
    )

    var cycle: SteadyCycle?
    if steady {
        progress(
            "\(label): one whole full-list cycle (about \(String(format: "%.0f", cadence)) s at 750 list requests an hour)"
        )
        let second = try await completeList(1, timeout: .seconds(Int64(cadence)) + listBound + .seconds(120))
        let log = try await simulator.requests()
        let window = log.filter { $0.time >= firstList.span.start && $0.time < second.span.start }
        cycle = SteadyCycle(
            seconds: second.span.start.timeIntervalSince(firstList.span.start),
            tally: ScaleTally(window),
            pagesPerList: firstList.span.pages,
            restCPUSeconds: firstList.cpuAtEnd.flatMap { end in second.cpuAtStart.map { $0 - end } },
            restSeconds: second.span.start.timeIntervalSince(firstList.endSeenAt)
        )
        progress(
            "\(label): steady: \(cycle!.tally.total) requests in \(String(format: "%.0f", cycle!.seconds)) s = \(String(format: "%.0f", cycle!.perHour)) an hour"
        )
    }

    // At rest between full lists.
    try await Task.sleep(for: .seconds(10))
    let idle = ResidentSize.of(pid: daemon.pid)
    let connection = try await PostgresConnection.connect(database)

    func rowsToActive(count: Int, prefix: String, timeout: Duration) async throws -> RowsToActive {
        let start = Date()
        if count == 1 {
            _ = try await connection.insertServer(name: "\(prefix)-1")
        } else {
            _ = try await connection.insertServers(count: count, prefix: prefix)
        }
        var active = 0
        let converged = try await eventually(timeout: timeout, every: .milliseconds(100)) {
            active = try await connection.query(
                "SELECT count(*) AS n FROM servers WHERE name LIKE \(prefix + "-%") AND status = 'active'"
            ).single().decode(Int.self, "n")
            return active >= count || !daemon.isRunning
        }
        let end = Date()
        let window = try await simulator.requests().filter { $0.time >= start && $0.time <= end }
        return RowsToActive(
            rows: count,
            seconds: converged && active >= count ? end.timeIntervalSince(start) : nil,
            active: active,
            tally: ScaleTally(window),
            fullListMeanwhile: window.contains(where: \.isFullListPage)
        )
    }

    progress("\(label): one new row → active")
    let one = try await rowsToActive(count: 1, prefix: "scale-one", timeout: .seconds(180))
    try await Task.sleep(for: .seconds(5))
    progress("\(label): 20 new rows at once → active")
    let twenty = try await rowsToActive(count: 20, prefix: "scale-twenty", timeout: .seconds(240))
    try await Task.sleep(for: .seconds(3))

    await connection.close()
    readDaemonLog()
    let peak = ResidentSize.of(pid: daemon.pid)
    let whole = try await simulator.requests()
    let stopped = Date()
    await daemon.stop()
    return ScaleResult(
        servers: servers,
        seedSeconds: seedSeconds,
        firstList: firstList,
        steady: cycle,
        steadyNote: nil,
        oneRow: one,
        twentyRows: twenty,
        idle: idle,
        peak: peak,
        whole: ScaleTally(whole),
        wholeSeconds: stopped.timeIntervalSince(daemonStart),
        fullListLines: fullListLines
    )
}
