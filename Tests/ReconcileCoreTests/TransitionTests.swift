import Foundation
import ReconcileCore
import Testing

/// What each row change says in the audit trail: the entries a write carries, word for word.
@Suite("Transitions and their audit entries")
struct TransitionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var from: DaemonState
        var to: DaemonState
        var expected: [(AuditKind, String)]
        var testDescription: String { name }
    }

    static let agent = UUID(uuidString: "00000000-0000-4000-8000-00000000a9e7")!

    static func state(
        _ status: ServerStatus,
        droplet: Int64? = 42,
        error: String? = nil,
        agent: UUID? = nil,
        awaited: Date? = nil
    ) -> DaemonState {
        DaemonState(
            status: status,
            dropletID: droplet,
            ipv4: ipv4,
            lastError: error,
            agentID: agent,
            agentAwaitedSince: awaited
        )
    }

    static func changing(_ state: DaemonState, _ change: LiveChange?, drift: String? = nil) -> DaemonState {
        var state = state
        state.change = change
        state.drift = drift
        return state
    }

    static let resize = LiveChange.Goal.resize(to: "s-2vcpu-2gb", disk: false)

    static let cases: [Case] = [
        Case(
            name: "provisioning to active",
            from: state(.provisioning),
            to: state(.active),
            expected: [(.statusChanged, "server web-1 is now active (was provisioning)")]
        ),
        Case(
            name: "active droplet, its agent awaited",
            from: state(.provisioning, agent: agent),
            to: state(.initializing, agent: agent, awaited: now),
            expected: [
                (
                    .agentAwaited,
                    "server web-1 is initializing: droplet 42 is active at 203.0.113.10; waiting (up to 15m) for agent 00000000-0000-4000-8000-00000000a9e7 to connect to the Engine Hub"
                )
            ]
        ),
        Case(
            name: "the agent connects",
            from: state(.initializing, agent: agent, awaited: now),
            to: state(.active, agent: agent, awaited: now),
            expected: [
                (
                    .agentConnected,
                    "server web-1 is active: agent 00000000-0000-4000-8000-00000000a9e7 connected to the Engine Hub; its bootstrap key is cleared (single-use)"
                )
            ]
        ),
        Case(
            name: "a failure says why, after the status change",
            from: state(.provisioning),
            to: state(.failed, error: "droplet 42 vanished"),
            expected: [
                (.statusChanged, "server web-1 is now failed (was provisioning)"),
                (.failed, "server web-1 failed: droplet 42 vanished"),
            ]
        ),
        Case(
            name: "a failed row that fails again for another reason",
            from: state(.failed, error: "first"),
            to: state(.failed, error: "second"),
            expected: [(.failed, "server web-1 failed: second")]
        ),
        Case(
            name: "nothing said of a write that changes nothing an auditor follows",
            from: state(.active),
            to: state(.active, error: "ignored"),
            expected: []
        ),
        Case(
            name: "a live change's step done",
            from: changing(state(.active), LiveChange(goal: resize, stepIndex: 0)),
            to: changing(state(.active), LiveChange(goal: resize, stepIndex: 1)),
            expected: [
                (
                    .actionCompleted,
                    "server web-1: power_off of droplet 42 done; resize to s-2vcpu-2gb (CPU and memory), step 2 of 3 (resize)"
                )
            ]
        ),
        Case(
            name: "a live change completed, and drift cleared",
            from: changing(state(.active), LiveChange(goal: resize, stepIndex: 2), drift: "size s-1vcpu-1gb"),
            to: changing(state(.active), nil),
            expected: [
                (.changeCompleted, "server web-1: resize to s-2vcpu-2gb (CPU and memory) of droplet 42 completed"),
                (.driftCleared, "server web-1 matches its droplet again"),
            ]
        ),
        Case(
            name: "drift seen",
            from: state(.active),
            to: changing(state(.active), nil, drift: "region sfo3, not nyc3"),
            expected: [(.driftDetected, "server web-1 drifts from its droplet: region sfo3, not nyc3")]
        ),
    ]

    @Test("each change's entries, in order", arguments: cases)
    func entries(_ example: Case) {
        let change = Transition(
            row: row(1),
            from: example.from,
            to: example.to,
            at: now,
            requestID: "req-1",
            agentTimeout: .seconds(900)
        )
        #expect(change.events.map(\.kind) == example.expected.map(\.0))
        #expect(change.events.map(\.message) == example.expected.map(\.1))
        #expect(change.events.allSatisfy { $0.serverID == rowID(1) && $0.at == now && $0.requestID == "req-1" })
    }

    @Test("a status change's entry names the droplet and both statuses; a live change's names the droplet only")
    func fields() {
        let change = Transition(row: row(1), from: Self.state(.provisioning), to: Self.state(.active), at: now)
        #expect(change.events.first?.fromStatus == .provisioning)
        #expect(change.events.first?.toStatus == .active)
        #expect(change.events.first?.dropletID == 42)
        let step = Transition(
            row: row(1),
            from: Self.changing(Self.state(.active), LiveChange(goal: Self.resize)),
            to: Self.changing(Self.state(.active), LiveChange(goal: Self.resize, stepIndex: 1)),
            at: now
        )
        #expect(step.events.first?.fromStatus == nil)
        #expect(step.events.first?.dropletID == 42)
    }

    @Test("a create's outcomes: what each says, and an acceptance the row could not record says so")
    func createOutcomes() {
        let accepted = CreateOutcome.accepted(droplet(42, for: 1))
        let next = Self.state(.provisioning)
        #expect(
            Transition.entry(of: accepted, server: "web-1", next: next, recorded: true)
                == OutcomeEntry(
                    kind: .createAccepted,
                    droplet: 42,
                    statuses: true,
                    message: "DigitalOcean accepted droplet 42 for server web-1"
                )
        )
        let unrecorded = Transition.entry(of: accepted, server: "web-1", next: next, recorded: false)
        #expect(unrecorded?.message.hasSuffix("the next pass binds the droplet by its identity tag") == true)
        #expect(Transition.entry(of: .refused(reason: "422"), server: "web-1", next: next, recorded: true) == nil)
        var uncertain = Self.state(.creating, droplet: nil)
        uncertain.createReachableUntil = now
        #expect(
            Transition.entry(of: .unknown(reason: "HTTP 500"), server: "web-1", next: uncertain, recorded: true)?
                .message
                == "server web-1: the create may or may not have happened (HTTP 500); no new create until a look a settle period after 2023-11-14T22:13:20Z shows none"
        )
        #expect(
            Transition.entry(of: .withdrawn(reason: "stale"), server: "web-1", next: next, recorded: true)?.kind
                == .createWithdrawn
        )
    }

    @Test("a droplet action's outcomes: accepted, uncertain and retrying are said; refused and withdrawn are not")
    func actionOutcomes() {
        let next = Self.state(.active, error: "HTTP 429")
        func entry(_ outcome: ActionOutcome) -> OutcomeEntry? {
            Transition.entry(of: outcome, action: .powerOff, droplet: 42, server: "web-1", next: next)
        }
        #expect(
            entry(.accepted(actionID: 7))?.message
                == "server web-1: DigitalOcean accepted power off of droplet 42 as action 7; following it to completion"
        )
        #expect(entry(.transient(reason: "429", retryAfter: nil))?.message == "server web-1: HTTP 429")
        #expect(entry(.unknown(reason: "timeout"))?.kind == .actionUncertain)
        #expect(entry(.refused(reason: "422")) == nil)
        #expect(entry(.withdrawn(reason: "stale")) == nil)
    }
}
