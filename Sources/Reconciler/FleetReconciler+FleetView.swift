#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import Timekeeping

// The fleet as the last full list showed it, and the full list itself: read a slice of pages at a
// time, at a cadence that the fleet's size and the budget decide, going on where it was after a
// failure. Between full lists a pass reads fresh only the rows that are not at rest.

/// The fleet as the last full list showed it, kept up to date by the reads of the passes since.
struct FleetView {
    var droplets: DropletTable
    /// When the list began (database clock).
    let listedAt: Date
    let pages: Int
    /// From its first page to its last.
    let took: Duration
}

/// Droplets by id, compact: a dictionary of 50,000 droplets keeps 131,072 slots of a droplet's
/// size (17 MB); this keeps the droplets once, in an array, and in its dictionary only where each
/// is (8 MB together).
struct DropletTable {
    private var droplets: [ObservedDroplet] = []
    private var positions: [Int64: Int] = [:]

    /// Of droplets that share an id, the last one is kept.
    init(_ listed: [ObservedDroplet], without gone: Set<Int64> = []) {
        droplets.reserveCapacity(listed.count)
        positions.reserveCapacity(listed.count)
        for droplet in listed where !gone.contains(droplet.id) { self[droplet.id] = droplet }
    }

    var count: Int { droplets.count }

    /// The rows whose identity some droplet here carries.
    func identities() -> Set<UUID> {
        Set(droplets.lazy.compactMap(\.identity))
    }

    subscript(id: Int64) -> ObservedDroplet? {
        get { positions[id].map { droplets[$0] } }
        set {
            switch (positions[id], newValue) {
            case (let position?, let droplet?):
                droplets[position] = droplet
            case (nil, let droplet?):
                positions[id] = droplets.count
                droplets.append(droplet)
            case (let position?, nil):
                positions[id] = nil
                let last = droplets.removeLast()
                if position < droplets.count {
                    droplets[position] = last
                    positions[last.id] = position
                }
            case (nil, nil):
                break
            }
        }
    }
}

/// A full list in progress.
struct FleetScan {
    /// When its first page was asked for (database clock): what the finished list is as old as.
    let startedAt: Date
    let startedUptime: Duration
    var cursor = FleetListCursor.first
    var droplets: [ObservedDroplet] = []
    /// As DigitalOcean last counted the list, and its first page's length: the list's length in
    /// pages, estimated (for progress in STATUS= and the log).
    var total: Int?
    var pageSize: Int?
    /// Not before this instant (database clock): the next slice's turn.
    var resumeAt: Date?
    /// When each listed droplet's page came back (database clock), and what reads by id since the
    /// list began found (nil: 404) and when they were sent. A list read over minutes can be older
    /// than what a pass read since (a rename it followed to completion, a destroy): the fresher
    /// read wins when the list is done.
    var listedAt: [Int64: Date] = [:]
    var readSince: [Int64: (droplet: ObservedDroplet?, at: Date)] = [:]
    /// Steps this replica carried out since the list began whose effect is known without a read
    /// (a tag request's), and when: applied to a droplet whose page or read is older (seed 14162's
    /// list, read over minutes, showed droplets without the tag just put on them, and every one
    /// was tagged again).
    var carriedOut: [Int64: [(step: DropletActionKind, at: Date)]] = [:]
    /// The distinct placements (region, size, image) listed so far, each kept once.
    var placements = Set<ObservedDroplet.PlacementKey>()

    /// The finished list, each droplet as its freshest read showed it.
    func merged(_ droplets: [ObservedDroplet]) -> [ObservedDroplet] {
        guard !readSince.isEmpty || !carriedOut.isEmpty else { return droplets }
        var result: [ObservedDroplet] = []
        result.reserveCapacity(droplets.count)
        for listed in droplets {
            var droplet = listed
            var readAt = listedAt[listed.id] ?? .distantFuture
            if let read = readSince[listed.id], read.at > readAt {
                guard let fresher = read.droplet else { continue }
                (droplet, readAt) = (fresher, read.at)
            }
            for effect in carriedOut[listed.id] ?? [] where effect.at > readAt {
                droplet = droplet.carrying(effect.step)
            }
            result.append(droplet)
        }
        return result
    }

    var pagesRead: Int { cursor.page - 1 }

    var estimatedPages: Int? {
        guard let total, let pageSize, pageSize > 0 else { return nil }
        return max(1, (total + pageSize - 1) / pageSize)
    }
}

extension FleetReconciler {
    /// How long a full list stays fresh enough: the operator's resync interval at the most often,
    /// and no more often than the list's pages fit into what lists may spend an hour.
    func fullListInterval(pages: Int) -> Duration {
        let derived = Duration.interval(Double(pages) * 3600 / Double(max(1, configuration.listBudgetPerHour)))
        return max(configuration.resyncInterval, derived)
    }

