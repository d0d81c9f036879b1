import Foundation

/// Everything one run measured.
struct BenchResults: Sendable {
    var conditions: Conditions
    var decision: DecisionResult
    var replicas: ReplicaResult
    var latency: (daemon: LatencyResult, naive: LatencyResult)
    var convergence: (daemon: ConvergenceResult, naive: ConvergenceResult)
    var faults: (daemon: ConvergenceResult, naive: ConvergenceResult)
    var largeFleet: LargeFleetResult
    var burst: (daemon: BurstResult, naive: BurstResult)
    var steady: SteadyResult

    struct Conditions: Sendable {
        var latencyRows: Int
        var latencyGapMilliseconds: Int
        var convergeRows: Int
        var faultRows: Int
        var lostCreateProbability: Double
        var burstRows: Int
        var steadyServers: Int
        var largeServers: Int
        var bootSeconds: Double
    }
}

/// The machine the run happened on.
struct Machine: Sendable {
    var cores: Int
    var cpuModel: String
    var memory: String
    var kernel: String
    /// `/proc/loadavg`'s first three fields: the machine is shared, so say how busy it was.
    var load: String

    static func current() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let modelLine = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
        let model =
            modelLine.flatMap { $0.split(separator: ":", maxSplits: 1).dropFirst().first }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let total = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first }
            .flatMap { Double($0) }
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) {
            String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let loadavg = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return Machine(
            cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
            cpuModel: model,
            memory: total.map { String(format: "%.1f GiB", $0 / 1024 / 1024) } ?? "unknown",
            kernel: "Linux \(release)",
            load: loadavg.split(separator: " ").prefix(3).joined(separator: " ")
        )
    }
}

enum Report {
    /// The table of the scenarios before issue 15 (when run), the scale table (when run), the
    /// machine, and every goal missed.
    static func render(
        _ r: BenchResults?,
        scale: ScaleResults?,
        machine: Machine,
        loadAtStart: String,
        wallSeconds: Double
    ) -> String {
        var text = ""
        var missed: [String] = []
        if let r {
            let main = mainTable(r)
            text += main.table
            missed += main.missed
        }
        let boot = r?.conditions.bootSeconds ?? scale?.bootSeconds ?? 10
        text += """

            Machine: \(machine.cores) CPUs (`nproc`), \(machine.cpuModel) (/proc/cpuinfo), \(machine.memory) RAM, \(machine.kernel); \
            load average \(loadAtStart) at the start and \(machine.load) at the end (the cores are shared with other work). \
            Release build, loopback only, one throwaway Postgres 15 (fsync off), a separate `citrus-do-sim` per scenario \
            (250/min and 5,000/h unless noted, boot \(format(boot, 0)) s, seed 7). Daemon flags: `--fast-interval 5s \
            --resync-interval 60s --settle-period 60s`. Baseline: create inline after its INSERT, name from the clock, tag \
            `citrus-host` only, any failure retried after 1 s, then GET the droplet every 5 s until active; no rate budget. \
            Run took \(format(wallSeconds / 60, 1)) minutes.

            """
        if let scale {
            let table = ScaleReport.render(scale)
            text += "\n## At scale (issue 15)\n\n" + table.table
            missed += table.missed
        }
        text +=
            missed.isEmpty
            ? "\nEvery goal was met in this run.\n"
            : "\nGoals missed in this run:\n" + missed.map { "- \($0)\n" }.joined()
        return text
    }

