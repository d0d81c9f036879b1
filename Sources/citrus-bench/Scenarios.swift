import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

// Each scenario starts its own simulator (and database), so request logs and rate windows never
// mix; the daemon and the baseline meet the same simulator configuration and the same faults.

/// The request log summarised for a window.
struct RequestTally: Sendable {
    var total = 0
    var creates = 0
    var listPages = 0
    var dropletGets = 0
    var tooManyRequests = 0

    init(_ log: [LoggedRequest]) {
        for request in log {
            total += 1
            if request.isCreate { creates += 1 }
            if request.isList { listPages += 1 }
            if request.method == "GET", request.route == "/v2/droplets/{droplet_id}" { dropletGets += 1 }
            if request.status == 429 { tooManyRequests += 1 }
        }
    }
}

/// Waits for the daemon's first full pass (its first list request), so a scenario starts from a settled daemon.
func waitForFirstPass(_ simulator: SimulatorProcess, daemon: ChildProcess) async throws {
    let log = try await simulator.waitForRequests(timeout: .seconds(60)) {
        $0.contains(where: \.isList) || !daemon.isRunning
    }
    guard log.contains(where: \.isList) else {
        throw BenchError("the daemon made no list request within 60 s: \(daemon.output.suffix(2000))")
    }
    try await Task.sleep(for: .milliseconds(500))
}

// MARK: - Insert to create

struct LatencyResult: Sendable {
    var samples: [Double]  // milliseconds
    var expected: Int
    var median: Double? { Statistics.median(samples) }
    var p99: Double? { Statistics.percentile(samples, 99) }
}

/// Rows inserted one by one; the latency of each is from just before its INSERT is sent to the
/// simulator's log time of the create for it.
func measureInsertToCreate(
    _ env: BenchEnvironment,
    rows: Int,
    gap: Duration
) async throws -> (daemon: LatencyResult, naive: LatencyResult) {
    // The daemon.
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("latency-sim")
    let daemon = try env.startDaemon("latency-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }
    try await waitForFirstPass(simulator, daemon: daemon)
    let connection = try await PostgresConnection.connect(database)
    var inserted: [UUID: Date] = [:]
    for n in 1...rows {
        let sent = Date()
        inserted[try await connection.insertServer(name: "latency-\(n)")] = sent
        try await Task.sleep(for: gap)
    }
    let log = try await simulator.waitForRequests(timeout: .seconds(60)) { log in
        Set(log.compactMap(\.identity)).count >= rows
    }
    var firstCreate: [UUID: Date] = [:]
    for request in log where request.isCreate {
        if let row = request.identity, firstCreate[row] == nil { firstCreate[row] = request.time }
    }
    let daemonSamples = inserted.compactMap { row, sent in firstCreate[row].map { $0.timeIntervalSince(sent) * 1000 } }
    await daemon.stop()
    await simulator.stop()
    await connection.close()

    // The baseline, creating inline after its INSERT (it never polls here, so nothing else is logged).
    let naiveDatabase = try await env.migratedDatabase()
    let naiveSimulator = try await env.startSimulator("latency-naive-sim")
    let naiveConnection = try await PostgresConnection.connect(naiveDatabase)
    let http = NaivePlatform.makeHTTPClient()
    let naive = NaivePlatform(baseURL: naiveSimulator.baseURL, token: BenchEnvironment.token, http: http)
    var sentTimes: [Date] = []
    for n in 1...rows {
        let outcome = try await naive.provision(
            name: "latency-\(n)",
            database: naiveConnection,
            until: .now + .seconds(30),
            poll: false
        )
        sentTimes.append(outcome.insertedAt)
        try await Task.sleep(for: gap)
    }
    // One create per row, in order, no failures: the k-th create belongs to the k-th row.
    let naiveCreates = try await naiveSimulator.requests().filter(\.isCreate).sorted { $0.sequence < $1.sequence }
    let naiveSamples =
        naiveCreates.count == rows ? zip(sentTimes, naiveCreates).map { $1.time.timeIntervalSince($0) * 1000 } : []
    try await http.shutdown()
    await naiveConnection.close()
    await naiveSimulator.stop()
    return (LatencyResult(samples: daemonSamples, expected: rows), LatencyResult(samples: naiveSamples, expected: rows))
}

// MARK: - Convergence (optionally under faults)

struct ConvergenceResult: Sendable {
    var rows: Int
    /// From the INSERT to the last row `active`; nil if not all converged by the timeout.
    var seconds: Double?
    var activeRows: Int
    var tally: RequestTally
    /// Droplets created through the API (injected ones excluded).
    var dropletsCreated: Int
    var duplicates: Int { max(0, dropletsCreated - rows) }
    var requestsPerRow: Double { Double(tally.total) / Double(rows) }
}

/// `rows` rows inserted at once; time until all are active, and what it cost at the API.
func convergeDaemon(
    _ env: BenchEnvironment,
    name: String,
    rows: Int,
    faults: [String: Double],
    timeout: Duration
) async throws -> ConvergenceResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("\(name)-sim")
    let daemon = try env.startDaemon("\(name)-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }
    try await waitForFirstPass(simulator, daemon: daemon)
    try await simulator.clearRequests()
    if !faults.isEmpty { try await simulator.setFaults(faults) }
    let connection = try await PostgresConnection.connect(database)
    let start = Date()
    _ = try await connection.insertServers(count: rows, prefix: name)
    var active = 0
    let converged = try await eventually(timeout: timeout, every: .milliseconds(100)) {
        active = try await connection.count(status: "active")
        return active >= rows
    }
    let end = Date()
    let log = try await simulator.requests().filter { $0.time <= end }
    let droplets = try await simulator.droplets().filter { !$0.injected }
    await daemon.stop()
    await simulator.stop()
    await connection.close()
    return ConvergenceResult(
        rows: rows,
        seconds: converged ? end.timeIntervalSince(start) : nil,
        activeRows: active,
        tally: RequestTally(log),
        dropletsCreated: droplets.count
    )
}

func convergeNaive(
    _ env: BenchEnvironment,
    name: String,
    rows: Int,
    faults: [String: Double],
    timeout: Duration
) async throws -> ConvergenceResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("\(name)-naive-sim")
    if !faults.isEmpty { try await simulator.setFaults(faults) }
    let connection = try await PostgresConnection.connect(database)
    let http = NaivePlatform.makeHTTPClient()
    let naive = NaivePlatform(baseURL: simulator.baseURL, token: BenchEnvironment.token, http: http)
    let start = Date()
    let outcomes = try await naive.provisionAll(count: rows, prefix: name, database: connection, timeout: timeout)
    let activeTimes = outcomes.compactMap(\.activeAt)
    let end = activeTimes.max() ?? Date()
    let log = try await simulator.requests().filter { $0.time <= end }
    let droplets = try await simulator.droplets().filter { !$0.injected }
    try await http.shutdown()
    await connection.close()
    await simulator.stop()
    return ConvergenceResult(
        rows: rows,
        seconds: activeTimes.count == rows ? end.timeIntervalSince(start) : nil,
        activeRows: activeTimes.count,
        tally: RequestTally(log),
        dropletsCreated: droplets.count
    )
}

