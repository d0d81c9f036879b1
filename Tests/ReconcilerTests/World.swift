import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Postgres
import Synchronization
import Testing

/// A throwaway world for one test: its own Postgres cluster (migrated), an in-process simulator,
/// and the real daemon binary started against both. Everything is torn down at the end.
struct World {
    let cluster: PostgresCluster
    let databaseURL: String
    let sim: SimulatorHarness.Running
    let db: PostgresConnection
    let directory: URL
    /// Set when a test restarts the simulator (a new instance loaded from its state directory).
    let restartedSimulator = SimulatorSlot()

    var simulator: SimulatedDigitalOcean { restartedSimulator.current ?? sim.simulator }

    /// The daemon's flags for tests that wait on it: a pass a second while rows wait, a resync
    /// every 10 s, and a 3 s settle period (which outlasts the simulator's lags in these tests).
    static let quick = ["--fast-interval", "1s", "--resync-interval", "10s", "--settle-period", "3s"]

    static func with<T: Sendable>(
        simulator configuration: SimulatorConfiguration = SimulatorHarness.testConfiguration(),
        _ body: (World) async throws -> T
    ) async throws -> T {
        try await withPostgresCluster { cluster in
            let url = try await cluster.createDatabase()
            return try await with(cluster: cluster, databaseURL: url, simulator: configuration, body)
        }
    }

    /// The world over a database the caller made on `cluster` (a replicated one, say): the
    /// simulator, the token file, the test's own session (`prepare` sets it up), the schema migrated.
    static func with<T: Sendable>(
        cluster: PostgresCluster,
        databaseURL url: String,
        simulator configuration: SimulatorConfiguration,
        prepare: (PostgresConnection) async throws -> Void = { _ in },
        _ body: (World) async throws -> T
    ) async throws -> T {
        try await SimulatorHarness.withSimulator(configuration: configuration) { sim in
            let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
                "citrus-world-\(UUID().uuidString.prefix(8))"
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let token = directory.appendingPathComponent("token")
            try sim.token.write(to: token, atomically: true, encoding: .utf8)
            chmod(token.path, 0o600)  // as a secret file should be (the daemon warns otherwise)
            let db = try await PostgresConnection.connect(url)
            try await prepare(db)
            let world = World(cluster: cluster, databaseURL: url, sim: sim, db: db, directory: directory)
            let migrate = try await world.command(["migrate"])
            try #require(migrate.status == 0, "migrate failed: \(migrate.output)")
            return try await body(world)
        }
    }