    static func mainTable(_ r: BenchResults) -> (table: String, missed: [String]) {
        let c = r.conditions
        var rows: [[String]] = []
        func add(_ measure: String, _ daemon: String, _ naive: String, _ ratio: String, _ goal: String, _ met: Bool?) {
            rows.append([measure, daemon, naive, ratio, goal, met.map { $0 ? "met" : "**missed**" } ?? ""])
        }

        // Insert to create.
        let ld = r.latency.daemon
        let ln = r.latency.naive
        let latencyNote = ld.samples.count < ld.expected ? " (\(ld.samples.count) of \(ld.expected) rows created)" : ""
        add(
            "INSERT → create request at the API, median (\(c.latencyRows) rows, one every \(c.latencyGapMilliseconds) ms; the baseline creates inline, in the inserting request)",
            ms(ld.median) + latencyNote,
            ms(ln.median),
            ratio(ld.median, ln.median),
            "< 50 ms",
            ld.median.map { $0 < 50 && ld.samples.count == ld.expected }
        )
        add("INSERT → create request at the API, p99", ms(ld.p99), ms(ln.p99), ratio(ld.p99, ln.p99), "", nil)

        // Convergence.
        let cd = r.convergence.daemon
        let cn = r.convergence.naive
        add(
            "\(c.convergeRows) rows inserted at once: seconds to all `active` (droplets boot in \(format(c.bootSeconds, 0)) s)",
            seconds(cd.seconds, cd),
            seconds(cn.seconds, cn),
            ratio(cd.seconds, cn.seconds),
            "floor ≈ \(format(c.bootSeconds, 0)) s (boot)",
            nil
        )
        let floorPerRow = Double(c.convergeRows + (c.convergeRows + 199) / 200) / Double(c.convergeRows)
        add(
            "\(c.convergeRows) rows: API requests per row (floor \(format(floorPerRow, 2)))",
            "\(format(cd.requestsPerRow, 2)) (\(breakdown(cd.tally)))",
            "\(format(cn.requestsPerRow, 2)) (\(breakdown(cn.tally)))",
            ratio(cd.requestsPerRow, cn.requestsPerRow),
            "≤ 1.3",
            cd.requestsPerRow <= 1.3 && cd.seconds != nil
        )
        add(
            "\(c.convergeRows) rows: 429s received",
            "\(cd.tally.tooManyRequests)",
            "\(cn.tally.tooManyRequests)",
            ratio(Double(cd.tally.tooManyRequests), Double(cn.tally.tooManyRequests)),
            "",
            nil
        )

        // Faults.
        let fd = r.faults.daemon
        let fn = r.faults.naive
        let faultLabel = "\(c.faultRows) rows, \(Int(c.lostCreateProbability * 100))% of create responses lost"
        add(
            "\(faultLabel): duplicate droplets created",
            "\(fd.duplicates) (\(fd.dropletsCreated) droplets)",
            "\(fn.duplicates) (\(fn.dropletsCreated) droplets)",
            ratio(Double(fd.duplicates), Double(fn.duplicates)),
            "0",
            fd.duplicates == 0
        )
        add(
            "\(faultLabel): seconds to all `active`",
            seconds(fd.seconds, fd),
            seconds(fn.seconds, fn),
            ratio(fd.seconds, fn.seconds),
            "",
            nil
        )
        add(
            "\(faultLabel): API requests per row",
            "\(format(fd.requestsPerRow, 2)) (\(breakdown(fd.tally)))",
            "\(format(fn.requestsPerRow, 2)) (\(breakdown(fn.tally)))",
            ratio(fd.requestsPerRow, fn.requestsPerRow),
            "",
            nil
        )

        // Burst.
        let bd = r.burst.daemon
        let bn = r.burst.naive
        let burstGoal = bd.secondsToAllCreates.map {
            $0 <= bd.slidingFloorSeconds * 1.1 && bd.tally.tooManyRequests == 0
        }
        add(
            "\(c.burstRows)-row burst at 250/min, 5,000/h: seconds to all creates sent",
            burstSeconds(bd)
                + " (floor \(format(bd.slidingFloorSeconds, 0)) s: \(bd.countedRequests) counted requests incl. \(bd.listPages) list pages, 250 per sliding minute; "
                + "(\(c.burstRows) + \(bd.listPages)) / 250 per min = \(format(bd.steadyRateFloorSeconds, 0)) s)",
            burstSeconds(bn),
            ratio(bd.secondsToAllCreates, bn.secondsToAllCreates),
            "≤ floor + 10%, no 429",
            burstGoal ?? false
        )
        add(
            "\(c.burstRows)-row burst: 429s received (until the last create)",
            "\(bd.tally.tooManyRequests)",
            "\(bn.tally.tooManyRequests)",
            ratio(Double(bd.tally.tooManyRequests), Double(bn.tally.tooManyRequests)),
            "0",
            bd.tally.tooManyRequests == 0
        )
        add(
            "\(c.burstRows)-row burst: API requests until the last create",
            "\(bd.tally.total) (\(breakdown(bd.tally)))",
            "\(bn.tally.total) (\(breakdown(bn.tally)))",
            ratio(Double(bd.tally.total), Double(bn.tally.total)),
            "",
            nil
        )

        // Steady state.
        let s = r.steady
        add(
            "Steady state, \(count(s.servers)) active servers, nothing to do: requests per hour",
            "\(format(s.perHour, 0)) (\(s.requests) in \(s.cycles) resync cycles, \(format(s.seconds, 0)) s, × 3600/\(format(s.seconds, 0)))",
            "0 (stops looking once active; notices nothing)",
            "",
            "≤ 300",
            s.perHour <= 300
        )

        // Decision and full pass.
        let d = r.decision
        add(
            "Decision, \(count(d.rows)) rows × \(count(d.rows)) droplets: CPU per pass (median of \(d.cpuMilliseconds.count); min–max)",
            "\(ms(Statistics.median(d.cpuMilliseconds))) (\(ms(d.cpuMilliseconds.min()))–\(ms(d.cpuMilliseconds.max())))",
            "—",
            "",
            "< 20 ms",
            Statistics.median(d.cpuMilliseconds).map { $0 < 20 }
        )
        let l = r.largeFleet
        add(
            "Full pass at \(count(l.servers)) servers: `citrus-reconciler plan` wall time (start, rows, \((l.servers + 199) / 200) list pages, decision; median of \(l.planSeconds.count))",
            "\(seconds(Statistics.median(l.planSeconds))) (min \(seconds(l.planSeconds.min())))",
            "—",
            "",
            "",
            nil
        )

        // Memory.
        let idle = r.replicas.idleLeader
        add(
            "Resident size, daemon idle (leader, empty table; VmRSS)",
            mib(idle?.current) + " (peak \(mib(idle?.peak)))",
            "—",
            "",
            "< 30 MB",
            idle.map { $0.current < 30 }
        )
        add("Resident size, standby replica idle", mib(r.replicas.idleStandby?.current), "—", "", "", nil)
        add(
            "Resident size, daemon with \(count(l.servers)) servers after a full pass",
            mib(l.daemonResident?.current) + " (peak \(mib(l.daemonResident?.peak)))",
            "—",
            "",
            "",
            nil
        )

        // Takeover.
        let t = r.replicas.takeoverSeconds
        add(
            "Two replicas: SIGKILL the leader → the standby's first API request (median of \(t.count); max)",
            "\(seconds(Statistics.median(t))) (max \(seconds(t.max())))",
            "—",
            "",
            "",
            nil
        )

        let missed = rows.filter { $0[5] == "**missed**" }.map { $0[0] }
        var text =
            "| Measure | citrus-reconciler | naive baseline | daemon ÷ naive | goal | |\n|---|---|---|---|---|---|\n"
        for row in rows { text += "| " + row.joined(separator: " | ") + " |\n" }
        return (text, missed)
    }

