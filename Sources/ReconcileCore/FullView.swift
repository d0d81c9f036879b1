#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The last complete list of the fleet at DigitalOcean, as the leader recorded it. Between full
/// lists the daemon follows only what changes, so this says how stale its view of the rest
/// (drift, orphans, droplets destroyed out of band) may be; `status` shows it.
public struct FullViewRecord: Sendable, Hashable {
    /// When the full list began, on the database's clock: anything changed at DigitalOcean after
    /// this instant may be missing from it.
    public var listedAt: Date
    /// List pages it took.
    public var pages: Int
    /// Droplets it showed.
    public var droplets: Int
    /// How long the list took, from its first page to its last (budget waits included).
    public var took: Duration
    /// When the leader means to list in full again, on the database's clock; nil when it did not say.
    public var nextListAt: Date?

    public init(listedAt: Date, pages: Int, droplets: Int, took: Duration, nextListAt: Date? = nil) {
        self.listedAt = listedAt
        self.pages = pages
        self.droplets = droplets
        self.took = took
        self.nextListAt = nextListAt
    }
}
