#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Timekeeping

// The line under `status`'s table: how stale the daemon's last full view of DigitalOcean is.

extension Reports {
    /// "DigitalOcean last seen in full 4m12s ago (250 pages, 50,000 droplets, listed in 1m11s);
    /// next full list in about 15m48s". Between full lists the daemon follows only the rows that
    /// wait on DigitalOcean, so drift, orphans and droplets destroyed out of band can be this old.
    /// `now` is the database's clock, which stamped the record.
    public static func fullView(_ record: FullViewRecord?, now: Date) -> String {
        guard let record else {
            return "DigitalOcean last seen in full: never (no full list of the fleet recorded yet)"
        }
        let age = wholeSeconds(now.timeIntervalSince(record.listedAt))
        var line =
            "DigitalOcean last seen in full \(DurationText.format(age)) ago ("
            + "\(counted(record.pages, "page")), \(counted(record.droplets, "droplet")), "
            + "listed in \(DurationText.format(record.took)))"
        if let next = record.nextListAt {
            let until = next.timeIntervalSince(now)
            // A leader that is gone, or a list that waits for the budget, shows as overdue.
            line +=
                until > 0
                ? "; next full list in about \(DurationText.format(wholeSeconds(until)))"
                : "; next full list overdue by \(DurationText.format(wholeSeconds(-until)))"
        }
        return line
    }

    /// "Waiting, as the leader said 3s ago: 12000 rows on the full list (about 20s)": what the
    /// leader's last pass left waiting on DigitalOcean; nil when nothing did.
    public static func backlog(_ backlog: (line: String, at: Date)?, now: Date) -> String? {
        guard let backlog else { return nil }
        return
            "Waiting, as the leader said \(DurationText.format(wholeSeconds(now.timeIntervalSince(backlog.at)))) ago: \(backlog.line)"
    }

    /// Ages to the second: an operator reads "4m12s", and a few milliseconds are clock noise.
    private static func wholeSeconds(_ seconds: TimeInterval) -> Duration {
        .seconds(Int64(max(0, seconds).rounded()))
    }

    /// "1 page", "250 pages", "50,000 droplets".
    private static func counted(_ count: Int, _ noun: String) -> String {
        var digits = String(count.magnitude)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits.removeLast(3)
        }
        return (count < 0 ? "-" : "") + digits + grouped + " " + noun + (count == 1 ? "" : "s")
    }
}
