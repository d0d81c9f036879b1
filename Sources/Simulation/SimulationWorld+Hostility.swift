import DigitalOceanModel
import Foundation
import ReconcileCore
import Reconciler

/// What Postgres and operators really do that the world once kept away from the daemon (issue
/// 22): row locks held by other transactions, a failover (to an asynchronous standby in some
/// seeds), rows deleted and inserted again and restores at any moment, creates in flight or not,
/// deletion requests withdrawn; and the seed's settings: `--orphans delete`, agent bootstrap.
/// Everything here draws from the world's second generator (`hostileRandom`).
extension SimulationWorld {
    /// The seed's settings, drawn before any replica starts.
    func drawSetting() {
        if hostileRandom() < 0.3 { orphanGrace = 60 + hostileRandom() * 120 }
        agentBootstrap = hostileRandom() < 0.3
        let replication = hostileRandom()
        database.replication =
            replication < 0.6
            ? .standalone
            : replication < 0.8 ? .synchronous : .asynchronous(lag: 0.05 + hostileRandom() * 2)
        faults.drawDatabase()
    }

    var setting: String {
        "\(database.replication), orphans "
            + (orphanGrace.map { String(format: "deleted after %.0f s", $0) } ?? "reported")
            + ", agent bootstrap \(agentBootstrap ? "on" : "off")"
    }

    /// Schedules this seed's hostile events between 5 s and `end` seconds.
    func scheduleHostility(end: Double) {
        func at(_ range: ClosedRange<Double>) -> Date {
            time.origin.addingTimeInterval(range.lowerBound + hostileRandom() * (range.upperBound - range.lowerBound))
        }
        // Row locks held by other transactions, for seconds or minutes.
        if hostileRandom() < 0.6 {
            for _ in 0..<(1 + hostileIndex(4)) {
                let seconds = hostileRandom() < 0.7 ? 1 + hostileRandom() * 14 : 20 + hostileRandom() * 220
                time.schedule(at: at(5...end)) { [unowned self] in self.holdRowLock(for: seconds) }
            }
        }
        // Rows deleted with SQL and inserted again, whatever the daemon is doing with them.
        if hostileRandom() < 0.35 {
            for _ in 0..<(1 + hostileIndex(2)) {
                time.schedule(at: at(5...end)) { [unowned self] in self.deleteAndReinsertNow() }
            }
        }
        // A restore from a backup taken a little earlier, creates in flight or not.
        if hostileRandom() < 0.15 {
            let takenAt = at(5...end - 30)
            let restoreAt = takenAt.addingTimeInterval(5 + hostileRandom() * 120)
            time.schedule(at: takenAt) { [unowned self] in self.snapshot = (self.time.now, self.database.tables) }
            time.schedule(at: restoreAt) { [unowned self] in self.restore(checked: false) }
        }
        // An operator withdraws a deletion request (clears delete_requested_at).
        if hostileRandom() < 0.3 {
            for _ in 0..<(1 + hostileIndex(2)) {
                time.schedule(at: at(5...end)) { [unowned self] in self.withdrawDeletion() }
            }
        }
        // The primary stops and a standby is promoted.
        if case .standalone = database.replication {
            // Nothing to fail over to.
        } else if hostileRandom() < 0.7 {
            let downtime = 1 + hostileRandom() * 10
            time.schedule(at: at(20...end)) { [unowned self] in self.failOver(downtime: downtime) }
        }
    }

    /// Another transaction locks a row for `seconds`: an operator's UPDATE not yet committed
    /// (committed at the end, or rolled back), or an insert elsewhere that references the row
    /// (`FOR KEY SHARE`, which a `SELECT … FOR UPDATE` would wait for; the daemon's write locks
    /// `FOR NO KEY UPDATE SKIP LOCKED`, which it does not stand in the way of).
    func holdRowLock(for seconds: TimeInterval) {
        let candidates = database.rows.values.filter { database.rowLocks[$0.id] == nil && $0.state.status != .deleted }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        guard !candidates.isEmpty else { return }
        let row = candidates[hostileIndex(candidates.count)]
        let update = hostileRandom() < 0.5
        let commits = update && hostileRandom() < 0.5
        database.takeRowLock(
            row.id,
            holder: update
                ? "an operator's UPDATE, open for \(Int(seconds)) s"
                : "FOR KEY SHARE of an insert elsewhere, \(Int(seconds)) s",
            keyShare: !update
        )
        time.schedule(after: seconds) { [unowned self] in
            guard self.database.rowLocks[row.id] != nil else { return }
            if commits, self.database.rows[row.id] != nil {
                self.database.update(row.id) { $0.name += "-x" }
                self.trace("operator: the UPDATE of \(self.label(row.id)) commits (renamed)")
            }
            self.database.releaseRowLock(row.id, why: commits ? "committed" : "transaction ended")
            if commits { self.notify(row.id) }
        }
    }

