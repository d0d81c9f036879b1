import CitrusTestKit
import Foundation
import Postgres
import Timekeeping

// The watchdog during a DigitalOcean brownout: the release daemon under a real systemd 252 and the
// unit as shipped (WatchdogSec=30s), over a seeded fleet. Once it has listed the fleet, the
// simulator answers every request 35 s after it comes, for 3 minutes: the client gives up on each
// at its 30 s timeout and retries (five attempts a read), and no row can move. Rows inserted during
// it wait for its end. The daemon must not be restarted (the loop waits on requests within their
// deadlines, which the watchdog counts as life), and the rows must converge once it is over.
//
// A bench step rather than a system test: three minutes of brownout, the release build the unit
// ships with. Tests/SystemTests has a shorter variant under the test unit's WatchdogSec=4s.

struct BrownoutProof: Sendable {
    var servers: Int
    var watchdogSec: String
    var latencySeconds: Double
    var brownoutSeconds: Double
    var nRestarts: String
    var activeState: String
    var result: String
    /// systemd's "Watchdog timeout" lines, and the daemon's warning that it withholds its pings.
    var watchdogTimeouts: [String]
    var withheld: [String]
    /// The longest time systemd went without a `WATCHDOG=1` over the whole run, and during the
    /// brownout (sampled every second, the silence up to a sample included), and the pings seen.
    var longestPingGap: Double?
    var longestPingGapInBrownout: Double?
    var pings: Int
    /// `/v2` requests that reached the simulator during the brownout (each answered after the
    /// client had given up on it), and the client's retries the journal shows.
    var requestsInBrownout: Int
    var retries: Int
    var rowsInserted: Int
    var rowsActive: Int
    /// From the brownout's end until every row inserted during it was `active`.
    var convergedSeconds: Double?
    /// Full lists of the whole fleet the simulator answered after the brownout.
    var fullListsAfter: Int
    /// A fleet of more pages than a pass reads is caught mid-list: the pages of the first list
    /// answered when the brownout began (nil: it began after a complete list), the pages it tried
    /// during it, the first it asked for after it, and when that list was complete.
    var pagesBefore: Int?
    var pagesTriedInBrownout: [Int]
    var firstPageAfter: Int?
    var listCompletedSeconds: Double?
    /// Distinct `STATUS=` texts in order (the last ones).
    var statuses: [String]

    var passed: Bool {
        nRestarts == "0" && watchdogTimeouts.isEmpty && withheld.isEmpty && activeState == "active"
            && rowsInserted > 0 && rowsActive == rowsInserted
            && (pagesBefore == nil || (listCompletedSeconds != nil && firstPageAfter != 1))
    }

    var line: String {
        func seconds(_ value: Double?) -> String { value.map { String(format: "%.1f s", $0) } ?? "not measured" }
        return
            "\(servers) servers, \(watchdogSec) as shipped, every answer after \(String(format: "%.0f", latencySeconds)) s "
            + "for \(String(format: "%.0f", brownoutSeconds)) s: NRestarts=\(nRestarts) (Result=\(result)); "
            + "longest time without WATCHDOG=1 \(seconds(longestPingGapInBrownout)) during the brownout, "
            + "\(seconds(longestPingGap)) over the run (\(pings) pings); \(requestsInBrownout) requests during it, "
            + "\(retries) retries logged; \(rowsActive) of \(rowsInserted) rows inserted during it active "
            + "\(seconds(convergedSeconds)) after it ended; \(fullListsAfter) full lists after it"
            + (pagesBefore.map { before in
                "; caught mid-list after \(before) pages: pages tried during it \(pagesTriedInBrownout), "
                    + "the first page asked for after it \(firstPageAfter.map(String.init) ?? "none"), "
                    + "the list complete \(seconds(listCompletedSeconds)) after it"
            } ?? "")
            + (passed ? "" : " — FAILED")
    }
}

enum BrownoutOutcome: Sendable {
    case measured(BrownoutProof)
    case notRun(String)
}

/// When systemd saw each `WATCHDOG=1` (`WatchdogTimestampMonotonic`, sampled).
struct PingRecord {
    private(set) var pings: [Double] = []

    mutating func sample(_ properties: [String: String]) {
        guard let text = properties["WatchdogTimestampMonotonic"], let micro = Double(text), micro > 0 else { return }
        let ping = micro / 1_000_000
        if pings.last.map({ ping > $0 }) ?? true { pings.append(ping) }
    }

