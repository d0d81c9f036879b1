import Foundation

/// What the scale scenarios measured.
struct ScaleResults: Sendable {
    var bootSeconds: Double
    /// The smaller fleet first (10,000), then the larger (50,000).
    var fleets: [ScaleResult]
    /// The decision at the larger fleet's size (the main table has 10,000).
    var decision: DecisionResult
    var watchdog: WatchdogOutcome
    /// Whether the larger fleet's steady cycle was measured (`--scale`).
    var largeSteady: Bool
}

/// The figures on main before issue 15's work, as the issue gives them (release build, the
/// simulator at 250/min and 5,000/h, converged fleets).
enum MainBeforeScaleWork {
    static let steadyPerHour = [10_000: "2,040", 50_000: "7,139"]
    static let oneRowSeconds = [10_000: "12 s (102 list pages)", 50_000: "68 s (251 list pages)"]
    static let peak = [10_000: "116 MB", 50_000: "350 MB"]
}

enum ScaleReport {
    /// The table, and the measures whose goal was missed.
    static func render(_ s: ScaleResults) -> (table: String, missed: [String]) {
        var rows: [[String]] = []
        let sizes = s.fleets.map(\.servers)
        guard let large = s.fleets.last else { return ("", []) }
        let boot = s.bootSeconds
        func add(_ measure: String, _ cells: [String], _ before: String, _ goal: String, _ met: Bool?) {
            rows.append([measure] + cells + [before, goal, met.map { $0 ? "met" : "**missed**" } ?? ""])
        }
        func before(_ table: [Int: String]) -> String {
            sizes.map { table[$0] ?? "—" }.joined(separator: " / ")
        }

        // Steady.
        add(
            "Steady requests per hour: every `/v2` request over one whole full-list cycle (a full list's first page to the next one's), × 3600 / cycle",
            s.fleets.map { fleet in
                if let c = fleet.steady {
                    return
                        "\(format(c.perHour, 0)) (\(c.tally.total) in \(duration(c.seconds)): \(c.tally.breakdown); \(c.pagesPerList) pages a list)"
                }
                return fleet.steadyNote ?? "not measured"
            },
            before(MainBeforeScaleWork.steadyPerHour),
            "≤ 1,000 (20% of 5,000)",
            large.steady.map { $0.perHour <= 1000 }
        )

        // One full list.
        add(
            "One full list (the daemon's first, at start): pages, first page → last page in the simulator's log, requests meanwhile; the daemon's CPU over it (/proc/PID/stat)",
            s.fleets.map { fleet in
                guard let l = fleet.firstList else { return "not measured" }
                let cpu = l.cpuSeconds.map { ", CPU \(format($0, 1)) s" } ?? ""
                return
                    "\(l.span.pages) pages in \(format(l.span.seconds, 1)) s, \(l.span.tally.total) requests (\(l.span.tally.breakdown))\(cpu)"
            },
            "—",
            "",
            nil
        )
        add(
            "The daemon's `full list:` line for it",
            s.fleets.map { $0.firstList?.daemonLine.map { "`\($0)`" } ?? "none logged" },
            "—",
            "",
            nil
        )

        add(
            "The daemon's CPU at rest, between full lists (from one list's end to the next one's first page, within the steady cycle)",
            s.fleets.map { fleet in
                guard let c = fleet.steady, let cpu = c.restCPUSeconds else { return "not measured" }
                return
                    "\(format(cpu, 1)) s in \(duration(c.restSeconds)) (\(format(cpu / c.restSeconds * 100, 1))% of a core)"
            },
            "—",
            "",
            nil
        )

        // New rows.
        func rowsCell(_ r: RowsToActive?) -> String {
            guard let r else { return "not measured" }
            let during = r.fullListMeanwhile ? "; a full list ran meanwhile" : ""
            guard let seconds = r.seconds else {
                return "did not converge (\(r.active) of \(r.rows) active)\(during)"
            }
            return "\(format(seconds, 1)) s (\(r.tally.total) requests: \(r.tally.breakdown)\(during))"
        }
        add(
            "One new row → `active` (INSERT → status active in Postgres), at rest between full lists; droplets boot in \(format(boot, 0)) s",
            s.fleets.map { rowsCell($0.oneRow) },
            before(MainBeforeScaleWork.oneRowSeconds),
            "≤ boot + 10 s = \(format(boot + 10, 0)) s",
            large.oneRow.map { ($0.seconds ?? .infinity) <= boot + 10 }
        )
        add(
            "20 new rows at once → all `active`, at rest between full lists",
            s.fleets.map { rowsCell($0.twentyRows) },
            "—",
            "≤ boot + 20 s = \(format(boot + 20, 0)) s",
            large.twentyRows.map { ($0.seconds ?? .infinity) <= boot + 20 }
        )

        // Size.
        add(
            "Peak resident size over the run (VmHWM: start, full list\(s.fleets.contains { $0.steady != nil } ? "s" : ""), new rows)",
            s.fleets.map { megabytes($0.peak?.peak) },
            before(MainBeforeScaleWork.peak),
            "≤ 120 MB",
            large.peak.map { $0.peak * 1.048576 <= 120 }
        )
        add(
            "Idle resident size at rest (VmRSS 10 s after a full list, before the new rows)",
            s.fleets.map { megabytes($0.idle?.current) },
            "—",
            "",
            nil
        )

        // Decision.
        let d = s.decision
        let median = Statistics.median(d.cpuMilliseconds)
        add(
            "Decision, \(count(d.rows)) rows × \(count(d.rows)) droplets, in process: CPU per pass (median of \(d.cpuMilliseconds.count); min–max)",
            sizes.map {
                $0 == large.servers
                    ? "\(ms(median)) (\(ms(d.cpuMilliseconds.min()))–\(ms(d.cpuMilliseconds.max())))"
                    : "—"
            },
            "—",
            "< 100 ms",
            median.map { $0 < 100 }
        )

        // 429s.
        add(
            "429s received over the daemon's whole run (all requests it sent)",
            s.fleets.map { "\($0.whole.tooManyRequests) (of \($0.whole.total) in \(duration($0.wholeSeconds)))" },
            "—",
            "0",
            large.whole.tooManyRequests == 0
        )

        // Watchdog.
        let (watchdogCell, watchdogMet) = watchdog(s.watchdog)
        add(
            "Watchdog under a real systemd 252 (sandbox), the shipped unit's WatchdogSec=, the release daemon over the \(count(large.servers))-server fleet at 250/min",
            sizes.map { $0 == large.servers ? watchdogCell : "—" },
            "—",
            "NRestarts=0, no watchdog timeout, a `full list:` line",
            watchdogMet
        )

        let header =
            "| Measure | " + sizes.map { "\(count($0)) servers" }.joined(separator: " | ")
            + " | main before this work (issue 15; \(sizes.map { count($0) }.joined(separator: " / "))) | goal (\(count(large.servers))) | |\n"
            + "|---|" + sizes.map { _ in "---|" }.joined() + "---|---|---|\n"
        var text = header
        for row in rows { text += "| " + row.joined(separator: " | ") + " |\n" }
        text += """

            Scale runs: droplets injected active through the simulator's admin API with both tags, rows inserted in \
            one statement with the droplet's id, addresses and facts recorded (status active); the simulator at \
            250/min and 5,000/h, boot \(format(boot, 0)) s; the daemon with the bench's flags and the default list \
            budget. Seeding took \(s.fleets.map { "\(format($0.seedSeconds, 0)) s" }.joined(separator: " and ")). \
            \(s.largeSteady ? "" : "The \(count(large.servers))-server steady cycle (about 20 minutes) is opt-in: `bash scripts/bench.sh --scale`. ")\
            The baseline column is main's figures before this work as issue 15 gives them (measured on the commit \
            before; not re-run here).

            """
        let missed = rows.filter { $0.last == "**missed**" }.map { "\($0[0]) (\(count(large.servers)) servers)" }
        return (text, missed)
    }

