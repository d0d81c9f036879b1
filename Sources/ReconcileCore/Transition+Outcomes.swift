#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The entries that say what came of a request (a create, a droplet action): written with the row
/// change the outcome brings, or alone when that write missed (the request happened either way).
public struct OutcomeEntry: Sendable, Hashable {
    public var kind: AuditKind
    /// The droplet it names; nil: the row's.
    public var droplet: Int64?
    /// Whether it carries the row's statuses before and after.
    public var statuses: Bool
    public var message: String

    public init(kind: AuditKind, droplet: Int64? = nil, statuses: Bool, message: String) {
        self.kind = kind
        self.droplet = droplet
        self.statuses = statuses
        self.message = message
    }
}

extension Transition {
    /// Adds an outcome's entry, if it has one.
    public mutating func append(_ entry: OutcomeEntry?) {
        guard let entry else { return }
        append(entry.kind, droplet: entry.droplet, statuses: entry.statuses, message: entry.message)
    }

    /// What a create's outcome says; nil for a refusal (the `failed` entry of its write says why).
    /// - Parameters:
    ///   - next: the row as it now stands.
    ///   - recorded: whether the outcome's write went through (it does not when the row changed
    ///     meanwhile, or this replica no longer leads).
    public static func entry(
        of outcome: CreateOutcome,
        server: String,
        next: DaemonState,
        recorded: Bool
    ) -> OutcomeEntry? {
        switch outcome {
        case .accepted(let droplet):
            let note =
                recorded
                ? ""
                : "; the row could not be updated (it changed, or this replica no longer leads): the next pass binds the droplet by its identity tag"
            return OutcomeEntry(
                kind: .createAccepted,
                droplet: droplet.id,
                statuses: true,
                message: "DigitalOcean accepted droplet \(droplet.id) for server \(server)\(note)"
            )
        case .refused:
            return nil
        case .transient:
            return OutcomeEntry(
                kind: .retrying,
                statuses: true,
                message: "server \(server): \(next.lastError ?? "")"
            )
        case .unknown(let reason):
            let settle = next.createReachableUntil?.formatted(.iso8601) ?? "the attempt"
            return OutcomeEntry(
                kind: .createUncertain,
                statuses: true,
                message:
                    "server \(server): the create may or may not have happened (\(reason)); no new create until a look a settle period after \(settle) shows none"
            )
        case .withdrawn(let reason):
            return OutcomeEntry(
                kind: .createWithdrawn,
                statuses: true,
                message:
                    "server \(server): create withdrawn before it was sent (\(reason)); nothing was sent, the row is decided again"
            )
        }
    }

    /// What a droplet action's outcome says; nil for a refusal (the write's `change_failed` entry
    /// says why) and for a withdrawal (nothing was sent; the row is decided again).
    public static func entry(
        of outcome: ActionOutcome,
        action: DropletActionKind,
        droplet: Int64,
        server: String,
        next: DaemonState
    ) -> OutcomeEntry? {
        let what = "\(action.description) of droplet \(droplet)"
        switch outcome {
        case .accepted(let actionID):
            return OutcomeEntry(
                kind: .actionAccepted,
                droplet: droplet,
                statuses: false,
                message:
                    "server \(server): DigitalOcean accepted \(what) as action \(actionID); following it to completion"
            )
        case .carriedOut:
            return OutcomeEntry(
                kind: .actionAccepted,
                droplet: droplet,
                statuses: false,
                message: "server \(server): DigitalOcean carried out \(what)"
            )
        case .refused, .withdrawn:
            return nil
        case .transient:
            return OutcomeEntry(
                kind: .retrying,
                droplet: droplet,
                statuses: false,
                message: "server \(server): \(next.lastError ?? what)"
            )
        case .unknown(let reason):
            return OutcomeEntry(
                kind: .actionUncertain,
                droplet: droplet,
                statuses: false,
                message:
                    "server \(server): \(what) may or may not have been carried out (\(reason)); the droplet is read again before anything is repeated"
            )
        }
    }
}
