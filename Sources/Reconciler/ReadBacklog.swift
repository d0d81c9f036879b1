import Timekeeping

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
