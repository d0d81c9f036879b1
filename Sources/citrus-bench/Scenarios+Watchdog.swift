import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import Timekeeping

// The watchdog at scale: the release daemon run by a real systemd 252 (CitrusTestKit's
// SystemdSandbox: PID 1 of a private PID + mount namespace, with its journal) under the unit file
// as shipped, WatchdogSec= and all, over a seeded fleet of 50,000 servers at DigitalOcean's real
// limits, through a complete full list and the targeted passes of a few new rows after it.
//
// A bench step rather than a system test: it needs the release build the unit ships with (a debug
// daemon is a different program for this purpose), 50,000 droplets seeded and a full list that
// cannot take less than a minute at 250 requests a minute, which is the benchmark's business; and
// it reuses the fleet the 50,000-server scenario seeded.

struct WatchdogProof: Sendable {
    var servers: Int
    /// `WatchdogSec=` as the shipped unit says, and as systemd read it (`WatchdogUSec`).
    var watchdogSec: String
    var watchdogUSec: String
    /// From `systemctl start` to the end of the observation.
    var seconds: Double
    var nRestarts: String
    var activeState: String
    var result: String
    /// systemd's "Watchdog timeout" lines in the sandbox's journal (anywhere in it).
    var watchdogTimeouts: [String]
    /// The daemon's own warning that it withholds its pings.
    var withheld: [String]
    var fullListLines: [String]
    /// Complete full lists in the simulator's log, and the first one's length.
    var completeFullLists: Int
    var firstListSeconds: Double?
    var firstListPages: Int?
    var tally: ScaleTally
    var rowsInserted: Int
    var rowsActive: Int
    /// The longest time systemd went without a `WATCHDOG=1` (`WatchdogTimestampMonotonic`, sampled
    /// every second: between two pings, or from the last one to a sample), and how many it received.
    var longestPingGap: Double?
    var pings: Int
    /// Every distinct `STATUS=` seen, in order (the last ones).
    var statuses: [String]
    /// How long `systemctl stop` took at the end (nil: it failed or took over 90 s).
    var stopSeconds: Double?
    /// The daemon's peak resident size under systemd (VmHWM of the unit's main process, read from
    /// the host every second; the highest of its processes if it was restarted).
    var peak: ResidentSize?
    /// The unit's `MemoryMax=` as systemd shows it, and the highest `MemoryCurrent` it reported
    /// (nil: not set, as without the memory controller in the sandbox's cgroup hierarchy).
    var memoryMax: String
    var memoryCurrentPeak: Double?

    var passed: Bool {
        nRestarts == "0" && watchdogTimeouts.isEmpty && withheld.isEmpty && !fullListLines.isEmpty
            && completeFullLists >= 1 && activeState == "active" && rowsActive == rowsInserted
    }
}

enum WatchdogOutcome: Sendable {
    case measured(WatchdogProof)
    case notRun(String)
}

