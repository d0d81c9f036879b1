#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// The agent's part of a row whose droplet is active (design.md, "Agent bootstrap and health"),
// judged as of the read of the rows (`PlanBuilder.rowsReadAt`).

extension Decider {
    /// The agent's part of a row whose droplet is active (design.md, "Agent bootstrap and health"):
    /// `initializing` until the agent first connects, `failed` if it has not within the bootstrap
    /// timeout, then `active` or `unreachable` by how recently the hub saw it. Rows without an
    /// agent, and every row while bootstrap is off, are simply `active`.
    func followAgent(
        of row: ServerRecord,
        droplet: ObservedDroplet,
        into target: inout DaemonState,
        plan: inout PlanBuilder
    ) {
        guard let policy = configuration.agentBootstrap, let agentID = row.state.agentID else {
            target.status = .active
            return
        }
        if let seenAt = row.agent?.seenAt {
            // Connected before a pass saw the droplet active: the wait took no time, but it was
            // this agent's to end (the audit trail says so).
            if !row.state.status.isUp { target.agentAwaitedSince = row.state.agentAwaitedSince ?? plan.now }
            // Judged as of the read: the hub may have seen the agent since (seed 120146's passes
            // took minutes, and every agent went unreachable at each pass's end).
            let staleAt = seenAt.adding(policy.staleAfter)
            if plan.rowsReadAt > staleAt {
                target.status = .unreachable
                target.lastError = DecisionMessages.agentUnreachable(
                    agent: agentID,
                    seenAt: seenAt,
                    staleAfter: policy.staleAfter
                )
            } else {
                target.status = .active
                plan.wake(at: staleAt)
            }
            return
        }
        // Never connected. A row already up (active before bootstrap was turned on, its agent
        // the platform's) is never sent back to waiting: there is nothing to watch yet.
        if row.state.status.isUp && row.state.status != .initializing {
            target.status = row.state.status
            return
        }
        let awaitedSince = row.state.agentAwaitedSince ?? plan.now
        target.agentAwaitedSince = awaitedSince
        let deadline = awaitedSince.adding(policy.timeout)
        if plan.rowsReadAt >= deadline {
            target.status = .failed
            target.lastError = DecisionMessages.agentTimedOut(
                agent: agentID,
                droplet: droplet.id,
                address: target.ipv4,
                timeout: policy.timeout
            )
        } else {
            target.status = .initializing
            plan.wake(at: deadline)
        }
    }
}
