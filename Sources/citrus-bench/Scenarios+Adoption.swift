import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore

// Issue 23: a cold start over a fleet the daemon has not bound yet, at DigitalOcean's real limits.
// Each start has its own database and simulator: how long until every row is adopted, what it
// cost, whether a row inserted meanwhile waits behind the backlog, and the daemon's peak size.

/// How the fleet looks when the daemon starts cold.
enum AdoptionStart: Int, CaseIterable, Sendable {
    /// A platform moving its fleet under the daemon: droplets carry both tags, rows record no
    /// droplet (`creating`, no id, no addresses, no create intent).
    case identityTags = 1
    /// The fleet of the platform's earlier backend: droplets carry `citrus-host` only, rows are
    /// `active` with the droplet's id and addresses but no droplet facts.
    case recordedIDs
    /// A converged fleet, a tenth of its rows restored from before their droplet ids were
    /// recorded (`creating`, id, addresses and facts gone, their create intent an hour old).
    case restored
    /// As `identityTags`, the new row inserted once the first full list is half read.
    case newRowMidList

    var summary: String {
        switch self {
        case .identityTags: "identity tags, rows without ids"
        case .recordedIDs: "recorded ids, fleet tag only"
        case .restored: "restored rows in a converged fleet"
        case .newRowMidList: "identity tags, rows without ids, new row mid-list"
        }
    }
}

struct AdoptionResult: Sendable {
    var start: AdoptionStart
    var servers: Int
    /// Rows the daemon had to adopt: every row, or the restored ones.
    var waiting: Int
    var seedSeconds: Double
    /// From the daemon's start to every row adopted (`active`, its droplet's facts recorded);
    /// nil if not all were by the bound.
    var secondsToAdopted: Double?
    /// Rows adopted when the wait ended.
    var adopted: Int
    var waitedSeconds: Double
    /// What the simulator logged from the daemon's start to the last row adopted (or the bound).
    var tally: ScaleTally
    /// When the new row was inserted, after the daemon's start; nil if the moment never came.
    var newRowInsertedAfter: Double?
    /// From the new row's INSERT to it reading `active`; nil if it did not by the end.
    var newRowSeconds: Double?
    /// The new row's status when the wait ended, and how long after its INSERT.
    var newRowFinalStatus: String?
    var newRowWatchedSeconds: Double?
    /// VmHWM when the wait ended.
    var peak: ResidentSize?
}