/// Runs the proof against `fleet` (its simulator and database); the simulator's request log and
/// rate usage are cleared first (a new hour for a new process: the daemon's ledger starts empty).
func watchdogUnderSystemd(
    _ env: BenchEnvironment,
    fleet: SeededFleet,
    repository: URL,
    newRows: Int = 5,
    timeout: Duration = .seconds(600)
) async throws -> WatchdogOutcome {
    if let reason = shippedUnitUnavailable(repository: repository) { return .notRun(reason) }
    let installed = try await installShippedUnit(env, fleet: fleet, repository: repository)
    defer { installed.remove() }
    let (units, unit, anchor, watchdogSec) = (installed.units, installed.unit, installed.anchor, installed.watchdogSec)

    try await fleet.simulator.clearRequests()
    try await fleet.simulator.send(.DELETE, "/_sim/rate-limits/usage")
    let pages = (fleet.servers + 199) / 200
    let connection = try await PostgresConnection.connect(fleet.database)
    func observe(
        units: [String: String],
        unit: String,
        anchor: String,
        watchdogSec: String
    ) async throws
        -> WatchdogProof
    {
        try await withSystemdSandbox(units: units, start: [anchor]) { systemd in
            // The sandbox boots PID 1 logging to its console; its own lines about the unit (a
            // "Watchdog timeout", a restart) belong in the journal beside the daemon's.
            let logTarget = try await systemd.run(["/usr/bin/systemd-analyze", "log-target", "journal"])
            guard logTarget.succeeded else { throw BenchError("systemd-analyze log-target journal: \(logTarget)") }
            let started = Date()
            let start = try await systemd.systemctl("start", "--no-block", unit)
            guard start.succeeded else { throw BenchError("systemctl start failed: \(start)") }
            let deadline = ContinuousClock.now + timeout
            var statuses: [String] = []
            var lastPing: Double?
            var longestGap: Double?
            var pings = 0
            var listEndedAt: Date?
            var listCompleteAt: Date?
            var rowsInsertedAt: Date?
            var rowsActive = 0
            var nextJournalRead = ContinuousClock.now
            var journalText = ""

            func properties() async throws -> [String: String] {
                try await systemd.properties(
                    [
                        "ActiveState", "NRestarts", "StatusText", "WatchdogTimestampMonotonic", "Result",
                        "WatchdogUSec", "MemoryCurrent", "MemoryMax",
                    ],
                    of: unit
                )
            }

            progress(
                "watchdog: \(unit) under systemd, \(watchdogSec) as shipped, \(fleet.servers) servers; a full list (\(pages) pages), then \(newRows) new rows and 60 s of passes"
            )
            var finalProperties: [String: String] = [:]
            var peak: ResidentSize?
            var memoryCurrentPeak: Double?
            while ContinuousClock.now < deadline {
                let values = try await properties()
                finalProperties = values
                if let bytes = values["MemoryCurrent"].flatMap(Double.init) {
                    memoryCurrentPeak = max(memoryCurrentPeak ?? 0, bytes / 1_048_576)
                }
                for pid in unitProcesses(cgroup: systemd.cgroupName, unit: unit) {
                    if let size = ResidentSize.of(pid: pid), size.peak > peak?.peak ?? 0 { peak = size }
                }
                if let status = values["StatusText"], !status.isEmpty, statuses.last != status {
                    statuses.append(status)
                }
                // CLOCK_MONOTONIC is the host's and the sandbox's alike (no time namespace): the
                // silence since the last ping counts too, not only the gaps between two.
                if let text = values["WatchdogTimestampMonotonic"], let micro = Double(text), micro > 0 {
                    let ping = micro / 1_000_000
                    if lastPing.map({ ping > $0 }) ?? true { pings += 1 }
                    if let lastPing, ping > lastPing { longestGap = max(longestGap ?? 0, ping - lastPing) }
                    lastPing = ping
                }
                if let lastPing {
                    var now = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &now)
                    let silence = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - lastPing
                    longestGap = max(longestGap ?? 0, silence)
                }
                if values["NRestarts"].map({ $0 != "0" }) == true { break }
                if ContinuousClock.now >= nextJournalRead {
                    journalText = try await systemd.journalctl("-u", unit, "-o", "cat").stdout
                    nextJournalRead = ContinuousClock.now + .seconds(5)
                }
                if listEndedAt == nil {
                    let lists = FullListSpan.all(in: try await fleet.simulator.requests())
                    let sawLine = journalText.split(separator: "\n").contains { fullListMessage(in: String($0)) != nil }
                    if let first = lists.first, first.pages >= pages, listCompleteAt == nil { listCompleteAt = Date() }
                    // A daemon that logs no `full list:` line goes on 15 s after its last page.
                    if let first = lists.first, let listCompleteAt,
                        sawLine || Date().timeIntervalSince(listCompleteAt) > 15
                    {
                        listEndedAt = Date()
                        progress(
                            "watchdog: first full list done (\(first.pages) pages in \(String(format: "%.0f", first.seconds)) s); inserting \(newRows) rows"
                        )
                        _ = try await connection.insertServers(count: newRows, prefix: "watchdog")
                        rowsInsertedAt = Date()
                    }
                } else {
                    rowsActive = try await connection.query(
                        "SELECT count(*) AS n FROM servers WHERE name LIKE 'watchdog-%' AND status = 'active'"
                    ).single().decode(Int.self, "n")
                    if rowsActive >= newRows, let rowsInsertedAt, Date().timeIntervalSince(rowsInsertedAt) >= 60 {
                        break
                    }
                }
                try await Task.sleep(for: .seconds(1))
            }
            let observed = Date().timeIntervalSince(started)

            // What systemd and the journal recorded.
            _ = try await systemd.journalctl("--sync")
            let unitJournal = try await systemd.journalctl("-u", unit, "-o", "cat").stdout
            let wholeJournal = try await systemd.journalctl("-o", "cat").stdout
            let log = try await fleet.simulator.requests()
            let lists = FullListSpan.all(in: log).filter { $0.pages >= pages }
            // A stop waits for the requests in flight (TimeoutStopSec=60s as shipped).
            let stopping = ContinuousClock.now
            let stop = try? await systemd.run(["/bin/systemctl", "--no-pager", "stop", unit], timeout: .seconds(90))
            let stopSeconds = (ContinuousClock.now - stopping).timeInterval
            if stop?.succeeded != true { progress("watchdog: systemctl stop: \(stop.map { "\($0)" } ?? "timed out")") }
            return WatchdogProof(
                servers: fleet.servers,
                watchdogSec: watchdogSec,
                watchdogUSec: finalProperties["WatchdogUSec"] ?? "?",
                seconds: observed,
                nRestarts: finalProperties["NRestarts"] ?? "?",
                activeState: finalProperties["ActiveState"] ?? "?",
                result: finalProperties["Result"] ?? "?",
                watchdogTimeouts: wholeJournal.split(separator: "\n").map(String.init).filter {
                    $0.contains("Watchdog timeout")
                },
                withheld: unitJournal.split(separator: "\n").map(String.init).filter {
                    $0.contains("withholding WATCHDOG=1")
                },
                fullListLines: unitJournal.split(separator: "\n").compactMap { fullListMessage(in: String($0)) },
                completeFullLists: lists.count,
                firstListSeconds: lists.first?.seconds,
                firstListPages: lists.first?.pages,
                tally: ScaleTally(log),
                rowsInserted: rowsInsertedAt == nil ? 0 : newRows,
                rowsActive: rowsActive,
                longestPingGap: longestGap,
                pings: pings,
                statuses: Array(statuses.suffix(6)),
                stopSeconds: stop?.succeeded == true ? stopSeconds : nil,
                peak: peak,
                memoryMax: finalProperties["MemoryMax"] ?? "?",
                memoryCurrentPeak: memoryCurrentPeak
            )
        }
    }

    do {
        let proof = try await observe(units: units, unit: unit, anchor: anchor, watchdogSec: watchdogSec)
        await connection.close()
        return .measured(proof)
    } catch {
        await connection.close()
        throw error
    }
}

