import CitrusTestKit
import Foundation
import Postgres
import Testing

@testable import EngineHubSimulator

@Suite("Agents talking to the hub over a real WebSocket, against a real Postgres")
struct ConversationTests {
    @Test("a good key is welcomed and stamps connected_at and last_seen_at")
    func goodKeyWelcomed() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            #expect(try await database.times(agent) == AgentTimes(connectedAt: nil, lastSeenAt: nil))

            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            let welcome = try await client.next()
            #expect(welcome.message?.type == "welcome")
            #expect(welcome.credential?.count == 64, "the welcome of a bootstrap key carries the hub's credential")

            let times = try await database.times(agent)
            #expect(times.connectedAt != nil)
            #expect(times.lastSeenAt != nil)
            #expect(times.connectedAt == times.lastSeenAt)
            #expect(hub.stats().welcomed == 1)
            #expect(hub.stats().authenticated == 1)
            let listed = hub.agents()
            #expect(listed.count == 1)
            #expect(listed.first?.agentID == agent.id)
            #expect(listed.first?.authenticated == true)
            await client.close()
        }
    }

    @Test("connected_at keeps its first value when the agent reconnects; last_seen_at moves")
    func reconnectKeepsConnectedAt() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            let first = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await first.next().message?.type == "welcome")
            let before = try await database.times(agent)
            await first.close()

            try await Task.sleep(for: .milliseconds(20))
            let second = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await second.next().message?.type == "welcome")
            let after = try await database.times(agent)
            #expect(after.connectedAt == before.connectedAt)
            #expect(try #require(after.lastSeenAt) > #require(before.lastSeenAt))
            await second.close()
        }
    }

    @Test(
        "the bootstrap key is single-use: its welcome gives a credential; once the daemon clears the key it is refused, the credential is welcomed"
    )
    func bootstrapKeyThenCredential() async throws {
        let recorder = RecordingLogHandler.Recorder()
        try await withHubAndDatabase(recorder: recorder) { hub, database in
            let agent = try await database.insertAgent()
            let first = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            let credential = try #require(try await first.next().credential)
            let connectedAt = try #require(try await database.times(agent).connectedAt)
            let stored = try await database.connection.query(
                "SELECT hub_credential_sha256 AS c FROM agents WHERE id = \(agent.id)"
            ).single().decode(String?.self, "c")
            #expect(stored == TestAgent.digest(of: credential), "only the credential's SHA-256 is stored")
            await first.close()

            // What the daemon does once it sees connected_at set.
            try await database.connection.query("UPDATE agents SET key_sha256 = NULL WHERE id = \(agent.id)")
            let again = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            let refusal = try await again.next()
            #expect(refusal.message?.type == "refused")
            #expect(refusal.message?.reason?.contains("bootstrap key has been used") == true, "\(refusal)")
            #expect(try await again.nextClose().closeCode == 4401)
            await again.close()

            let back = try await WebSocketTestClient.hello(
                port: hub.port,
                agentID: agent.idText,
                credential: credential
            )
            let welcome = try await back.next()
            #expect(welcome.message?.type == "welcome")
            #expect(welcome.credential == nil, "a credential in use is kept, not replaced")
            let times = try await database.times(agent)
            #expect(times.connectedAt == connectedAt)
            #expect(try #require(times.lastSeenAt) > connectedAt)
            try await back.sendHeartbeat()
            await back.close()

            let forged = try await WebSocketTestClient.hello(
                port: hub.port,
                agentID: agent.idText,
                credential: TestAgent.randomKey()
            )
            #expect(try await forged.next().message?.reason == "wrong credential")
            await forged.close()
            #expect(hub.stats().welcomed == 2 && hub.stats().refused == 2, "\(hub.stats())")
        }
        let secret = try Regex("[0-9a-f]{64}")
        #expect(!recorder.entries.contains { entry in "\(entry.message) \(entry.metadata)".contains(secret) })
    }

    @Test("each heartbeat advances last_seen_at")
    func heartbeatAdvancesLastSeen() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")
            var previous = try #require(try await database.times(agent).lastSeenAt)
            let connectedAt = try await database.times(agent).connectedAt

            for beat in 1...2 {
                try await Task.sleep(for: .milliseconds(20))
                try await client.sendHeartbeat()
                try await eventually("heartbeat \(beat) recorded") { hub.stats().heartbeats == beat }
                let times = try await database.times(agent)
                let seen = try #require(times.lastSeenAt)
                #expect(seen > previous)
                #expect(times.connectedAt == connectedAt)
                previous = seen
            }
            #expect(hub.agents().first?.lastHeartbeatAt != nil)
            await client.close()
        }
    }

    @Test("a wrong key is refused with 4401 and counted; the row is untouched and the key is never logged")
    func wrongKeyRefused() async throws {
        let recorder = RecordingLogHandler.Recorder()
        try await withHubAndDatabase(recorder: recorder) { hub, database in
            let agent = try await database.insertAgent()
            let presented = TestAgent.randomKey()
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: presented)

            let refusal = try await client.next()
            #expect(refusal.message?.type == "refused")
            let reason = try #require(refusal.message?.reason)
            #expect(!reason.isEmpty)
            #expect(!reason.contains(presented))
            #expect(try await client.nextClose().closeCode == 4401)

            #expect(try await database.times(agent) == AgentTimes(connectedAt: nil, lastSeenAt: nil))
            #expect(hub.stats().refused == 1)
            #expect(hub.stats().welcomed == 0)
            #expect(hub.stats().droppedRefusals == 0)
            await client.close()

            let entries = recorder.entries
            #expect(entries.contains { $0.message == "agent refused" && $0.metadata["agent_id"] == agent.idText })
            for entry in entries {
                let text = ([entry.label, entry.message] + entry.metadata.keys + entry.metadata.values).joined(
                    separator: " "
                )
                #expect(!text.contains(presented), "a log entry holds the presented key: \(entry.message)")
                #expect(!text.contains(agent.key))
            }
        }
    }

    @Test("an unknown agent id, an agent without a key and a malformed id are refused with 4401")
    func unknownAgentsRefused() async throws {
        try await withHubAndDatabase { hub, database in
            let keyless = try await database.insertAgent(key: nil)
            for (agentID, key) in [
                (UUID().uuidString.lowercased(), TestAgent.randomKey()), (keyless.idText, ""), ("not-a-uuid", "x"),
            ] {
                let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agentID, key: key)
                #expect(try await client.next().message?.type == "refused", "agent \(agentID)")
                #expect(try await client.nextClose().closeCode == 4401, "agent \(agentID)")
                await client.close()
            }
            #expect(hub.stats().refused == 3)
            #expect(try await database.times(keyless) == AgentTimes(connectedAt: nil, lastSeenAt: nil))
        }
    }

    @Test("no hello within the hello timeout closes with 4400")
    func noHelloCloses() async throws {
        try await withHubAndDatabase(configure: { $0.helloTimeout = .milliseconds(300) }) { hub, _ in
            let client = try await WebSocketTestClient.connect(port: hub.port)
            let started = ContinuousClock.now
            let event = try await client.next(within: .seconds(5))
            #expect(event.closeCode == 4400)
            #expect(ContinuousClock.now - started >= .milliseconds(250))
            #expect(hub.stats().helloFailures == 1)
            await client.close()
        }
    }

    @Test("a first message that is not a hello closes with 4400")
    func firstMessageNotHello() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            for first in [#"{"type":"heartbeat"}"#, "not json", #"{"type":"hello","agent_id":"\#(agent.idText)"}"#] {
                let client = try await WebSocketTestClient.connect(port: hub.port)
                try await client.send(text: first)
                #expect(try await client.next().closeCode == 4400, "first message \(first)")
                await client.close()
            }
            #expect(hub.stats().helloFailures == 3)
            #expect(try await database.times(agent) == AgentTimes(connectedAt: nil, lastSeenAt: nil))
        }
    }

    @Test("an authenticated agent that sends nothing for the idle limit is closed")
    func idleAgentClosed() async throws {
        try await withHubAndDatabase(configure: { $0.idleLimit = .milliseconds(400) }) { hub, database in
            let agent = try await database.insertAgent()
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")
            // Heartbeats keep it open past the limit...
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(150))
                try await client.sendHeartbeat()
            }
            #expect(hub.stats().authenticated == 1)
            // ...silence does not.
            #expect(try await client.nextClose(within: .seconds(3)).closeCode == 1001)
            try await eventually("the idle connection is gone") { hub.stats().connections == 0 }
            #expect(hub.stats().idleClosures == 1)
            await client.close()
        }
    }

    @Test("drop closes the agent's connection, refuses it during the window and accepts it after")
    func dropWindow() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            let other = try await database.insertAgent()
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")
            let bystander = try await WebSocketTestClient.hello(port: hub.port, agentID: other.idText, key: other.key)
            #expect(try await bystander.next().message?.type == "welcome")

            #expect(hub.drop(agent: agent.id, for: .milliseconds(800)) == 1)
            #expect(try await client.nextClose().closeCode == 1001)

            let refused = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            let refusal = try await refused.next()
            #expect(refusal.message?.type == "refused")
            #expect(refusal.message?.reason == "dropped by the hub operator")
            #expect(try await refused.nextClose().closeCode == 4401)
            #expect(hub.stats().droppedRefusals == 1)
            #expect(hub.stats().refused == 0)

            try await eventually("the drop window ends") { !hub.isRefusing(agent.id) }
            let back = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await back.next().message?.type == "welcome")

            // The other agent never noticed.
            try await bystander.sendHeartbeat()
            try await eventually("the bystander's heartbeat") { hub.stats().heartbeats == 1 }
            for connection in [client, refused, back, bystander] { await connection.close() }
        }
    }

    @Test("shutdown closes agent connections with 1001")
    func shutdownClosesAgents() async throws {
        let database = try await AgentsDatabase.create()
        let agent = try await database.insertAgent()
        let hub = try await EngineHub.start(
            configuration: quickConfiguration(databaseURL: database.url),
            logger: testLogger()
        )
        let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
        #expect(try await client.next().message?.type == "welcome")
        await hub.shutdown()
        #expect(try await client.nextClose().closeCode == 1001)
        await #expect(throws: (any Error).self) { try await WebSocketTestClient.connect(port: hub.port) }
        await client.close()
        await database.close()
    }

    @Test("cancelling run() ends agent connections and returns without an error")
    func cancellingRunStops() async throws {
        let database = try await AgentsDatabase.create()
        let agent = try await database.insertAgent()
        let hub = try await EngineHub.bind(
            configuration: quickConfiguration(databaseURL: database.url),
            logger: testLogger()
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await hub.run() }
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")
            group.cancelAll()
            let end = try await client.nextClose()
            #expect(end == .ended || end.closeCode == 1001)
            try await group.waitForAll()
            await client.close()
        }
        await #expect(throws: (any Error).self) { try await WebSocketTestClient.connect(port: hub.port) }
        await database.close()
    }
}
