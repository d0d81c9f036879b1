import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

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