    /// When the next full list is due, as the current view stands (nil: now).
    func nextFullListAt() -> Date? {
        guard let view, !fullListRequested else { return nil }
        return view.listedAt.adding(fullListInterval(pages: view.pages))
    }

    /// Starts a full list if one is due: the view is missing or old, the operator asked for one,
    /// or a list is cheaper than the reads that wait. For a fleet listed in one slice, that is when
    /// more rows wait on DigitalOcean than the list has pages (a burst of 100 new rows in a fleet
    /// of 1,000 is followed by five pages a pass, not 100 reads). A larger fleet's list is started
    /// early only for rows whose droplet a list showed and that wait to have it confirmed (5,000
    /// rows restored without their droplet ids cost one list, not 5,000 lookups), and never back
    /// to back: not before the last list is twice as old as it took, so lists take at most half
    /// the time.
    func startFullListIfDue(followUps: Int, at now: Date) {
        guard scan == nil else { return }
        let due = nextFullListAt().map { now >= $0 } ?? true
        let cheaper =
            view.map { view in
                if view.pages <= configuration.listPagesPerSlice {
                    return max(followUps, lastBacklog.presence) > view.pages
                }
                let rested = now.timeIntervalSince(view.listedAt) >= 2 * view.took.timeInterval
                return lastBacklog.presence > view.pages && rested
            } ?? false
        guard due || cheaper else { return }
        fullListRequested = false
        scan = FleetScan(startedAt: now, startedUptime: clock.uptime())
    }

    /// Reads the next slice of the full list in progress, if its turn has come: every page when
    /// `wholeList` (a one-off look, such as `plan`). Returns what the slice showed, and the list
    /// once its last page is read; nil when no page was read. A page that fails throws; the list
    /// keeps what it read and goes on from that page next time.
    func continueFullList(wholeList: Bool) async throws -> ListSlice? {
        guard var current = scan else { return nil }
        if !wholeList, let resumeAt = current.resumeAt, databaseNow() < resumeAt { return nil }
        let sliceStart = databaseNow()
        let sliceFrom = current.droplets.count
        let (slicePages, sliceInterval) = slicing()
        var read = 0
        while wholeList || read < slicePages {
            guard leads() else { throw LeadershipLost() }
            let page: FleetPage
            do {
                page = try await cloud.listFleetPage(current.cursor)
            } catch {
                current.resumeAt = nil
                scan = current
                throw FleetListFailure(page: current.cursor.page, pages: current.estimatedPages, underlying: error)
            }
            read += 1
            progress()
            let pageAt = databaseNow()
            for droplet in page.droplets {
                current.listedAt[droplet.id] = pageAt
                current.droplets.append(droplet.sharingPlacement(with: &current.placements))
            }
            current.total = page.total ?? current.total
            if current.pageSize == nil, page.next != nil { current.pageSize = page.droplets.count }
            guard let next = page.next else {
                scan = nil
                let listing = FleetListing(droplets: current.merged(current.droplets), pages: current.cursor.page)
                return ListSlice(
                    droplets: Array(current.droplets[sliceFrom...]),
                    finished: (listing, current.startedAt, clock.uptime() - current.startedUptime)
                )
            }
            current.cursor = next
        }
        // Paced: the next slice waits its turn, so the list never takes the whole minute's budget.
        current.resumeAt = sliceStart.adding(sliceInterval)
        scan = current
        logger.debug(
            "full list: \(current.pagesRead) pages read so far; the next slice goes at \(current.resumeAt!.formatted(.iso8601))"
        )
        return ListSlice(droplets: Array(current.droplets[sliceFrom...]), finished: nil)
    }

    /// Pages a slice reads, and how soon the next may follow. While rows wait on the list (a fleet
    /// being adopted), slices are a fifth the size and come five times as often, at the same pace:
    /// each pass writes the rows its slice showed, and a shorter pass keeps a new row's create and
    /// follow-up from waiting long behind it.
    func slicing() -> (pages: Int, interval: Duration) {
        let pages = configuration.listPagesPerSlice
        guard lastBacklog.awaitingList > 0, pages > 1 else { return (pages, configuration.listSliceInterval) }
        let smaller = max(1, pages / 5)
        return (smaller, configuration.listSliceInterval * smaller / pages)
    }