/// Why the shipped unit cannot be run under systemd here, or nil when it can.
func shippedUnitUnavailable(repository: URL) -> String? {
    let support = SystemdCommand.namespaceSupport
    guard support.supported else { return support.reason }
    let installer = repository.appendingPathComponent("deploy/install.sh")
    let shippedUnit = repository.appendingPathComponent("systemd/citrus-reconciler.service")
    guard FileManager.default.fileExists(atPath: installer.path),
        FileManager.default.fileExists(atPath: shippedUnit.path)
    else {
        return "no deploy/install.sh and systemd/citrus-reconciler.service under \(repository.path)"
    }
    return nil
}

/// The release daemon installed by deploy/install.sh under the repository's .build, its unit as
/// shipped but for its paths, set to run against `fleet`; and a target that keeps it loaded.
struct InstalledUnit {
    var root: URL
    var units: [String: String]
    var unit: String
    var anchor: String
    /// The unit's `WatchdogSec=` line, as shipped.
    var watchdogSec: String

    func remove() { try? FileManager.default.removeItem(at: root) }
}

func installShippedUnit(_ env: BenchEnvironment, fleet: SeededFleet, repository: URL) async throws -> InstalledUnit {
    let installer = repository.appendingPathComponent("deploy/install.sh")
    // install.sh's layout under the repository's .build: the sandbox sees the host's file system
    // read-only, except /tmp, /run and /var/log, which are its own.
    let root = repository.appendingPathComponent(".build/citrus-bench-unit-\(getpid())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    do {
        let install = try await SystemdCommand.run(
            [
                "/bin/sh", "-c", "exec /bin/sh \"$0\" --root \"$1\" --binary \"$2\" --token-from-stdin <\"$3\"",
                installer.path, root.path, try env.executable("citrus-reconciler").path, env.tokenFile.path,
            ],
            timeout: .seconds(120)
        )
        guard install.succeeded else { throw BenchError("install.sh failed: \(install)") }
        let etc = root.path + "/etc/citrus-reconciler"
        let environmentFile = etc + "/citrus-reconciler.env"
        let tokenFile = etc + "/digitalocean-token"
        try """
        # written by citrus-bench: the bench's daemon settings
        CITRUS_DATABASE_URL=\(fleet.database)
        CITRUS_DIGITALOCEAN_URL=\(fleet.simulator.baseURL)
        CITRUS_RESYNC_INTERVAL=60s
        CITRUS_FAST_INTERVAL=5s
        CITRUS_SETTLE_PERIOD=60s

        """.write(toFile: environmentFile, atomically: false, encoding: .utf8)

        let (unitText, watchdogSec) = try shippedUnitWithPaths(
            try String(
                contentsOf: root.appendingPathComponent("usr/lib/systemd/system/citrus-reconciler.service"),
                encoding: .utf8
            ),
            binary: root.path + "/usr/local/bin/citrus-reconciler",
            environmentFile: environmentFile,
            tokenFile: tokenFile
        )
        let unit = "citrus-reconciler.service"
        let anchor = "citrus-bench-anchor.target"
        return InstalledUnit(
            root: root,
            units: [
                unit: unitText,
                // Keeps the unit loaded (and its NRestarts and Result readable) whatever it does.
                anchor: "[Unit]\nDescription=keeps the unit under test loaded\nAfter=\(unit)\n",
            ],
            unit: unit,
            anchor: anchor,
            watchdogSec: watchdogSec
        )
    } catch {
        try? FileManager.default.removeItem(at: root)
        throw error
    }
}