    /// A row deleted with SQL and inserted again with the same id at once (an upsert) or up to 20 s
    /// later, whatever the daemon is doing with it: a create in flight or not yet listed, too.
    /// Half the time the pick is among rows with a create sent in the last minute.
    func deleteAndReinsertNow() {
        let live = database.rows.values.filter { database.rowLocks[$0.id] == nil && $0.state.status != .deleted }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        let recent = live.filter { lastCreateSentAt[$0.id].map { time.now.timeIntervalSince($0) < 60 } ?? false }
        let candidates = !recent.isEmpty && hostileRandom() < 0.5 ? recent : live
        guard !candidates.isEmpty else { return }
        let row = candidates[hostileIndex(candidates.count)]
        let delay = hostileRandom() < 0.3 ? 0 : 0.5 + hostileRandom() * 20
        database.remove(row.id)
        rowGone(row)
        reinserted.insert(row.id)
        // With agent bootstrap the row's agent goes with it (agent_id is a column of the row).
        if agentBootstrap { disturbed.insert(row.id) }
        trace(
            "operator: DELETE \(label(row.id)) (\(row.state.status.rawValue)) with SQL; it comes back "
                + (delay == 0 ? "in the same transaction" : String(format: "%.1f s later", delay))
        )
        let insertAgain = { [unowned self] in
            var again = row
            again.revision = 0
            self.insert(again)
        }
        if delay == 0 { insertAgain() } else { time.schedule(after: delay, insertAgain) }
    }

    /// An operator changes their mind: clears `delete_requested_at` on a row that asked for it.
    func withdrawDeletion() {
        let candidates = database.rows.values.filter { $0.deleteRequestedAt != nil && $0.state.status != .deleted }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        guard !candidates.isEmpty else { return }
        let row = candidates[hostileIndex(candidates.count)]
        database.update(row.id) { $0.deleteRequestedAt = nil }
        deletionWithdrawnAt[row.id] = time.now
        // Its droplet may be gone already: the row may end failed, or deleted if it got there first.
        disturbed.insert(row.id)
        trace("operator: deletion request withdrawn for \(label(row.id)) (\(row.state.status.rawValue))")
        notify(row.id)
    }

    func failOver(downtime: TimeInterval) {
        let before = database.rows
        let lost = database.failOver(downtime: downtime)
        trace(
            "operator: failover to \(database.replication), database unreachable for \(Int(downtime)) s"
                + (lost.isEmpty
                    ? ""
                    : "; commits lost for \(lost.sorted { $0.uuidString < $1.uuidString }.map(label).joined(separator: ", "))")
        )
        promiseVoided.formUnion(lost)
        disturbed.formUnion(lost)
        for id in lost.sorted(by: { $0.uuidString < $1.uuidString }) {
            if database.rows[id] == nil || database.rows[id]?.state.status == .deleted {
                if let last = before[id] { rowGone(last) }
            } else {
                rowGoneAt[id] = nil
                goneAskingDeletion.remove(id)
            }
        }
        time.schedule(after: downtime) { [unowned self] in
            for id in self.database.rows.keys.sorted(by: { $0.uuidString < $1.uuidString }) { self.notify(id) }
        }
    }

    // MARK: The Engine Hub's side of agent bootstrap

    /// A droplet made with agent bootstrap: once booted, its agent dials the hub every 20 s. The
    /// hub lets it in with the credential the hub gave it, or else with its bootstrap key while
    /// the hub's record still has it (the daemon clears it once the agent has connected), and then
    /// gives it a new credential; it refreshes `last_seen_at` while the droplet runs.
    func startAgent(
        on dropletID: Int64,
        agent: UUID,
        keySHA256: String,
        credential: UInt64? = nil,
        after delay: TimeInterval
    ) {
        time.schedule(after: delay) { [unowned self] in
            guard let droplet = self.existingDroplet(dropletID), !self.time.draining else { return }
            var held = credential
            if !droplet.poweredOff, let record = self.database.agents[agent] {
                let byCredential = held != nil && record.hubCredential == held
                if byCredential || record.keySHA256 == keySHA256 {
                    if !byCredential {
                        self.database.hubCredentialsIssued += 1
                        held = self.database.hubCredentialsIssued
                    }
                    let now = self.time.now
                    let first = record.connectedAt == nil
                    self.database.updateAgent(agent) { agent in
                        if agent.connectedAt == nil { agent.connectedAt = now }
                        agent.lastSeenAt = now
                        agent.hubCredential = held
                    }
                    if first, let row = droplet.identity {
                        self.trace("hub: agent of droplet \(dropletID) connected")
                        self.notify(row)
                    }
                }
            }
            self.startAgent(on: dropletID, agent: agent, keySHA256: keySHA256, credential: held, after: 20)
        }
    }

    /// The agent and key a create's user_data carries (the template below puts them on one line).
    static func agentInUserData(_ text: String) -> (agent: UUID, keySHA256: String)? {
        let words = text.split(whereSeparator: \.isWhitespace)
        guard let at = words.firstIndex(of: "agent"), at + 3 < words.count, words[at + 2] == "key",
            let agent = UUID(uuidString: String(words[at + 1]))
        else { return nil }
        return (agent, AgentEnrollment.keySHA256(String(words[at + 3])))
    }

    static let agentTemplate = "#cloud-config\n# agent {AGENT_ID} key {AGENT_KEY} hub {ENGINE_WS_URL}\n"
}
