#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import Timekeeping

// What a pass leaves behind: the counts, orphans and wake-up for STATUS= and the next pass.

extension FleetReconciler {
    func summary(
        rows: [ServerRecord],
        finalStates: [UUID: DaemonState],
        plan: Plan,
        isFullView: Bool
    ) -> PassSummary {
        var counts: [ServerStatus: Int] = [:]
        var lastError: String?
        var lastErrorAt = Date.distantPast
        var drifted = 0
        var changing = 0
        for row in rows {
            let state = finalStates[row.id] ?? row.state
            // Live rows only: one this pass deleted is history, which the next pass does not read.
            guard state.status != .deleted else { continue }
            counts[state.status, default: 0] += 1
            if state.drift != nil { drifted += 1 }
            if state.change != nil { changing += 1 }
            if let error = state.lastError, row.createdAt >= lastErrorAt {
                lastError = error
                lastErrorAt = row.createdAt
            }
        }
        // One scan of the plan: the orphans it saw, counted, and the only ones worth remembering.
        // Only a full view shows orphans; passes between full lists keep what the last one saw.
        if isFullView {
            var orphans = Set<Int64>()
            for case .note(.orphanSeen(let droplet)) in plan.actions { orphans.insert(droplet.id) }
            orphansFirstSeen = orphansFirstSeen.filter { orphans.contains($0.key) }
            orphanIdentities = orphanIdentities.filter { orphans.contains($0.key) }
            lastOrphanCount = orphans.count
        }
        // An orphan a live row claims again (inserted again with its identity, or recording it) is
        // no orphan: should it become one again, its grace starts afresh, not from its first sighting.
        if !orphansFirstSeen.isEmpty { forgetReclaimedOrphans(rows: rows) }
        let now = databaseNow()
        let horizon = now.adding(.zero - configuration.destroyRepeatInterval)
        recentDestroys = recentDestroys.filter { $0.value > horizon }
        // Deadlines are on the database's clock; the loop waits on this replica's.
        var wakeUp = plan.nextWakeUp
        // The next slice of a full list in progress, or the next full list, is a reason to wake too.
        // While a list is open only its next slice wakes the loop: the next list is not due before it ends.
        for instant in [scan.map { $0.resumeAt ?? now }, scan == nil ? nextFullListAt() ?? now : nil] {
            guard let instant else { continue }
            wakeUp = min(wakeUp ?? instant, instant)
        }
        return PassSummary(
            counts: counts,
            orphans: lastOrphanCount,
            drifted: drifted,
            changing: changing,
            waitingOnCloud: plan.waitingOnCloud,
            nextWakeUp: wakeUp?.addingTimeInterval(-databaseOffset),
            fullViewAge: view.map { .interval(now.timeIntervalSince($0.listedAt)) },
            listing: scan.map { PassSummary.ListProgress(read: $0.pagesRead, pages: $0.estimatedPages) },
            lastError: lastError,
            backlog: lastBacklog,
            destroyBrake: brake
        )
    }

    func forgetReclaimedOrphans(rows: [ServerRecord]) {
        var byIdentity: [UUID: [Int64]] = [:]
        for (droplet, identity) in orphanIdentities { byIdentity[identity, default: []].append(droplet) }
        var reclaimed: [Int64] = []
        for row in rows where row.state.status != .deleted {
            if let droplets = byIdentity[row.id] { reclaimed.append(contentsOf: droplets) }
            if let droplet = row.state.dropletID, orphansFirstSeen[droplet] != nil { reclaimed.append(droplet) }
        }
        for droplet in reclaimed {
            orphansFirstSeen[droplet] = nil
            orphanIdentities[droplet] = nil
        }
    }
}
