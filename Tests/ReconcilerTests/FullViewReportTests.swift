import Foundation
import OperatorReports
import ReconcileCore
import Reconciler
import Testing

/// The line under `status`'s table that says how stale the daemon's full view of DigitalOcean is.
@Suite("status: the last full view of DigitalOcean")
struct FullViewReportTests {
    let now = Date(timeIntervalSince1970: 1_770_000_000)

    @Test("age, size and duration of the last full list, and when the next is due")
    func recorded() {
        let view = FullViewRecord(
            listedAt: now.addingTimeInterval(-252.3),
            pages: 250,
            droplets: 50_000,
            took: .milliseconds(71_200),
            nextListAt: now.addingTimeInterval(948)
        )
        #expect(
            Reports.fullView(view, now: now)
                == "DigitalOcean last seen in full 4m12s ago (250 pages, 50,000 droplets, listed in 1m11s); "
                + "next full list in about 15m48s"
        )
    }

    @Test("a next list past its time is overdue; none planned says nothing of it; one page is one page")
    func overdueAndSingular() {
        var view = FullViewRecord(
            listedAt: now.addingTimeInterval(-5),
            pages: 1,
            droplets: 1,
            took: .milliseconds(850),
            nextListAt: now.addingTimeInterval(-3)
        )
        #expect(
            Reports.fullView(view, now: now)
                == "DigitalOcean last seen in full 5s ago (1 page, 1 droplet, listed in 850ms); next full list overdue by 3s"
        )
        view.nextListAt = nil
        view.droplets = 1_234_567
        #expect(
            Reports.fullView(view, now: now)
                == "DigitalOcean last seen in full 5s ago (1 page, 1,234,567 droplets, listed in 850ms)"
        )
    }

    @Test("the backlog line: what waits, in the leader's words and how long ago it said so; nothing when nothing waits")
    func backlog() {
        var backlog = ReadBacklog()
        #expect(backlog.isEmpty)
        #expect(Reports.backlog(nil, now: now) == nil)
        backlog.awaitingList = 12_000
        backlog.listClearsIn = .seconds(20)
        backlog.lookups = 120
        backlog.followUps = 1
        backlog.readsClearIn = .seconds(29)
        #expect(
            backlog.oneLine
                == "waiting: 12000 rows on the full list (about 20s), 120 lookups and 1 follow-up (about 29s)"
        )
        #expect(
            Reports.backlog((backlog.what, now.addingTimeInterval(-3.4)), now: now)
                == "Waiting, as the leader said 3s ago: 12000 rows on the full list (about 20s), 120 lookups and 1 follow-up (about 29s)"
        )
        let summary = PassSummary(counts: [.creating: 12_000], backlog: backlog)
        #expect(
            summary.oneLine.hasSuffix(
                "; waiting: 12000 rows on the full list (about 20s), 120 lookups and 1 follow-up (about 29s); no full view yet"
            )
        )
    }

    @Test("never, when no full list was recorded; a list stamped ahead of this clock is 0s old")
    func neverAndSkew() {
        #expect(Reports.fullView(nil, now: now).hasPrefix("DigitalOcean last seen in full: never"))
        let ahead = FullViewRecord(listedAt: now.addingTimeInterval(2), pages: 0, droplets: 0, took: .zero)
        #expect(
            Reports.fullView(ahead, now: now).hasPrefix("DigitalOcean last seen in full 0s ago (0 pages, 0 droplets")
        )
    }
}
