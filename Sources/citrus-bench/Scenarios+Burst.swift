import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

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
