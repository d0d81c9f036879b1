import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

/// Injects `count` active droplets tagged as the daemon would tag them, and the matching rows
/// (active, droplet id and addresses recorded): a fleet with nothing to do. With `recordObserved`
/// the rows also hold what a converged row records of its droplet (name, region, size, image:
/// the simulator's defaults), so the daemon's first pass has no row to write. Without
/// `identityTags` the droplets carry `citrus-host` only, as those of a backend before the daemon.
func seedFleet(
    _ env: BenchEnvironment,
    simulator: SimulatorProcess,
    database: String,
    count: Int,
    recordObserved: Bool = false,
    identityTags: Bool = true
) async throws {
    let ids = (0..<count).map { _ in UUID() }
    let droplets = try await injectDroplets(simulator: simulator, ids: ids, identityTags: identityTags)
    let json = try rowRecords(ids: ids, droplets: droplets)
    let connection = try await PostgresConnection.connect(database)
    if recordObserved {
        // The injected droplets' region, size and image are the simulator's defaults, which are
        // also the table's.
        try await connection.query(
            """
            INSERT INTO servers (id, name, status, digital_ocean_id, ip_address, ipv6_address,
                droplet_name, droplet_region, droplet_size, droplet_image)
            SELECT r.id, r.name, 'active', r.droplet, r.ip, r.ip6,
                r.name, 'sfo3', 's-1vcpu-512mb-10gb', 'ubuntu-22-04-x64'
            FROM json_to_recordset(\(json)::json) AS r(id uuid, name text, droplet text, ip text, ip6 text)
            """
        )
    } else {
        try await connection.query(
            """
            INSERT INTO servers (id, name, status, digital_ocean_id, ip_address, ipv6_address)
            SELECT r.id, r.name, 'active', r.droplet, r.ip, r.ip6
            FROM json_to_recordset(\(json)::json) AS r(id uuid, name text, droplet text, ip text, ip6 text)
            """
        )
    }
    await connection.close()
}

/// Injects one active droplet per id, named `fleet-<index>`, tagged `citrus-host` and, with
/// `identityTags`, the row's `citrus-server:<uuid>` too; returns them in the ids' order.
func injectDroplets(simulator: SimulatorProcess, ids: [UUID], identityTags: Bool) async throws -> [SimDroplet] {
    var droplets = [SimDroplet?](repeating: nil, count: ids.count)
    try await withThrowingTaskGroup(of: (Int, SimDroplet).self) { group in
        // Eight injections in flight at a time.
        for index in ids.indices {
            if index >= 8, let (done, droplet) = try await group.next() { droplets[done] = droplet }
            group.addTask {
                (
                    index,
                    try await simulator.inject(
                        name: "fleet-\(index)",
                        tags: identityTags ? [FleetTags.fleet, FleetTags.identity(for: ids[index])] : [FleetTags.fleet]
                    )
                )
            }
        }
        for try await (done, droplet) in group { droplets[done] = droplet }
    }
    return try droplets.enumerated().map { index, droplet in
        guard let droplet else { throw BenchError("droplet \(index) was not injected") }
        return droplet
    }
}

/// The rows for `droplets` as one JSON array (`id`, `name`, `droplet`, `ip`, `ip6`), for one
/// `INSERT … SELECT … FROM json_to_recordset(…)`.
func rowRecords(ids: [UUID], droplets: [SimDroplet]) throws -> String {
    let records: [[String: Any]] = zip(ids, droplets).map { id, droplet in
        [
            "id": id.uuidString.lowercased(), "name": droplet.name, "droplet": String(droplet.id),
            "ip": droplet.publicIPv4.map { $0 as Any } ?? NSNull(),
            "ip6": droplet.publicIPv6.map { $0 as Any } ?? NSNull(),
        ]
    }
    return String(decoding: try JSONSerialization.data(withJSONObject: records), as: UTF8.self)
}