    private static func count(_ value: Int) -> String {
        value.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
    }
    private static func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    private static func ms(_ value: Double?) -> String {
        value.map { format($0, $0 < 10 ? 2 : 1) + " ms" } ?? "not measured"
    }
    private static func seconds(_ value: Double?) -> String {
        value.map { format($0, $0 < 10 ? 2 : 1) + " s" } ?? "not measured"
    }
    private static func mib(_ value: Double?) -> String { value.map { format($0, 1) + " MiB" } ?? "not measured" }
    private static func seconds(_ value: Double?, _ result: ConvergenceResult) -> String {
        value.map { format($0, 1) + " s" } ?? "did not converge (\(result.activeRows) of \(result.rows) active)"
    }
    private static func burstSeconds(_ result: BurstResult) -> String {
        result.secondsToAllCreates.map { format($0, 1) + " s" }
            ?? "not done (\(result.createsAccepted) of \(result.rows) sent by the timeout)"
    }
    private static func ratio(_ daemon: Double?, _ naive: Double?) -> String {
        guard let daemon, let naive else { return "—" }
        if naive == 0 { return daemon == 0 ? "equal (both 0)" : "—" }
        return format(daemon / naive, 2) + "×"
    }
    private static func breakdown(_ t: RequestTally) -> String {
        "\(t.creates) creates, \(t.listPages) list pages, \(t.dropletGets) GETs by id"
            + (t.tooManyRequests > 0 ? ", \(t.tooManyRequests) answered 429" : "")
    }
}
