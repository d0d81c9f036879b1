import Foundation
import Logging
import ReconcileCore

public struct ReconcilerConfiguration: Sendable {
    public var decision = DecisionConfiguration()
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
    public var waitingOnCloud: Bool
    public var nextWakeUp: Date?
    /// The most recent row error, for the one-line status.
    public var lastError: String?

    public init(
        counts: [ServerStatus: Int] = [:],
        orphans: Int = 0,
        waitingOnCloud: Bool = false,
        nextWakeUp: Date? = nil,
        lastError: String? = nil
    ) {
        self.counts = counts
        self.orphans = orphans
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
        var line = (parts.isEmpty ? "no servers" : parts.joined(separator: ", ")) + "; \(orphans) orphan" + (orphans == 1 ? "" : "s")
        if let lastError { line += "; last error: \(lastError)" }
        return line
    }
}

/// Observe, decide, act: one reconcile pass at a time.
public actor FleetReconciler {
    let repository: any ServerRepository
    let cloud: any DropletCloud
    let configuration: ReconcilerConfiguration
    let decider: Decider
    let audit: AuditTrail
    let logger: Logger
    let clock: @Sendable () -> Date
    let jitter: @Sendable () -> Double
    /// Asked right before every mutating DigitalOcean request: false once this replica may no
    /// longer act (it lost the database session that made it leader).
    let mayAct: @Sendable () -> Bool
    /// Told whenever an action completes, and while the cloud deliberately holds requests back
    /// (the rate budget), so a long pass still counts as progress for the watchdog.
    let progress: @Sendable () -> Void
    let isThrottled: @Sendable () async -> Bool

    /// When each orphan was first seen (for the grace period and to report each orphan once).
    private var orphansFirstSeen: [Int64: Date] = [:]
    /// Destroys DigitalOcean accepted recently, so a droplet that still lists is not asked again.
    private var recentDestroys: [Int64: Date] = [:]
    /// The last full observation, reused by quick passes.
    private var lastObservation: Observation?

    public init(
        repository: any ServerRepository,
        cloud: any DropletCloud,
        configuration: ReconcilerConfiguration = ReconcilerConfiguration(),
        logger: Logger,
        clock: @escaping @Sendable () -> Date = { Date() },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        mayAct: @escaping @Sendable () -> Bool = { true },
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
        self.progress = progress
        self.isThrottled = isThrottled
    }

    // MARK: Passes

    /// Reads every row, lists the fleet, decides and acts.
    public func fullPass() async throws -> PassSummary {
        let rows = try await repository.fetchServers()
        let observation = try await observe(rows: rows)
        lastObservation = observation
        let plan = decider.decide(rows: rows, observation: observation, now: clock(), orphansFirstSeen: orphansFirstSeen)
        let finalStates = await act(on: plan, rows: rows)
        return summary(rows: rows, finalStates: finalStates, plan: plan)
    }

    /// Acts on rows that only wait for their first create, without listing DigitalOcean: no create
    /// was ever sent for them (the intent is recorded before every create), so no droplet of theirs
    /// can exist and the decision needs no fresh list. Returns the ids it handled.
    public func quickPass() async throws -> Set<UUID> {
        let rows = try await repository.fetchUnattemptedServers()
        guard !rows.isEmpty else { return [] }
        let observation = Observation(droplets: [], listedAt: clock())
        let plan = decider.decide(rows: rows, observation: observation, now: clock())
        let creates = plan.actions.filter { if case .create = $0 { true } else { false } }
        _ = await act(on: Plan(actions: creates), rows: rows)
        return Set(rows.map(\.id))
    }

    /// What one full pass would do, with nothing changed anywhere.
    public func preview() async throws -> (rows: [ServerRecord], observation: Observation, plan: Plan) {
        let rows = try await repository.fetchServers()
        let observation = try await observe(rows: rows)
        let plan = decider.decide(rows: rows, observation: observation, now: clock(), orphansFirstSeen: orphansFirstSeen)
        return (rows, observation, plan)
    }

    /// Records a change of leadership in the audit trail.
    public func announceLeadership(_ leading: Bool) async {
        await audit.emit(
            AuditEvent(
                kind: .leadership, at: clock(),
                message: leading
                    ? "this replica now leads: it holds the advisory lock and reconciles"
                    : "this replica lost leadership; it stopped acting and will campaign again"
            ))
    }

    // MARK: Observe

    func observe(rows: [ServerRecord]) async throws -> Observation {
        let listedAt = clock()
        var droplets = try await cloud.listFleet()
        let listed = Set(droplets.map(\.id))
        // A row may record a droplet the list does not show: a new one hidden by list lag, one
        // without the fleet tag (a legacy row), or one that is gone. Ask for each directly.
        let missing = rows.compactMap { row -> Int64? in
            guard let id = row.state.dropletID, !listed.contains(id) else { return nil }
            switch row.state.status {
            case .creating, .provisioning, .initializing, .active, .deleting: return id
            case .failed, .deleted: return nil
            }
        }
        var gone = Set<Int64>()
        let cloud = self.cloud
        let lookups = await Self.concurrently(Array(missing.prefix(configuration.maxLookupsPerPass)), limit: configuration.maxConcurrentCalls) { id in
            (id, await Result { try await cloud.droplet(id: id) })
        }
        for (id, result) in lookups {
            switch result {
            case .success(let droplet?): droplets.append(droplet)
            case .success(nil): gone.insert(id)
            case .failure(let error): logger.debug("lookup of droplet \(id) failed; deciding without it: \(error)")
            }
        }
        return Observation(droplets: droplets, goneDropletIDs: gone, listedAt: listedAt)
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
            case .create, .destroy:
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
        return await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(2))
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
        case .update, .note:
            return nil
        }
    }

    /// Writes a row change (compare-and-set) and its audit events. Returns the new revision.
    @discardableResult
    private func write(row: ServerRecord, expectedRevision: Int64, from: DaemonState, to: DaemonState, requestID: String? = nil) async -> Int64? {
        let revision: Int64?
        do {
            revision = try await repository.update(id: row.id, expectedRevision: expectedRevision, to: to)
        } catch {
            logger.error(
                "could not write row \(row.id.uuidString.lowercased()): \(error)", metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"])
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
            await audit.emit(
                event(
                    .statusChanged, row: row, droplet: to.dropletID ?? from.dropletID, from: from.status, to: to.status, requestID: requestID,
                    message: "server \(row.name) is now \(to.status.rawValue) (was \(from.status.rawValue))"))
        }
        if to.status == .failed, from.status != .failed || from.lastError != to.lastError {
            await audit.emit(
                event(
                    .failed, row: row, droplet: to.dropletID, from: from.status, to: to.status, requestID: requestID,
                    message: "server \(row.name) failed: \(to.lastError ?? "no reason recorded")"))
        }
        return revision
    }

    private func create(_ order: CreateOrder, row: ServerRecord, revision: Int64, state: DaemonState) async -> DaemonState? {
        let now = clock()
        if let problem = cloud.problem(with: order) {
            var failed = state
            failed.status = .failed
            failed.lastError = "invalid request, nothing was sent to DigitalOcean: \(problem)"
            failed.nextAttemptAt = nil
            failed.transientFailures = 0
            return await write(row: row, expectedRevision: revision, from: state, to: failed) != nil ? failed : nil
        }

        // The intent goes to the database before the request leaves: if we crash or lose the
        // response from here on, the row says a create may exist and no second one is sent blind.
        var intent = state
        intent.createAttemptedAt = now
        intent.createAttempts += 1
        guard let intentRevision = await write(row: row, expectedRevision: revision, from: state, to: intent) else { return nil }
        await audit.emit(
            event(
                .createRequested, row: row, from: state.status, to: state.status,
                message: "creating droplet \(order.name) in \(order.region) (\(order.size), \(order.image)), attempt \(intent.createAttempts)"))

        // The intent is durable; if leadership was lost meanwhile, the next leader settles the row.
        guard mayAct() else { return intent }
        var next = intent
        do {
            let accepted = try await cloud.create(order)
            next.dropletID = accepted.droplet.id
            next.status = .provisioning
            next.lastError = nil
            next.transientFailures = 0
            next.nextAttemptAt = nil
            await audit.emit(
                event(
                    .createAccepted, row: row, droplet: accepted.droplet.id, from: state.status, to: .provisioning, requestID: accepted.requestID,
                    message: "DigitalOcean accepted droplet \(accepted.droplet.id) for server \(row.name)"))
            guard await write(row: row, expectedRevision: intentRevision, from: intent, to: next, requestID: accepted.requestID) != nil else {
                // The droplet carries the row's identity tag; the next list binds it.
                return intent
            }
            return next
        } catch {
            let failure = error as? CloudFailure ?? CloudFailure(kind: .outcomeUnknown, message: "\(error)")
            switch failure.kind {
            case .permanent:
                next.createAttemptedAt = nil  // refused: nothing was created
                next.status = .failed
                next.lastError = "DigitalOcean refused the droplet: \(failure.message)"
                next.transientFailures = 0
                next.nextAttemptAt = nil
            case .transient:
                next.createAttemptedAt = nil  // refused without effect: safe to send again after the backoff
                backOff(&next, failure: failure, now: now)
                next.lastError = "DigitalOcean did not take the create (\(failure.message)); retrying at \(Self.timestamp(next.nextAttemptAt))"
                await audit.emit(
                    event(
                        .retrying, row: row, from: state.status, to: state.status, requestID: failure.requestID,
                        message: "server \(row.name): \(next.lastError ?? "")"))
            case .outcomeUnknown:
                backOff(&next, failure: failure, now: now)
                next.lastError = "create outcome unknown (\(failure.message)); no new create until DigitalOcean has been checked for the droplet"
                await audit.emit(
                    event(
                        .createUncertain, row: row, from: state.status, to: state.status, requestID: failure.requestID,
                        message:
                            "server \(row.name): the create may or may not have happened (\(failure.message)); waiting for the settle period before checking"
                    ))
            }
            return await write(row: row, expectedRevision: intentRevision, from: intent, to: next, requestID: failure.requestID) != nil
                ? next : intent
        }
    }

    private func destroy(dropletID: Int64, reason: DestroyReason, rows: [UUID: ServerRecord]) async {
        let now = clock()
        if let asked = recentDestroys[dropletID], now < asked.addingTimeInterval(configuration.destroyRepeatInterval.seconds) { return }
        guard mayAct() else { return }
        let row: ServerRecord?
        let kind: AuditKind
        let why: String
        switch reason {
        case .deleteRequested(let id):
            row = rows[id]
            kind = .destroyRequested
            why = "deletion was requested for server \(row?.name ?? id.uuidString.lowercased())"
        case let .duplicate(id, kept):
            row = rows[id]
            kind = .duplicateResolved
            why = "it duplicates droplet \(kept), which server \(row?.name ?? id.uuidString.lowercased()) keeps"
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
            case .destroyed(let id): requestID = id; result = "destroying droplet \(dropletID)"
            case .alreadyGone: requestID = nil; result = "droplet \(dropletID) was already gone"
            }
            await audit.emit(
                event(kind, row: row, serverID: row == nil ? nil : row?.id, droplet: dropletID, requestID: requestID, message: "\(result): \(why)"))
        } catch {
            let failure = error as? CloudFailure ?? CloudFailure(kind: .transient, message: "\(error)")
            await audit.emit(
                event(
                    failure.kind == .permanent ? .failed : .retrying, row: row, droplet: dropletID, requestID: failure.requestID,
                    message: "could not destroy droplet \(dropletID) (\(why)): \(failure.message)"))
        }
    }

    private func record(note: AuditNote, rows: [UUID: ServerRecord]) async {
        switch note {
        case .orphanSeen(let droplet):
            guard orphansFirstSeen[droplet.id] == nil else { return }
            orphansFirstSeen[droplet.id] = clock()
            await audit.emit(
                AuditEvent(
                    kind: .orphanSeen, at: clock(), dropletID: droplet.id,
                    message:
                        "droplet \(droplet.id) (\(droplet.name)) is tagged citrus-host but matches no server row; left alone unless --orphans delete")
            )
        case let .adopted(id, dropletID):
            let row = rows[id]
            await audit.emit(
                event(
                    .adopted, row: row, serverID: id, droplet: dropletID,
                    message: "server \(row?.name ?? id.uuidString.lowercased()) adopted existing droplet \(dropletID)"))
        }
    }

    // MARK: Helpers

    private func backOff(_ state: inout DaemonState, failure: CloudFailure, now: Date) {
        state.transientFailures += 1
        var delay = ReconcileCore.Backoff.delay(
            failures: state.transientFailures, base: configuration.decision.backoffBase,
            cap: configuration.decision.backoffCap, jitter: jitter())
        if let wait = failure.retryAfter, wait > delay { delay = wait }
        state.nextAttemptAt = now.addingTimeInterval(delay.seconds)
    }

    private func event(
        _ kind: AuditKind, row: ServerRecord?, serverID: UUID? = nil, droplet: Int64? = nil,
        from: ServerStatus? = nil, to: ServerStatus? = nil, requestID: String? = nil, message: String
    ) -> AuditEvent {
        AuditEvent(
            kind: kind, at: clock(), serverID: row?.id ?? serverID, serverName: row?.name, dropletID: droplet ?? row?.state.dropletID,
            fromStatus: from, toStatus: to, requestID: requestID, message: message)
    }

    private func summary(rows: [ServerRecord], finalStates: [UUID: DaemonState], plan: Plan) -> PassSummary {
        var counts: [ServerStatus: Int] = [:]
        var lastError: String?
        var lastErrorAt = Date.distantPast
        for row in rows {
            let state = finalStates[row.id] ?? row.state
            counts[state.status, default: 0] += 1
            if state.status != .deleted, let error = state.lastError, row.createdAt >= lastErrorAt {
                lastError = error
                lastErrorAt = row.createdAt
            }
        }
        // One scan of the plan: the orphans it saw, counted, and the only ones worth remembering.
        var orphans = Set<Int64>()
        for case .note(.orphanSeen(let droplet)) in plan.actions { orphans.insert(droplet.id) }
        orphansFirstSeen = orphansFirstSeen.filter { orphans.contains($0.key) }
        let horizon = clock().addingTimeInterval(-configuration.destroyRepeatInterval.seconds)
        recentDestroys = recentDestroys.filter { $0.value > horizon }
        return PassSummary(
            counts: counts, orphans: orphans.count, waitingOnCloud: plan.waitingOnCloud, nextWakeUp: plan.nextWakeUp, lastError: lastError)
    }

    static func timestamp(_ date: Date?) -> String {
        guard let date else { return "later" }
        return date.formatted(.iso8601)
    }

    /// Runs `body` over `items` with at most `limit` in flight; results in input order.
    static func concurrently<Item: Sendable, Output: Sendable>(
        _ items: [Item], limit: Int, _ body: @escaping @Sendable (Item) async -> Output
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

extension Duration {
    /// The duration in seconds, as a `TimeInterval`.
    public var seconds: TimeInterval {
        let (s, atto) = components
        return TimeInterval(s) + TimeInterval(atto) / 1e18
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
