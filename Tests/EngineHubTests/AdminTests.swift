import Foundation
import NIOHTTP1
import Testing

@testable import EngineHubSimulator

@Suite("The admin endpoints over HTTP")
struct AdminTests {
    @Test("healthz, stats and agents answer JSON describing the open connections")
    func readEndpoints() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            let health = try await AdminTestClient.request(port: hub.port, path: "/healthz")
            #expect(health.status == 200)

            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")
            try await client.sendHeartbeat()
            try await eventually("heartbeat recorded") { hub.stats().heartbeats == 1 }
            let stranger = try await WebSocketTestClient.hello(
                port: hub.port,
                agentID: UUID().uuidString.lowercased(),
                key: "nope"
            )
            #expect(try await stranger.nextClose().closeCode == 4401)
            try await eventually("the refused connection is gone") { hub.stats().connections == 1 }

            let stats = try await AdminTestClient.request(port: hub.port, path: "/admin/stats").json()
            #expect(stats["connections"] as? Int == 1)
            #expect(stats["authenticated"] as? Int == 1)
            #expect(stats["refused"] as? Int == 1)
            #expect(stats["heartbeats"] as? Int == 1)
            #expect(stats["dropped_refusals"] as? Int == 0)

            let response = try await AdminTestClient.request(port: hub.port, path: "/admin/agents")
            #expect(response.headers["content-type"].first?.hasPrefix("application/json") == true)
            let agents = try #require(try response.json()["agents"] as? [[String: Any]])
            #expect(agents.count == 1)
            let listed = try #require(agents.first)
            #expect(listed["agent_id"] as? String == agent.idText)
            #expect(listed["authenticated"] as? Bool == true)
            #expect(listed["connected_since"] is String)
            #expect(listed["last_heartbeat_at"] is String)
            await client.close()
            await stranger.close()
        }
    }

    @Test("POST drop closes the agent's connection and refuses it for the given seconds")
    func dropOverHTTP() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")

            let dropped = try await AdminTestClient.request(
                port: hub.port,
                method: .POST,
                path: "/admin/agents/\(agent.idText)/drop",
                body: #"{"seconds": 30}"#
            )
            #expect(dropped.status == 200)
            #expect(try dropped.json()["closed_connections"] as? Int == 1)
            #expect(try await client.nextClose().closeCode == 1001)
            #expect(hub.isRefusing(agent.id))

            let again = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await again.next().message?.reason == "dropped by the hub operator")
            let stats = try await AdminTestClient.request(port: hub.port, path: "/admin/stats").json()
            #expect(stats["dropped_refusals"] as? Int == 1)
            #expect(stats["refused"] as? Int == 0)
            await client.close()
            await again.close()
        }
    }

    @Test("a drop without a body just closes; bad requests get 400, 404 and 405 with a JSON error")
    func dropWithoutWindowAndBadRequests() async throws {
        try await withHubAndDatabase { hub, database in
            let agent = try await database.insertAgent()
            let client = try await WebSocketTestClient.hello(port: hub.port, agentID: agent.idText, key: agent.key)
            #expect(try await client.next().message?.type == "welcome")
            let dropped = try await AdminTestClient.request(
                port: hub.port,
                method: .POST,
                path: "/admin/agents/\(agent.idText)/drop"
            )
            #expect(dropped.status == 200)
            #expect(try await client.nextClose().closeCode == 1001)
            #expect(!hub.isRefusing(agent.id))

            let cases: [(HTTPMethod, String, String?, Int)] = [
                (.POST, "/admin/agents/\(agent.idText)/drop", #"{"seconds": -1}"#, 400),
                (.POST, "/admin/agents/\(agent.idText)/drop", "seconds=5", 400),
                (.POST, "/admin/agents/not-a-uuid/drop", nil, 404),
                (.GET, "/admin/agents/\(agent.idText)/drop", nil, 405),
                (.GET, "/nowhere", nil, 404),
                (.GET, "/agent", nil, 404),
            ]
            for (method, path, body, status) in cases {
                let response = try await AdminTestClient.request(port: hub.port, method: method, path: path, body: body)
                #expect(response.status == status, "\(method) \(path)")
                #expect(try response.json()["error"] is String, "\(method) \(path)")
            }
            await client.close()
        }
    }

    @Test("a WebSocket upgrade on a path other than /agent is not accepted")
    func upgradeOnlyOnAgentPath() async throws {
        try await withEngineHub(configuration: quickConfiguration(databaseURL: nil), logger: testLogger()) { hub in
            await #expect(throws: (any Error).self) {
                try await WebSocketTestClient.connect(port: hub.port, path: "/elsewhere")
            }
            #expect(hub.stats().totalConnections == 0)
            let agent = try await WebSocketTestClient.connect(port: hub.port, path: "/agent")
            #expect(hub.url == "ws://127.0.0.1:\(hub.port)/agent")
            try await eventually("the upgraded connection is counted") { hub.stats().totalConnections == 1 }
            await agent.close()
        }
    }
}
