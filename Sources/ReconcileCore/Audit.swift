#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The kinds of entries in the audit trail. Each has a fixed 128-bit journal `MESSAGE_ID`, so an
/// auditor can filter by kind and `journalctl -x` can explain it from the catalog in `deploy/`.
/// The raw value is what `server_events.kind` stores.
public enum AuditKind: String, Sendable, Hashable, CaseIterable {
    case statusChanged = "status_changed"
    case createRequested = "create_requested"
    case createAccepted = "create_accepted"
    /// A create whose response never came (timeout, reset, 5xx): it may or may not have happened.
    case createUncertain = "create_uncertain"
    /// A create that was not sent after all: its intent had grown stale, or leadership lapsed.
    case createWithdrawn = "create_withdrawn"
    case adopted = "adopted"
    case destroyRequested = "destroy_requested"
    /// A destroy the budget counts is about to be sent: recorded first, so that the count holds
    /// it even when the answer is lost and the replica dies before `destroy_requested`.
    case destroySending = "destroy_sending"
    /// A destroy that was not sent after all: right before it left, its row no longer asked for it
    /// (or this replica no longer led).
    case destroyWithdrawn = "destroy_withdrawn"
    case duplicateResolved = "duplicate_resolved"
    /// The destroy budget is spent: destroys wait for the hour to have room, or an operator.
    case destroysBraked = "destroys_braked"
    /// Destroys go again (an allowance, room in the hour, a raised budget, or none waits).
    case destroysReleased = "destroys_released"
    case orphanSeen = "orphan_seen"
    /// A row failed and needs an operator.
    case failed = "failed"
    /// An operator put a failed row back in line (`citrus-reconciler retry`).
    case retryRequested = "retry_requested"
    /// A droplet's placement failed (gone, 404, before it was ever active): its row is created
    /// again.
    case placementFailed = "placement_failed"
    /// Droplets were assigned to their project, in one request for the batch.
    case projectAssigned = "project_assigned"
    /// A transient error; the row backs off and retries.
    case retrying = "retrying"
    /// This replica became leader, or lost leadership.
    case leadership = "leadership"
    /// The droplet is active; the row waits (`initializing`) for its agent to connect.
    case agentAwaited = "agent_awaited"
    /// The agent connected to the Engine Hub for the first time: the server is `active`.
    case agentConnected = "agent_connected"
    /// The agent did not connect within the bootstrap timeout: the row is `failed`.
    case agentTimedOut = "agent_timed_out"
    /// The hub has not seen the agent for the stale period: the server is `unreachable`.
    case agentUnreachable = "agent_unreachable"
    /// The hub sees the agent again: the server is `active` again.
    case agentReachable = "agent_reachable"
    /// A step of a live change (rename, power off, resize, power on) is about to be sent.
    case actionRequested = "action_requested"
    /// DigitalOcean accepted a droplet action; it is followed to completion by its id.
    case actionAccepted = "action_accepted"
    /// A droplet action's answer never came: it may or may not have been carried out.
    case actionUncertain = "action_uncertain"
    /// A droplet action completed; the change moves to its next step.
    case actionCompleted = "action_completed"
    /// A live change (rename, resize, power on) is complete.
    case changeCompleted = "change_completed"
    /// A live change was refused or failed; the row says why, and it is not tried again as it was.
    case changeFailed = "change_failed"
    /// The droplet differs from its row in a way the daemon does not (or may not) change.
    case driftDetected = "drift_detected"
    /// The droplet matches its row again.
    case driftCleared = "drift_cleared"

    /// The entry a row's status change is written as: the agent's own kinds where the change is
    /// the agent's doing, `status_changed` otherwise.
    public static func statusChange(from: DaemonState, to: DaemonState) -> AuditKind {
        switch (from.status, to.status) {
        case (.initializing, .initializing), (.unreachable, .unreachable): .statusChanged
        case (_, .initializing): .agentAwaited
        case (.initializing, .active): .agentConnected
        // The agent connected before the droplet was seen active: the wait is stamped, and over.
        case (let before, .active) where !before.isUp && to.agentAwaitedSince != nil: .agentConnected
        case (.provisioning, .creating) where to.failedPlacements > from.failedPlacements: .placementFailed
        case (.initializing, .failed) where to.lastError?.hasPrefix(DecisionMessages.agentTimeoutPrefix) == true:
            .agentTimedOut
        case (_, .unreachable): .agentUnreachable
        case (.unreachable, .active): .agentReachable
        default: .statusChanged
        }
    }

