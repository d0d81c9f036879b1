import Foundation
import ReconcileCore
import Testing

/// Agent bootstrap and health (design.md): what a row whose droplet is active becomes, by what the
/// hub recorded of its agent.
@Suite("Agent bootstrap and health")
struct AgentTests {
    static let agent = UUID(uuidString: "aaaaaaaa-0000-4000-8000-000000000001")!

    static var bootstrap: DecisionConfiguration {
        var configuration = DecisionConfiguration()
        configuration.agentBootstrap = AgentBootstrapPolicy(timeout: .seconds(900), staleAfter: .seconds(120))
        return configuration
    }

    /// Row 1 bound to droplet 100 (active, with addresses), with the given agent record.
    func bound(
        status: ServerStatus,
        agent: UUID? = agent,
        awaitedSince: Date? = nil,
        connectedAt: Date? = nil,
        lastSeenAt: Date? = nil
    ) -> ServerRecord {
        var record = row(
            1,
            status: status,
            dropletID: 100,
            ipv4: ipv4,
            ipv6: ipv6,
            attemptedAt: seconds(-1_000),
            attempts: 1
        )
        record.state.agentID = agent
        record.state.agentAwaitedSince = awaitedSince
        if agent != nil { record.agent = AgentPresence(connectedAt: connectedAt, lastSeenAt: lastSeenAt) }
        return record
    }

    func after(
        _ record: ServerRecord,
        droplet: ObservedDroplet = droplet(100, for: 1),
        configuration: DecisionConfiguration = bootstrap
    )
        -> (state: DaemonState, plan: Plan)
    {
        let plan = decide([record], observe([droplet]), configuration: configuration)
        return (plan.after(record), plan)
    }

    @Test("an active droplet sends the row to initializing, stamped when the wait began, with a wake-up at the timeout")
    func awaited() {
        let (state, plan) = after(bound(status: .provisioning))
        #expect(state.status == .initializing)
        #expect(state.agentAwaitedSince == now)
        #expect(state.lastError == nil)
        #expect(plan.nextWakeUp == seconds(900))
        #expect(!plan.waitingOnCloud)  // the agent's connection is not DigitalOcean's business
    }

    @Test("initializing stays initializing until the timeout, keeping the instant the wait began")
    func stillWaiting() {
        let (state, plan) = after(bound(status: .initializing, awaitedSince: seconds(-899)))
        #expect(state.status == .initializing)
        #expect(state.agentAwaitedSince == seconds(-899))
        #expect(plan.written(bound(status: .initializing, awaitedSince: seconds(-899))) == nil)
        #expect(plan.nextWakeUp == seconds(1))
    }

    @Test(
        "no connection within the bootstrap timeout fails the row and says what to look at; the droplet is left alone"
    )
    func timedOut() {
        let record = bound(status: .initializing, awaitedSince: seconds(-900))
        let (state, plan) = after(record)
        #expect(state.status == .failed)
        #expect(state.dropletID == 100)
        #expect(state.lastError?.hasPrefix(DecisionMessages.agentTimeoutPrefix) == true)
        #expect(state.lastError?.contains("15m") == true)
        #expect(state.lastError?.contains("droplet 100") == true)
        #expect(plan.destroys.isEmpty)
        #expect(AuditKind.statusChange(from: record.state, to: state) == .agentTimedOut)
    }

    @Test("a first connection makes the row active, and a wake-up is set for when it would go stale")
    func connected() {
        let record = bound(
            status: .initializing,
            awaitedSince: seconds(-60),
            connectedAt: seconds(-5),
            lastSeenAt: seconds(-5)
        )
        let (state, plan) = after(record)
        #expect(state.status == .active)
        #expect(plan.nextWakeUp == seconds(115))
        #expect(AuditKind.statusChange(from: record.state, to: state) == .agentConnected)
    }

    @Test("an agent that connected before a pass saw its droplet active: straight to active, audited as its connection")
    func connectedBeforeSeen() {
        let record = bound(status: .provisioning, connectedAt: seconds(-1), lastSeenAt: seconds(-1))
        let (state, _) = after(record)
        #expect(state.status == .active)
        #expect(state.agentAwaitedSince == now)
        #expect(AuditKind.statusChange(from: record.state, to: state) == .agentConnected)
        // Without bootstrap, the same move is a plain status change.
        let (plain, _) = after(record, configuration: DecisionConfiguration())
        #expect(AuditKind.statusChange(from: record.state, to: plain) == .statusChanged)
    }

