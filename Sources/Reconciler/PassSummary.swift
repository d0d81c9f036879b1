#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Timekeeping

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
    /// The destroy brake, while it is on.
    public var destroyBrake: DestroyBrakeState?

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
        backlog: ReadBacklog = ReadBacklog(),
        destroyBrake: DestroyBrakeState? = nil
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
        self.destroyBrake = destroyBrake
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
        if let destroyBrake { line += "; " + destroyBrake.oneLine }
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