// MARK: - Burst under the real limits

struct BurstResult: Sendable {
    var rows: Int
    /// From the INSERT to the last row's first accepted create; nil if not all were sent by the timeout.
    var secondsToAllCreates: Double?
    var createsAccepted: Int
    /// Everything up to the last accepted create (or the timeout).
    var tally: RequestTally
    /// List pages accepted before the last create.
    var listPages: Int
    /// Requests the simulator counted against the token from a minute before the burst to the last
    /// create (everything not answered 429).
    var countedRequests: Int
    /// The floor the sliding minute sets: 250 requests at once, then each next 250 a minute later,
    /// so the n-th counted request cannot be sent before ⌊(n − 1) / 250⌋ minutes.
    var slidingFloorSeconds: Double { Double((countedRequests - 1) / 250) * 60 }
    /// The approximation: (rows + list pages) / 250 per minute.
    var steadyRateFloorSeconds: Double { Double(rows + listPages) / 250 * 60 }
}

func burstDaemon(_ env: BenchEnvironment, rows: Int, timeout: Duration) async throws -> BurstResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("burst-sim")
    let daemon = try env.startDaemon("burst-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }
    try await waitForFirstPass(simulator, daemon: daemon)
    let connection = try await PostgresConnection.connect(database)
    let start = Date()
    _ = try await connection.insertServers(count: rows, prefix: "burst")
    func accepted(_ log: [LoggedRequest]) -> [LoggedRequest] {
        log.filter { $0.isCreate && ($0.status ?? 0) / 100 == 2 }
    }
    let log = try await simulator.waitForRequests(timeout: timeout, every: .milliseconds(500)) {
        Set(accepted($0).compactMap(\.identity)).count >= rows
    }
    await daemon.stop()
    await simulator.stop()
    await connection.close()
    return burstResult(log: log, rows: rows, start: start, accepted: accepted)
}

