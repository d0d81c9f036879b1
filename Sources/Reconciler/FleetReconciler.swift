import Foundation
import Logging
import ReconcileCore
import Timekeeping

public struct ReconcilerConfiguration: Sendable {
    public var decision = DecisionConfiguration()
    /// Agent bootstrap; nil: off (rows go from `provisioning` straight to `active`). Setting it
    /// sets the decision's policy too, so the two never disagree.
    public var enrollment: AgentEnrollment? {
        didSet { decision.agentBootstrap = enrollment?.policy }
    }
    /// A full pass at least this often, even with nothing to do (NOTIFY is not stored by Postgres).
    public var resyncInterval: Duration = .seconds(60)
    /// A full pass this often while some row waits on DigitalOcean.
    public var fastInterval: Duration = .seconds(5)
    /// How long to gather NOTIFYs before acting on them, so a burst of inserts makes one pass.
    public var debounce: Duration = .milliseconds(20)
    /// Mutating DigitalOcean calls in flight at once.
    public var maxConcurrentCalls = 4
    /// Direct lookups of recorded-but-unlisted droplets in one pass.
    public var maxLookupsPerPass = 50
    /// A destroy already accepted is not re-sent for this long while the droplet still lists.
    public var destroyRepeatInterval: Duration = .seconds(30)
    /// How often a standby replica tries to take leadership.
    public var standbyPollInterval: Duration = .milliseconds(500)

    public init() {}
}

/// What a pass leaves behind, for STATUS= and for scheduling the next one.
public struct PassSummary: Sendable, Hashable {
    public var counts: [ServerStatus: Int]
    public var orphans: Int
    /// Live rows whose droplet differs from them in a way the daemon does not change.
    public var drifted: Int
    /// Live rows with a rename or resize in progress.
    public var changing: Int
    public var waitingOnCloud: Bool
    public var nextWakeUp: Date?
    /// The most recent row error, for the one-line status.
    public var lastError: String?

    public init(
        counts: [ServerStatus: Int] = [:],
        orphans: Int = 0,
        drifted: Int = 0,
        changing: Int = 0,
        waitingOnCloud: Bool = false,
        nextWakeUp: Date? = nil,
        lastError: String? = nil
    ) {
        self.counts = counts
        self.orphans = orphans
        self.drifted = drifted
        self.changing = changing
        self.waitingOnCloud = waitingOnCloud
        self.nextWakeUp = nextWakeUp
        self.lastError = lastError
    }

    /// "3 active, 1 provisioning, 1 failed; 0 orphans", in lifecycle order.
    public var oneLine: String {
        let parts = ServerStatus.allCases.compactMap { status -> String? in
            guard let n = counts[status], n > 0 else { return nil }
            return "\(n) \(status.rawValue)"
        }
        var line =
            (parts.isEmpty ? "no servers" : parts.joined(separator: ", ")) + "; \(orphans) orphan"
            + (orphans == 1 ? "" : "s")
        if drifted > 0 { line += ", \(drifted) drifted" }
        if changing > 0 { line += ", \(changing) changing" }
        if let lastError { line += "; last error: \(lastError)" }
        return line
    }
}

/// A pass ended early: this replica no longer leads.
public struct LeadershipLost: Error, CustomStringConvertible {
    public var description: String { "this replica no longer leads; the pass stopped" }
}

