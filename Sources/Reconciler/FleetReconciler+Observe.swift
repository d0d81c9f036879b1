import Foundation
import Logging
import ReconcileCore
import Timekeeping

// Observe: the fleet list and the lookups a pass makes of what the list did not show.

extension FleetReconciler {
    // MARK: Observe

    func observe(rows: [ServerRecord]) async throws -> Observation {
        let listedAt = databaseNow()
        let listing = try await cloud.listFleet()
        lastFleetPages = listing.pages
        var droplets = listing.droplets
        let listed = Set(droplets.map(\.id))
        // A row may record a droplet the list does not show: a new one hidden by list lag, one
        // without the fleet tag (a legacy row), or one that is gone. Ask for each directly.
        let missing = rows.compactMap { row -> Int64? in
            guard let id = row.state.dropletID, !listed.contains(id) else { return nil }
            switch row.state.status {
            case .creating, .provisioning, .initializing, .active, .unreachable, .deleting: return id
            case .failed, .deleted: return nil
            }
        }
        var gone = Set<Int64>()
        let (cloud, leads) = (self.cloud, self.leads)
        let lookups = await Self.concurrently(Array(missing.prefix(configuration.maxLookupsPerPass)), limit: 1) { id in
            guard leads() else { return (id, Result<ObservedDroplet?, any Error>.failure(LeadershipLost())) }
            return (id, await Result { try await cloud.droplet(id: id) })
        }
        for (id, result) in lookups {
            switch result {
            case .success(let droplet?): droplets.append(droplet)
            case .success(nil): gone.insert(id)
            case .failure(let error): logger.debug("lookup of droplet \(id) failed; deciding without it: \(error)")
            }
        }
        var observation = Observation(
            droplets: droplets,
            goneDropletIDs: gone,
            listedAt: listedAt,
            listIsSnapshot: listing.pages <= 1
        )
        await observeLiveChanges(rows: rows, into: &observation)
        return observation
    }
}
