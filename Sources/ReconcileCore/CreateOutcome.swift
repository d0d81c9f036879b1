#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// What came of one create, as the act layer saw it. The rules that turn it into the row's next
/// state live here, beside the decision, so that the act layer only performs what they return.
public enum CreateOutcome: Sendable, Hashable {
    /// DigitalOcean accepted it and named the droplet.
    case accepted(ObservedDroplet)
    /// Refused as given (400, 422, other 4xx, or local validation): nothing was made, and sending
    /// it again will not help.
    case refused(reason: String)
    /// Refused without effect (429, or DigitalOcean unreachable before a byte was sent): nothing
    /// was made; safe to send again after a backoff, `retryAfter` at the earliest.
    case transient(reason: String, retryAfter: Duration?)
    /// It may or may not have been made (a 5xx, a timeout, a reset, an unreadable answer).
    case unknown(reason: String)
    /// Not sent: by the time its turn came the intent was older than the send window, or this
    /// replica no longer led. Nothing was made by it.
    case withdrawn(reason: String)
}

/// The lastError texts of create outcomes.
public enum CreateMessages {
    public static func refused(_ reason: String) -> String {
        "DigitalOcean refused the droplet: \(reason)"
    }

    public static func invalid(_ problem: String) -> String {
        "invalid request, nothing was sent to DigitalOcean: \(problem)"
    }

    public static func transient(_ reason: String, retryAt: Date?) -> String {
        "DigitalOcean did not take the create (\(reason)); retrying at \(retryAt.map { $0.formatted(.iso8601) } ?? "later")"
    }

    public static func unknown(_ reason: String) -> String {
        "create outcome unknown (\(reason)); no new create until DigitalOcean has been checked for the droplet"
    }
}

extension Decider {
    /// The row as written before a create leaves: the intent, stamped `now` (database clock), and
    /// the last instant the request could reach DigitalOcean if it is sent at all. With agent
    /// bootstrap, `agent` is the agent the droplet's user_data names (made or re-keyed with this
    /// intent); the wait for it starts afresh. `order`, when given, is recorded as what the droplet
    /// is made with (`DaemonState.createdWith`).
    public func intent(
        from state: DaemonState,
        at now: Date,
        agent: UUID? = nil,
        order: CreateOrder? = nil
    )
        -> DaemonState
    {
        var intent = state
        if let order { intent.createdWith = order.specification.creationOnly }
        if let agent { intent.agentID = agent }
        intent.agentAwaitedSince = nil
        intent.createAttemptedAt = now
        intent.createReachableUntil = now.adding(configuration.createSendWindow + configuration.createRequestTimeout)
        intent.createAttempts += 1
        return intent
    }

    /// Whether a create whose intent write began `age` ago (this replica's uptime clock) may still
    /// be sent. Outside the window the settle deadline written with the intent would no longer
    /// cover the request, so it is withdrawn instead.
    public func maySend(intentAge age: Duration) -> Bool {
        age <= configuration.createSendWindow
    }

    /// The row's state after a create's outcome.
    /// - Parameters:
    ///   - before: the row as it was before the intent.
    ///   - intent: the row as written with the intent (`intent(from:at:)`).
    ///   - now: when the outcome was seen (database clock).
    ///   - jitter: a random number in `0..<1` for the backoff.
    public func afterCreate(
        _ outcome: CreateOutcome,
        before: DaemonState,
        intent: DaemonState,
        at now: Date,
        jitter: Double
    ) -> DaemonState {
        var next = intent
        switch outcome {
        case .accepted(let droplet):
            // The answer ended the request: a 404 for the droplet is believed a settle period
            // from now (a lookup may lag the create), not from the request's deadline.
            next.createReachableUntil = Self.ended(intent, at: now)
            next.dropletID = droplet.id
            next.status = .provisioning
            next.lastError = nil
            next.transientFailures = 0
            next.nextAttemptAt = nil
        case .refused(let reason):
            // Nothing was made: the row's earlier attempts (settled before this one was sent) stand.
            next.createAttemptedAt = before.createAttemptedAt
            next.createReachableUntil = before.createReachableUntil
            next.status = .failed
            next.lastError = CreateMessages.refused(reason)
            next.transientFailures = 0
            next.nextAttemptAt = nil
        case .transient(let reason, let retryAfter):
            next.createAttemptedAt = before.createAttemptedAt
            next.createReachableUntil = before.createReachableUntil
            backOff(&next, at: now, retryAfter: retryAfter, jitter: jitter)
            next.lastError = CreateMessages.transient(reason, retryAt: next.nextAttemptAt)
        case .unknown(let reason):
            // The intent's stamp stays; the request could reach DigitalOcean no later than it
            // ended (an answer, a closed connection, or its deadline), so the settle period counts
            // from then: a 5xx answered at once does not wait as if it could still be on its way.
            // What DigitalOcean carries out after its answer, and what lists show late, the settle
            // period itself covers.
            next.createReachableUntil = Self.ended(intent, at: now)
            backOff(&next, at: now, retryAfter: nil, jitter: jitter)
            next.lastError = CreateMessages.unknown(reason)
        case .withdrawn:
            // As if the intent had never been written; the next pass decides afresh. The agent
            // it made stays the row's (its key was never sent; the next attempt re-keys it), and
            // so does its count: attempts count the intents recorded, which never go down (the
            // audit trail announced this one, and the next is announced as the one after it).
            next = before
            next.agentID = intent.agentID
            next.createAttempts = intent.createAttempts
        }
        return next
    }

    /// The instant a create that ended `now` could last reach DigitalOcean: now, if that is sooner
    /// than the intent said, but never before the attempt itself (a wall clock stepped back must
    /// not make it so).
    static func ended(_ intent: DaemonState, at now: Date) -> Date? {
        guard let reachable = intent.createReachableUntil, now < reachable else { return intent.createReachableUntil }
        return max(now, intent.createAttemptedAt ?? now)
    }

    /// One more transient failure: the row waits `Backoff.delay`, or `retryAfter` if longer.
    public func backOff(_ state: inout DaemonState, at now: Date, retryAfter: Duration?, jitter: Double) {
        state.transientFailures += 1
        var delay = Backoff.delay(failures: state.transientFailures, configuration: configuration, jitter: jitter)
        if let retryAfter, retryAfter > delay { delay = retryAfter }
        state.nextAttemptAt = now.adding(delay)
    }
}

/// What a request sent once through an intent can come to, short of being accepted: a create's
/// outcome and a droplet action's share these cases.
public protocol GatedOutcome: Sendable {
    static func refused(reason: String) -> Self
    static func transient(reason: String, retryAfter: Duration?) -> Self
    static func unknown(reason: String) -> Self
    static func withdrawn(reason: String) -> Self
}

extension CreateOutcome: GatedOutcome {}
extension ActionOutcome: GatedOutcome {}
