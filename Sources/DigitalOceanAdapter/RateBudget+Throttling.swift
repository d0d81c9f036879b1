import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension RateBudget {
    /// Whether the budget holds requests back on purpose at `now`: some wait for their turn, or a
    /// 429 paused them all. A pass waiting on it is slow by design, not stuck (`Daemon.assemble`'s
    /// `throttled`).
    public func isHoldingBack(at now: Date) async -> Bool {
        let snapshot = self.snapshot
        return snapshot.waitingMutations + snapshot.waitingReads > 0 || snapshot.pausedUntil.map { $0 > now } ?? false
    }
}
