#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Which of the rows that wait on a read a pass serves: one allowance a pass
/// (`maxLookupsPerPass`), shared by lookups of identities and follow-ups of droplets, so that no
/// backlog starves a new row and every waiting row is served within a stated bound.
///
/// Two classes. **Urgent**: a row inserted since the last full list began (no list can have shown
/// its droplet), or whose own create is still settling. Its create, and its droplet's first steps,
/// never wait behind anything else: urgent rows are served first, all of them within the
/// allowance. **Backlog**: every other waiting row (a droplet's presence or absence to confirm, a
/// droplet to follow). While a full list is being read, a backlog row's lookup waits for it (its
/// pages confirm what it shows in bulk, for no request of the row's own); otherwise the backlog is
/// served in turn, the row served longest ago first, so each is served within
/// ⌈backlog ÷ what the urgent rows leave of the allowance⌉ passes.
struct ReadSchedule {
    /// What waits on a read, by row.
    struct Candidate<Item> {
        var row: UUID
        var urgent: Bool
        var item: Item
    }

    /// The pass each waiting row was last served in; a row that waits no more is forgotten.
    private var lastServed: [UUID: Int] = [:]
    private var waitingThisPass = Set<UUID>()
    private(set) var pass = 0
    /// Reads this pass may still make.
    private(set) var left = 0
    /// What the last pass left waiting, for STATUS= and for deciding whether a full list is cheaper.
    private(set) var backlog = ReadBacklog()

    mutating func beginPass(allowance: Int) {
        pass += 1
        left = allowance
        waitingThisPass.removeAll(keepingCapacity: true)
        backlog = ReadBacklog()
    }

    /// Forgets rows that no longer wait, so the table stays as small as what waits.
    mutating func endPass() {
        if lastServed.count > waitingThisPass.count {
            lastServed = lastServed.filter { waitingThisPass.contains($0.key) }
        }
    }

    /// As many of `candidates` as the allowance has left, less `reserved` (kept for reads this
    /// pass makes later): urgent ones first, in the order given, then the backlog, the least
    /// recently served first (ties in the order given). Marks those picked as served.
    mutating func pick<Item>(_ candidates: [Candidate<Item>], reserving reserved: Int = 0) -> [Candidate<Item>] {
        for candidate in candidates { waitingThisPass.insert(candidate.row) }
        let limit = max(0, left - reserved)
        defer { left -= min(limit, candidates.count) }
        guard candidates.count > limit else {
            for candidate in candidates { lastServed[candidate.row] = pass }
            return candidates
        }
        // Urgent rows sort as if served before any pass; the rest by when they were last served.
        let keys = candidates.map { $0.urgent ? Int.min : lastServed[$0.row] ?? -1 }
        let order = candidates.indices.sorted { a, b in keys[a] != keys[b] ? keys[a] < keys[b] : a < b }
        let picked = order.prefix(limit).sorted().map { candidates[$0] }
        for candidate in picked { lastServed[candidate.row] = pass }
        return picked
    }

    /// Counts what a pass leaves waiting.
    mutating func leave(awaitingList: Int = 0, lookups: Int = 0, presence: Int = 0, followUps: Int = 0) {
        backlog.awaitingList += awaitingList
        backlog.lookups += lookups
        backlog.presence += presence
        backlog.followUps += followUps
    }
}