    /// The longest time without a ping between `start` and `end` (monotonic seconds): between two
    /// pings, from the last ping before `start`, or from the last one to `end`.
    func longestGap(from start: Double, to end: Double) -> Double? {
        guard let first = pings.last(where: { $0 <= start }) ?? pings.first, first <= end else { return nil }
        let marks = [first] + pings.filter { $0 > first && $0 < end } + [end]
        return zip(marks, marks.dropFirst()).map { $1 - $0 }.max()
    }
}

/// CLOCK_MONOTONIC, systemd's `…Monotonic` timestamps' clock (the sandbox has no time namespace).
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func brownoutUnderSystemd(
    _ env: BenchEnvironment,
    fleet: SeededFleet,
    repository: URL,
    latency: Double = 35,
    brownout: Duration = .seconds(180),
    newRows: Int = 5
) async throws -> BrownoutOutcome {
    if let reason = shippedUnitUnavailable(repository: repository) { return .notRun(reason) }
    let installed = try await installShippedUnit(env, fleet: fleet, repository: repository)
    defer { installed.remove() }
    try await fleet.simulator.clearRequests()
    try await fleet.simulator.send(.DELETE, "/_sim/rate-limits/usage")
    let connection = try await PostgresConnection.connect(fleet.database)
    do {
        let proof = try await observeBrownout(
            fleet: fleet,
            installed: installed,
            connection: connection,
            latency: latency,
            brownout: brownout,
            newRows: newRows
        )
        await connection.close()
        return .measured(proof)
    } catch {
        await connection.close()
        throw error
    }
}

