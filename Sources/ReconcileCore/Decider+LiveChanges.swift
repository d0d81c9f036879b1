#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

// Changes to a live row (design.md, "Changes to a live row"). A bound row whose droplet is active or
// powered off is compared with it: a changed name is renamed in place, a changed size is resized
// when the operator allows it, and the rest is drift. A change is a sequence of droplet actions,
// each followed to completion by its id; a step whose answer was lost is never sent again before
// the droplet itself has been read and shows it was not carried out.

extension Decider {
    /// Continues the row's change, or starts the one it asks for, and describes the drift that
    /// remains. Returns the action to send now, if any; `target` then holds the row as it will be
    /// written with that action's intent.
    func followLiveChanges(
        of row: ServerRecord,
        droplet: ObservedDroplet,
        observation: Observation,
        into target: inout DaemonState,
        plan: inout PlanBuilder
    ) -> DropletActionOrder? {
        let state = row.state
        // The common case, kept cheap (every converged row, every pass): a droplet that is on,
        // matches its row and what the row recorded of it, with nothing in flight or refused.
        if state.change == nil, state.refused == nil, state.drift == nil, droplet.status == .active,
            let observed = state.observed, observed.describes(droplet), matches(row, droplet)
        {
            return nil
        }
        target.observed = DropletFacts(droplet)
        if state.change == nil, let held = Self.outOfBand(row: row, before: state.observed, droplet: droplet) {
            target.refused = held
        }
        if let refused = target.refused, !stands(refused, row: row, droplet: droplet) {
            target.refused = nil
        }
        var order: DropletActionOrder?
        if let change = state.change {
            // A change's backoff and its last error outlive the droplet's good health.
            target.transientFailures = state.transientFailures
            target.nextAttemptAt = state.nextAttemptAt
            target.lastError = state.lastError
            order = continueChange(
                change,
                of: row,
                droplet: droplet,
                observation: observation,
                into: &target,
                plan: &plan
            )
        } else if let goal = nextGoal(of: row, status: target.status, droplet: droplet, refused: target.refused) {
            order = continueChange(
                LiveChange(goal: goal),
                of: row,
                droplet: droplet,
                observation: observation,
                into: &target,
                plan: &plan
            )
        }
        let drift = drift(
            of: row,
            droplet: droplet,
            change: target.change,
            refused: target.refused,
            policy: configuration.liveChanges
        )
        target.drift = drift
        target.driftSince = drift == nil ? nil : state.driftSince ?? plan.now
        return order
    }

    /// The change the row asks for that the daemon may make now, if any: a rename first, then a
    /// power-on (only by policy), then a resize (only by permission, only while the server is up).
    func nextGoal(
        of row: ServerRecord,
        status: ServerStatus,
        droplet: ObservedDroplet,
        refused: RefusedChange?
    ) -> LiveChange.Goal? {
        let policy = configuration.liveChanges
        guard status.isUp else { return nil }
        if row.name != droplet.name, !Self.refuses(refused, column: "name", value: row.name) {
            return .rename(to: row.name)
        }
        // Tags and backups change nothing the server runs: applied as soon as it is up.
        let specification = specification(of: row)
        // A tag of the daemon's namespace is never put on a droplet (it would claim another row):
        // drift says so instead.
        let tags = specification.problem == nil ? specification.tags : droplet.otherTags
        for tag in tags where !droplet.otherTags.contains(tag) {
            if !Self.refuses(refused, column: "tags", value: "+" + tag) { return .tag(tag) }
        }
        for tag in droplet.otherTags where !tags.contains(tag) {
            if !Self.refuses(refused, column: "tags", value: "-" + tag) { return .untag(tag) }
        }
        if let backups = droplet.backups, backups != specification.backups,
            !Self.refuses(refused, column: "backups", value: specification.backups ? "on" : "off")
        {
            return .backups(on: specification.backups)
        }
        // Disruptive changes wait for a server that is in service, not one still bootstrapping.
        guard status == .active || status == .unreachable else { return nil }
        if droplet.status == .off, policy.powerOnWhenOff { return .powerOn }
        if policy.resize != .off, droplet.status == .active, let size = droplet.size, size != row.size,
            !Self.refuses(refused, column: "size", value: row.size)
        {
            return .resize(to: row.size, disk: policy.resize == .allowDisk)
        }
        return nil
    }