    @Test("an agent the hub has not seen for longer than the stale period makes the row unreachable, and back")
    func unreachableAndBack() {
        let stale = bound(status: .active, connectedAt: seconds(-600), lastSeenAt: seconds(-121))
        let (down, _) = after(stale)
        #expect(down.status == .unreachable)
        #expect(down.lastError?.contains("last seen") == true)
        #expect(AuditKind.statusChange(from: stale.state, to: down) == .agentUnreachable)

        var back = bound(status: .unreachable, connectedAt: seconds(-600), lastSeenAt: seconds(-2))
        back.state.lastError = down.lastError
        let (up, _) = after(back)
        #expect(up.status == .active)
        #expect(up.lastError == nil)
        #expect(AuditKind.statusChange(from: back.state, to: up) == .agentReachable)

        // Exactly at the edge it is still active.
        #expect(
            after(bound(status: .active, connectedAt: seconds(-600), lastSeenAt: seconds(-120))).state.status == .active
        )
    }

    @Test(
        "an agent is judged as of the read of its row: a pass whose look at DigitalOcean took minutes does not call it unreachable, nor fail its wait"
    )
    func judgedAsOfTheRead() {
        // Read 180 s before the decision, seen 60 s before the read: fresh at the read, though
        // 240 s old by the clock when the decision is made.
        let readAt = seconds(-180)
        let record = bound(status: .active, connectedAt: seconds(-600), lastSeenAt: seconds(-240))
        let decider = Decider(configuration: Self.bootstrap)
        let observation = observe([droplet(100, for: 1)])
        let asOfRead = decider.decide(rows: [record], observation: observation, now: now, rowsReadAt: readAt)
        #expect(asOfRead.after(record).status == .active)
        let asOfNow = decider.decide(rows: [record], observation: observation, now: now)
        #expect(asOfNow.after(record).status == .unreachable)

        // A wait that ran out between the read and the decision: the agent may have connected
        // meanwhile, which the read could not show. The next pass, reading again, decides.
        let waiting = bound(status: .initializing, awaitedSince: seconds(-1_000))
        let plan = decider.decide(rows: [waiting], observation: observation, now: now, rowsReadAt: seconds(-101))
        #expect(plan.after(waiting).status == .initializing)
        #expect(
            decider.decide(rows: [waiting], observation: observation, now: now, rowsReadAt: seconds(-100))
                .after(waiting).status == .failed
        )
    }

    @Test("a connection seen only as connected_at counts as seen then")
    func connectedWithoutHeartbeat() {
        #expect(after(bound(status: .active, connectedAt: seconds(-121))).state.status == .unreachable)
        #expect(after(bound(status: .active, connectedAt: seconds(-10))).state.status == .active)
    }

    @Test(
        "an active row whose agent never connected (the platform's, from before bootstrap) is not sent back to waiting"
    )
    func neverSentBack() {
        #expect(after(bound(status: .active)).state.status == .active)
    }

    @Test("rows without an agent, and every row while bootstrap is off, go straight to active")
    func offOrNoAgent() {
        #expect(after(bound(status: .provisioning, agent: nil)).state.status == .active)
        let off = DecisionConfiguration()
        #expect(after(bound(status: .provisioning), configuration: off).state.status == .active)
        #expect(
            after(bound(status: .initializing, awaitedSince: seconds(-10)), configuration: off).state.status == .active
        )
        #expect(
            after(bound(status: .unreachable, connectedAt: seconds(-999)), configuration: off).state.status == .active
        )
    }

    @Test("a droplet that vanishes fails an initializing or unreachable row like an active one")
    func vanished() {
        for status in [ServerStatus.initializing, .unreachable] {
            let record = bound(status: status, awaitedSince: seconds(-10))
            let plan = decide([record], observe([], gone: [100]), configuration: Self.bootstrap)
            #expect(plan.after(record).status == .failed)
            #expect(plan.after(record).lastError == DecisionMessages.vanished(droplet: 100))
        }
    }

    @Test("a droplet listed without its address keeps an initializing or unreachable row where it is")
    func addressGlitch() {
        for status in [ServerStatus.initializing, .unreachable] {
            let record = bound(
                status: status,
                awaitedSince: seconds(-10),
                connectedAt: status == .unreachable ? seconds(-999) : nil
            )
            let (state, _) = after(record, droplet: droplet(100, for: 1, ipv4: nil, ipv6: nil))
            #expect(state.status == status)
            #expect(state.ipv4 == ipv4)
        }
    }

    @Test("a new intent names the attempt's agent and restarts the wait")
    func intentRekeys() {
        let decider = Decider(configuration: Self.bootstrap)
        var state = DaemonState(status: .creating, agentID: Self.agent, agentAwaitedSince: seconds(-50))
        state.createAttempts = 1
        let other = UUID()
        let intent = decider.intent(from: state, at: now, agent: other)
        #expect(intent.agentID == other)
        #expect(intent.agentAwaitedSince == nil)
        #expect(intent.createAttempts == 2)
        // Withdrawn: the row is as before, but keeps the agent the intent made and its count.
        let withdrawn = decider.afterCreate(
            .withdrawn(reason: "stale"),
            before: state,
            intent: intent,
            at: now,
            jitter: 0
        )
        #expect(withdrawn.agentID == other)
        #expect(withdrawn.createAttempts == intent.createAttempts)
        #expect(withdrawn.createAttemptedAt == state.createAttemptedAt)
    }

    @Test("status changes that are not the agent's are plain status changes")
    func plainKinds() {
        let from = DaemonState(status: .provisioning)
        #expect(AuditKind.statusChange(from: from, to: DaemonState(status: .active)) == .statusChanged)
        var vanished = DaemonState(status: .failed)
        vanished.lastError = DecisionMessages.vanished(droplet: 1)
        #expect(AuditKind.statusChange(from: DaemonState(status: .initializing), to: vanished) == .statusChanged)
        #expect(AuditKind.statusChange(from: from, to: DaemonState(status: .initializing)) == .agentAwaited)
    }
}