/// Observe, decide, act: one reconcile pass at a time.
public actor FleetReconciler {
    let repository: any ServerRepository
    let cloud: any DropletCloud
    let configuration: ReconcilerConfiguration
    let decider: Decider
    let audit: AuditTrail
    let logger: Logger
    let clock: any DaemonClock
    let jitter: @Sendable () -> Double
    /// Asked right before every mutating DigitalOcean request and every intent: false once this
    /// replica may no longer act (its session ended, or its lease was not confirmed in time).
    let mayAct: @Sendable () -> Bool
    /// Whether this replica still leads. A pass that finds it no longer does stops early: its
    /// reads would spend the budget on a view nobody acts on, and keep it from standing by.
    let leads: @Sendable () -> Bool
    /// Told whenever an action completes, and while the cloud deliberately holds requests back
    /// (the rate budget), so a long pass still counts as progress for the watchdog.
    let progress: @Sendable () -> Void
    let isThrottled: @Sendable () async -> Bool

    /// When each orphan was first seen (for the grace period and to report each orphan once).
    private var orphansFirstSeen: [Int64: Date] = [:]
    /// Destroys DigitalOcean accepted recently, so a droplet that still lists is not asked again.
    private var recentDestroys: [Int64: Date] = [:]
    /// Pages the last fleet list took (nil before the first): the quick path lists the fleet when
    /// one page shows it, and looks identities up one by one otherwise.
    private var lastFleetPages: Int?
    /// The database's clock minus this replica's, as of the last read of it.
    private var databaseOffset: TimeInterval = 0

    public init(
        repository: any ServerRepository,
        cloud: any DropletCloud,
        configuration: ReconcilerConfiguration = ReconcilerConfiguration(),
        logger: Logger,
        clock: any DaemonClock = SystemClock(),
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        mayAct: @escaping @Sendable () -> Bool = { true },
        leads: @escaping @Sendable () -> Bool = { true },
        progress: @escaping @Sendable () -> Void = {},
        isThrottled: @escaping @Sendable () async -> Bool = { false }
    ) {
        self.repository = repository
        self.cloud = cloud
        self.configuration = configuration
        self.decider = Decider(configuration: configuration.decision)
        self.audit = AuditTrail(logger: logger, repository: repository)
        self.logger = logger
        self.clock = clock
        self.jitter = jitter
        self.mayAct = mayAct
        self.leads = leads
        self.progress = progress
        self.isThrottled = isThrottled
    }

    // MARK: Time

    /// The database's clock, as this replica estimates it between reads. The estimate errs early
    /// by up to one round trip, which makes a look's start time (what settle periods are compared
    /// with) conservative.
    func databaseNow() -> Date {
        clock.now().addingTimeInterval(databaseOffset)
    }

    /// Reads the database's clock and remembers how far this replica's is off.
    private func synchroniseClock() async throws {
        let databaseTime = try await repository.now()
        databaseOffset = databaseTime.timeIntervalSince(clock.now())
    }

    // MARK: Passes

    /// Reads every row, lists the fleet, decides and acts.
    public func fullPass() async throws -> PassSummary {
        let (rows, _, plan) = try await look()
        let finalStates = await act(on: plan, rows: rows)
        return summary(rows: rows, finalStates: finalStates, plan: plan)
    }

    /// Acts on rows that wait for their first create, at once after a NOTIFY: it looks for their
    /// identities (one list when the fleet fits one page, else a lookup by identity tag per row)
    /// and creates only what that look proves missing. Returns the ids it handled.
    public func quickPass() async throws -> Set<UUID> {
        let rows = try await repository.fetchUnattemptedServers()
        guard !rows.isEmpty else { return [] }
        try await synchroniseClock()
        let listedAt = databaseNow()
        var observation: Observation
        // One request either way for a fleet that fits one page, and the list covers every row.
        if let pages = lastFleetPages, pages <= 1 {
            let listing = try await cloud.listFleet()
            lastFleetPages = listing.pages
            observation = Observation(
                droplets: listing.droplets,
                listedAt: listedAt,
                listIsSnapshot: listing.pages <= 1
            )
        } else {
            observation = Observation(droplets: [], listedAt: listedAt)
        }
        let plan = await decideWithLookups(rows: rows, observation: &observation, orphansFirstSeen: [:])
        // Only this subset of rows was read: every other droplet would look like an orphan.
        let actions = plan.actions.filter { action in
            switch action {
            case .create, .update, .note(.adopted): true
            // Live changes wait for a full pass, which reads what they depend on.
            case .destroy, .dropletAction, .note(.orphanSeen): false
            }
        }
        _ = await act(on: Plan(actions: actions), rows: rows)
        return Set(rows.map(\.id))
    }

    /// What one full pass would do, with nothing changed anywhere (DigitalOcean is only read).
    public func preview() async throws -> (rows: [ServerRecord], observation: Observation, plan: Plan) {
        try await look()
    }

    /// Observes and decides: rows, the fleet list, lookups of recorded droplets the list did not
    /// show, and lookups of identities whose absence the decision needs confirmed.
    private func look() async throws -> (rows: [ServerRecord], observation: Observation, plan: Plan) {
        let rows = try await repository.fetchServers()
        try await synchroniseClock()
        var observation = try await observe(rows: rows)
        let plan = await decideWithLookups(rows: rows, observation: &observation, orphansFirstSeen: orphansFirstSeen)
        guard leads() else { throw LeadershipLost() }
        return (rows, observation, plan)
    }

    /// Decides; when the plan asks for identities to be looked up, looks them up (a bounded number
    /// per pass) and decides again with what they showed. Lookups go one at a time, like every
    /// read of a pass: reads in flight together all come back 429 when another tool has spent the
    /// minute, and the budget cannot recall them.
    private func decideWithLookups(
        rows: [ServerRecord],
        observation: inout Observation,
        orphansFirstSeen: [Int64: Date]
    ) async -> Plan {
        var plan = decider.decide(
            rows: rows,
            observation: observation,
            now: databaseNow(),
            orphansFirstSeen: orphansFirstSeen
        )
        let wanted = plan.identityLookups.filter { !observation.identitiesLookedUp.contains($0) }
        guard !wanted.isEmpty else { return plan }
        let (cloud, leads) = (self.cloud, self.leads)
        let results = await Self.concurrently(
            Array(wanted.prefix(configuration.maxLookupsPerPass)),
            limit: 1
        ) { row in
            guard leads() else { return (row, Result<[ObservedDroplet], any Error>.failure(LeadershipLost())) }
            return (row, await Result { try await cloud.droplets(identity: row) })
        }
        for (row, result) in results {
            switch result {
            case .success(let droplets):
                observation.identitiesLookedUp.insert(row)
                let known = Set(observation.droplets.map(\.id))
                observation.droplets.append(contentsOf: droplets.filter { !known.contains($0.id) })
            case .failure(let error):
                logger.debug(
                    "lookup of server \(row.uuidString.lowercased()) by identity failed; deciding without it: \(error)"
                )
            }
        }
        plan = decider.decide(
            rows: rows,
            observation: observation,
            now: databaseNow(),
            orphansFirstSeen: orphansFirstSeen
        )
        return plan
    }

    /// Records a change of leadership in the audit trail.
    public func announceLeadership(_ leading: Bool) async {
        await audit.emit(
            AuditEvent(
                kind: .leadership,
                at: databaseNow(),
                message: leading
                    ? "this replica now leads: it holds the advisory lock and reconciles"
                    : "this replica lost leadership; it stopped acting and will campaign again"
            )
        )
    }

    // MARK: Observe

    func observe(rows: [ServerRecord]) async throws -> Observation {
        let listedAt = databaseNow()
        let listing = try await cloud.listFleet()
        lastFleetPages = listing.pages
        var droplets = listing.droplets
        let listed = Set(droplets.map(\.id))
        // A row may record a droplet the list does not show: a new one hidden by list lag, one
        // without the fleet tag (a legacy row), or one that is gone. Ask for each directly.
        let missing = rows.compactMap { row -> Int64? in
            guard let id = row.state.dropletID, !listed.contains(id) else { return nil }
            switch row.state.status {
            case .creating, .provisioning, .initializing, .active, .unreachable, .deleting: return id
            case .failed, .deleted: return nil
            }
        }
        var gone = Set<Int64>()
        let (cloud, leads) = (self.cloud, self.leads)
        let lookups = await Self.concurrently(Array(missing.prefix(configuration.maxLookupsPerPass)), limit: 1) { id in
            guard leads() else { return (id, Result<ObservedDroplet?, any Error>.failure(LeadershipLost())) }
            return (id, await Result { try await cloud.droplet(id: id) })
        }
        for (id, result) in lookups {
            switch result {
            case .success(let droplet?): droplets.append(droplet)
            case .success(nil): gone.insert(id)
            case .failure(let error): logger.debug("lookup of droplet \(id) failed; deciding without it: \(error)")
            }
        }
        var observation = Observation(
            droplets: droplets,
            goneDropletIDs: gone,
            listedAt: listedAt,
            listIsSnapshot: listing.pages <= 1
        )
        await observeLiveChanges(rows: rows, into: &observation)
        return observation
    }

    // MARK: Act

    /// Performs a plan: row writes first, then DigitalOcean calls with bounded concurrency.
    /// Returns each row's state after the pass (for the summary).
    func act(on plan: Plan, rows: [ServerRecord]) async -> [UUID: DaemonState] {
        let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var finalStates: [UUID: DaemonState] = [:]
        var calls: [Action] = []
        for action in plan.actions {
            switch action {
            case let .update(id, revision, from, to):
                guard let row = byID[id] else { continue }
                if await write(row: row, expectedRevision: revision, from: from, to: to) != nil {
                    finalStates[id] = to
                }
            case .note(let note):
                await record(note: note, rows: byID)
            case .create, .destroy, .dropletAction:
                calls.append(action)
            }
        }
        let pending = calls
        let results = await whileReportingThrottle {
            await Self.concurrently(pending, limit: self.configuration.maxConcurrentCalls) { action in
                let result = await self.perform(action, rows: byID)
                self.progress()
                return result
            }
        }
        for case let (id, state)? in results { finalStates[id] = state }
        return finalStates
    }

    /// Runs `body`; meanwhile, every few seconds, reports progress if (and only if) requests are
    /// being held back on purpose by the rate budget. A call that simply hangs reports nothing,
    /// so the watchdog still catches it.
    private func whileReportingThrottle<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
        let isThrottled = self.isThrottled
        let progress = self.progress
        let clock = self.clock
        return await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                while !Task.isCancelled {
                    try? await clock.sleep(for: .seconds(2))
                    if Task.isCancelled { break }
                    if await isThrottled() { progress() }
                }
                return nil
            }
            var result: T?
            while let next = await group.next() {
                if let next {
                    result = next
                    group.cancelAll()
                }
            }
            return result!
        }
    }

    private func perform(_ action: Action, rows: [UUID: ServerRecord]) async -> (UUID, DaemonState)? {
        switch action {
        case let .create(order, revision, state):
            guard let row = rows[order.rowID] else { return nil }
            return await create(order, row: row, revision: revision, state: state).map { (order.rowID, $0) }
        case let .destroy(dropletID, reason):
            await destroy(dropletID: dropletID, reason: reason, rows: rows)
            return nil
        case let .dropletAction(order, revision, from, state):
            guard let row = rows[order.rowID] else { return nil }
            return await send(order, row: row, revision: revision, from: from, state: state).map { (order.rowID, $0) }
        case .update, .note:
            return nil
        }
    }

    /// Writes a row change (compare-and-set) and its audit events. Returns the new revision.
    @discardableResult
    func write(
        row: ServerRecord,
        expectedRevision: Int64,
        from: DaemonState,
        to: DaemonState,
        requestID: String? = nil,
        agentKeySHA256: String? = nil
    ) async -> Int64? {
        let revision: Int64?
        do {
            if let agentKeySHA256 {
                revision = try await repository.update(
                    id: row.id,
                    expectedRevision: expectedRevision,
                    to: to,
                    agentKeySHA256: agentKeySHA256
                )
            } else {
                revision = try await repository.update(id: row.id, expectedRevision: expectedRevision, to: to)
            }
        } catch {
            logger.error(
                "could not write row \(row.id.uuidString.lowercased()): \(error)",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
            return nil
        }
        guard let revision else {
            logger.info(
                "row changed while deciding; leaving it to the next pass",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())", "SERVER_NAME": "\(row.name)"]
            )
            return nil
        }
        if from.status != to.status {
            let kind = AuditKind.statusChange(from: from, to: to)
            if kind == .agentConnected, let since = to.agentAwaitedSince ?? from.agentAwaitedSince {
                ReconcilerMetrics.agentBootstrap(.interval(databaseNow().timeIntervalSince(since)))
            }
            await audit.emit(
                event(
                    kind,
                    row: row,
                    droplet: to.dropletID ?? from.dropletID,
                    from: from.status,
                    to: to.status,
                    requestID: requestID,
                    message: statusChangeMessage(kind, row: row, from: from, to: to)
                )
            )
        }
        await auditLiveChange(row: row, from: from, to: to, requestID: requestID)
        if to.status == .failed, from.status != .failed || from.lastError != to.lastError {
            await audit.emit(
                event(
                    .failed,
                    row: row,
                    droplet: to.dropletID,
                    from: from.status,
                    to: to.status,
                    requestID: requestID,
                    message: "server \(row.name) failed: \(to.lastError ?? "no reason recorded")"
                )
            )
        }
        return revision
    }

    /// The sentence of a status change's audit entry.
    private func statusChangeMessage(_ kind: AuditKind, row: ServerRecord, from: DaemonState, to: DaemonState) -> String
    {
        let agent = to.agentID.map { "agent \($0.uuidString.lowercased())" } ?? "its agent"
        let droplet = to.dropletID.map { "droplet \($0)" } ?? "its droplet"
        switch kind {
        case .agentAwaited:
            let timeout =
                configuration.decision.agentBootstrap.map { " (up to \(DurationText.format($0.timeout)))" } ?? ""
            return
                "server \(row.name) is initializing: \(droplet) is active at \(to.ipv4 ?? "its address"); waiting\(timeout) for \(agent) to connect to the Engine Hub"
        case .agentConnected:
            return "server \(row.name) is active: \(agent) connected to the Engine Hub"
        case .agentTimedOut:
            return
                "server \(row.name) failed: \(agent) did not connect in time; \(droplet) is left running for inspection"
        case .agentUnreachable:
            return "server \(row.name) is unreachable: \(to.lastError ?? "its agent has not been seen recently")"
        case .agentReachable:
            return "server \(row.name) is active again: the Engine Hub sees \(agent) again"
        default:
            return "server \(row.name) is now \(to.status.rawValue) (was \(from.status.rawValue))"
        }
    }

    private func destroy(dropletID: Int64, reason: DestroyReason, rows: [UUID: ServerRecord]) async {
        let now = databaseNow()
        if let asked = recentDestroys[dropletID], now < asked.adding(configuration.destroyRepeatInterval) { return }
        guard mayAct() else { return }
        let row: ServerRecord?
        let kind: AuditKind
        let why: String
        switch reason {
        case .deleteRequested(let id):
            row = rows[id]
            kind = .destroyRequested
            why = "deletion was requested for server \(row?.name ?? id.uuidString.lowercased())"
        case let .duplicate(id, kept, keptCreatedAt, duplicateCreatedAt):
            row = rows[id]
            kind = .duplicateResolved
            why =
                "it duplicates droplet \(kept), which server \(row?.name ?? id.uuidString.lowercased()) keeps as the one with history "
                + "(created \(keptCreatedAt.formatted(.iso8601)), this one \(duplicateCreatedAt.formatted(.iso8601)))"
        case .orphan:
            row = nil
            kind = .destroyRequested
            why = "it is an orphan (tagged citrus-host, matching no row) past its grace period"
        }
        do {
            let outcome = try await cloud.destroy(dropletID: dropletID)
            recentDestroys[dropletID] = now
            let requestID: String?
            let result: String
            switch outcome {
            case .destroyed(let id):
                requestID = id
                result = "destroying droplet \(dropletID)"
            case .alreadyGone:
                requestID = nil
                result = "droplet \(dropletID) was already gone"
            }
            await audit.emit(
                event(
                    kind,
                    row: row,
                    serverID: row == nil ? nil : row?.id,
                    droplet: dropletID,
                    requestID: requestID,
                    message: "\(result): \(why)"
                )
            )
        } catch {
            let failure = error as? CloudFailure ?? CloudFailure(kind: .transient, message: "\(error)")
            await audit.emit(
                event(
                    failure.kind == .permanent ? .failed : .retrying,
                    row: row,
                    droplet: dropletID,
                    requestID: failure.requestID,
                    message: "could not destroy droplet \(dropletID) (\(why)): \(failure.message)"
                )
            )
        }
    }

    private func record(note: AuditNote, rows: [UUID: ServerRecord]) async {
        switch note {
        case .orphanSeen(let droplet):
            guard orphansFirstSeen[droplet.id] == nil else { return }
            orphansFirstSeen[droplet.id] = databaseNow()
            await audit.emit(
                AuditEvent(
                    kind: .orphanSeen,
                    at: databaseNow(),
                    dropletID: droplet.id,
                    message:
                        "droplet \(droplet.id) (\(droplet.name)) is tagged citrus-host but matches no server row; left alone unless --orphans delete"
                )
            )
        case let .adopted(id, dropletID):
            let row = rows[id]
            await audit.emit(
                event(
                    .adopted,
                    row: row,
                    serverID: id,
                    droplet: dropletID,
                    message: "server \(row?.name ?? id.uuidString.lowercased()) adopted existing droplet \(dropletID)"
                )
            )
        }
    }

    // MARK: Helpers

    func event(
        _ kind: AuditKind,
        row: ServerRecord?,
        serverID: UUID? = nil,
        droplet: Int64? = nil,
        from: ServerStatus? = nil,
        to: ServerStatus? = nil,
        requestID: String? = nil,
        message: String
    ) -> AuditEvent {
        AuditEvent(
            kind: kind,
            at: databaseNow(),
            serverID: row?.id ?? serverID,
            serverName: row?.name,
            dropletID: droplet ?? row?.state.dropletID,
            fromStatus: from,
            toStatus: to,
            requestID: requestID,
            message: message
        )
    }

    private func summary(rows: [ServerRecord], finalStates: [UUID: DaemonState], plan: Plan) -> PassSummary {
        var counts: [ServerStatus: Int] = [:]
        var lastError: String?
        var lastErrorAt = Date.distantPast
        var drifted = 0
        var changing = 0
        for row in rows {
            let state = finalStates[row.id] ?? row.state
            counts[state.status, default: 0] += 1
            if state.status != .deleted {
                if state.drift != nil { drifted += 1 }
                if state.change != nil { changing += 1 }
            }
            if state.status != .deleted, let error = state.lastError, row.createdAt >= lastErrorAt {
                lastError = error
                lastErrorAt = row.createdAt
            }
        }
        // One scan of the plan: the orphans it saw, counted, and the only ones worth remembering.
        var orphans = Set<Int64>()
        for case .note(.orphanSeen(let droplet)) in plan.actions { orphans.insert(droplet.id) }
        orphansFirstSeen = orphansFirstSeen.filter { orphans.contains($0.key) }
        let horizon = databaseNow().adding(.zero - configuration.destroyRepeatInterval)
        recentDestroys = recentDestroys.filter { $0.value > horizon }
        // Deadlines are on the database's clock; the loop waits on this replica's.
        let wakeUp = plan.nextWakeUp?.addingTimeInterval(-databaseOffset)
        return PassSummary(
            counts: counts,
            orphans: orphans.count,
            drifted: drifted,
            changing: changing,
            waitingOnCloud: plan.waitingOnCloud,
            nextWakeUp: wakeUp,
            lastError: lastError
        )
    }

    /// Runs `body` over `items` with at most `limit` in flight; results in input order.
    static func concurrently<Item: Sendable, Output: Sendable>(
        _ items: [Item],
        limit: Int,
        _ body: @escaping @Sendable (Item) async -> Output
    ) async -> [Output] {
        guard !items.isEmpty else { return [] }
        return await withTaskGroup(of: (Int, Output).self) { group in
            var results = [Output?](repeating: nil, count: items.count)
            var next = 0
            func submit() {
                let index = next
                let item = items[index]
                group.addTask { (index, await body(item)) }
                next += 1
            }
            while next < min(limit, items.count) { submit() }
            while let (index, output) = await group.next() {
                results[index] = output
                if next < items.count { submit() }
            }
            return results.map { $0! }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