/// One cold start of the daemon over `servers` servers as `start` lays them out; waits (up to
/// `bound`) until every row is adopted and the new row is `active`.
func adoption(
    _ env: BenchEnvironment,
    start: AdoptionStart,
    servers: Int,
    bootSeconds: Double,
    bound: Duration
) async throws -> AdoptionResult {
    let label = "adoption-\(start.rawValue)"
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("\(label)-sim", bootSeconds: bootSeconds)
    do {
        let seedStart = ContinuousClock.now
        let waiting = try await seedAdoption(start, env, simulator: simulator, database: database, servers: servers)
        let seedSeconds = (ContinuousClock.now - seedStart).timeInterval
        progress(
            "\(label): seeded \(servers) droplets and rows (\(waiting) to adopt) in \(String(format: "%.0f", seedSeconds)) s; the daemon starts cold"
        )
        let connection = try await PostgresConnection.connect(database)
        let result: AdoptionResult
        do {
            result = try await measureAdoption(
                env,
                label: label,
                start: start,
                connection: connection,
                database: database,
                simulator: simulator,
                fleet: (servers: servers, waiting: waiting, seedSeconds: seedSeconds),
                bound: bound
            )
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        await simulator.stop()
        return result
    } catch {
        await simulator.stop()
        throw error
    }
}

/// Lays the fleet out as `start` describes; returns how many rows wait to be adopted.
private func seedAdoption(
    _ start: AdoptionStart,
    _ env: BenchEnvironment,
    simulator: SimulatorProcess,
    database: String,
    servers: Int
) async throws -> Int {
    switch start {
    case .identityTags, .newRowMidList:
        let ids = (0..<servers).map { _ in UUID() }
        let droplets = try await injectDroplets(simulator: simulator, ids: ids, identityTags: true)
        let json = try rowRecords(ids: ids, droplets: droplets)
        let connection = try await PostgresConnection.connect(database)
        try await connection.query(
            """
            INSERT INTO servers (id, name, status)
            SELECT r.id, r.name, 'creating' FROM json_to_recordset(\(json)::json) AS r(id uuid, name text)
            """
        )
        await connection.close()
        return servers
    case .recordedIDs:
        try await seedFleet(env, simulator: simulator, database: database, count: servers, identityTags: false)
        return servers
    case .restored:
        try await seedFleet(env, simulator: simulator, database: database, count: servers, recordObserved: true)
        // 5,000 in a fleet of 50,000.
        let restored = servers / 10
        let connection = try await PostgresConnection.connect(database)
        try await connection.query(
            """
            UPDATE servers SET status = 'creating', digital_ocean_id = NULL, ip_address = NULL, ipv6_address = NULL,
                droplet_name = NULL, droplet_region = NULL, droplet_size = NULL, droplet_image = NULL,
                create_attempted_at = now() - interval '1 hour', create_attempts = 1
            WHERE id IN (SELECT id FROM servers ORDER BY id LIMIT \(restored))
            """
        )
        await connection.close()
        return restored
    }
}

private func measureAdoption(
    _ env: BenchEnvironment,
    label: String,
    start: AdoptionStart,
    connection: PostgresConnection,
    database: String,
    simulator: SimulatorProcess,
    fleet: (servers: Int, waiting: Int, seedSeconds: Double),
    bound: Duration
) async throws -> AdoptionResult {
    let servers = fleet.servers
    let newRowName = "adopt-new-1"
    let pages = (servers + 199) / 200

    let daemonStart = Date()
    let daemon = try env.startDaemon("\(label)-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }

    var adoptedAt: Date?
    var adopted = 0
    var newRowInsertedAt: Date?
    var newRowActiveAt: Date?
    var lastReport = daemonStart
    _ = try await eventually(timeout: bound, every: .milliseconds(500)) {
        guard daemon.isRunning else { return true }
        let now = Date()
        if newRowInsertedAt == nil {
            let due: Bool
            var moment = ""
            switch start {
            case .newRowMidList:
                let read = FullListSpan.all(in: try await simulator.requests()).first?.pages ?? 0
                due = read >= (pages + 1) / 2
                moment = ", page \(read) of \(pages) of the first full list read"
            default:
                due = now.timeIntervalSince(daemonStart) >= 20
            }
            if due {
                newRowInsertedAt = Date()
                _ = try await connection.insertServer(name: newRowName)
                progress(
                    "\(label): new row inserted \(String(format: "%.0f", newRowInsertedAt!.timeIntervalSince(daemonStart))) s after the daemon's start\(moment)"
                )
            }
        }
        // Adopted: the daemon's write that makes a row active also records its droplet's facts.
        // Rows `active` from the start (recorded ids) count once that write is in.
        let counts = try await connection.query(
            """
            SELECT count(*) FILTER (WHERE status = 'active' AND droplet_name IS NOT NULL AND name <> \(newRowName)) AS adopted,
                count(*) FILTER (WHERE status = 'active' AND name <> \(newRowName)) AS active,
                count(*) FILTER (WHERE status = 'active' AND name = \(newRowName)) AS fresh
            FROM servers
            """
        ).single()
        adopted = try counts.decode(Int.self, "adopted")
        let seen = Date()
        if adoptedAt == nil, adopted >= servers { adoptedAt = seen }
        if newRowActiveAt == nil, try counts.decode(Int.self, "fresh") > 0 { newRowActiveAt = seen }
        if seen.timeIntervalSince(lastReport) >= 60 {
            lastReport = seen
            progress(
                "\(label): \(String(format: "%.0f", seen.timeIntervalSince(daemonStart))) s: \(adopted) of \(servers) adopted "
                    + "(\(try counts.decode(Int.self, "active")) active); new row "
                    + (newRowInsertedAt == nil
                        ? "not inserted yet" : newRowActiveAt == nil ? "not active yet" : "active")
            )
        }
        return adoptedAt != nil && newRowActiveAt != nil
    }
    guard daemon.isRunning else {
        throw BenchError("\(label): the daemon exited: \(daemon.output.suffix(3000))")
    }
    let ended = Date()
    let peak = ResidentSize.of(pid: daemon.pid)
    let windowEnd = adoptedAt ?? ended
    let tally = ScaleTally(try await simulator.requests().filter { $0.time >= daemonStart && $0.time <= windowEnd })
    var newRowFinalStatus: String?
    if newRowActiveAt == nil, newRowInsertedAt != nil {
        newRowFinalStatus = try await connection.query("SELECT status FROM servers WHERE name = \(newRowName)")
            .single().decode(String.self, "status")
    }
    await daemon.stop()
    return AdoptionResult(
        start: start,
        servers: servers,
        waiting: fleet.waiting,
        seedSeconds: fleet.seedSeconds,
        secondsToAdopted: adoptedAt.map { $0.timeIntervalSince(daemonStart) },
        adopted: adopted,
        waitedSeconds: ended.timeIntervalSince(daemonStart),
        tally: tally,
        newRowInsertedAfter: newRowInsertedAt.map { $0.timeIntervalSince(daemonStart) },
        newRowSeconds: newRowInsertedAt.flatMap { inserted in newRowActiveAt.map { $0.timeIntervalSince(inserted) } },
        newRowFinalStatus: newRowFinalStatus,
        newRowWatchedSeconds: newRowInsertedAt.map { ended.timeIntervalSince($0) },
        peak: peak
    )
}

extension AdoptionResult {
    /// One line with the goals of issue 23 beside each figure.
    func line(bootSeconds: Double) -> String {
        func whole(_ value: Int) -> String {
            value.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
        }
        let goalSeconds = 300.0
        let goalRequests = 600
        let goalPeak = 120.0
        let newRowGoal = bootSeconds + 10
        // Rows active from the start are counted too; say how many of the restored ones made it.
        let restoredPart =
            waiting == servers ? "" : " (\(whole(adopted - (servers - waiting))) of the \(whole(waiting)) restored)"
        let adoptedPart =
            secondsToAdopted.map {
                "all \(whole(servers)) adopted in \(String(format: "%.0f", $0)) s (goal ≤ \(Int(goalSeconds)) s: \($0 <= goalSeconds ? "met" : "missed"))"
            }
            ?? "not all active: \(whole(adopted)) of \(whole(servers))\(restoredPart) after \(String(format: "%.0f", waitedSeconds)) s (goal: all within \(Int(goalSeconds)) s: missed)"
        let requestsPart =
            "\(whole(tally.total)) requests (\(tally.breakdown)) (goal ≤ about \(goalRequests): \(tally.total <= goalRequests ? "met" : "missed"))"
        let newRowPart: String
        if let seconds = newRowSeconds, let after = newRowInsertedAfter {
            newRowPart =
                "new row (inserted \(String(format: "%.0f", after)) s in) active in \(String(format: "%.1f", seconds)) s (goal ≤ \(Int(newRowGoal)) s: \(seconds <= newRowGoal ? "met" : "missed"))"
        } else if let after = newRowInsertedAfter {
            newRowPart =
                "new row (inserted \(String(format: "%.0f", after)) s in) still `\(newRowFinalStatus ?? "?")` after \(String(format: "%.0f", newRowWatchedSeconds ?? 0)) s (goal ≤ \(Int(newRowGoal)) s: missed)"
        } else {
            newRowPart = "new row never inserted"
        }
        let peakPart =
            peak.map {
                "peak \(String(format: "%.1f", $0.peak)) MiB (\(String(format: "%.1f", $0.peak * 1.048576)) MB; goal ≤ \(Int(goalPeak)) MB: \($0.peak * 1.048576 <= goalPeak ? "met" : "missed"))"
            } ?? "peak not measured"
        let waitingPart = waiting == servers ? "" : ", \(whole(waiting)) restored"
        return
            "adoption \(start.rawValue), \(start.summary) (\(whole(servers)) servers\(waitingPart)): "
            + [adoptedPart, requestsPart, newRowPart, peakPart].joined(separator: "; ")
    }
}
