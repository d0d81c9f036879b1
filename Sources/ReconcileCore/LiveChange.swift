#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// Changes to a live row (design.md, "Changes to a live row"): the user columns are the operator's
// wish, the droplet is the fact. A changed `name` is renamed in place, a changed `size` is resized
// with the operator's permission, and everything else that differs is drift: shown, audited, never
// written over the row.

/// What DigitalOcean last showed of a row's droplet, kept beside the row's own columns.
///
/// Held in one immutable box: every row carries it and every pass copies every row, so a copy
/// costs one reference count, not four.
public struct DropletFacts: Sendable, Hashable {
    private final class Storage: Sendable {
        let name: String
        let region: String?
        let size: String?
        let image: String?

        init(name: String, region: String?, size: String?, image: String?) {
            self.name = name
            self.region = region
            self.size = size
            self.image = image
        }
    }

    private let storage: Storage

    public var name: String { storage.name }
    /// Nil where DigitalOcean's answer did not say (never compared then).
    public var region: String? { storage.region }
    public var size: String? { storage.size }
    /// The image's slug, or its id where it has no slug.
    public var image: String? { storage.image }

    public init(name: String, region: String? = nil, size: String? = nil, image: String? = nil) {
        storage = Storage(name: name, region: region, size: size, image: image)
    }

    public init(_ droplet: ObservedDroplet) {
        self.init(name: droplet.name, region: droplet.region, size: droplet.size, image: droplet.image)
    }

    /// Whether these are the droplet's facts (without building new ones to compare).
    public func describes(_ droplet: ObservedDroplet) -> Bool {
        name == droplet.name && region == droplet.region && size == droplet.size && image == droplet.image
    }

    public static func == (a: DropletFacts, b: DropletFacts) -> Bool {
        a.storage === b.storage
            || (a.name == b.name && a.region == b.region && a.size == b.size && a.image == b.image)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(region)
        hasher.combine(size)
        hasher.combine(image)
    }
}

/// One request to change a droplet in place: a step of a `LiveChange`.
public enum DropletActionKind: Sendable, Hashable {
    case rename(to: String)
    case powerOff
    /// Only while the droplet is off. `disk: false` changes CPU and memory and keeps the disk (the
    /// droplet can be resized back); `true` grows the disk too, which cannot be undone.
    case resize(to: String, disk: Bool)
    case powerOn
    /// Adds a tag (`POST /v2/tags/{tag}/resources`): carried out at once, no action to follow.
    case tag(String)
    /// Removes a tag (`DELETE /v2/tags/{tag}/resources`), likewise.
    case untag(String)
    /// Switches backups on or off (`enable_backups`, `disable_backups`).
    case backups(on: Bool)
    /// A graceful power-off (ACPI), before a destroy.
    case shutdown

    /// How the audit trail names it: "rename to web-2", "resize to s-2vcpu-2gb (CPU and memory)".
    public var description: String {
        switch self {
        case .rename(let name): "rename to \(name)"
        case .powerOff: "power off"
        case .resize(let size, let disk): "resize to \(size)" + (disk ? " (disk included)" : " (CPU and memory)")
        case .powerOn: "power on"
        case .tag(let tag): "tag \(tag)"
        case .untag(let tag): "untag \(tag)"
        case .backups(let on): on ? "enable backups" : "disable backups"
        case .shutdown: "shut down"
        }
    }

    /// DigitalOcean's name for it (`type` in the action's body and answer; `tag` and `untag` are
    /// tag requests, which make no action).
    public var type: String {
        switch self {
        case .rename: "rename"
        case .powerOff: "power_off"
        case .resize: "resize"
        case .powerOn: "power_on"
        case .tag: "tag"
        case .untag: "untag"
        case .backups(let on): on ? "enable_backups" : "disable_backups"
        case .shutdown: "shutdown"
        }
    }
}

/// A change being made to a live droplet, step by step; each step is one DigitalOcean action,
/// followed to completion before the next is sent. Stored in the row, so a restarted daemon (or
/// another replica) carries on where this one stopped.
public struct LiveChange: Sendable, Hashable {
    public enum Goal: Sendable, Hashable {
        case rename(to: String)
        case resize(to: String, disk: Bool)
        /// The droplet was powered off out of band and the policy says to power it back on.
        case powerOn
        /// A tag the row (or the configuration) asks for and the droplet lacks.
        case tag(String)
        /// A tag the droplet carries and the row no longer asks for.
        case untag(String)
        case backups(on: Bool)
        /// A row whose deletion was asked: the server is shut down gracefully before its droplet
        /// is destroyed (`DecisionConfiguration.shutdownBeforeDestroy`).
        case shutDown

        /// The steps, in order.
        public var steps: [DropletActionKind] {
            switch self {
            case .rename(let name): [.rename(to: name)]
            case .resize(let size, let disk): [.powerOff, .resize(to: size, disk: disk), .powerOn]
            case .powerOn: [.powerOn]
            case .tag(let tag): [.tag(tag)]
            case .untag(let tag): [.untag(tag)]
            case .backups(let on): [.backups(on: on)]
            case .shutDown: [.shutdown]
            }
        }