    /// The daemon, started with the world's database, simulator and token. Callers stop it.
    func daemon(_ extra: [String] = [], name: String = "daemon") throws -> ChildProcess {
        let process = ChildProcess(
            executable: try BuiltProducts.executable(named: "citrus-reconciler"),
            arguments: ["run"] + connectionArguments + ["--log-format", "text"] + extra,
            environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path],
            logFile: directory.appendingPathComponent("\(name).log")
        )
        try process.start()
        return process
    }

    var connectionArguments: [String] {
        [
            "--database-url", databaseURL, "--digitalocean-url", sim.baseURL,
            "--digitalocean-token-file", directory.appendingPathComponent("token").path,
        ]
    }

    /// Runs a citrus-reconciler subcommand to completion.
    func command(
        _ arguments: [String],
        timeout: Duration = .seconds(60)
    ) async throws -> (status: Int32?, output: String) {
        let needsCloud = ["plan", "run"].contains(arguments.first ?? "")
        let process = ChildProcess(
            executable: try BuiltProducts.executable(named: "citrus-reconciler"),
            arguments: arguments + (needsCloud ? connectionArguments : ["--database-url", databaseURL]),
            environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path],
            logFile: directory.appendingPathComponent("command-\(UUID().uuidString.prefix(8)).log")
        )
        try process.start()
        let status = await process.waitForExit(timeout: timeout)
        if status == nil { await process.stop() }
        return (status, process.output)
    }

    // MARK: Rows

    @discardableResult
    func insert(
        _ name: String,
        region: String = "sfo3",
        size: String = "s-1vcpu-512mb-10gb",
        image: String = "ubuntu-22-04-x64"
    ) async throws -> UUID {
        try await db.query(
            "INSERT INTO servers (name, region, size, image) VALUES (\(name), \(region), \(size), \(image)) RETURNING id"
        ).single().decode(UUID.self, "id")
    }

    func requestDeletion(_ id: UUID) async throws {
        try await db.query("UPDATE servers SET delete_requested_at = now() WHERE id = \(id)")
    }

    struct Row: Sendable, CustomStringConvertible {
        var id: UUID
        var name: String
        var status: String
        var dropletID: Int64?
        var ipv4: String?
        var ipv6: String?
        var lastError: String?
        var revision: Int64
        var description: String {
            "\(name) \(status) droplet=\(dropletID.map(String.init) ?? "-") error=\(lastError ?? "-")"
        }
    }

    func rows() async throws -> [Row] {
        try await db.query(
            "SELECT id, name, status, digital_ocean_id, ip_address, ipv6_address, last_error, revision FROM servers ORDER BY created_at, name"
        ).map { row in
            Row(
                id: try row.decode(UUID.self, "id"),
                name: try row.decode(String.self, "name"),
                status: try row.decode(String.self, "status"),
                dropletID: try row.decode(String?.self, "digital_ocean_id").flatMap { Int64($0) },
                ipv4: try row.decode(String?.self, "ip_address"),
                ipv6: try row.decode(String?.self, "ipv6_address"),
                lastError: try row.decode(String?.self, "last_error"),
                revision: try row.decode(Int64.self, "revision")
            )
        }
    }

    func row(_ id: UUID) async throws -> Row? { try await rows().first { $0.id == id } }

    // MARK: DigitalOcean as the simulator saw it

    /// Droplets the API still knows (not deleted, not vanished).
    func liveDroplets() -> [SimulatedDroplet] {
        let now = Date()
        return simulator.droplets().filter { $0.apiStatus(at: now) != nil }
    }

    func droplets(for row: UUID) -> [SimulatedDroplet] {
        let tag = "citrus-server:\(row.uuidString.lowercased())"
        return liveDroplets().filter { $0.tags.contains(tag) }
    }

    /// Every create ever performed for a row (including ones whose response was lost).
    func everCreated(for row: UUID) -> [SimulatedDroplet] {
        let tag = "citrus-server:\(row.uuidString.lowercased())"
        return simulator.droplets().filter { $0.tags.contains(tag) && !$0.injected }
    }

    /// The fleet invariant: each live row bound to exactly one live droplet (the one it records),
    /// active rows with addresses, no droplet for deleted rows, and no fleet droplet the daemon made
    /// without a row. Returns what is wrong, empty when all holds.
    func invariantViolations(allowOrphans: Set<Int64> = []) async throws -> [String] {
        let rows = try await rows()
        var problems: [String] = []
        let byTag = Dictionary(grouping: liveDroplets().filter { !$0.injected }) { droplet in
            droplet.tags.first { $0.hasPrefix("citrus-server:") } ?? ""
        }
        var claimed = Set<String>()
        for row in rows {
            let tag = "citrus-server:\(row.id.uuidString.lowercased())"
            claimed.insert(tag)
            let mine = byTag[tag] ?? []
            switch row.status {
            case "active":
                if mine.count != 1 { problems.append("\(row.name): \(mine.count) live droplets") }
                if let only = mine.first, only.id != row.dropletID {
                    problems.append(
                        "\(row.name): records \(row.dropletID.map(String.init) ?? "nil"), droplet is \(only.id)"
                    )
                }
                if row.ipv4 == nil { problems.append("\(row.name): active without an address") }
            case "deleted":
                if !mine.isEmpty { problems.append("\(row.name): deleted but \(mine.count) droplets live") }
            case "failed":
                if mine.count > 1 { problems.append("\(row.name): failed with \(mine.count) droplets") }
            default:
                problems.append("\(row.name): not settled (\(row.status), \(row.lastError ?? "no error"))")
            }
        }
        for (tag, droplets) in byTag where !claimed.contains(tag) {
            for droplet in droplets where !allowOrphans.contains(droplet.id) {
                problems.append("droplet \(droplet.id) (\(tag)) matches no row")
            }
        }
        return problems
    }

    /// Every row active, each made by exactly one create at DigitalOcean; the rows.
    @discardableResult
    func expectEveryRowActiveAndCreatedOnce(
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [Row] {
        let rows = try await rows()
        for row in rows {
            #expect(row.status == "active", "\(row)", sourceLocation: sourceLocation)
            let creates = everCreated(for: row.id).count
            #expect(creates == 1, "\(row.name): \(creates) creates performed", sourceLocation: sourceLocation)
        }
        return rows
    }

    /// Waits until the invariant holds; fails the test with what is still wrong otherwise.
    func converge(timeout: Duration, daemon: ChildProcess? = nil, allowOrphans: Set<Int64> = []) async throws {
        var last: [String] = []
        let ok = try await eventually(timeout: timeout, every: .milliseconds(250)) {
            last = try await invariantViolations(allowOrphans: allowOrphans)
            return last.isEmpty
        }
        #expect(
            ok,
            "did not converge: \(last.prefix(10)) \(daemon.map { "\n--- daemon log tail ---\n" + $0.output.split(separator: "\n").suffix(30).joined(separator: "\n") } ?? "")"
        )
    }

    struct Event: Sendable, CustomStringConvertible {
        var id: Int64
        var serverID: UUID?
        var kind: String
        var dropletID: Int64?
        var at: Date
        var message: String
        var description: String { "#\(id) \(kind) droplet=\(dropletID.map(String.init) ?? "-"): \(message)" }
    }

    /// `server_events` after the entry with id `mark`, oldest first.
    func events(after mark: Int64 = 0) async throws -> [Event] {
        try await db.query(
            "SELECT id, server_id, kind, droplet_id, created_at, message FROM server_events WHERE id > \(mark) ORDER BY id"
        ).map { row in
            Event(
                id: try row.decode(Int64.self, "id"),
                serverID: try row.decode(UUID?.self, "server_id"),
                kind: try row.decode(String.self, "kind"),
                dropletID: try row.decode(Int64?.self, "droplet_id"),
                at: try row.decode(Date.self, "created_at"),
                message: try row.decode(String.self, "message")
            )
        }
    }

    func requests(method: String? = nil, route: String? = nil) -> [SimulatorRequestRecord] {
        simulator.requestLog().filter { (method == nil || $0.method == method) && (route == nil || $0.route == route) }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// The simulator instance currently serving the world's port, once a test has restarted it.
final class SimulatorSlot: Sendable {
    private let value = Mutex<SimulatedDigitalOcean?>(nil)
    var current: SimulatedDigitalOcean? { value.withLock { $0 } }
    func replace(with simulator: SimulatedDigitalOcean) { value.withLock { $0 = simulator } }
}

// MARK: Replicas

extension World {
    /// One replica of the daemon: a separate process whose database sessions carry `name` as their
    /// `application_name`, so `leader()` can tell which replica holds the leadership lock. `name`
    /// is also the log file's name: give each life of a replica its own.
    func replica(_ name: String, _ extra: [String] = []) throws -> ChildProcess {
        let separator = databaseURL.contains("?") ? "&" : "?"
        let url = databaseURL + separator + "application_name=" + name
        let process = ChildProcess(
            executable: try BuiltProducts.executable(named: "citrus-reconciler"),
            arguments: [
                "run", "--database-url", url, "--digitalocean-url", sim.baseURL,
                "--digitalocean-token-file", directory.appendingPathComponent("token").path,
                "--log-format", "text",
            ] + extra,
            environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path],
            logFile: directory.appendingPathComponent("\(name).log")
        )
        try process.start()
        return process
    }

    /// The `application_name` of the session holding the leadership lock (`Leadership.defaultLockKey`,
    /// seen in `pg_locks` as classid = high 32 bits, objid = low 32 bits, objsubid = 1), or nil.
    func leader() async throws -> String? {
        let key: Int64 = 0x6369_7472_7573_7263  // Leadership.defaultLockKey
        let high = key >> 32
        let low = key & 0xFFFF_FFFF
        return try await db.query(
            """
            SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = \(high)
              AND l.objid::bigint = \(low) AND l.objsubid = 1
            """
        ).first?.decode(String.self, "name")
    }

    /// Which of two replicas (`alpha` and `beta`) took the leadership lock within 30 s, and the other.
    func leaderAndStandby(
        of replicas: [String: ChildProcess],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> (leaderName: String, leader: ChildProcess, standbyName: String, standby: ChildProcess) {
        var found: String?
        try #require(
            try await eventually(timeout: .seconds(30)) {
                found = try await leader()
                return found != nil
            },
            "no replica took the lock",
            sourceLocation: sourceLocation
        )
        let leaderName = try #require(found, sourceLocation: sourceLocation)
        let standbyName = leaderName == "alpha" ? "beta" : "alpha"
        return (
            leaderName, try #require(replicas[leaderName], sourceLocation: sourceLocation),
            standbyName, try #require(replicas[standbyName], sourceLocation: sourceLocation)
        )
    }

    /// Rows in a state that is neither final (`active`, `failed`, `deleted`) nor waiting on
    /// DigitalOcean with a reason recorded: what "stuck" means after a scenario has settled.
    func unsettledRows() async throws -> [Row] {
        try await rows().filter { !["active", "failed", "deleted"].contains($0.status) }
    }
}

