import AsyncHTTPClient
import CitrusTestKit
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Postgres

/// What every scenario shares: the built binaries, a scratch directory, one throwaway Postgres
/// cluster (a fresh database per scenario) and an HTTP client for the simulators' `/_sim` API.
final class BenchEnvironment: Sendable {
    static let token = "dop_v1_citrus_bench_token_0123456789abcdef"

    let binDirectory: URL
    let workDirectory: URL
    let cluster: PostgresCluster
    let http: HTTPClient
    let tokenFile: URL

    init(binDirectory: URL, workDirectory: URL, cluster: PostgresCluster, http: HTTPClient) throws {
        self.binDirectory = binDirectory
        self.workDirectory = workDirectory
        self.cluster = cluster
        self.http = http
        tokenFile = workDirectory.appendingPathComponent("token")
        try (Self.token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile.path, 0o600)
    }

    func executable(_ name: String) throws -> URL {
        let url = binDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw BenchError("\(url.path) is not built; run `swift build -c release` (scripts/bench.sh does)")
        }
        return url
    }

    func log(_ name: String) -> URL { workDirectory.appendingPathComponent(name + ".log") }

    /// A fresh database with the daemon's schema, migrated by the real binary.
    func migratedDatabase() async throws -> String {
        let url = try await cluster.createDatabase()
        let migrate = ChildProcess(
            executable: try executable("citrus-reconciler"),
            arguments: ["migrate", "--database-url", url],
            environment: ProcessInfo.processInfo.environment,
            logFile: log("migrate-\(UUID().uuidString.prefix(8))")
        )
        try migrate.start()
        guard await migrate.waitForExit(timeout: .seconds(60)) == 0 else {
            throw BenchError("citrus-reconciler migrate failed: \(migrate.output)")
        }
        return url
    }

    func startSimulator(
        _ name: String,
        bootSeconds: Double = 10,
        perMinute: Int = 250,
        perHour: Int = 5000,
        extra: [String] = []
    ) async throws -> SimulatorProcess {
        try await SimulatorProcess.start(
            executable: try executable("citrus-do-sim"),
            logFile: log(name),
            http: http,
            arguments: [
                "--port", "0", "--token", Self.token, "--boot-seconds", "\(bootSeconds)",
                "--rate-per-minute", "\(perMinute)", "--rate-per-hour", "\(perHour)", "--seed", "7", "--log-level",
                "warning",
            ] + extra
        )
    }

    /// The real daemon: `citrus-reconciler run`, text logs into `<name>.log`.
    func startDaemon(
        _ name: String,
        database: String,
        simulator: SimulatorProcess,
        resync: String = "60s",
        fast: String = "5s"
    ) throws -> ChildProcess {
        let daemon = ChildProcess(
            executable: try executable("citrus-reconciler"),
            arguments: [
                "run", "--database-url", database, "--digitalocean-url", simulator.baseURL,
                "--digitalocean-token-file", tokenFile.path, "--resync-interval", resync, "--fast-interval", fast,
                "--settle-period", "60s", "--log-format", "text",
            ],
            environment: ProcessInfo.processInfo.environment.filter {
                $0.key != "NOTIFY_SOCKET" && $0.key != "JOURNAL_STREAM"
            },
            logFile: log(name)
        )
        try daemon.start()
        return daemon
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A request as the simulator logged it.
struct LoggedRequest: Decodable, Sendable {
    var sequence: Int
    var time: Date
    var method: String
    var path: String
    var route: String
    var status: Int?
    var body: String?

    var isCreate: Bool { method == "POST" && route == "/v2/droplets" }
    var isList: Bool { method == "GET" && route == "/v2/droplets" }
    /// The first page of a list of the whole fleet: the start of a pass (of a full list, once
    /// passes between full lists read only what waits, by id or by identity tag).
    var isFirstListPage: Bool {
        guard isList, !isTargetedList else { return false }
        let query = path.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        let page = query.split(separator: "&").first(where: { $0.hasPrefix("page=") })
        return page == nil || page == "page=1"
    }

    /// The row a daemon create was for, from its `citrus-server:<uuid>` tag.
    var identity: UUID? {
        guard let body, let range = body.range(of: "citrus-server:") else { return nil }
        return UUID(uuidString: String(body[range.upperBound...].prefix(36)))
    }
}

/// A droplet as `/_sim/droplets` shows it (every droplet ever made).
struct SimDroplet: Decodable, Sendable {
    var id: Int64
    var name: String
    var tags: [String]
    var injected: Bool
    var publicIPv4: String?
    var publicIPv6: String?

    enum CodingKeys: String, CodingKey {
        case id, name, tags, injected
        case publicIPv4 = "public_ipv4"
        case publicIPv6 = "public_ipv6"
    }
}

/// A `citrus-do-sim` process and its `/_sim` control API.
final class SimulatorProcess: Sendable {
    let process: ChildProcess
    let baseURL: String
    private let http: HTTPClient

    private init(process: ChildProcess, baseURL: String, http: HTTPClient) {
        self.process = process
        self.baseURL = baseURL
        self.http = http
    }

    static func start(
        executable: URL,
        logFile: URL,
        http: HTTPClient,
        arguments: [String]
    ) async throws -> SimulatorProcess {
        let process = ChildProcess(
            executable: executable,
            arguments: arguments,
            environment: ProcessInfo.processInfo.environment,
            logFile: logFile
        )
        try process.start()
        var url: String?
        _ = await eventually(timeout: .seconds(20), every: .milliseconds(20)) {
            url = process.output.split(separator: "\n").first(where: { $0.hasPrefix("http://") }).map(String.init)
            return url != nil || !process.isRunning
        }
        guard let url else {
            await process.stop()
            throw BenchError("citrus-do-sim did not print its URL: \(process.output)")
        }
        return SimulatorProcess(process: process, baseURL: url, http: http)
    }

    func stop() async { await process.stop(grace: .seconds(5)) }

    @discardableResult
    func send(_ method: HTTPMethod, _ path: String, json: Data? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let json {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: json))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 512 * 1024 * 1024)
        guard (200..<300).contains(response.status.code) else {
            throw BenchError("simulator \(method) \(path): \(response.status.code) \(String(buffer: body))")
        }
        return Data(buffer: body)
    }

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            return try Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        return decoder
    }()

    func requests() async throws -> [LoggedRequest] {
        struct Body: Decodable { var requests: [LoggedRequest] }
        return try Self.decoder.decode(Body.self, from: try await send(.GET, "/_sim/requests")).requests
    }

    func clearRequests() async throws { try await send(.DELETE, "/_sim/requests") }

    func droplets() async throws -> [SimDroplet] {
        struct Body: Decodable { var droplets: [SimDroplet] }
        return try Self.decoder.decode(Body.self, from: try await send(.GET, "/_sim/droplets")).droplets
    }

    func setFaults(_ faults: [String: Double]) async throws {
        try await send(.PUT, "/_sim/faults", json: try JSONSerialization.data(withJSONObject: faults))
    }

    /// Injects an active droplet and returns it as the simulator made it.
    func inject(name: String, tags: [String]) async throws -> SimDroplet {
        struct Body: Decodable { var droplet: SimDroplet }
        let json = try JSONSerialization.data(
            withJSONObject: ["name": name, "tags": tags, "active": true] as [String: Any]
        )
        return try Self.decoder.decode(Body.self, from: try await send(.POST, "/_sim/droplets", json: json)).droplet
    }

    /// Waits until the request log satisfies `condition`; returns the log then (or at the timeout).
    func waitForRequests(
        timeout: Duration,
        every interval: Duration = .milliseconds(100),
        _ condition: ([LoggedRequest]) -> Bool
    ) async throws -> [LoggedRequest] {
        var log: [LoggedRequest] = []
        _ = try await eventually(timeout: timeout, every: interval) {
            log = try await requests()
            return condition(log)
        }
        return log
    }
}

/// Rows in `servers`, through the project's own Postgres wrapper.
extension PostgresConnection {
    /// Inserts one row and returns its id.
    func insertServer(name: String) async throws -> UUID {
        try await query("INSERT INTO servers (name) VALUES (\(name)) RETURNING id").single().decode(UUID.self, "id")
    }

    /// Inserts `count` rows in one statement (one transaction, one burst of NOTIFYs).
    func insertServers(count: Int, prefix: String) async throws -> [UUID] {
        let rows = try await query(
            "INSERT INTO servers (name) SELECT \(prefix) || '-' || n FROM generate_series(1, \(count)) AS n RETURNING id"
        )
        return try rows.map { row throws(PostgresError) in try row.decode(UUID.self, "id") }
    }

    func count(status: String) async throws -> Int {
        try await query("SELECT count(*) AS n FROM servers WHERE status = \(status)").single().decode(Int.self, "n")
    }
}