    /// One step of a change: reads what became of the step in flight, skips what already holds,
    /// and asks for the next request when the droplet can take it.
    private func continueChange(
        _ start: LiveChange,
        of row: ServerRecord,
        droplet: ObservedDroplet,
        observation: Observation,
        into target: inout DaemonState,
        plan: inout PlanBuilder
    ) -> DropletActionOrder? {
        var change = start
        plan.waitingOnCloud = true
        defer { target.change = change.stepIndex < change.goal.steps.count ? change : nil }

        // What became of the step in flight: by its id, or, its answer lost, by the droplet's
        // history (its effect alone would not do: a person may have undone it since).
        var progress = change.actionID.flatMap { observation.actions[$0] }
        if change.actionID == nil, let sentAt = change.sentAt,
            let found = Self.action(of: change.step, sentAt: sentAt, in: observation.actionHistory[droplet.id])
        {
            change.actionID = found.id
            progress = found.progress
        }
        if let actionID = change.actionID {
            switch progress {
            case .completed?:
                change.completeStep()
                target.lastError = nil
            case .errored?:
                let reason = "DigitalOcean reports that action \(actionID) (\(change.step.type)) errored"
                // The decision draws no randomness; the act layer's outcomes carry the jitter.
                target = afterStep(
                    of: change,
                    failed: .errored(reason: reason),
                    state: target,
                    at: plan.now,
                    jitter: 0.5
                )
                guard let next = target.change else {
                    change = change.finished
                    return nil
                }
                change = next
            case .unknown?:
                change.actionID = nil
            case .inProgress?, nil:
                return nil
            }
        }
        if change.actionID == nil, let sentAt = change.sentAt {
            // Sent, no answer read, and not in the droplet's history: the droplet says the rest.
            if Self.holds(change.step, on: droplet) {
                change.completeStep()
                target.lastError = nil
            } else if droplet.locked {
                return nil
            } else {
                // Only a history read a settle period after the send, without the action, proves
                // it was not carried out: then it may go again.
                let deadline = actionSettleDeadline(sentAt: sentAt)
                guard observation.listedAt >= deadline, observation.actionHistory[droplet.id] != nil else {
                    plan.wake(at: deadline)
                    return nil
                }
                change.sentAt = nil
            }
        }

        // A step whose effect already holds needs no request (carried out before a crash, or
        // done by hand). A resize whose droplet was powered on meanwhile starts over.
        while change.stepIndex < change.goal.steps.count {
            if Self.holds(change.step, on: droplet) {
                change.completeStep()
            } else if case .resize = change.step, droplet.status == .active {
                change.stepIndex = 0
            } else {
                break
            }
        }
        guard change.stepIndex < change.goal.steps.count else {
            finish(change, into: &target)
            return nil
        }
        guard !droplet.locked, Self.canTake(change.step, droplet: droplet) else { return nil }
        if let backoffUntil = target.nextAttemptAt, backoffUntil > plan.now {
            plan.wake(at: backoffUntil)
            return nil
        }
        return DropletActionOrder(rowID: row.id, dropletID: droplet.id, kind: change.step)
    }

    private func finish(_ change: LiveChange, into target: inout DaemonState) {
        target.change = nil
        target.transientFailures = 0
        target.nextAttemptAt = nil
        target.lastError = nil
        if let failure = change.failure, let column = change.goal.column {
            target.refused = RefusedChange(
                column: column.name,
                value: column.value,
                reason: failure + ", and the droplet was powered back on"
            )
        }
    }

    /// The intent of sending `state.change`'s current step, stamped at `now`.
    public func actionIntent(from state: DaemonState, at now: Date) -> DaemonState {
        var intent = state
        intent.change?.sentAt = now
        intent.change?.actionID = nil
        return intent
    }

    /// What a step's request came to, by the core's rules: the row to write after it.
    public func afterAction(_ outcome: ActionOutcome, intent: DaemonState, at now: Date, jitter: Double) -> DaemonState
    {
        guard let change = intent.change else { return intent }
        var next = intent
        switch outcome {
        case .accepted(let actionID):
            next.change?.actionID = actionID
            next.lastError = nil
        case .carriedOut:
            var done = change
            done.completeStep()
            next.change = done.stepIndex < done.goal.steps.count ? done : nil
            next.lastError = nil
            next.transientFailures = 0
            next.nextAttemptAt = nil
        case .refused(let reason):
            next = afterStep(of: change, failed: .refused(reason: reason), state: intent, at: now, jitter: jitter)
        case .transient(let reason, let retryAfter):
            next.change?.sentAt = nil
            next = backedOff(
                next,
                reason: "\(change.step.type) of droplet: \(reason)",
                retryAfter: retryAfter,
                at: now,
                jitter: jitter
            )
        case .unknown(let reason):
            // The intent stands: the droplet is read again before the step is repeated.
            next.lastError =
                "\(change.progress): no answer (\(reason)); it may or may not have been carried out, and nothing is sent again before the droplet shows which"
        case .withdrawn:
            break
        }
        return next
    }

