import CitrusTestKit
import Foundation
import Postgres

struct FaultConvergenceResult: Sendable {
    var rows: Int
    /// Each row's seconds from the INSERT to `active`, for the rows that got there in time.
    var perRow: [Double]
    var tally: RequestTally
    /// Creates that met a fault: no answer, or a 500 (performed or not).
    var faultedCreates: Int
    var dropletsCreated: Int
    var median: Double? { Statistics.median(perRow) }
    var worst: Double? { perRow.count == rows ? perRow.max() : nil }
    var duplicates: Int { max(0, dropletsCreated - rows) }
}

/// `rows` rows inserted at once into a DigitalOcean that answers 20% of requests with a 500, loses
/// 20% of create answers, answers 10% of creates 500 after performing them, and lists new droplets
/// 5 s late: when each row became active. An uncertain create's droplet is bound as soon as a
/// lookup by its identity finds it; only a create that was not performed waits out the settle
/// period before it goes again.
func convergeUnderFaults(
    _ env: BenchEnvironment,
    name: String,
    rows: Int,
    timeout: Duration
) async throws -> FaultConvergenceResult {
    let database = try await env.migratedDatabase()
    let simulator = try await env.startSimulator("\(name)-sim")
    let daemon = try env.startDaemon("\(name)-daemon", database: database, simulator: simulator)
    defer { daemon.signal(SIGKILL) }
    try await waitForFirstPass(simulator, daemon: daemon)
    try await simulator.clearRequests()
    try await simulator.setFaults([
        "server_error_probability": 0.2,
        "create_response_lost_probability": 0.2,
        "create_server_error_probability": 0.1,
        "list_lag_seconds": 5,
    ])
    let connection = try await PostgresConnection.connect(database)
    let start = Date()
    _ = try await connection.insertServers(count: rows, prefix: name)
    var activeAt: [UUID: Date] = [:]
    _ = try await eventually(timeout: timeout, every: .milliseconds(100)) {
        let now = Date()
        for row in try await connection.query("SELECT id FROM servers WHERE status = 'active'") {
            let id = try row.decode(UUID.self, "id")
            if activeAt[id] == nil { activeAt[id] = now }
        }
        return activeAt.count >= rows
    }
    let end = activeAt.values.max() ?? Date()
    let log = try await simulator.requests().filter { $0.time <= end }
    let droplets = try await simulator.droplets().filter { !$0.injected }
    await daemon.stop()
    await simulator.stop()
    await connection.close()
    return FaultConvergenceResult(
        rows: rows,
        perRow: activeAt.values.map { $0.timeIntervalSince(start) },
        tally: RequestTally(log),
        faultedCreates: log.filter { $0.isCreate && ($0.status == nil || $0.status == 500) }.count,
        dropletsCreated: droplets.count
    )
}
