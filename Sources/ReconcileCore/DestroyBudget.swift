#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The brake on destroys (design.md, identity rule 8): at most `perHour` destroys in any hour,
/// and at most `percentOfFleet` percent of the fleet in any hour, that share never limiting below
/// `floorPerHour`. Past it the daemon sends no destroy (a row's deletion or an orphan's) until the
/// hour has room again, an operator allows destroys (`citrus-reconciler destroys allow`), or the
/// configuration is raised. Destroys of duplicates are exempt: they undo the daemon's own double.
///
/// The defaults never bite a normal day: a fleet of 20 may lose 10 an hour (the floor), a fleet of
/// 500 up to 100 (both limits), a fleet of 5,000 up to 100.
public struct DestroyBudget: Sendable, Hashable {
    public var perHour: Int
    public var percentOfFleet: Int
    public var floorPerHour: Int

    public init(perHour: Int = 100, percentOfFleet: Int = 20, floorPerHour: Int = 10) {
        self.perHour = perHour
        self.percentOfFleet = percentOfFleet
        self.floorPerHour = floorPerHour
    }

    /// The window the budget counts over.
    public static let window: Duration = .seconds(3600)

    /// Destroys allowed in an hour for a fleet of `fleetSize` droplets: the share (rounded down),
    /// never below the floor, never above the hourly limit.
    public func limit(fleetSize: Int) -> Int {
        let share = max(0, fleetSize) * percentOfFleet / 100
        return min(perHour, max(floorPerHour, share))
    }

    /// How many more destroys may be sent now, `counted` having been sent in the last hour, with
    /// `liveRows` rows alive. The fleet the share is of is the one at the start of the hour: the
    /// live rows and the droplets destroyed since (otherwise every destroy would shrink the share).
    public func remaining(counted: Int, liveRows: Int) -> Int {
        max(0, limit(fleetSize: liveRows + counted) - counted)
    }

    /// "100 an hour and 20% of the fleet (at least 10 an hour)".
    public var description: String {
        "\(perHour) an hour and \(percentOfFleet)% of the fleet an hour (never below \(floorPerHour))"
    }
}

/// What the database says of destroys: those sent in the last hour (by the database's clock, from
/// `server_events`, so a restart or a failover does not reset them) and the operator's allowance.
public struct DestroyLedger: Sendable, Hashable {
    /// Droplets whose destroy was sent within the hour, duplicates excluded.
    public var destroyedInHour: Set<Int64>
    /// Of those, the ones DigitalOcean accepted to destroy (or said were gone), and when: a new
    /// leader counts them gone while a list may still show them, as the replica that sent them did.
    public var acceptedAt: [Int64: Date]
    /// The latest end of an allowance in force now, if any; until then the budget does not apply.
    public var allowedUntil: Date?
    /// Who granted that allowance, and why, as recorded.
    public var allowedBy: String?

    /// When braking started, if the audit trail's last word on the brake is `destroys_braked`: a
    /// new leader (or a restarted daemon) takes the brake over rather than announcing it again.
    public var brakedSince: Date?

    public init(
        destroyedInHour: Set<Int64> = [],
        acceptedAt: [Int64: Date] = [:],
        allowedUntil: Date? = nil,
        allowedBy: String? = nil,
        brakedSince: Date? = nil
    ) {
        self.destroyedInHour = destroyedInHour
        self.acceptedAt = acceptedAt
        self.allowedUntil = allowedUntil
        self.allowedBy = allowedBy
        self.brakedSince = brakedSince
    }
}

/// One pass's answer from the brake: which destroys go, and how many wait.
public struct DestroyClearance: Sendable, Hashable {
    /// Destroys that may be sent this pass, in the order given.
    public var cleared: [Action]
    /// Destroys held back by the budget.
    public var held: [Action]
    /// Destroys counted in the hour (the ledger's and this replica's own sends together), before
    /// this pass; and those this pass clears that the budget counts.
    public var counted: Int
    public var clearedCounting: Int
    /// The limit for this fleet.
    public var limit: Int
    /// The allowance in force, if any.
    public var allowedUntil: Date?

    /// Room the hour still had after the destroys cleared (0 while braked).
    public var roomLeft: Int

    /// Whether `action` is one the budget decides about: a destroy, or the graceful shutdown that
    /// comes before one.
    public static func isBudgeted(_ action: Action) -> Bool {
        switch action {
        case .destroy: true
        case .dropletAction(let order, _, _, _): order.kind == .shutdown
        default: false
        }
    }

    /// Decides which of `destroys` may go: those of droplets already counted (a destroy repeated)
    /// and duplicates always; the others while an allowance is in force, or while the hour has
    /// room and the brake is not on. Once on (`braked`), the brake holds every destroy the budget
    /// counts until an operator allows them or none waits: a mass deletion does not trickle out
    /// at the budget's rate while nobody looks.
    public static func decide(
        _ destroys: [Action],
        budget: DestroyBudget,
        counted: Set<Int64>,
        liveRows: Int,
        allowedUntil: Date?,
        braked: Bool,
        now: Date
    ) -> DestroyClearance {
        let allowance = allowedUntil.flatMap { $0 > now ? $0 : nil }
        var room = braked ? 0 : budget.remaining(counted: counted.count, liveRows: liveRows)
        // A destroy already counted (its DELETE repeated after a lost answer, or its intent
        // written and the request withdrawn) goes again without new room, but only while the
        // hour's count is within the budget: counted under an allowance that has since ended, it
        // waits like any other (seed 171452 sent one 130 s after the allowance, braked).
        let countedWithin = !braked && counted.count <= budget.limit(fleetSize: liveRows + counted.count)
        var clearance = DestroyClearance(
            cleared: [],
            held: [],
            counted: counted.count,
            clearedCounting: 0,
            limit: budget.limit(fleetSize: liveRows + counted.count),
            allowedUntil: allowance,
            roomLeft: 0
        )
        for action in destroys {
            let droplet: Int64
            let reason: DestroyReason
            switch action {
            case .destroy(let id, let why): (droplet, reason) = (id, why)
            // A graceful shutdown before a requested destroy is the destroy's first step: it takes
            // the destroy's place in the budget (`shutdownTakesPlace`), so a braked deletion never
            // powers servers off either.
            case .dropletAction(let order, _, _, _) where order.kind == .shutdown:
                (droplet, reason) = (order.dropletID, .deleteRequested(row: order.rowID))
            default: continue
            }
            if case .duplicate = reason {
                clearance.cleared.append(action)
            } else if (counted.contains(droplet) && countedWithin) || allowance != nil {
                clearance.cleared.append(action)
            } else if room > 0 {
                room -= 1
                clearance.clearedCounting += 1
                clearance.cleared.append(action)
            } else {
                clearance.held.append(action)
            }
        }
        clearance.roomLeft = room
        return clearance
    }
}
