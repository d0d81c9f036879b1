#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
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
    /// What full lists of the fleet may spend an hour, in requests (pages): a fleet of P pages is
    /// listed every P × 3600 / this seconds, or every `resyncInterval` if that is longer. Between
    /// full lists, passes read only what waits on DigitalOcean.
    public var listBudgetPerHour = 750
    /// Pages of a full list read in one pass, and how soon the next slice may follow: a list of
    /// many pages takes at most 25 pages every 10 s (150 a minute, of the 250 DigitalOcean allows),
    /// so new rows, and the watchdog, never wait for a whole list. While rows wait on the list, a
    /// fifth of this every fifth of the interval (`FleetReconciler.slicing`).
    public var listPagesPerSlice = 25
    public var listSliceInterval: Duration = .seconds(10)
    /// Mutating DigitalOcean calls in flight at once.
    public var maxConcurrentCalls = 4
    /// Reads of single rows in one pass (lookups of identities, follow-ups of droplets, droplets a
    /// row records that the list did not show), all together: see ReadSchedule.
    public var maxLookupsPerPass = 50
    /// The requests a minute the token allows (DigitalOcean's 250), for the backlog's estimates.
    public var requestsPerMinute = 250
    /// A destroy already accepted is not re-sent for this long while the droplet still lists.
    public var destroyRepeatInterval: Duration = .seconds(30)
    /// How often a standby replica tries to take leadership.
    public var standbyPollInterval: Duration = .milliseconds(500)

    public init() {}
}

/// What a pass leaves behind, for STATUS= and for scheduling the next one.
public struct PassSummary: Sendable, Hashable {
    /// Live rows by status, as the pass left them (`deleted` is never counted).
    public var counts: [ServerStatus: Int]
    public var orphans: Int
    /// Live rows whose droplet differs from them in a way the daemon does not change.
    public var drifted: Int
    /// Live rows with a rename or resize in progress.
    public var changing: Int
    public var waitingOnCloud: Bool
    public var nextWakeUp: Date?
    /// How old the last full list of the fleet was at the end of the pass; nil before the first.
    public var fullViewAge: Duration?
    /// A full list in progress: pages read, and the list's length in pages if known.
    public var listing: ListProgress?

    public struct ListProgress: Sendable, Hashable {
        public var read: Int
        public var pages: Int?

        public init(read: Int, pages: Int?) {
            self.read = read
            self.pages = pages
        }
    }
    /// The most recent row error, for the one-line status.
    public var lastError: String?
    /// What waits on a read, and how long it will take at the budget.
    public var backlog: ReadBacklog

    public init(
        counts: [ServerStatus: Int] = [:],
        orphans: Int = 0,
        drifted: Int = 0,
        changing: Int = 0,
        waitingOnCloud: Bool = false,
        nextWakeUp: Date? = nil,
        fullViewAge: Duration? = nil,
        listing: ListProgress? = nil,
        lastError: String? = nil,
        backlog: ReadBacklog = ReadBacklog()
    ) {
        self.counts = counts
        self.orphans = orphans
        self.drifted = drifted
        self.changing = changing
        self.waitingOnCloud = waitingOnCloud
        self.nextWakeUp = nextWakeUp
        self.fullViewAge = fullViewAge
        self.listing = listing
        self.lastError = lastError
        self.backlog = backlog
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
        // How stale the daemon's view of the whole fleet is: between full lists it reads only what waits.
        if let listing {
            line += "; listing the fleet, page \(listing.read)" + (listing.pages.map { " of about \($0)" } ?? "")
        }
        if !backlog.isEmpty { line += "; " + backlog.oneLine }
        if let fullViewAge {
            line += "; full view \(DurationText.format(.seconds(fullViewAge.components.seconds))) old"
        } else if listing == nil {
            line += "; no full view yet"
        }
        if let lastError { line += "; last error: \(lastError)" }
        return line
    }
}

/// The rows a pass left waiting on a read (ReadSchedule), by kind, and how long each backlog takes
/// at the budget: a full list's slices at their pace, lookups and follow-ups at the reads a pass may
/// make (and no faster than the requests a minute allows).
public struct ReadBacklog: Sendable, Hashable {
    /// Rows whose identity waits for the full list being read (its pages confirm it in bulk).
    public var awaitingList = 0
    /// Lookups of identities left for later passes; `presence` of them confirm a droplet a list
    /// showed (a list answers those too).
    public var lookups = 0
    public var presence = 0
    /// Follow-ups of droplets left for later passes.
    public var followUps = 0
    /// The rest of the full list being read, at its pace; nil when none is.
    public var listClearsIn: Duration?
    /// The lookups and follow-ups left, at the budget.
    public var readsClearIn: Duration?

    public init() {}

    public var isEmpty: Bool { awaitingList == 0 && lookups == 0 && followUps == 0 }

    /// "waiting: 4800 rows on the full list (about 1m30s), 120 lookups and 30 follow-ups (about 15s)".
    public var oneLine: String { "waiting: " + what }

    /// What waits, without the lead word: "4800 rows on the full list (about 1m30s), …"; what the
    /// leader records for `status`.
    public var what: String {
        var parts: [String] = []
        if awaitingList > 0 {
            parts.append(
                "\(awaitingList) row\(awaitingList == 1 ? "" : "s") on the full list"
                    + (listClearsIn.map { " (about \(DurationText.format($0)))" } ?? "")
            )
        }
        var reads: [String] = []
        if lookups > 0 { reads.append("\(lookups) lookup\(lookups == 1 ? "" : "s")") }
        if followUps > 0 { reads.append("\(followUps) follow-up\(followUps == 1 ? "" : "s")") }
        if !reads.isEmpty {
            parts.append(
                reads.joined(separator: " and ") + (readsClearIn.map { " (about \(DurationText.format($0)))" } ?? "")
            )
        }
        return parts.joined(separator: ", ")
    }
}

/// A pass ended early: this replica no longer leads.
public struct LeadershipLost: Error, CustomStringConvertible {
    public var description: String { "this replica no longer leads; the pass stopped" }
}