// MARK: Rate limits

/// Checks on the daemon's requests as the simulator logged them (other clients' requests filtered
/// out by the caller).
enum RateLimitAudit {
    /// Pairs of consecutive requests that were both answered 429.
    static func consecutive429s(
        _ requests: [SimulatorRequestRecord]
    ) -> [(SimulatorRequestRecord, SimulatorRequestRecord)] {
        let ordered = requests.sorted { $0.sequence < $1.sequence }
        return zip(ordered, ordered.dropFirst()).filter { $0.status == 429 && $1.status == 429 }
    }

    /// Requests that arrived after a per-minute 429 but before its `retry-after` had passed. The
    /// simulator's `retry-after` is rebuilt from the log: the oldest counted request in the
    /// window, plus the window, rounded up to whole seconds (at least 1). `requests` must be every
    /// request made with the token.
    static func requestsBeforeRetryAfter(
        _ requests: [SimulatorRequestRecord],
        limits: SimulatorRateLimits
    ) -> [SimulatorRequestRecord] {
        let ordered = requests.sorted { $0.sequence < $1.sequence }
        var early: [SimulatorRequestRecord] = []
        for (index, request) in ordered.enumerated() where request.status == 429 {
            let now = request.time.timeIntervalSince1970
            let counted = ordered[..<index].filter { $0.status != 429 && $0.status != 401 }
            guard
                let oldest = counted.map({ $0.time.timeIntervalSince1970 }).first(where: {
                    $0 > now - limits.minuteWindowSeconds
                })
            else {
                continue
            }
            let retryAfter = max(1, (oldest + limits.minuteWindowSeconds - now).rounded(.up))
            if let next = ordered.dropFirst(index + 1).first, next.time.timeIntervalSince1970 < now + retryAfter - 0.05
            {
                early.append(next)
            }
        }
        return early
    }
}
