import CitrusTestKit
import Foundation
import Postgres
import Testing

@testable import EngineHubSimulator

@Suite("The hub when its database misbehaves")
struct DatabaseTests {
    @Test("a database error while checking a key refuses with a reason, is counted, and the hub carries on")
    func databaseErrorRefuses() async throws {
        // A database without the agents table: every lookup fails.
        let url = try await PostgresCluster.shared().createDatabase()
        let agent = TestAgent(id: UUID(), key: TestAgent.randomKey())
        let recorder = RecordingLogHandler.Recorder()
        try await withEngineHub(configuration: quickConfiguration(databaseURL: url), logger: testLogger(recorder)) {
            hub in
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            let refusal = try await client.next()
            #expect(refusal.message?.type == "refused")
            #expect(refusal.message?.reason?.contains("database") == true)
            #expect(try await client.nextClose().closeCode == 4401)
            #expect(hub.stats().refused == 1)
            #expect(hub.stats().databaseErrors == 1)
            await client.close()

            // Once the table exists the same agent gets in.
            let database = try await PostgresConnection.connect(url)
            try await database.query(
                "CREATE TABLE agents (id uuid primary key, key_sha256 text, created_at timestamptz not null default now(), connected_at timestamptz, last_seen_at timestamptz, hub_credential_sha256 text)"
            )
            try await database.query(
                "INSERT INTO agents (id, key_sha256) VALUES (\(agent.id), \(TestAgent.digest(of: agent.key)))"
            )
            let again = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await again.next().message?.type == "welcome")
            await again.close()
            await database.close()
        }
        #expect(!recorder.entries.contains { entry in entry.metadata.values.contains { $0.contains(agent.key) } })
    }

    @Test("an unreachable database refuses agents instead of failing the hub")
    func unreachableDatabase() async throws {
        // Nothing listens on port 1 of loopback.
        var configuration = quickConfiguration(databaseURL: "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")
        configuration.databaseConnectTimeout = .seconds(1)
        try await withEngineHub(configuration: configuration, logger: testLogger()) { hub in
            let client = try await WebSocketTestClient.hello(
                port: hub.port,
                agentID: UUID().uuidString.lowercased(),
                key: TestAgent.randomKey()
            )
            #expect(try await client.next().message?.type == "refused")
            #expect(try await client.nextClose().closeCode == 4401)
            #expect(hub.stats().databaseErrors == 1)
            let health = try await AdminTestClient.request(port: hub.port, path: "/healthz")
            #expect(health.status == 200)
            await client.close()
        }
    }

    @Test("after the database restarts, the hub reconnects and welcomes agents again")
    func reconnectsAfterRestart() async throws {
        try await withPostgresCluster { cluster in
            let admin = try await PostgresConnection.connect(cluster.url())
            try await admin.query(
                "CREATE TABLE agents (id uuid primary key, key_sha256 text, created_at timestamptz not null default now(), connected_at timestamptz, last_seen_at timestamptz, hub_credential_sha256 text)"
            )
            let agent = TestAgent(id: UUID(), key: TestAgent.randomKey())
            try await admin.query(
                "INSERT INTO agents (id, key_sha256) VALUES (\(agent.id), \(TestAgent.digest(of: agent.key)))"
            )
            await admin.close()

            try await withEngineHub(configuration: quickConfiguration(databaseURL: cluster.url()), logger: testLogger())
            { hub in
                let first = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
                #expect(try await first.next().message?.type == "welcome")
                await first.close()

                try await cluster.restart()

                let second = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
                #expect(try await second.next(within: .seconds(10)).message?.type == "welcome")
                await second.close()
            }
        }
    }
}
