#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// A value kept behind one reference, for a field that is nearly always nil in a type the daemon
/// keeps one of per row: nil costs a pointer, not the value's whole size. Compared by value.
final class Box<Value: Hashable & Sendable>: Sendable, Hashable {
    let value: Value

    init(_ value: Value) { self.value = value }

    static func == (a: Box, b: Box) -> Bool { a === b || a.value == b.value }

    func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

/// The lifecycle of a row in `servers`, as the design contract names it.
public enum ServerStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case creating
    case provisioning
    case initializing
    case active
    /// Was active; its agent has not been seen for the stale period (agent bootstrap only).
    case unreachable
    case failed
    case deleting
    case deleted

    /// The droplet is active and has its address: the server exists and is (or was) usable.
    public var isUp: Bool {
        switch self {
        case .initializing, .active, .unreachable: true
        case .creating, .provisioning, .failed, .deleting, .deleted: false
        }
    }
}

/// What the daemon owns in a row: everything the reconciler may write.
///
/// Decisions compare the state a row has with the state it should have and emit an update only
/// when the two differ, so a row is written only when something changed.
public struct DaemonState: Sendable, Hashable {
    public var status: ServerStatus
    /// The droplet the row is bound to, once known.
    public var dropletID: Int64?
    public var ipv4: String?
    public var ipv6: String?
    /// Why the row is failed or retrying, in words an operator can act on; nil when all is well.
    public var lastError: String?
    /// When the last create's intent was recorded (database clock). Set durably *before* the
    /// request leaves, so a crash or a lost response leaves a trace.
    public var createAttemptedAt: Date?
    /// The last instant that create could have reached DigitalOcean: the intent, plus the window
    /// in which it may still be sent, plus the request's deadline. No second create until a look
    /// taken a settle period after this instant shows no droplet with the row's identity. Nil on
    /// rows written before it existed: derived from `createAttemptedAt` then.
    public var createReachableUntil: Date?
    /// Creates sent for this row so far (for the audit trail and for operators).
    public var createAttempts: Int
    /// Droplets made for this row whose placement failed: accepted, then gone (404) before they
    /// were ever active. Each is created again, up to `DecisionConfiguration.maxPlacements`.
    public var failedPlacements: Int
    /// Consecutive transient failures; drives the per-row exponential backoff.
    public var transientFailures: Int
    /// No mutating call for this row before this instant (per-row backoff).
    public var nextAttemptAt: Date?
    /// The row's agent (`servers.agent_id`): made, or re-keyed, with each create intent when agent
    /// bootstrap is on; possibly set by the platform otherwise.
    public var agentID: UUID?
    /// When the daemon first saw the droplet active with a public address and began waiting for
    /// its agent (database clock); the bootstrap timeout counts from here. Cleared by a new intent.
    public var agentAwaitedSince: Date?
    /// What DigitalOcean last showed of the bound droplet (name, region, size, image).
    public var observed: DropletFacts?
    /// What differs between the row and its droplet that the daemon does not (or may not) change,
    /// and what to do about it; nil when the droplet matches the row. Never changes `status`.
    public var drift: String?
    /// When the current drift was first seen (database clock).
    public var driftSince: Date?
    /// The keys, VPC and options the bound droplet was made with (`DropletSpecification.creationOnly`),
    /// recorded with the create's intent; nil for a droplet made before it was recorded, or adopted.
    public var createdWith: String?
    /// The droplet and the project it was assigned to (`servers.project_assigned`,
    /// `ProjectAssignment.record`).
    public var projectAssigned: String?
    /// A rename or resize being applied to the droplet.
    public var change: LiveChange? {
        get { changeBox?.value }
        set { changeBox = newValue.map(Box.init) }
    }
    /// The last change DigitalOcean refused (or that failed): not tried again while the row asks
    /// for the same value.
    public var refused: RefusedChange? {
        get { refusedBox?.value }
        set { refusedBox = newValue.map(Box.init) }
    }
    // Both nearly always nil: boxed, they cost a pointer each in every row instead of 128 bytes.
    private var changeBox: Box<LiveChange>?
    private var refusedBox: Box<RefusedChange>?

