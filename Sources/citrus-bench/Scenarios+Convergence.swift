import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

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