struct SteadyResult: Sendable {
    var servers: Int
    var requests: Int
    var seconds: Double
    var cycles: Int
    var perHour: Double { Double(requests) / seconds * 3600 }
}

/// The daemon over `servers` active servers with nothing to do: requests over whole resync
/// cycles (from the start of its first pass to the start of the `cycles`-th next), per hour.
func steadyState(_ env: BenchEnvironment, servers: Int, cycles: Int) async throws -> SteadyResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("steady-sim")
    try await seedFleet(env, simulator: simulator, database: database, count: servers)
    let daemon = try env.startDaemon("steady-daemon", database: database, simulator: simulator, resync: "60s")
    defer { daemon.signal(SIGKILL) }
    let log = try await simulator.waitForRequests(timeout: .seconds(Int64(cycles) * 60 + 90), every: .seconds(2)) {
        log in
        log.count(where: \.isFirstListPage) > cycles || !daemon.isRunning
    }
    await daemon.stop()
    await simulator.stop()
    let starts = log.filter(\.isFirstListPage).map(\.time)
    guard starts.count > cycles else {
        throw BenchError("steady state: saw \(starts.count) passes, needed \(cycles + 1)")
    }
    let window = log.filter { $0.time >= starts[0] && $0.time < starts[cycles] }
    return SteadyResult(
        servers: servers,
        requests: window.count,
        seconds: starts[cycles].timeIntervalSince(starts[0]),
        cycles: cycles
    )
}

struct LargeFleetResult: Sendable {
    var servers: Int
    var planSeconds: [Double]
    var daemonResident: ResidentSize?
    /// From the daemon's first list page to its last page of its first pass.
    var listSeconds: Double?
}

/// 10,000 rows against 10,000 droplets: `citrus-reconciler plan` timed end to end (process start,
/// rows read, every list page, decision), then the daemon's resident size after its first pass.
func largeFleet(_ env: BenchEnvironment, servers: Int, planRuns: Int) async throws -> LargeFleetResult {
    let database = try await env.migratedDatabase()
    // Lists of 10,000 are 50 pages a pass: the limits are raised so the plan runs are not throttled.
    let simulator = try await env.startSimulator("large-sim", perMinute: 1_000_000, perHour: 10_000_000)
    try await seedFleet(env, simulator: simulator, database: database, count: servers)
    var planSeconds: [Double] = []
    for run in 1...planRuns {
        let plan = ChildProcess(
            executable: try env.executable("citrus-reconciler"),
            arguments: [
                "plan", "--database-url", database, "--digitalocean-url", simulator.baseURL,
                "--digitalocean-token-file", env.tokenFile.path,
            ],
            environment: ProcessInfo.processInfo.environment,
            logFile: env.log("large-plan-\(run)")
        )
        let start = ContinuousClock.now
        try plan.start()
        guard await plan.waitForExit(timeout: .seconds(120)) == 0 else {
            throw BenchError("plan failed: \(plan.output.suffix(2000))")
        }
        let elapsed = ContinuousClock.now - start
        planSeconds.append(elapsed.timeInterval)
    }
    try await simulator.clearRequests()
    let daemon = try env.startDaemon("large-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }
    let pages = (servers + 199) / 200
    let log = try await simulator.waitForRequests(timeout: .seconds(120), every: .milliseconds(250)) {
        $0.count(where: \.isFullListPage) >= pages || !daemon.isRunning
    }
    // The pass ends with the decision and (no) writes after the last page; give it time to settle.
    try await Task.sleep(for: .seconds(3))
    let resident = ResidentSize.of(pid: daemon.pid)
    let lists = log.filter(\.isFullListPage).map(\.time)
    await daemon.stop()
    await simulator.stop()
    return LargeFleetResult(
        servers: servers,
        planSeconds: planSeconds,
        daemonResident: resident,
        listSeconds: lists.count >= pages ? lists[pages - 1].timeIntervalSince(lists[0]) : nil
    )
}
