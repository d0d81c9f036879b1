import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Postgres

/// The baseline: what the platform did before citrus-reconciler, written the way a team would
/// write it first. Per inserted row, inline: one create with a name made from the clock and only the
/// fleet tag; any failure (a 429, a 5xx, a lost response) is retried after a second; then a GET of
/// that droplet every `pollInterval` until it is active, then the row is marked active. No identity
/// tag, no rate budget, no list.
struct NaivePlatform: Sendable {
    var baseURL: String
    var token: String
    var http: HTTPClient
    var pollInterval: Duration = .seconds(2)
    var retryDelay: Duration = .seconds(1)

    struct Outcome: Sendable {
        var row: UUID
        var insertedAt: Date
        /// When a create was first accepted (2xx).
        var createAcceptedAt: Date?
        var activeAt: Date?
        var createAttempts = 0
    }

    /// One platform request: insert the row, create its droplet, wait until it is active.
    /// With `poll: false` it stops after the create (to time the create alone).
    func provision(
        name: String,
        database: PostgresConnection,
        until deadline: ContinuousClock.Instant,
        poll: Bool = true
    ) async throws -> Outcome {
        let insertedAt = Date()
        let row = try await database.insertServer(name: name)
        var outcome = Outcome(row: row, insertedAt: insertedAt)
        var dropletID: Int64?
        while dropletID == nil, ContinuousClock.now < deadline {
            outcome.createAttempts += 1
            if let id = try? await create() {
                dropletID = id
                outcome.createAcceptedAt = Date()
            } else {
                try await Task.sleep(for: retryDelay)
            }
        }
        guard let dropletID, poll else { return outcome }
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: pollInterval)
            if (try? await status(of: dropletID)) == "active" {
                outcome.activeAt = Date()
                try await database.query(
                    "UPDATE servers SET status = 'active', digital_ocean_id = \(String(dropletID)) WHERE id = \(row)"
                )
                break
            }
        }
        return outcome
    }

    private struct DropletBody: Decodable {
        struct Droplet: Decodable {
            var id: Int64
            var status: String
        }
        var droplet: Droplet
    }

    private func create() async throws -> Int64 {
        let name = "srv-\(Int64(Date().timeIntervalSince1970 * 1000))"
        let body: [String: Any] = [
            "name": name, "region": "sfo3", "size": "s-1vcpu-512mb-10gb", "image": "ubuntu-22-04-x64",
            "backups": false, "ipv6": true, "monitoring": true, "tags": ["citrus-host"],
        ]
        var request = HTTPClientRequest(url: baseURL + "/v2/droplets")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        return try await send(request).droplet.id
    }

    private func status(of droplet: Int64) async throws -> String {
        var request = HTTPClientRequest(url: baseURL + "/v2/droplets/\(droplet)")
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        return try await send(request).droplet.status
    }

    private func send(_ request: HTTPClientRequest) async throws -> DropletBody {
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1024 * 1024)
        guard (200..<300).contains(response.status.code) else { throw BenchError("HTTP \(response.status.code)") }
        return try JSONDecoder().decode(DropletBody.self, from: Data(buffer: body))
    }

    /// `count` platform requests at once (a burst of sign-ups), each its own task.
    func provisionAll(
        count: Int,
        prefix: String,
        database: PostgresConnection,
        timeout: Duration
    ) async throws -> [Outcome] {
        let deadline = ContinuousClock.now + timeout
        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            for n in 1...count {
                group.addTask { try await provision(name: "\(prefix)-\(n)", database: database, until: deadline) }
            }
            var outcomes: [Outcome] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
    }

    /// An HTTP client the way the baseline would configure one: a generous connection pool, no retries.
    static func makeHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