    /// A pass's look between full lists: the pages of a slice of the list read in this pass, the
    /// recorded droplets of rows at rest as the view shows them, and a fresh read of each other
    /// row's droplet (as many as the pass's allowance leaves, urgent rows first: ReadSchedule).
    func targetedObservation(
        rows: [ServerRecord],
        at lookAt: Date,
        followUps: [ReadSchedule.Candidate<Int64>],
        slice: [ObservedDroplet]
    ) async -> Observation {
        // The slice's pages were read moments ago: what they show is as fresh as a read by id.
        var droplets = slice
        var fresh = Set(slice.map(\.id))
        var gone = knownGone
        for droplet in slice { view?.droplets[droplet.id] = droplet }
        if let view {
            for row in rows {
                guard let id = row.state.dropletID, !fresh.contains(id), let droplet = view.droplets[id],
                    decider.isAtRest(row, droplet: droplet)
                else { continue }
                droplets.append(droplet)
            }
        }
        // Lookups of urgent rows come after the decision: room is kept for them.
        let now = databaseNow()
        let urgentUnbound = rows.count(where: { row in
            row.state.dropletID == nil && row.state.status != .failed && isUrgent(row, at: now)
        })
        let waiting = followUps.filter { !fresh.contains($0.item) && !gone.contains($0.item) }
        let picked = reads.pick(waiting, reserving: min(urgentUnbound, reads.left / 2))
        reads.leave(followUps: waiting.count - picked.count)
        let (cloud, leads, clock, offset) = (self.cloud, self.leads, self.clock, databaseOffset)
        let lookups = await Self.concurrently(picked.map(\.item), limit: 1) { id in
            let sentAt = clock.now().addingTimeInterval(offset)
            guard leads() else { return (id, sentAt, Result<ObservedDroplet?, any Error>.failure(LeadershipLost())) }
            return (id, sentAt, await Result { try await cloud.droplet(id: id) })
        }
        for (id, sentAt, result) in lookups {
            progress()
            switch result {
            case .success(let droplet?):
                droplets.append(droplet)
                fresh.insert(id)
                remember(read: droplet, id: id, sentAt: sentAt)
            case .success(nil):
                gone.insert(id)
                remember(read: nil, id: id, sentAt: sentAt)
            case .failure(let error):
                logger.debug("lookup of droplet \(id) failed; deciding without it: \(error)")
            }
        }
        rememberGoneWhileDeleting(gone, rows: rows)
        return Observation(
            droplets: droplets,
            goneDropletIDs: gone,
            listedAt: lookAt,
            isFullView: false,
            freshlyRead: fresh
        )
    }

    /// Keeps a fresh read of a droplet (nil: 404) for the passes to come: in the view, and in the
    /// full list in progress, where it replaces an older page.
    func remember(read droplet: ObservedDroplet?, id: Int64, sentAt: Date) {
        view?.droplets[id] = droplet
        scan?.readSince[id] = (droplet, sentAt)
    }

    /// Keeps what a step this replica carried out did to its droplet (`ObservedDroplet.carrying`),
    /// so that neither the view nor a list read before it sends the step again.
    func remember(carriedOut step: DropletActionKind, on id: Int64, at: Date) {
        if let droplet = view?.droplets[id] { view?.droplets[id] = droplet.carrying(step) }
        scan?.carriedOut[id, default: []].append((step, at))
    }

    /// The droplets of rows that are not at rest, to be read fresh between full lists. Before the
    /// first full list, rows in service wait for it (reading each would cost a request per row);
    /// rows on their way somewhere (created, deleted, changed) are read at once.
    /// Keeps `goneWhileDeleting` to the droplets of rows whose deletion is asked that are gone.
    func rememberGoneWhileDeleting(_ gone: Set<Int64>, rows: [ServerRecord]) {
        var kept: Set<Int64> = []
        for row in rows where row.deleteRequestedAt != nil {
            guard let id = row.state.dropletID, gone.contains(id) || goneWhileDeleting.contains(id) else { continue }
            kept.insert(id)
        }
        goneWhileDeleting = kept
    }

    func followUps(of rows: [ServerRecord]) -> [ReadSchedule.Candidate<Int64>] {
        let now = databaseNow()
        return rows.compactMap { row -> ReadSchedule.Candidate<Int64>? in
            guard let id = row.state.dropletID, !goneWhileDeleting.contains(id) else { return nil }
            let cached = view?.droplets[id]
            if decider.isAtRest(row, droplet: cached) { return nil }
            let transitional =
                row.deleteRequestedAt != nil || row.state.change != nil
                || !(row.state.status.isUp || row.state.status == .failed)
            guard transitional || view != nil else { return nil }
            return ReadSchedule.Candidate(row: row.id, urgent: isUrgent(row, at: now), item: id)
        }
    }
}

/// What one pass read of a full list: its slice's droplets, and the whole list if that slice
/// was its last.
struct ListSlice {
    var droplets: [ObservedDroplet]
    var finished: (listing: FleetListing, startedAt: Date, took: Duration)?
}

/// A page of the full list could not be read; the list goes on from that page next time.
struct FleetListFailure: Error, CustomStringConvertible {
    let page: Int
    let pages: Int?
    let underlying: any Error

    var description: String {
        let of = pages.map { " (of about \($0))" } ?? ""
        return "listing the fleet stopped at page \(page)\(of), which it will go on from: \(underlying)"
    }
}
