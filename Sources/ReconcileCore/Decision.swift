#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What one pass observed at DigitalOcean.
public struct Observation: Sendable, Hashable {
    /// Every droplet tagged `citrus-host` (all pages), plus droplets fetched one by one because a
    /// row records their id but the list did not show them (list lag, or a droplet without the fleet
    /// tag that a row adopted).
    public var droplets: [ObservedDroplet]
    /// Droplet ids a row records that a direct GET answered 404 for: gone.
    public var goneDropletIDs: Set<Int64>
    /// When the look began (database clock), before the list and any lookup was sent. Settle
    /// periods are measured against this instant, never against "now", so a look that started
    /// before the settle period ended proves nothing.
    public var listedAt: Date
    /// The fleet list came back as a single page: one answer, one consistent view, so a droplet it
    /// does not show did not exist when it was taken (list lag aside, which the settle period
    /// covers). A list of several pages proves no absence: offset pages shift when droplets are
    /// deleted while it is read, and a droplet can fall between two pages.
    public var listIsSnapshot: Bool
    /// Rows whose identity tag was looked up directly (`tag_name=citrus-server:<uuid>`, one page)
    /// at or after `listedAt`; what those lookups found is in `droplets`. For these rows, a droplet
    /// missing from `droplets` is confirmed absent.
    public var identitiesLookedUp: Set<UUID>
    /// When this look's identity lookups began (at or after `listedAt`); a looked-up row was seen
    /// then. Nil: none were made.
    public var lookupsBeganAt: Date?
    /// Whether `droplets` holds the whole fleet (a full list, this pass's). False between full
    /// lists: then it holds only what the pass read fresh (lookups by id and by identity) and the
    /// droplets of rows at rest as the last full list showed them, so nothing is an orphan.
    public var isFullView: Bool
    /// Droplets read in this look itself (pages of the full list read in this pass, GETs by id):
    /// one of them existed moments before the decision, as surely as a lookup of its identity
    /// would have shown it. Pages read in earlier passes are not among them.
    public var freshlyRead: Set<Int64>
    /// The progress of the actions live changes wait on, by action id, as read in this look.
    public var actions: [Int64: ActionProgress]
    /// The recent action history of droplets whose change has a step of unknown outcome, by
    /// droplet id, as read in this look.
    public var actionHistory: [Int64: [ObservedAction]]

    public init(
        droplets: [ObservedDroplet],
        goneDropletIDs: Set<Int64> = [],
        listedAt: Date,
        listIsSnapshot: Bool = false,
        identitiesLookedUp: Set<UUID> = [],
        lookupsBeganAt: Date? = nil,
        isFullView: Bool = true,
        freshlyRead: Set<Int64> = [],
        actions: [Int64: ActionProgress] = [:],
        actionHistory: [Int64: [ObservedAction]] = [:]
    ) {
        self.droplets = droplets
        self.goneDropletIDs = goneDropletIDs
        self.listedAt = listedAt
        self.listIsSnapshot = listIsSnapshot
        self.identitiesLookedUp = identitiesLookedUp
        self.lookupsBeganAt = lookupsBeganAt
        self.isFullView = isFullView
        self.freshlyRead = freshlyRead
        self.actions = actions
        self.actionHistory = actionHistory
    }

    /// Whether this observation proves that no droplet carried `row`'s identity when it was taken.
    public func confirmsAbsence(of row: UUID) -> Bool {
        listIsSnapshot || identitiesLookedUp.contains(row)
    }

    /// When this look saw `row`'s identity: when its lookup began, if it was looked up, else when
    /// the look began. Settle periods are measured against this instant.
    public func seenAt(_ row: UUID) -> Date {
        guard identitiesLookedUp.contains(row), let lookupsBeganAt else { return listedAt }
        return max(listedAt, lookupsBeganAt)
    }
}

public enum OrphanPolicy: Sendable, Hashable {
    /// Report orphans in the journal and events; never destroy them (the default).
    case report
    /// Destroy an orphan once it has been seen continuously for the grace period.
    case delete(grace: Duration)
}

/// Agent bootstrap (design.md, "Agent bootstrap and health"): rows wait in `initializing` for their
/// agent, and active rows are watched through the hub's `last_seen_at`.
public struct AgentBootstrapPolicy: Sendable, Hashable {
    /// A droplet's agent that has not connected this long after the droplet became active fails
    /// its row (the droplet is left for the operator).
    public var timeout: Duration
    /// An active row whose agent has not been seen for longer than this is `unreachable`.
    public var staleAfter: Duration

