#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A create sent (or about to be sent) for an identity, as recorded outside its row: in the
/// append-only `create_intents` table, which `DELETE FROM servers` does not touch, and in the
/// leader's memory, which a database restore does not touch (design.md, identity rule 6).
///
/// A row deleted and inserted again with the same id, or restored from before its intent, looks
/// never attempted: merged back into the row with `DaemonState.remembering(_:)`, the record makes
/// the decision treat it as a row whose create may still appear, under the same settle rules.
public struct CreateIntent: Sendable, Hashable {
    /// When the intent was recorded (database clock).
    public var attemptedAt: Date
    /// The last instant that create could have reached DigitalOcean.
    public var reachableUntil: Date
    /// The attempt's number, as the row counted it.
    public var attempt: Int
    /// The agent the create's user_data named (agent bootstrap), if any: the droplet carries its key.
    public var agentID: UUID?

    public init(attemptedAt: Date, reachableUntil: Date, attempt: Int, agentID: UUID? = nil) {
        self.attemptedAt = attemptedAt
        self.reachableUntil = reachableUntil
        self.attempt = attempt
        self.agentID = agentID
    }

    /// The intent a row's state records, if it records one. A row written before
    /// `createReachableUntil` existed could reach DigitalOcean until its intent, the send window
    /// and the request's deadline had passed.
    public init?(of state: DaemonState, configuration: DecisionConfiguration) {
        guard let attemptedAt = state.createAttemptedAt else { return nil }
        self.init(
            attemptedAt: attemptedAt,
            reachableUntil: state.createReachableUntil
                ?? attemptedAt.adding(configuration.createSendWindow + configuration.createRequestTimeout),
            attempt: state.createAttempts,
            agentID: state.agentID
        )
    }
}

extension DaemonState {
    /// Two stamps of one instant, one read back from Postgres's microseconds, differ by less.
    static let sameInstant: TimeInterval = 0.000_01

    /// The row's state with a create recorded elsewhere taken in, when that create is later than
    /// any the row records and the row is bound to no droplet (a bound row needs no settling: its
    /// droplet is known). The row's own agent, if it names one, stays.
    public func remembering(_ intent: CreateIntent?) -> DaemonState {
        guard let intent, dropletID == nil else { return self }
        // The same intent, as the database keeps it (to the microsecond) and as this process
        // stamped it, differ by less than a microsecond: that is no later intent.
        if let attempted = createAttemptedAt, attempted >= intent.attemptedAt.addingTimeInterval(-Self.sameInstant) {
            return self
        }
        var merged = self
        merged.createAttemptedAt = intent.attemptedAt
        merged.createReachableUntil = max(createReachableUntil ?? intent.reachableUntil, intent.reachableUntil)
        merged.createAttempts = max(createAttempts, intent.attempt)
        if merged.agentID == nil { merged.agentID = intent.agentID }
        return merged
    }
}
