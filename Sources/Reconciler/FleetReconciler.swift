#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import Timekeeping

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
    /// Whether the cloud holds requests back on purpose now; nil when nothing throttles it.
    let isThrottled: (@Sendable () async -> Bool)?

    /// When each orphan was first seen (for the grace period and to report each orphan once).
    var orphansFirstSeen: [Int64: Date] = [:]
    /// The row each orphan's identity tag names, for those that carry one.
    var orphanIdentities: [Int64: UUID] = [:]
    /// Destroys DigitalOcean accepted recently, so a droplet that still lists is not asked again.
    var recentDestroys: [Int64: Date] = [:]
    /// Projects DigitalOcean refused an assignment to: how many times in a row, and when to try again.
    var projectRetries: [String: (failures: Int, at: Date)] = [:]
    /// Droplets DigitalOcean has accepted to destroy (or said were gone) lately. Each pass counts
    /// them gone even while a list still shows them (a deleted droplet lists for a few seconds
    /// more): a row inserted meanwhile with a departing droplet's identity must not adopt it.
    var destroyedLately: Set<Int64> { Set(recentDestroys.keys) }
    /// Droplets of rows whose deletion was asked that answered 404 to a read by id: not read
    /// again while their rows wait for the lookup by identity that ends the deletion (which would
    /// still find a droplet a 404 hid, one just made and not yet readable). A mass deletion's reads
    /// of gone droplets would otherwise take every pass's allowance, and those lookups never get
    /// a turn.
    var goneWhileDeleting: Set<Int64> = []
    /// What every observation counts as gone without reading it: see the two above.
    var knownGone: Set<Int64> { destroyedLately.union(goneWhileDeleting) }
    /// Creates this process recorded an intent for, until their settle period is well past: a
    /// database restored from before an intent takes the intent back (the row and
    /// `create_intents` alike), not this memory of it (design.md, identity rule 6).
    var createsSent: [UUID: CreateIntent] = [:]
    /// The fleet as the last full list showed it (nil before the first), and the full list in
    /// progress, if any (see FleetReconciler+FleetView.swift).
    var view: FleetView?
    var scan: FleetScan?
    /// Droplets this replica sent a destroy for (duplicates' aside) in the last hour, sent or
    /// possibly sent: the destroy budget counts them with the audit trail's (FleetReconciler+Brake).
    var destroysSent: [Int64: Date] = [:]
    /// The destroy brake, while it is on; and the orphans' destroys the last full view held.
    public internal(set) var brake: DestroyBrakeState?
    var orphansHeld = 0
    /// Whether this leadership has read the brake's record yet (FleetReconciler+Brake).
    var brakeReviewed = false
    /// Which waiting rows each pass reads (lookups and follow-ups share one allowance), and what
    /// the last full pass left waiting.
    var reads = ReadSchedule()
    var lastBacklog = ReadBacklog()
    /// The backlog line last recorded for `status` (nil: nothing waited; `.none`: not recorded yet).
    var recordedBacklog: String??
    /// The operator asked for a full list (a reload): the next pass starts one, due or not.
    var fullListRequested = false
    /// Orphans the last full view showed: passes between full lists see none.
    var lastOrphanCount = 0
    /// Live rows the last pass read.
    var lastRowCount = 0
    /// The database's clock minus this replica's, as of the last read of it.
    var databaseOffset: TimeInterval = 0

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
        isThrottled: (@Sendable () async -> Bool)? = nil
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

    /// Reads every live row, looks at DigitalOcean (the next slice of a full list when one is due,
    /// and fresh reads of what waits on it), decides and acts.
    public func fullPass() async throws -> PassSummary {
        // Requests held back by the rate budget are progress: the watchdog should not fire on them.
        reads.beginPass(allowance: configuration.maxLookupsPerPass)
        defer { reads.endPass() }
        let looked = await whileReportingThrottle { await Result { try await self.look() } }
        let (rows, observation, decided) = try looked.get()
        let plan = await brakeDestroys(in: decided, liveRows: rows.count, isFullView: observation.isFullView)
        let finalStates = await act(on: plan, rows: rows)
        lastBacklog = timed(reads.backlog)
        await recordBacklog()
        return summary(rows: rows, finalStates: finalStates, plan: plan, isFullView: observation.isFullView)
    }

    /// The next pass lists the whole fleet, whenever the last full list was.
    public func requestFullList() {
        fullListRequested = true
    }

    /// Acts on rows that wait for their first create, at once after a NOTIFY: it looks for their
    /// identities (one list when the fleet fits one page, else a lookup by identity tag per row)
    /// and creates only what that look proves missing. Returns the ids it handled.
    public func quickPass() async throws -> Set<UUID> {
        let rowsReadAt = databaseNow()
        // A row this process has sent a create for is not unattempted, whatever it says (restored).
        var rows = try await repository.fetchUnattemptedServers()
        reads.beginPass(allowance: configuration.maxLookupsPerPass)
        defer { reads.endPass() }
        rememberCreatesSent(in: &rows)
        rows.removeAll { $0.state.createAttemptedAt != nil }
        guard !rows.isEmpty else { return [] }
        try await synchroniseClock()
        let listedAt = databaseNow()
        var observation: Observation
        // Several new rows in a fleet that fits one page: one list covers them all. One row (the
        // common case: rows inserted one by one) costs one request either way, and a lookup of its
        // identity answers in a fraction of the time a page of up to 200 droplets takes.
        if rows.count > 1, let pages = view?.pages, pages <= 1 {
            let listing = try await cloud.listFleet()
            observation = Observation(
                droplets: listing.droplets,
                goneDropletIDs: knownGone,
                listedAt: listedAt,
                listIsSnapshot: listing.pages <= 1
            )
        } else {
            observation = Observation(droplets: [], goneDropletIDs: knownGone, listedAt: listedAt)
        }
        let plan = await decideWithLookups(rows: rows, readAt: rowsReadAt, observation: &observation)
        // Only this subset of rows was read: every other droplet would look like an orphan.
        let actions = plan.actions.filter { action in
            switch action {
            case .create, .update, .note(.adopted): true
            // Live changes wait for a full pass, which reads what they depend on.
            case .destroy, .dropletAction, .assign, .note(.orphanSeen): false
            }
        }
        _ = await act(on: Plan(actions: actions), rows: rows)
        return Set(rows.map(\.id))
    }

    /// What one full pass would do, with nothing changed anywhere (DigitalOcean is only read).
    public func preview() async throws -> (rows: [ServerRecord], observation: Observation, plan: Plan) {
        requestFullList()
        return try await look(wholeList: true)
    }

    /// Observes and decides: rows, the fleet list, lookups of recorded droplets the list did not
    /// show, and lookups of identities whose absence the decision needs confirmed.
    private func look(
        wholeList: Bool = false
    ) async throws -> (
        rows: [ServerRecord], observation: Observation, plan: Plan
    ) {
        // Room for the last pass's rows and a few more (the table grows a little between passes).
        let rowsReadAt = databaseNow()
        var rows = try await repository.fetchServers(expectedCount: lastRowCount + lastRowCount / 64)
        lastRowCount = rows.count
        try await synchroniseClock()
        if !brakeReviewed { await takeOverRecentDestroys() }
        rememberCreatesSent(in: &rows)
        var observation = try await observe(rows: rows, wholeList: wholeList)
        let plan = await decideWithLookups(
            rows: rows,
            readAt: rowsReadAt,
            observation: &observation,
            orphansFirstSeen: orphansFirstSeen
        )
        guard leads() else { throw LeadershipLost() }
        return (rows, observation, plan)
    }

    /// Decides; when the plan asks for identities to be looked up, looks them up (a bounded number
    /// per pass) and decides again with what they showed. Lookups go one at a time, like every
    /// read of a pass: reads in flight together all come back 429 when another tool has spent the
    /// minute, and the budget cannot recall them.
    private func decideWithLookups(
        rows: [ServerRecord],
        readAt rowsReadAt: Date,
        observation: inout Observation,
        orphansFirstSeen: [Int64: Date] = [:]
    ) async -> Plan {
        var plan = decider.decide(
            rows: rows,
            observation: observation,
            now: databaseNow(),
            rowsReadAt: rowsReadAt,
            orphansFirstSeen: orphansFirstSeen
        )
        let wanted = Set(plan.identityLookups.filter { !observation.identitiesLookedUp.contains($0) })
        guard !wanted.isEmpty else { return plan }
        let picked = scheduleLookups(of: wanted, rows: rows, observation: observation)
        guard !picked.isEmpty else { return plan }
        // A looked-up row was seen no earlier than this: its settle period is measured against it.
        observation.lookupsBeganAt = databaseNow()
        let (cloud, leads) = (self.cloud, self.leads)
        let results = await Self.concurrently(picked, limit: 1) { row in
            guard leads() else { return (row, Result<[ObservedDroplet], any Error>.failure(LeadershipLost())) }
            return (row, await Result { try await cloud.droplets(identity: row) })
        }
        // What a lookup found replaces what the list showed of that identity: it is the fresher
        // answer (a droplet destroyed since the list's page was read is gone from it).
        var found: [UUID: [ObservedDroplet]] = [:]
        for (row, result) in results {
            progress()
            switch result {
            case .success(let droplets):
                observation.identitiesLookedUp.insert(row)
                found[row] = droplets
            case .failure(let error):
                logger.debug(
                    "lookup of server \(row.uuidString.lowercased()) by identity failed; deciding without it: \(error)"
                )
            }
        }
        if !found.isEmpty {
            let fresh = Set(found.values.joined().map(\.id))
            observation.droplets.removeAll { droplet in
                fresh.contains(droplet.id) || droplet.identity.map { found[$0] != nil } ?? false
            }
            observation.droplets.append(contentsOf: found.values.joined())
        }
        plan = decider.decide(
            rows: rows,
            observation: observation,
            now: databaseNow(),
            rowsReadAt: rowsReadAt,
            orphansFirstSeen: orphansFirstSeen
        )
        return plan
    }

    /// Takes the creates this process sent into the rows (`DaemonState.remembering`), after
    /// forgetting those whose settle period is long past: by then any look shows their droplet.
    func rememberCreatesSent(in rows: inout [ServerRecord]) {
        let horizon = databaseNow().adding(.zero - configuration.decision.settlePeriod * 2)
        createsSent = createsSent.filter { $0.value.reachableUntil > horizon }
        guard !createsSent.isEmpty else { return }
        for position in rows.indices {
            guard let intent = createsSent[rows[position].id] else { continue }
            rows[position].state = rows[position].state.remembering(intent)
        }
    }

    /// Records a change of leadership in the audit trail.
    public func announceLeadership(_ leading: Bool) async {
        // A replica that leads again starts from a new full list, as any new leader does: what it
        // saw before is as old as its time out of office, and others acted meanwhile. Its orphans'
        // sightings too: a row may have come and gone since, so each grace starts afresh.
        view = nil
        scan = nil
        recordedBacklog = nil
        orphansFirstSeen = [:]
        orphanIdentities = [:]
        // The brake is the audit trail's, not this replica's memory: read again as leader.
        brake = nil
        orphansHeld = 0
        brakeReviewed = false
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
