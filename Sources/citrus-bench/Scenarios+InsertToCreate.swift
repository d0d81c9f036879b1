import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

struct LatencyResult: Sendable {
    var samples: [Double]  // milliseconds, in insert order
    var expected: Int
    var median: Double? { Statistics.median(samples) }
    var p99: Double? { Statistics.percentile(samples, 99) }
}

/// Rows inserted one by one; the latency of each is from just before its INSERT is sent to the
/// simulator's log time of the create for it.
func measureInsertToCreate(
    _ env: BenchEnvironment,
    rows: Int,
    gap: Duration,
    baseline: Bool = true
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
    // In insert order, so a trend along the run (the fleet grows by one droplet a row) shows.
    let daemonSamples = inserted.sorted { $0.value < $1.value }.compactMap { row, sent in
        firstCreate[row].map { $0.timeIntervalSince(sent) * 1000 }
    }
    await daemon.stop()
    await simulator.stop()
    await connection.close()
    guard baseline else {
        return (LatencyResult(samples: daemonSamples, expected: rows), LatencyResult(samples: [], expected: rows))
    }

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