func burstNaive(_ env: BenchEnvironment, rows: Int, timeout: Duration) async throws -> BurstResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("burst-naive-sim")
    let connection = try await PostgresConnection.connect(database)
    let http = NaivePlatform.makeHTTPClient()
    let naive = NaivePlatform(baseURL: simulator.baseURL, token: BenchEnvironment.token, http: http)
    let start = Date()
    // The baseline keeps polling after its creates; it is stopped once every create is in (or at
    // the timeout): only the creates matter here.
    let log = try await withThrowingTaskGroup(of: [LoggedRequest]?.self) { group in
        group.addTask {
            _ = try? await naive.provisionAll(count: rows, prefix: "burst", database: connection, timeout: timeout)
            return nil
        }
        group.addTask {
            try await simulator.waitForRequests(timeout: timeout, every: .milliseconds(500)) { log in
                log.count(where: { $0.isCreate && ($0.status ?? 0) / 100 == 2 }) >= rows
            }
        }
        var log: [LoggedRequest] = []
        for try await result in group {
            if let result {
                log = result
                group.cancelAll()
            }
        }
        return log
    }
    try await http.shutdown()
    await connection.close()
    await simulator.stop()
    return burstResult(log: log, rows: rows, start: start) { $0.filter { $0.isCreate && ($0.status ?? 0) / 100 == 2 } }
}

private func burstResult(
    log fullLog: [LoggedRequest],
    rows: Int,
    start: Date,
    accepted: ([LoggedRequest]) -> [LoggedRequest]
) -> BurstResult {
    let log = fullLog.filter { $0.time >= start }
    let creates = accepted(log)
    let done = creates.count >= rows
    let last = done ? creates.sorted { $0.sequence < $1.sequence }[rows - 1] : nil
    let window = last.map { last in log.filter { $0.sequence <= last.sequence } } ?? log
    let counted = fullLog.count { request in
        request.time >= start.addingTimeInterval(-60) && request.sequence <= (last?.sequence ?? Int.max)
            && request.status != 429
    }
    return BurstResult(
        rows: rows,
        secondsToAllCreates: last.map { $0.time.timeIntervalSince(start) },
        createsAccepted: min(creates.count, rows),
        tally: RequestTally(window),
        listPages: window.count(where: { $0.isList && $0.status == 200 }),
        countedRequests: counted
    )
}

// MARK: - Fleets of active servers (steady state, 10,000)

/// Injects `count` active droplets tagged as the daemon would tag them, and the matching rows
/// (active, droplet id and addresses recorded): a fleet with nothing to do.
func seedFleet(_ env: BenchEnvironment, simulator: SimulatorProcess, database: String, count: Int) async throws {
    let ids = (0..<count).map { _ in UUID() }
    var droplets = [SimDroplet?](repeating: nil, count: count)
    try await withThrowingTaskGroup(of: (Int, SimDroplet).self) { group in
        // Eight injections in flight at a time.
        for index in 0..<count {
            if index >= 8, let (done, droplet) = try await group.next() { droplets[done] = droplet }
            group.addTask {
                (
                    index,
                    try await simulator.inject(
                        name: "fleet-\(index)",
                        tags: [FleetTags.fleet, FleetTags.identity(for: ids[index])]
                    )
                )
            }
        }
        for try await (done, droplet) in group { droplets[done] = droplet }
    }
    var records: [[String: Any]] = []
    for (index, droplet) in droplets.enumerated() {
        guard let droplet else { throw BenchError("droplet \(index) was not injected") }
        var record: [String: Any] = [
            "id": ids[index].uuidString.lowercased(), "name": droplet.name, "droplet": String(droplet.id),
        ]
        record["ip"] = droplet.publicIPv4.map { $0 as Any } ?? NSNull()
        record["ip6"] = droplet.publicIPv6.map { $0 as Any } ?? NSNull()
        records.append(record)
    }
    let json = String(decoding: try JSONSerialization.data(withJSONObject: records), as: UTF8.self)
    let connection = try await PostgresConnection.connect(database)
    try await connection.query(
        """
        INSERT INTO servers (id, name, status, digital_ocean_id, ip_address, ipv6_address)
        SELECT r.id, r.name, 'active', r.droplet, r.ip, r.ip6
        FROM json_to_recordset(\(json)::json) AS r(id uuid, name text, droplet text, ip text, ip6 text)
        """
    )
    await connection.close()
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
        $0.count(where: \.isList) >= pages || !daemon.isRunning
    }
    // The pass ends with the decision and (no) writes after the last page; give it time to settle.
    try await Task.sleep(for: .seconds(3))
    let resident = ResidentSize.of(pid: daemon.pid)
    let lists = log.filter(\.isList).map(\.time)
    await daemon.stop()
    await simulator.stop()
    return LargeFleetResult(
        servers: servers,
        planSeconds: planSeconds,
        daemonResident: resident,
        listSeconds: lists.count >= pages ? lists[pages - 1].timeIntervalSince(lists[0]) : nil
    )
}