/// Host PIDs of the daemon's processes in `unit`'s cgroup inside the sandbox's `cgroup`, in any
/// hierarchy that has it.
func unitProcesses(cgroup: String, unit: String) -> [Int32] {
    var pids: Set<Int32> = []
    let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
    for hierarchy in hierarchies {
        let root = "/sys/fs/cgroup/\(hierarchy)/\(cgroup)"
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { continue }
        while let item = enumerator.nextObject() as? String {
            guard item.hasSuffix("/" + unit) || item == unit,
                let procs = try? String(contentsOfFile: "\(root)/\(item)/cgroup.procs", encoding: .utf8)
            else { continue }
            for line in procs.split(separator: "\n") {
                guard let pid = Int32(line),
                    (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("citrus-reconcil")
                        == true
                else { continue }
                pids.insert(pid)
            }
        }
    }
    return Array(pids)
}

/// The installed unit with only its paths moved into the installation (ExecStart=,
/// EnvironmentFile=, LoadCredential= and the reload step's token path); every other line, the
/// watchdog, restart, limits and hardening, exactly as shipped. Returns it and its `WatchdogSec=`.
func shippedUnitWithPaths(
    _ shipped: String,
    binary: String,
    environmentFile: String,
    tokenFile: String
) throws -> (String, String) {
    let replacements = [
        "ExecStart=/usr/local/bin/citrus-reconciler run": "ExecStart=\(binary) run",
        "EnvironmentFile=-/etc/citrus-reconciler/citrus-reconciler.env": "EnvironmentFile=-\(environmentFile)",
        "LoadCredential=digitalocean-token:/etc/citrus-reconciler/digitalocean-token":
            "LoadCredential=digitalocean-token:\(tokenFile)",
    ]
    var used: [String: Int] = [:]
    var watchdog: [String] = []
    let lines = shipped.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
        if line.hasPrefix("WatchdogSec=") { watchdog.append(String(line)) }
        if line.hasPrefix("ExecReload=+") {
            used["ExecReload=+", default: 0] += 1
            return line.replacingOccurrences(of: " /etc/citrus-reconciler/digitalocean-token ", with: " \(tokenFile) ")
        }
        guard let replacement = replacements[String(line)] else { return String(line) }
        used[String(line), default: 0] += 1
        return replacement
    }
    for key in Array(replacements.keys) + ["ExecReload=+"] where used[key] != 1 {
        throw BenchError("the shipped unit has \(used[key] ?? 0) lines \"\(key)\"; expected exactly one")
    }
    guard watchdog.count == 1 else {
        throw BenchError("the shipped unit has \(watchdog.count) WatchdogSec= lines; expected exactly one")
    }
    return (lines.joined(separator: "\n"), watchdog[0])
}
