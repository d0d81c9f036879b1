import Foundation

/// Each droplet's stand-in agent, as the account keeps it (played by ``SimulatedAgents``).
extension SimulatedAccount {
    /// At create: reads the agent's values from `user_data` and draws this droplet's agent faults.
    /// Draws only for a droplet that has an agent and only for a fault whose probability is above
    /// zero, so runs that use neither see the same random sequence as before.
    mutating func planAgent(for dropletID: Int64, credentials: AgentCredentials) {
        let neverConnects = rng.chance(faults.agentNeverConnectProbability)
        let wrongKey = rng.chance(faults.agentWrongKeyProbability)
        let late = rng.chance(faults.agentLateProbability)
        var drawn: [String] = []
        if neverConnects { drawn.append("never_connect") }
        if wrongKey { drawn.append("wrong_key") }
        if late { drawn.append("late") }
        let engine = try? AgentEndpoint.parse(credentials.engineURL).get()
        agents[dropletID] = AgentRecord(
            credentials: credentials,
            presentedKey: wrongKey ? AgentCredentials.wrongKey(for: credentials.key) : credentials.key,
            neverConnects: neverConnects,
            lateBy: late ? faults.agentLateSeconds : 0,
            status: SimulatedAgentStatus(
                dropletID: dropletID,
                agentID: credentials.agentID,
                state: .waiting,
                engine: engine?.description,
                faults: drawn
            )
        )
    }

    /// The agent's task keeps running while this is non-nil: the droplet is active (or powered off)
    /// and no delete was asked for.
    func agentAssignment(dropletID: Int64, now: Date) -> AgentAssignment? {
        guard let record = agents[dropletID], let droplet = droplets[dropletID], droplet.deleteRequestedAt == nil,
            let status = droplet.apiStatus(at: now), status == "active" || status == "off",
            let activeAt = droplet.activeAt
        else { return nil }
        return AgentAssignment(
            dropletID: dropletID,
            agentID: record.credentials.agentID,
            presentedKey: record.presentedKey,
            engineURL: record.credentials.engineURL,
            activeAt: activeAt,
            neverConnects: record.neverConnects,
            lateBy: record.lateBy,
            heartbeatsEnabled: record.status.heartbeatsEnabled,
            // Powered off, the agent is down with its droplet; it comes back with it.
            connectEnabled: record.status.connectEnabled && droplet.poweredOffAt == nil,
            timing: agentTiming
        )
    }

    /// Every agent's status; one whose droplet is gone or being deleted shows `stopped`.
    func agentStatuses(now: Date) -> [SimulatedAgentStatus] {
        agents.keys.sorted().compactMap { agentStatus(dropletID: $0, now: now) }
    }

    func agentStatus(dropletID: Int64, now: Date) -> SimulatedAgentStatus? {
        guard var status = agents[dropletID]?.status else { return nil }
        let droplet = droplets[dropletID]
        if droplet == nil || droplet?.deleteRequestedAt != nil || droplet?.apiStatus(at: now) == nil {
            status.state = .stopped
        }
        return status
    }
}