    public init(timeout: Duration = .seconds(15 * 60), staleAfter: Duration = .seconds(120)) {
        self.timeout = timeout
        self.staleAfter = staleAfter
    }
}

public struct DecisionConfiguration: Sendable, Hashable {
    /// How long after the last instant a create could have reached DigitalOcean a look must be
    /// taken before the droplet's absence is believed. The one assumption the design rests on: a
    /// droplet DigitalOcean accepted shows in lists and lookups by tag within this period.
    public var settlePeriod: Duration = .seconds(60)
    /// A create whose intent was recorded longer ago than this when its turn comes (a slow database
    /// write, a frozen process) is not sent, and the row is decided again.
    public var createSendWindow: Duration = .seconds(5)
    /// The create request's whole deadline in the client; after it, no answer will be read.
    public var createRequestTimeout: Duration = .seconds(30)
    public var orphanPolicy: OrphanPolicy = .report
    /// How many times a row's droplet may be placed: a droplet accepted, then gone (404) before it
    /// was ever active, is created again until this many have failed, then the row fails.
    public var maxPlacements = 3
    /// Per-row backoff for transient errors: base × 2^(failures-1), capped, with jitter.
    public var backoffBase: Duration = .seconds(2)
    public var backoffCap: Duration = .seconds(300)
    /// Nil: bootstrap is off, and rows go from `provisioning` straight to `active`.
    public var agentBootstrap: AgentBootstrapPolicy?
    /// What the daemon may change on a live droplet (resizes, powering on); renames always.
    public var liveChanges = LiveChangePolicy()
    /// Nil: a droplet whose row asked for deletion is destroyed at once. Otherwise the server is
    /// first shut down gracefully, and destroyed once it is off or this long after
    /// `delete_requested_at`, whichever comes first.
    public var shutdownBeforeDestroy: Duration?
    /// What every droplet is made with unless its row says otherwise.
    public var droplets = DropletDefaults()

    public init() {}
}

/// The droplet a create asks for.
public struct CreateOrder: Sendable, Hashable {
    public var rowID: UUID
    public var name: String
    public var region: String
    public var size: String
    public var image: String
    /// `citrus-host`, the row's identity tag, then the specification's extra tags.
    public var tags: [String]
    /// Keys, VPC, options and project, as the row and the configuration ask.
    public var specification: DropletSpecification

    public init(
        rowID: UUID,
        name: String,
        region: String,
        size: String,
        image: String,
        specification: DropletSpecification = DropletSpecification(
            options: nil,
            defaults: DropletDefaults(),
            region: ""
        )
    ) {
        self.rowID = rowID
        self.name = name
        self.region = region
        self.size = size
        self.image = image
        self.tags = [FleetTags.fleet, FleetTags.identity(for: rowID)] + specification.tags
        self.specification = specification
    }
}

/// Why a droplet is to be destroyed; each is a different line in the audit trail.
public enum DestroyReason: Sendable, Hashable {
    /// The row asked for deletion.
    case deleteRequested(row: UUID)
    /// A second droplet with the row's identity; `kept` is the one the row keeps: the oldest, the
    /// one with history. Both creation times are carried for the audit entry.
    case duplicate(row: UUID, kept: Int64, keptCreatedAt: Date, duplicateCreatedAt: Date)
    /// Tagged `citrus-host`, matches no row, seen for longer than the orphan grace period;
    /// `identity` is the row id its identity tag names, if it carries one.
    case orphan(identity: UUID?)
}

/// A notable fact for the audit trail that is not itself a row write or a request.
public enum AuditNote: Sendable, Hashable {
    /// A fleet droplet that matches no row. Reported every pass the decision sees it; the loop
    /// de-duplicates so the journal gets one entry per orphan.
    case orphanSeen(droplet: ObservedDroplet)
    /// A row bound to a droplet it did not record before (identity tag or recorded id).
    case adopted(row: UUID, droplet: Int64)
}