    public var messageID: String {
        switch self {
        case .statusChanged: "f4e0b00a992e45f7b917baf4526d904d"
        case .createRequested: "fbb6f3fa482d4cffaef462f27858cd04"
        case .createAccepted: "3402c01f8c404cdd96450398b9b4e4a9"
        case .createUncertain: "289bf0655d7d488687d0da17e41f109b"
        case .createWithdrawn: "c461cc6c7ab1416d8c476956693dd4ab"
        case .adopted: "01fb5b98340849f6899f9a5d09938e1c"
        case .destroyRequested: "b058ad7a130c46aa8a17c742ae88b049"
        case .destroySending: "e8a35117addf49dab6ac496804d91f6f"
        case .destroyWithdrawn: "3418187cedb94678bdc828ef1682ae05"
        case .duplicateResolved: "24495c5e7083448f8b69bd8cd91a9c53"
        case .destroysBraked: "d7b85182894d4f90977cfdf15acf9bbf"
        case .destroysReleased: "dd995bb7a76d4892ab90286fc3644a79"
        case .orphanSeen: "e4fe2eea0f584a3fb9c88bce5e381445"
        case .failed: "14dca2e49c7e4adda23d930e6dd3a8ed"
        case .retryRequested: "8e4baf3228a94a479b20451efa6ad013"
        case .placementFailed: "a8d9abac91c244c689d9d8a7866bcc12"
        case .projectAssigned: "7c5050b93cc740bf84e5df2d45bde6ec"
        case .retrying: "7a5470e4c1af4e018d9399c4ef4b5e85"
        case .leadership: "15886387314f4ec89434e836090e9b49"
        case .agentAwaited: "88f9237d300b42b9bd5a0b7b3a9aa0c1"
        case .agentConnected: "81a44aa5c5bf43d4a61f4d5c8bf9ed8e"
        case .agentTimedOut: "bafa90090f724fd5a917e89ee0026b35"
        case .agentUnreachable: "38651076555a49b3b25620f396adaf96"
        case .agentReachable: "a68b804f62614aa6b1fd71832ad8ebc1"
        case .actionRequested: "695094326fa94d68ac90f233b7f07465"
        case .actionAccepted: "85a2f617989a4969bcc58c33bd3ae577"
        case .actionUncertain: "809353156d5846bea4755b89905b0c0f"
        case .actionCompleted: "b056fe00496d4b229380f5cbcf845ae8"
        case .changeCompleted: "d4113fed3a414a0cae545b8d2c71fa52"
        case .changeFailed: "b33ee832aa204734b5f18111594acc84"
        case .driftDetected: "de3e1b62ca5948c8a5016bb85003b321"
        case .driftCleared: "1d59454daa6044be8da0b1d391a14a5d"
        }
    }
}

/// One entry of the audit trail: written to the journal and to `server_events`.
public struct AuditEvent: Sendable, Hashable {
    public var kind: AuditKind
    public var at: Date
    public var serverID: UUID?
    public var serverName: String?
    public var dropletID: Int64?
    public var fromStatus: ServerStatus?
    public var toStatus: ServerStatus?
    /// DigitalOcean's `request_id`, where a response carried one.
    public var requestID: String?
    /// One sentence an operator can read.
    public var message: String

    public init(
        kind: AuditKind,
        at: Date,
        serverID: UUID? = nil,
        serverName: String? = nil,
        dropletID: Int64? = nil,
        fromStatus: ServerStatus? = nil,
        toStatus: ServerStatus? = nil,
        requestID: String? = nil,
        message: String
    ) {
        self.kind = kind
        self.at = at
        self.serverID = serverID
        self.serverName = serverName
        self.dropletID = dropletID
        self.fromStatus = fromStatus
        self.toStatus = toStatus
        self.requestID = requestID
        self.message = message
    }
}