// MARK: - Idle size and takeover

struct ReplicaResult: Sendable {
    var idleLeader: ResidentSize?
    var idleStandby: ResidentSize?
    /// From SIGKILL of the leader to the standby's first request at DigitalOcean, per trial.
    var takeoverSeconds: [Double]
}

func replicas(_ env: BenchEnvironment, trials: Int) async throws -> ReplicaResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("replicas-sim")
    var leader = try env.startDaemon("replica-0", database: database, simulator: simulator)
    try await waitForFirstPass(simulator, daemon: leader)
    try await Task.sleep(for: .seconds(3))
    let idleLeader = ResidentSize.of(pid: leader.pid)
    var standby = try env.startDaemon("replica-1", database: database, simulator: simulator)
    try await Task.sleep(for: .seconds(3))
    let idleStandby = ResidentSize.of(pid: standby.pid)
    var takeovers: [Double] = []
    for trial in 1...trials {
        // The standby campaigns every 500 ms from its start: a random pause keeps the kill from
        // landing at the same phase of that cycle every time.
        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
        let killedAt = Date()
        leader.signal(SIGKILL)
        let log = try await simulator.waitForRequests(timeout: .seconds(30), every: .milliseconds(20)) { log in
            log.contains { $0.time > killedAt }
        }
        if let first = log.first(where: { $0.time > killedAt }) {
            takeovers.append(first.time.timeIntervalSince(killedAt))
        }
        await leader.waitForExit(timeout: .seconds(5))
        // The killed replica comes back as the standby for the next trial.
        leader = standby
        standby = try env.startDaemon("replica-\(trial + 1)", database: database, simulator: simulator)
        try await Task.sleep(for: .seconds(3))
    }
    await leader.stop()
    await standby.stop()
    await simulator.stop()
    return ReplicaResult(idleLeader: idleLeader, idleStandby: idleStandby, takeoverSeconds: takeovers)
}

// MARK: - The pure decision

struct DecisionResult: Sendable {
    var rows: Int
    var cpuMilliseconds: [Double]
    var actions: Int
}

/// `Decider.decide` over `rows` active rows and their droplets (nothing to do), in process.
func decisionCPU(rows count: Int, runs: Int) -> DecisionResult {
    let now = Date()
    var rows: [ServerRecord] = []
    var droplets: [ObservedDroplet] = []
    rows.reserveCapacity(count)
    droplets.reserveCapacity(count)
    for index in 0..<count {
        let id = UUID()
        let dropletID = Int64(5_000_000_001 + index)
        let ipv4 = "10.\(index / 65536 % 256).\(index / 256 % 256).\(index % 256)"
        let ipv6 = "2604:a880:4:1d0::\(String(index, radix: 16))"
        rows.append(
            ServerRecord(
                id: id,
                revision: 3,
                name: "fleet-\(index)",
                createdAt: now.addingTimeInterval(-3600),
                state: DaemonState(
                    status: .active,
                    dropletID: dropletID,
                    ipv4: ipv4,
                    ipv6: ipv6,
                    createAttemptedAt: now.addingTimeInterval(-3600),
                    createAttempts: 1
                )
            )
        )
        droplets.append(
            ObservedDroplet(
                id: dropletID,
                name: "fleet-\(index)",
                status: .active,
                tags: [FleetTags.fleet, FleetTags.identity(for: id)],
                createdAt: now.addingTimeInterval(-3590),
                publicIPv4: ipv4,
                publicIPv6: ipv6
            )
        )
    }
    let observation = Observation(droplets: droplets, listedAt: now)
    let decider = Decider()
    var samples: [Double] = []
    var actions = 0
    for run in 0..<(runs + 2) {
        let before = threadCPUSeconds()
        let plan = decider.decide(rows: rows, observation: observation, now: now)
        let after = threadCPUSeconds()
        actions = plan.actions.count
        if run >= 2 { samples.append((after - before) * 1000) }  // two warm-up runs
    }
    return DecisionResult(rows: count, cpuMilliseconds: samples, actions: actions)
}