/// The run itself: ready and listed, the brownout with rows inserted during it, their convergence.
private func observeBrownout(
    fleet: SeededFleet,
    installed: InstalledUnit,
    connection: PostgresConnection,
    latency: Double,
    brownout: Duration,
    newRows: Int
) async throws -> BrownoutProof {
    let unit = installed.unit
    let pages = (fleet.servers + 199) / 200
    return try await withSystemdSandbox(units: installed.units, start: [installed.anchor]) { systemd in
        let logTarget = try await systemd.run(["/usr/bin/systemd-analyze", "log-target", "journal"])
        guard logTarget.succeeded else { throw BenchError("systemd-analyze log-target journal: \(logTarget)") }
        var record = PingRecord()
        var statuses: [String] = []
        var last: [String: String] = [:]
        func sample() async throws {
            let values = try await systemd.properties(
                ["ActiveState", "NRestarts", "StatusText", "WatchdogTimestampMonotonic", "Result"],
                of: unit
            )
            record.sample(values)
            if let status = values["StatusText"], !status.isEmpty, statuses.last != status { statuses.append(status) }
            last = values
            if values["NRestarts"].map({ $0 != "0" }) == true {
                throw BenchError("the daemon was restarted: \(values)")
            }
        }

        let start = try await systemd.systemctl("start", "--no-block", unit)
        guard start.succeeded else { throw BenchError("systemctl start failed: \(start)") }
        progress("brownout: \(unit) under systemd, \(installed.watchdogSec) as shipped, \(fleet.servers) servers")
        // A list longer than a pass's slice (25 pages) is caught halfway through its first list.
        let midList = pages > 25 ? pages / 2 : nil
        let readyBy = ContinuousClock.now + .seconds(300)
        var pagesBefore = 0
        while true {
            try await sample()
            let log = try await fleet.simulator.requests()
            pagesBefore = Set(log.filter { $0.isFullListPage && $0.status == 200 }.map(\.listPage)).count
            let listed = FullListSpan.all(in: log).contains { $0.pages >= pages }
            if last["ActiveState"] == "active" && (midList.map { pagesBefore >= $0 } ?? listed) { break }
            guard ContinuousClock.now < readyBy else { throw BenchError("not ready and listed in 300 s: \(last)") }
            try await Task.sleep(for: midList == nil ? .seconds(1) : .milliseconds(100))
        }

        progress("brownout: every answer after \(latency) s for \(DurationText.format(brownout))")
        try await fleet.simulator.setFaults(["latency_seconds": latency])
        let brownoutStart = (date: Date(), monotonic: monotonicSeconds())
        let brownoutEnd = ContinuousClock.now + brownout
        var inserted = false
        var sampleFailure: (any Error)?
        while ContinuousClock.now < brownoutEnd {
            do { try await sample() } catch {
                sampleFailure = error
                break
            }
            if !inserted, Date().timeIntervalSince(brownoutStart.date) >= 10 {
                _ = try await connection.insertServers(count: newRows, prefix: "brownout")
                inserted = true
            }
            try await Task.sleep(for: .seconds(1))
        }
        try await fleet.simulator.setFaults(["latency_seconds": 0])
        let ended = (date: Date(), monotonic: monotonicSeconds())
        progress("brownout: over; waiting for the \(newRows) rows inserted during it")

        var rowsActive = 0
        var convergedSeconds: Double?
        var listCompletedSeconds: Double?
        let convergeBy = ContinuousClock.now + .seconds(300)
        while sampleFailure == nil && ContinuousClock.now < convergeBy {
            do { try await sample() } catch {
                sampleFailure = error
                break
            }
            rowsActive = try await connection.query(
                "SELECT count(*) AS n FROM servers WHERE name LIKE 'brownout-%' AND status = 'active'"
            ).single().decode(Int.self, "n")
            if convergedSeconds == nil, inserted && rowsActive >= newRows {
                convergedSeconds = Date().timeIntervalSince(ended.date)
            }
            if midList != nil, listCompletedSeconds == nil,
                FullListSpan.all(in: try await fleet.simulator.requests()).contains(where: { $0.pages >= pages })
            {
                listCompletedSeconds = Date().timeIntervalSince(ended.date)
            }
            if convergedSeconds != nil && (midList == nil || listCompletedSeconds != nil) { break }
            try await Task.sleep(for: .seconds(1))
        }
        // Ten more seconds: a restart the convergence raced with would show.
        for _ in 0..<10 where sampleFailure == nil {
            do { try await sample() } catch { sampleFailure = error }
            try await Task.sleep(for: .seconds(1))
        }
        if let sampleFailure { progress("brownout: \(sampleFailure)") }
        let now = monotonicSeconds()

        _ = try await systemd.journalctl("--sync")
        let unitJournal = try await systemd.journalctl("-u", unit, "-o", "cat").stdout
        let wholeJournal = try await systemd.journalctl("-o", "cat").stdout
        let log = try await fleet.simulator.requests()
        let stop = try? await systemd.run(["/bin/systemctl", "--no-pager", "stop", unit], timeout: .seconds(90))
        if stop?.succeeded != true { progress("brownout: systemctl stop: \(stop.map { "\($0)" } ?? "timed out")") }
        return BrownoutProof(
            servers: fleet.servers,
            watchdogSec: installed.watchdogSec,
            latencySeconds: latency,
            brownoutSeconds: ended.date.timeIntervalSince(brownoutStart.date),
            nRestarts: last["NRestarts"] ?? "?",
            activeState: last["ActiveState"] ?? "?",
            result: last["Result"] ?? "?",
            watchdogTimeouts: wholeJournal.split(separator: "\n").map(String.init).filter {
                $0.contains("Watchdog timeout")
            },
            withheld: unitJournal.split(separator: "\n").map(String.init).filter {
                $0.contains("withholding WATCHDOG=1")
            },
            longestPingGap: record.longestGap(from: 0, to: now),
            longestPingGapInBrownout: record.longestGap(from: brownoutStart.monotonic, to: ended.monotonic),
            pings: record.pings.count,
            requestsInBrownout: log.filter {
                $0.path.hasPrefix("/v2") && $0.time >= brownoutStart.date && $0.time < ended.date
            }.count,
            retries: unitJournal.split(separator: "\n").filter { $0.contains("retrying DigitalOcean request") }.count,
            rowsInserted: inserted ? newRows : 0,
            rowsActive: rowsActive,
            convergedSeconds: convergedSeconds,
            fullListsAfter: FullListSpan.all(in: log).filter { $0.pages >= pages && $0.start >= ended.date }.count,
            pagesBefore: midList.map { _ in pagesBefore },
            pagesTriedInBrownout: Array(
                Set(
                    log.filter {
                        $0.isFullListPage && $0.time >= brownoutStart.date && $0.time < ended.date
                    }.map(\.listPage)
                )
            ).sorted(),
            firstPageAfter: log.first { $0.isFullListPage && $0.time >= ended.date }?.listPage,
            listCompletedSeconds: listCompletedSeconds,
            statuses: Array(statuses.suffix(8))
        )
    }
}