        /// The row column it applies, and the value it applies (a refusal is kept under these).
        public var column: (name: String, value: String)? {
            switch self {
            case .rename(let name): ("name", name)
            case .resize(let size, _): ("size", size)
            case .powerOn: nil
            case .tag(let tag): ("tags", "+" + tag)
            case .untag(let tag): ("tags", "-" + tag)
            case .backups(let on): ("backups", on ? "on" : "off")
            case .shutDown: nil
            }
        }

        /// Its one step that says what it is for (a resize's resize, not its power-off).
        public var description: String {
            switch self {
            case .rename(let name): DropletActionKind.rename(to: name).description
            case .resize(let size, let disk): DropletActionKind.resize(to: size, disk: disk).description
            case .powerOn, .tag, .untag, .backups, .shutDown: steps[0].description
            }
        }
    }

    public var goal: Goal
    /// Which of `goal.steps` is current.
    public var stepIndex: Int
    /// The action DigitalOcean accepted for the current step, once its answer was read.
    public var actionID: Int64?
    /// When the current step's request was decided and recorded (database clock), just before it
    /// was sent; nil while it has not been. With no `actionID`, its outcome is unknown: the droplet
    /// is read again before anything is repeated.
    public var sentAt: Date?
    /// Why the change failed, while the droplet is being powered back on after it.
    public var failure: String?

    public init(goal: Goal, stepIndex: Int = 0, actionID: Int64? = nil, sentAt: Date? = nil, failure: String? = nil) {
        self.goal = goal
        self.stepIndex = stepIndex
        self.actionID = actionID
        self.sentAt = sentAt
        self.failure = failure
    }

    /// The current step.
    public var step: DropletActionKind {
        let steps = goal.steps
        return steps[min(max(stepIndex, 0), steps.count - 1)]
    }

    /// "resize to s-2vcpu-2gb (CPU and memory), step 2 of 3 (resize)".
    public var progress: String {
        let steps = goal.steps
        let recovering = failure == nil ? "" : ", powering the droplet back on after a failure"
        return "\(goal.description), step \(stepIndex + 1) of \(steps.count) (\(step.type))\(recovering)"
    }
}

/// A value of the row that is not applied while the row asks for it: DigitalOcean refused it, the
/// change failed, or the droplet was changed at DigitalOcean and the daemon does not undo that.
public struct RefusedChange: Sendable, Hashable {
    /// `name` or `size`.
    public var column: String
    /// The value the row asked for.
    public var value: String
    public var reason: String

    public init(column: String, value: String, reason: String) {
        self.column = column
        self.value = value
        self.reason = reason
    }
}

/// What the operator allows the daemon to do to a live droplet.
public struct LiveChangePolicy: Sendable, Hashable {
    public enum Resize: String, Sendable, Hashable, CaseIterable {
        /// A changed size is reported as drift (the default).
        case off
        /// Power off, resize CPU and memory (the disk is kept, so it can be undone), power on.
        case allow
        /// As `allow`, and grow the disk too: irreversible, so it needs its own opt-in.
        case allowDisk = "allow-disk"
    }

    public var resize: Resize
    /// Power a droplet that was powered off out of band back on, rather than report it.
    public var powerOnWhenOff: Bool

    public init(resize: Resize = .off, powerOnWhenOff: Bool = false) {
        self.resize = resize
        self.powerOnWhenOff = powerOnWhenOff
    }
}

/// How an action the daemon sent for a live change turned out, as DigitalOcean reports it.
public enum ActionProgress: Sendable, Hashable {
    case inProgress
    case completed
    case errored
    /// DigitalOcean does not know the action (404): its outcome is settled by reading the droplet,
    /// as for a step whose answer was lost.
    case unknown
}

/// One entry of a droplet's action history (`GET /v2/droplets/{id}/actions`): actions by anyone,
/// this daemon's and a person's alike.
public struct ObservedAction: Sendable, Hashable {
    public var id: Int64
    /// `rename`, `power_off`, `power_on`, `resize`, …
    public var type: String
    public var progress: ActionProgress
    /// DigitalOcean's clock.
    public var startedAt: Date?

    public init(id: Int64, type: String, progress: ActionProgress, startedAt: Date?) {
        self.id = id
        self.type = type
        self.progress = progress
        self.startedAt = startedAt
    }
}

/// The droplet action a decision asks the loop to send.
public struct DropletActionOrder: Sendable, Hashable {
    public var rowID: UUID
    public var dropletID: Int64
    public var kind: DropletActionKind

    public init(rowID: UUID, dropletID: Int64, kind: DropletActionKind) {
        self.rowID = rowID
        self.dropletID = dropletID
        self.kind = kind
    }
}

/// What came of sending one droplet action.
public enum ActionOutcome: Sendable, Hashable {
    /// DigitalOcean accepted it; its progress is followed by id.
    case accepted(actionID: Int64)
    /// DigitalOcean carried it out in its answer (a tag request): nothing to follow.
    case carriedOut
    /// Refused as asked (a 422 such as an invalid name or a size DigitalOcean will not resize to).
    case refused(reason: String)
    /// Refused without effect (429, 5xx before it was carried out, the droplet busy with another
    /// action): retry after the row's backoff.
    case transient(reason: String, retryAfter: Duration?)
    /// No answer (a timeout, a lost connection, a 5xx after sending): it may have been carried out.
    case unknown(reason: String)
    /// Not sent after all (leadership lapsed, the intent grew stale).
    case withdrawn(reason: String)
}