    public init(
        status: ServerStatus = .creating,
        dropletID: Int64? = nil,
        ipv4: String? = nil,
        ipv6: String? = nil,
        lastError: String? = nil,
        createAttemptedAt: Date? = nil,
        createReachableUntil: Date? = nil,
        createAttempts: Int = 0,
        failedPlacements: Int = 0,
        transientFailures: Int = 0,
        nextAttemptAt: Date? = nil,
        agentID: UUID? = nil,
        agentAwaitedSince: Date? = nil,
        observed: DropletFacts? = nil,
        drift: String? = nil,
        driftSince: Date? = nil,
        createdWith: String? = nil,
        projectAssigned: String? = nil,
        change: LiveChange? = nil,
        refused: RefusedChange? = nil
    ) {
        self.status = status
        self.dropletID = dropletID
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.lastError = lastError
        self.createAttemptedAt = createAttemptedAt
        self.createReachableUntil = createReachableUntil
        self.createAttempts = createAttempts
        self.failedPlacements = failedPlacements
        self.transientFailures = transientFailures
        self.nextAttemptAt = nextAttemptAt
        self.agentID = agentID
        self.agentAwaitedSince = agentAwaitedSince
        self.observed = observed
        self.drift = drift
        self.driftSince = driftSince
        self.createdWith = createdWith
        self.projectAssigned = projectAssigned
        self.changeBox = change.map(Box.init)
        self.refusedBox = refused.map(Box.init)
    }
}

/// What the Engine Hub has recorded about a row's agent (`agents.connected_at`, `last_seen_at`,
/// both on the database's clock). The daemon reads these; only the hub writes them.
public struct AgentPresence: Sendable, Hashable {
    /// The agent's first authenticated connection; nil while it has never connected.
    public var connectedAt: Date?
    /// Refreshed by the hub at least every 30 s while the agent is connected.
    public var lastSeenAt: Date?

    public init(connectedAt: Date? = nil, lastSeenAt: Date? = nil) {
        self.connectedAt = connectedAt
        self.lastSeenAt = lastSeenAt
    }

    /// The last moment the agent is known to have been there, if it ever connected.
    public var seenAt: Date? { lastSeenAt ?? connectedAt }
}

/// One row of `servers` as the reconciler sees it.
public struct ServerRecord: Sendable, Hashable, Identifiable {
    public var id: UUID
    /// Bumped by the database on every update; writes are compare-and-set against it, so an
    /// operator's concurrent change is never overwritten.
    public var revision: Int64
    public var name: String
    public var region: String
    public var size: String
    public var image: String
    public var deleteRequestedAt: Date?
    /// `servers.protected`: while true the row's droplet is never destroyed, whatever
    /// `deleteRequestedAt` says.
    public var isProtected: Bool
    /// The row's own choices for its droplet (keys, VPC, tags, options); nil when it makes none.
    public var options: DropletOptions? {
        get { optionsBox?.value }
        set { optionsBox = newValue.flatMap { $0.isEmpty ? nil : Box($0) } }
    }
    private var optionsBox: Box<DropletOptions>?
    public var createdAt: Date
    public var state: DaemonState
    /// The hub's record of the row's agent (`state.agentID`), if the row has one.
    public var agent: AgentPresence?
    /// What the row's daemon columns actually hold, when the store could not take them as they are
    /// (an unknown status, a `digital_ocean_id` that is no id) and presents the row as `failed`
    /// instead; nil when `state` is what is stored. The decision writes `state` down, so the row
    /// says why it failed in the database too, not only in this replica's memory.
    public var storedState: DaemonState? {
        get { stored?.value }
        set { stored = newValue.map(Box.init) }
    }
    /// Boxed: nearly always nil, and a pass holds every live row (50,000 rows × a second
    /// `DaemonState` inline would be 17 MB of nothing).
    private var stored: Box<DaemonState>?

    public init(
        id: UUID,
        revision: Int64 = 0,
        name: String,
        region: String = "sfo3",
        size: String = "s-1vcpu-512mb-10gb",
        image: String = "ubuntu-22-04-x64",
        deleteRequestedAt: Date? = nil,
        isProtected: Bool = false,
        options: DropletOptions? = nil,
        createdAt: Date = Date(timeIntervalSince1970: 0),
        state: DaemonState = DaemonState(),
        agent: AgentPresence? = nil,
        storedState: DaemonState? = nil
    ) {
        self.id = id
        self.revision = revision
        self.name = name
        self.region = region
        self.size = size
        self.image = image
        self.deleteRequestedAt = deleteRequestedAt
        self.isProtected = isProtected
        self.optionsBox = options.flatMap { $0.isEmpty ? nil : Box($0) }
        self.createdAt = createdAt
        self.state = state
        self.agent = agent
        self.stored = storedState.map(Box.init)
    }

    /// The identity tag every droplet created for this row carries.
    public var identityTag: String { FleetTags.identity(for: id) }
}

/// The droplet lifecycle states DigitalOcean reports.
public enum DropletStatus: Sendable, Hashable {
    case new
    case active
    case off
    case archive
    /// A status this daemon does not know; treated as "not ready, not gone".
    case other(String)

    public init(_ raw: String) {
        switch raw {
        case "new": self = .new
        case "active": self = .active
        case "off": self = .off
        case "archive": self = .archive
        default: self = .other(raw)
        }
    }
}