    enum StepFailure {
        /// DigitalOcean refused the request as asked.
        case refused(reason: String)
        /// DigitalOcean accepted it and the action ended `errored`.
        case errored(reason: String)

        var reason: String {
            switch self {
            case .refused(let reason), .errored(let reason): reason
            }
        }
    }

    /// A failed step. A resize that fails once the droplet is off powers it back on and then
    /// records the refusal; a refused rename is recorded at once; anything else is retried after
    /// the row's backoff (a power action refused is read again: the droplet may already be there).
    func afterStep(
        of change: LiveChange,
        failed: StepFailure,
        state: DaemonState,
        at now: Date,
        jitter: Double
    )
        -> DaemonState
    {
        var next = state
        switch (change.step, failed) {
        case (.resize, _):
            var recovering = change
            recovering.failure = "the \(change.goal.description) failed (\(failed.reason))"
            recovering.stepIndex = change.goal.steps.count - 1
            recovering.actionID = nil
            recovering.sentAt = nil
            next.change = recovering
            next.lastError = recovering.failure
        case (.rename, .refused(let reason)), (.tag, .refused(let reason)), (.untag, .refused(let reason)),
            (.backups, .refused(let reason)):
            next.change = nil
            next.refused = RefusedChange(
                column: change.goal.column?.name ?? "name",
                value: change.goal.column?.value ?? "",
                reason: "the \(change.step.description) was refused: \(reason)"
            )
            next.lastError = nil
            next.transientFailures = 0
            next.nextAttemptAt = nil
        default:
            var retried = change
            retried.actionID = nil
            retried.sentAt = nil
            next.change = retried
            next = backedOff(
                next,
                reason: "\(change.step.type) of droplet: \(failed.reason)",
                retryAfter: nil,
                at: now,
                jitter: jitter
            )
        }
        return next
    }

    private func backedOff(
        _ state: DaemonState,
        reason: String,
        retryAfter: Duration?,
        at now: Date,
        jitter: Double
    )
        -> DaemonState
    {
        var next = state
        next.transientFailures += 1
        var delay = Backoff.delay(failures: next.transientFailures, configuration: configuration, jitter: jitter)
        if let retryAfter, retryAfter > delay { delay = retryAfter }
        next.nextAttemptAt = now.adding(delay)
        next.lastError = "\(state.change?.progress ?? "change"): \(reason); retrying in \(DurationText.format(delay))"
        return next
    }

    /// From this instant a look proves whether a step sent at `sentAt` was carried out: a settle
    /// period after the last instant its request could have reached DigitalOcean.
    /// How far DigitalOcean's clock may be behind the database's when an action's start is
    /// compared with the intent recorded just before it was sent.
    static let clockSlack: Duration = .seconds(5)

    /// The action a step sent at `sentAt` became, in the droplet's history: the oldest of its type
    /// that DigitalOcean started after the intent was recorded.
    static func action(
        of step: DropletActionKind,
        sentAt: Date,
        in history: [ObservedAction]?
    ) -> ObservedAction? {
        let earliest = sentAt.adding(.zero - clockSlack)
        return history?.filter { $0.type == step.type && ($0.startedAt.map { $0 >= earliest } ?? false) }
            .min { $0.id < $1.id }
    }

    public func actionSettleDeadline(sentAt: Date) -> Date {
        sentAt.adding(configuration.createSendWindow + configuration.createRequestTimeout + configuration.settlePeriod)
    }

}

extension LiveChange {
    /// Moves on to the next step.
    mutating func completeStep() {
        stepIndex += 1
        actionID = nil
        sentAt = nil
    }

    /// The change with every step done.
    var finished: LiveChange {
        var done = self
        done.stepIndex = goal.steps.count
        return done
    }
}
