#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import Timekeeping

// Which rows a pass reads one by one (ReadSchedule), which come first, and what the pass leaves
// waiting, as STATUS= and `status` say it.

extension FleetReconciler {
    /// The identity lookups this pass makes of those the decision wants (ReadSchedule): urgent rows
    /// first; while a full list is being read, the backlog waits for its pages.
    func scheduleLookups(of wanted: Set<UUID>, rows: [ServerRecord], observation: Observation) -> [UUID] {
        let now = databaseNow()
        var candidates: [ReadSchedule.Candidate<UUID>] = []
        var awaitingList = 0
        for row in rows where wanted.contains(row.id) {
            let urgent = isUrgent(row, at: now)
            if !urgent, scan != nil {
                awaitingList += 1
                continue
            }
            candidates.append(ReadSchedule.Candidate(row: row.id, urgent: urgent, item: row.id))
        }
        let picked = reads.pick(candidates)
        var presence = 0
        if picked.count < candidates.count {
            // Left for later: those whose droplet some list showed could be confirmed by a list too.
            let shown = Set(observation.droplets.compactMap(\.identity)).union(view?.droplets.identities() ?? [])
            let served = Set(picked.map(\.row))
            presence = candidates.count(where: { !served.contains($0.row) && shown.contains($0.row) })
        }
        reads.leave(awaitingList: awaitingList, lookups: candidates.count - picked.count, presence: presence)
        return picked.map(\.item)
    }

    /// Whether a row that waits on a read is served before any backlog: it was inserted since the
    /// last full list began (no list can have shown its droplet), or a create of its own is recent:
    /// no older than its whole settle window as the intent wrote it (a droplet just accepted is
    /// followed to `active` first, however early its answer came).
    func isUrgent(_ row: ServerRecord, at now: Date) -> Bool {
        guard let listedSince = view?.listedAt ?? scan?.startedAt, row.createdAt <= listedSince else { return true }
        return decider.recentCreateUntil(of: row.state).map { $0 > now } ?? false
    }

    /// The backlog with how long each part takes: the list at its slices' pace, the reads at the
    /// allowance a pass (passes go at the fast interval while rows wait) and no faster than the
    /// minute's requests.
    func timed(_ backlog: ReadBacklog) -> ReadBacklog {
        var timed = backlog
        if let scan, backlog.awaitingList > 0 {
            let pagesLeft = max(0, (scan.estimatedPages ?? scan.pagesRead + 1) - scan.pagesRead)
            let (pages, interval) = slicing()
            timed.listClearsIn = interval * ((pagesLeft + pages - 1) / pages)
        }
        let reads = backlog.lookups + backlog.followUps
        if reads > 0 {
            let passes = (reads + configuration.maxLookupsPerPass - 1) / max(1, configuration.maxLookupsPerPass)
            let atTheMinute = Duration.interval(Double(reads) * 60 / Double(max(1, configuration.requestsPerMinute)))
            timed.readsClearIn = max(configuration.fastInterval * passes, atTheMinute)
        }
        return timed
    }

    /// Records the backlog for `status` when it changed. A failure costs the operator that line, not
    /// the pass.
    func recordBacklog() async {
        let line = lastBacklog.isEmpty ? nil : lastBacklog.what
        guard recordedBacklog != .some(line) else { return }
        do {
            try await repository.recordBacklog(line)
            recordedBacklog = .some(line)
        } catch {
            logger.warning("could not record the backlog for `status`: \(error)")
        }
    }
}
