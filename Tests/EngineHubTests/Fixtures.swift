import CitrusTestKit
import Crypto
import Foundation
import Logging
import Postgres
import Testing

@testable import EngineHubSimulator

/// An agent row as the daemon would write it: the key itself is only in the test's hands.
struct TestAgent {
    let id: UUID
    let key: String

    var idText: String { id.uuidString.lowercased() }

    /// 256 random bits as 64 lowercase hex characters, like the daemon's keys.
    static func randomKey() -> String {
        (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Computed here with swift-crypto directly, not with the hub's code under test.
    static func digest(of key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// A row's two timestamps as the hub left them.
struct AgentTimes: Equatable {
    var connectedAt: Date?
    var lastSeenAt: Date?
}

/// A fresh database on the shared test cluster with the `agents` table the daemon's migration makes.
struct AgentsDatabase {
    let url: String
    let connection: PostgresConnection

    static func create() async throws -> AgentsDatabase {
        let url = try await PostgresCluster.shared().createDatabase()
        let connection = try await PostgresConnection.connect(url)
        try await connection.query(
            """
            CREATE TABLE agents (id uuid primary key, key_sha256 text, created_at timestamptz not null default now(),
                                 connected_at timestamptz, last_seen_at timestamptz, hub_credential_sha256 text)
            """
        )
        return AgentsDatabase(url: url, connection: connection)
    }

    @discardableResult
    func insertAgent(key: String? = TestAgent.randomKey()) async throws -> TestAgent {
        let agent = TestAgent(id: UUID(), key: key ?? "")
        let digest = key.map(TestAgent.digest(of:))
        try await connection.query("INSERT INTO agents (id, key_sha256) VALUES (\(agent.id), \(digest))")
        return agent
    }

    func times(_ agent: TestAgent) async throws -> AgentTimes {
        let row = try await connection.query("SELECT connected_at, last_seen_at FROM agents WHERE id = \(agent.id)")
            .single()
        return AgentTimes(
            connectedAt: try row.decode(Date?.self, "connected_at"),
            lastSeenAt: try row.decode(Date?.self, "last_seen_at")
        )
    }

    func close() async {
        await connection.close()
    }
}

/// Short timers so every test finishes in seconds.
func quickConfiguration(databaseURL: String?) -> EngineHub.Configuration {
    var configuration = EngineHub.Configuration(databaseURL: databaseURL)
    configuration.helloTimeout = .seconds(3)
    configuration.idleLimit = .seconds(5)
    configuration.closeGracePeriod = .milliseconds(300)
    configuration.databaseConnectTimeout = .seconds(2)
    return configuration
}

/// A database with `agents`, a hub on 127.0.0.1 port 0 logging into `recorder`, both torn down
/// afterwards.
func withHubAndDatabase(
    recorder: RecordingLogHandler.Recorder = .init(),
    configure: (inout EngineHub.Configuration) -> Void = { _ in },
    _ body: (EngineHub, AgentsDatabase) async throws -> Void
) async throws {
    let database = try await AgentsDatabase.create()
    var configuration = quickConfiguration(databaseURL: database.url)
    configure(&configuration)
    let logger = testLogger(recorder)
    do {
        try await withEngineHub(configuration: configuration, logger: logger) { hub in
            try await body(hub, database)
        }
    } catch {
        await database.close()
        throw error
    }
    await database.close()
}

/// The hub's log goes to memory, where tests can read it, never to the test's output.
func testLogger(_ recorder: RecordingLogHandler.Recorder = .init()) -> Logger {
    Logger(label: "engine-hub-test") { RecordingLogHandler(label: $0, recorder: recorder) }
}

/// Polls `condition` until it holds; fails the test (and throws) after `timeout`.
func eventually(
    within timeout: Duration = .seconds(5),
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(timeout) waiting for: \(what)", sourceLocation: sourceLocation)
    throw EventuallyTimedOut()
}

struct EventuallyTimedOut: Error {}

extension WebSocketTestClient.Event {
    var closeCode: UInt16? {
        if case .close(let code, _) = self { return code }
        return nil
    }

    /// The `credential` of a JSON text message (a welcome's), if it has one.
    var credential: String? {
        guard case .text(let text) = self,
            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else { return nil }
        return object["credential"] as? String
    }

    /// The `type` and `reason` of a JSON text message.
    var message: (type: String, reason: String?)? {
        guard case .text(let text) = self,
            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let type = object["type"] as? String
        else { return nil }
        return (type, object["reason"] as? String)
    }
}
