import DigitalOceanModel
import Foundation
import Logging
import ReconcileCore
import Reconciler

/// Driving the world step by step, tearing it down, and judging convergence.
extension SimulationWorld {
    func drive(until end: Date) {
        while !finished {
            var stepsAtThisInstant = 0
            while violations.isEmpty || keepGoing {
                let runnable = everyProcess.filter { $0.executor.runnable }
                guard !runnable.isEmpty else { break }
                runnable[index(runnable.count)].executor.runOne(pick: index)
                steps += 1
                stepsAtThisInstant += 1
                if stepsAtThisInstant > 200_000 {
                    let busy = everyProcess.filter { $0.executor.runnable }.map {
                        "\($0.name) (\($0.executor.pending) jobs)"
                    }
                    violation("livelock: 200,000 steps without time moving in \(busy.joined(separator: ", "))")
                    return
                }
            }
            guard violations.isEmpty || keepGoing, time.advance(limit: end) else { return }
        }
    }

    func tearDown() {
        time.draining = true
        database.endEverySession(why: "the run ended")
        for process in everyProcess { process.stop() }
        var rounds = 0
        while rounds < 1_000_000 {
            rounds += 1
            let runnable = everyProcess.filter { $0.executor.runnable }
            if let process = runnable.first {
                process.executor.runOne { _ in 0 }
            } else if !time.advance(limit: .distantFuture) {
                break
            }
        }
    }

    /// Whether every row has converged; when `final`, a row that has not is a violation.
    @discardableResult
    func checkConvergence(final: Bool) -> Bool {
        var converged = true
        let liveByIdentity = liveDropletsByIdentity()
        for row in database.rows.values.sorted(by: { $0.id.uuidString < $1.id.uuidString }) {
            let live = liveByIdentity[row.id] ?? []
            let oldest = live.min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            let state = row.state
            var problem: String?
            if [.provisioning, .initializing].contains(state.status), row.deleteRequestedAt == nil,
                heldOff(row, droplet: oldest)
            {
                problem = nil
            } else if [.creating, .provisioning, .initializing, .deleting].contains(state.status) {
                problem = "still \(state.status.rawValue)"
            } else if state.status == .deleted, deletionWithdrawnAt[row.id] != nil {
                problem = nil  // deleted before the operator withdrew the request
            } else if state.status == .unreachable, oldest?.poweredOff == true {
                problem = nil  // its agent stops with the droplet someone powered off
            } else if state.status == .unreachable, restored.contains(row.id) || promiseVoided.contains(row.id) {
                // A restore (or a lossy failover) took the agents table back to a key the droplet's
                // agent no longer has: it cannot authenticate, and `unreachable` says so truly.
                problem = nil
            } else if row.deleteRequestedAt != nil {
                if state.status != .deleted || !live.isEmpty {
                    problem = "deletion requested: \(state.status.rawValue) with \(live.count) droplets"
                }
            } else if invalid.contains(row.id) {
                if state.status != .failed { problem = "has an invalid name but is \(state.status.rawValue)" }
            } else if state.status == .active {
                if live.count != 1 || state.dropletID != oldest?.id {
                    problem =
                        "active with droplet \(state.dropletID.map(String.init) ?? "none") but \(live.count) droplets carry its identity"
                } else if let oldest, let live = liveProblem(of: row, droplet: oldest) {
                    problem = live
                }
            } else if state.status == .failed, live.isEmpty, placementFailed(row) {
                problem = nil  // its droplet's placement failed after the 202 (issue 25)
            } else if !(state.status == .failed && disturbed.contains(row.id)) {
                problem = "is \(state.status.rawValue) (\(state.lastError ?? "no error"))"
            }
            if let problem {
                // Before the end, one row that has not converged is the answer.
                guard final else { return false }
                converged = false
                violation("\(label(row.id)) did not converge: \(problem)")
            }
        }
        return converged
    }

    /// Whether the row ended failed because its droplet's placement failed after DigitalOcean
    /// accepted the create (a 404 after the 202): the droplet it is bound to, or, bound to none,
    /// every droplet made for it. Issue 25 makes the daemon create again instead.
    func placementFailed(_ row: ServerRecord) -> Bool {
        guard let failed = placementFailed[row.id], !failed.isEmpty else { return false }
        guard let droplet = row.state.dropletID else { return true }
        return failed.contains(droplet)
    }
}
