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
