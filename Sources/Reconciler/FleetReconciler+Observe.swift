#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import Timekeeping

// Observe: the fleet list and the lookups a pass makes of what the list did not show.

extension FleetReconciler {
    // MARK: Observe

    /// What a pass sees of DigitalOcean: the whole fleet when a full list completes in it (or at
    /// once, with `wholeList`), else a look at what waits on DigitalOcean (see `targetedObservation`).
    func observe(rows: [ServerRecord], wholeList: Bool = false) async throws -> Observation {
        let lookAt = databaseNow()
        let followUps = followUps(of: rows)
        startFullListIfDue(followUps: followUps.count, at: lookAt)
        let slice = try await continueFullList(wholeList: wholeList)
        guard let (listing, listedAt, took) = slice?.finished else {
            var observation = await targetedObservation(
                rows: rows,
                at: lookAt,
                followUps: followUps,
                slice: slice?.droplets ?? []
            )
            await observeLiveChanges(rows: rows, into: &observation)
            return observation
        }
        var droplets = listing.droplets
        let listed = Set(droplets.map(\.id))
        // A row may record a droplet the list does not show: a new one hidden by list lag, one
        // without the fleet tag (a legacy row), or one that is gone. Ask for each directly.
        let now = databaseNow()
        // Built once: a full list's pass asks this of every row.
        var gone = knownGone
        let missing = rows.compactMap { row -> ReadSchedule.Candidate<Int64>? in
            guard let id = row.state.dropletID, !listed.contains(id), !gone.contains(id) else { return nil }
            switch row.state.status {
            case .creating, .provisioning, .initializing, .active, .unreachable, .deleting:
                return ReadSchedule.Candidate(row: row.id, urgent: isUrgent(row, at: now), item: id)
            case .failed, .deleted: return nil
            }
        }
        let picked = reads.pick(missing)
        reads.leave(followUps: missing.count - picked.count)
        // The last slice's pages were read in this pass; earlier slices' may be minutes old.
        var fresh = Set(slice?.droplets.map(\.id) ?? [])
        let (cloud, leads) = (self.cloud, self.leads)
        let lookups = await Self.concurrently(picked.map(\.item), limit: 1) { id in
            guard leads() else { return (id, Result<ObservedDroplet?, any Error>.failure(LeadershipLost())) }
            return (id, await Result { try await cloud.droplet(id: id) })
        }
        for (id, result) in lookups {
            progress()
            switch result {
            case .success(let droplet?):
                droplets.append(droplet)
                fresh.insert(id)
            case .success(nil): gone.insert(id)
            case .failure(let error): logger.debug("lookup of droplet \(id) failed; deciding without it: \(error)")
            }
        }
        rememberGoneWhileDeleting(gone, rows: rows)
        view = nil  // the last list's droplets go before the new one's are indexed
        view = FleetView(
            droplets: DropletTable(droplets, without: gone),
            listedAt: listedAt,
            pages: listing.pages,
            took: took
        )
        logger.info(
            "full list: \(listing.droplets.count) droplets in \(listing.pages) page\(listing.pages == 1 ? "" : "s"), took \(DurationText.format(took)); next full list in \(DurationText.format(fullListInterval(pages: listing.pages)))",
            metadata: ["FLEET_PAGES": "\(listing.pages)", "FLEET_DROPLETS": "\(listing.droplets.count)"]
        )
        // For `citrus-reconciler status`, which reads only the database. A failure to record it
        // costs the operator that line, not the pass.
        let record = FullViewRecord(
            listedAt: listedAt,
            pages: listing.pages,
            droplets: listing.droplets.count,
            took: took,
            nextListAt: nextFullListAt()
        )
        do {
            try await repository.recordFullView(record)
        } catch {
            logger.warning("could not record the full list for `status`: \(error)")
        }
        var observation = Observation(
            droplets: droplets,
            goneDropletIDs: gone,
            listedAt: listedAt,
            listIsSnapshot: listing.pages <= 1,
            freshlyRead: fresh
        )
        await observeLiveChanges(rows: rows, into: &observation)
        return observation
    }
}