public enum Action: Sendable, Hashable {
    /// Compare-and-set write of the daemon-owned columns of a row (only emitted when `to != from`).
    case update(row: UUID, expectedRevision: Int64, from: DaemonState, to: DaemonState)
    /// Record the intent (the loop sets `createAttemptedAt` in the row first), then POST once.
    case create(CreateOrder, expectedRevision: Int64, state: DaemonState)
    /// DELETE the droplet (404 counts as gone).
    case destroy(dropletID: Int64, reason: DestroyReason)
    /// Record the step's intent (the loop stamps `change.sentAt` in `state` and writes it over
    /// `from`), then send the droplet action once. `state` carries the rest of the row's update.
    case dropletAction(DropletActionOrder, expectedRevision: Int64, from: DaemonState, state: DaemonState)
    /// Assign droplets to a project (one request), then record it in each member's row.
    case assign(ProjectAssignment)
    case note(AuditNote)
}

/// The outcome of one decision.
public struct Plan: Sendable, Hashable {
    public var actions: [Action]
    /// True while some row waits on DigitalOcean (a droplet not yet active, a create settling, a
    /// destroy not yet gone): the loop polls at its fast interval.
    public var waitingOnCloud: Bool
    /// The earliest instant at which a row's backoff or settle period ends, if any: the loop wakes then.
    public var nextWakeUp: Date?
    /// Rows whose next step (a create, or `deleted`) needs their absence confirmed and whose
    /// observation does not confirm it: look their identity up, then decide again.
    public var identityLookups: [UUID]

    public init(
        actions: [Action] = [],
        waitingOnCloud: Bool = false,
        nextWakeUp: Date? = nil,
        identityLookups: [UUID] = []
    ) {
        self.actions = actions
        self.waitingOnCloud = waitingOnCloud
        self.nextWakeUp = nextWakeUp
        self.identityLookups = identityLookups
    }
}

/// The pure reconcile decision: (rows, droplets, clock, configuration) → actions.
///
/// It performs no I/O. The loop observes, calls `decide`, and performs the actions.
public struct Decider: Sendable {
    public let configuration: DecisionConfiguration
    /// The specification of a row that names no options of its own, by region, made once.
    let defaultSpecifications: DefaultSpecifications

    public init(configuration: DecisionConfiguration = DecisionConfiguration()) {
        self.configuration = configuration
        defaultSpecifications = DefaultSpecifications(configuration.droplets)
    }

    /// - Parameters:
    ///   - rows: every live row of `servers` (the loop reads no `deleted` ones; any passed are
    ///     history, and a droplet that names only a deleted row is an orphan either way).
    ///   - observation: what the list (and any direct lookups) showed.
    ///   - now: the clock.
    ///   - rowsReadAt: when `rows` were read (nil: `now`). What the rows say of their agents is
    ///     judged as of then: a pass whose look at DigitalOcean took minutes must not call an agent
    ///     the hub saw a second ago unreachable because the record it read is minutes old.
    ///   - orphansFirstSeen: when the loop first saw each orphan droplet (for the grace period).
    public func decide(
        rows: [ServerRecord],
        observation: Observation,
        now: Date,
        rowsReadAt: Date? = nil,
        orphansFirstSeen: [Int64: Date] = [:]
    ) -> Plan {
        let plan = reconcile(
            rows: rows,
            observation: observation,
            now: now,
            rowsReadAt: rowsReadAt ?? now,
            orphansFirstSeen: orphansFirstSeen
        )
        Invariants.check(plan, rows: rows, observation: observation)
        return plan
    }
}

extension Action {
    /// The row this action is for, if it is for one (an orphan's destroy or sighting is not).
    public var rowID: UUID? {
        switch self {
        case .update(let row, _, _, _): row
        case .create(let order, _, _): order.rowID
        case .dropletAction(let order, _, _, _): order.rowID
        case .destroy(_, .deleteRequested(let row)), .destroy(_, .duplicate(let row, _, _, _)): row
        case .destroy(_, .orphan), .note(.orphanSeen), .assign: nil
        case .note(.adopted(let row, _)): row
        }
    }
}

extension Plan {
    /// The rows this plan's actions are for, by id (the first, where rows share an id). A pass
    /// over a large fleet acts on a few of its rows: only those are indexed.
    public func rowsActedOn(in rows: [ServerRecord]) -> [UUID: ServerRecord] {
        var wanted = Set(actions.compactMap(\.rowID))
        for case .assign(let assignment) in actions { wanted.formUnion(assignment.members.map(\.rowID)) }
        var byID: [UUID: ServerRecord] = [:]
        byID.reserveCapacity(wanted.count)
        for row in rows where wanted.contains(row.id) && byID[row.id] == nil { byID[row.id] = row }
        return byID
    }
}