    /// The watchdog proof in one cell, and whether it passed (nil: not run).
    static func watchdog(_ outcome: WatchdogOutcome) -> (String, Bool?) {
        switch outcome {
        case .notRun(let reason):
            return ("not run: \(reason)", nil)
        case .measured(let w):
            let gap =
                w.longestPingGap.map {
                    "longest time without a WATCHDOG=1 ping \(format($0, 1)) s (\(w.pings) pings)"
                } ?? "no WATCHDOG=1 seen"
            let list =
                w.firstListSeconds.map { "\(w.firstListPages ?? 0) pages in \(format($0, 0)) s" } ?? "none complete"
            let status = w.statuses.last.map { "; last STATUS=: `\($0)`" } ?? ""
            let stop =
                w.stopSeconds.map { "; `systemctl stop` took \(format($0, 1)) s" } ?? "; `systemctl stop` failed"
            let memory =
                "; peak resident under systemd \(megabytes(w.peak?.peak)), MemoryMax=\(w.memoryMax), "
                + (w.memoryCurrentPeak.map { "MemoryCurrent at most \(format($0, 1)) MiB" }
                    ?? "MemoryCurrent not set (no memory controller in the sandbox's cgroups: the limit is not enforced here)")
            let cell =
                "\(w.passed ? "no starvation" : "**starved or incomplete**"): \(count(w.servers)) servers, "
                + "ran \(duration(w.seconds)) under the shipped unit (\(w.watchdogSec), WatchdogUSec=\(w.watchdogUSec)): "
                + "\(w.completeFullLists) complete full list\(w.completeFullLists == 1 ? "" : "s") (first: \(list)), "
                + "\(w.rowsActive) of \(w.rowsInserted) new rows active, \(w.tally.total) requests (\(w.tally.breakdown)); "
                + "NRestarts=\(w.nRestarts), ActiveState=\(w.activeState), Result=\(w.result), "
                + "\(w.watchdogTimeouts.count) \"Watchdog timeout\" lines, "
                + "\(w.withheld.count) \"withholding WATCHDOG=1\" lines, \(w.fullListLines.count) `full list:` lines; "
                + "\(gap)\(status)\(stop)\(memory)"
            return (cell, w.passed)
        }
    }

    private static func count(_ value: Int) -> String {
        value.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
    }
    private static func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    private static func ms(_ value: Double?) -> String {
        value.map { format($0, $0 < 10 ? 2 : 1) + " ms" } ?? "not measured"
    }
    private static func megabytes(_ mib: Double?) -> String {
        mib.map { "\(format($0, 1)) MiB (\(format($0 * 1.048576, 1)) MB)" } ?? "not measured"
    }
    private static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 60 ? "\(whole / 60)m\(String(format: "%02d", whole % 60))s" : "\(whole) s"
    }
}
