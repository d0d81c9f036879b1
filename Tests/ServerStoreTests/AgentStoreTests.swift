import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import ServerStore
import Testing

/// The agents table the daemon and the Engine Hub share (design.md, "Agent bootstrap and health").
@Suite("Agents in the store")
struct AgentStoreTests {
    @Test("the platform's own agents table gains the contract's columns; its rows and columns survive")
    func platformAgentsUpgraded() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.runScript(PostgresQuery(unsafeSQL: originalSchema))
            let agent = UUID()
            try await connection.query("INSERT INTO agents (id, name) VALUES (\(agent), 'hub')")
            _ = try await Migrator().migrate(on: connection)
            let row = try await connection.query(
                "SELECT name, key_sha256, created_at, connected_at, last_seen_at FROM agents WHERE id = \(agent)"
            ).single()
            #expect(try row.decode(String.self, "name") == "hub")
            #expect(try row.decode(String?.self, "key_sha256") == nil)
            #expect(try row.decode(Date?.self, "connected_at") == nil)
            _ = try row.decode(Date.self, "created_at")
            await connection.close()
        }
    }

    @Test("an intent makes the row's agent with the key's hash; the next one re-keys it and clears what the hub saw")
    func makeAndRekey() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        let record = try #require(try await store.fetchServers().first)
        let agent = UUID()
        var intent = record.state
        intent.agentID = agent
        intent.createAttempts = 1
        let first = try #require(
            try await store.update(id: id, expectedRevision: record.revision, to: intent, agentKeySHA256: "aa")
        )
        #expect(try await keyHash(connection, agent) == "aa")

        // The hub records a connection; the row shows it.
        try await connection.query("UPDATE agents SET connected_at = now(), last_seen_at = now() WHERE id = \(agent)")
        let connected = try #require(try await store.fetchServers().first)
        #expect(connected.state.agentID == agent)
        #expect(connected.agent?.connectedAt != nil)
        #expect(connected.agent?.lastSeenAt != nil)

        // A new attempt: same agent, new key, the hub's record of the old one gone.
        intent.createAttempts = 2
        #expect(try await store.update(id: id, expectedRevision: first, to: intent, agentKeySHA256: "bb") != nil)
        #expect(try await keyHash(connection, agent) == "bb")
        let rekeyed = try #require(try await store.fetchServers().first)
        #expect(rekeyed.agent == AgentPresence())
        #expect(try await connection.query("SELECT count(*) AS n FROM agents").single().decode(Int.self, "n") == 1)
    }

    @Test(
        "the single-use key: cleared with the row's write once connected_at is set, never before, never on a stale revision; a re-key clears the hub's credential"
    )
    func bootstrapKeyCleared() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        let record = try #require(try await store.fetchServers().first)
        let agent = UUID()
        var state = record.state
        state.agentID = agent
        state.createAttempts = 1
        var revision = try #require(
            try await store.update(id: id, expectedRevision: record.revision, to: state, agentKeySHA256: "aa")
        )

        // The hub has not let the agent in: nothing to clear yet, but the row is written.
        state.status = .initializing
        revision = try #require(
            try await store.update(
                id: id,
                expectedRevision: revision,
                to: state,
                agentKey: .clearBootstrapKey,
                events: []
            )
        )
        #expect(try await keyHash(connection, agent) == "aa", "cleared before the hub recorded a connection")

        try await connection.query(
            "UPDATE agents SET connected_at = now(), last_seen_at = now(), hub_credential_sha256 = 'cc' WHERE id = \(agent)"
        )
        state.status = .active
        #expect(
            try await store.update(
                id: id,
                expectedRevision: revision - 1,
                to: state,
                agentKey: .clearBootstrapKey,
                events: []
            )
                == nil
        )
        #expect(try await keyHash(connection, agent) == "aa", "a write that missed its revision cleared the key")
        revision = try #require(
            try await store.update(
                id: id,
                expectedRevision: revision,
                to: state,
                agentKey: .clearBootstrapKey,
                events: []
            )
        )
        #expect(try await keyHash(connection, agent) == nil)
        #expect(try await credentialHash(connection, agent) == "cc", "the hub's credential is the hub's")
        #expect(try await store.fetchServers().first?.state.status == .active)

        // A new create attempt: a new key, and the hub's credential for the old droplet is gone.
        state.createAttempts = 2
        #expect(try await store.update(id: id, expectedRevision: revision, to: state, agentKeySHA256: "bb") != nil)
        #expect(try await keyHash(connection, agent) == "bb")
        #expect(try await credentialHash(connection, agent) == nil)
    }

    @Test("the daemon's least-privileged role (deploy/database-role.sql) may re-key an agent and clear its key")
    func daemonRoleClearsKeys() async throws {
        let (url, connection) = try await migratedDatabase()
        let daemon = try await connectAsDaemonRole(url, setUpWith: connection)
        let store = ServerStore(connection: daemon)
        let id = try await insertServer(connection, name: "web-1")
        let record = try #require(try await store.fetchServers().first)
        let agent = UUID()
        var state = record.state
        state.agentID = agent
        state.createAttempts = 1
        var revision = try #require(
            try await store.update(id: id, expectedRevision: record.revision, to: state, agentKeySHA256: "aa")
        )
        try await connection.query(
            "UPDATE agents SET connected_at = now(), hub_credential_sha256 = 'cc' WHERE id = \(agent)"
        )
        state.status = .active
        revision = try #require(
            try await store.update(
                id: id,
                expectedRevision: revision,
                to: state,
                agentKey: .clearBootstrapKey,
                events: []
            )
        )
        #expect(try await keyHash(connection, agent) == nil)
        state.createAttempts = 2
        #expect(try await store.update(id: id, expectedRevision: revision, to: state, agentKeySHA256: "bb") != nil)
        #expect(try await credentialHash(connection, agent) == nil)
        await daemon.close()
    }

    @Test("migration 17 lets every role that could re-key agents clear the hub's credential too")
    func upgradeGrantsTheNewColumn() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            _ = try await Migrator(migrations: Migration.all.filter { $0.version <= 14 }).migrate(on: connection)
            let role = "citrus_upgrade_\(UUID().uuidString.prefix(8).lowercased())"
            try await connection.query("CREATE ROLE \(identifier: role)")
            try await connection.query("GRANT UPDATE (key_sha256) ON TABLE agents TO \(identifier: role)")
            _ = try await Migrator().migrate(on: connection)
            let granted = try await connection.query(
                "SELECT has_column_privilege(\(role), 'agents', 'hub_credential_sha256', 'UPDATE') AS granted"
            ).single().decode(Bool.self, "granted")
            #expect(granted)
            try await connection.query("REVOKE ALL ON TABLE agents FROM \(identifier: role)")
            try await connection.query("DROP ROLE \(identifier: role)")
            await connection.close()
        }
    }

    @Test("an intent against a stale revision writes neither the row nor the agent")
    func staleRevisionWritesNoAgent() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        var intent = DaemonState()
        intent.agentID = UUID()
        #expect(try await store.update(id: id, expectedRevision: 99, to: intent, agentKeySHA256: "aa") == nil)
        #expect(try await connection.query("SELECT count(*) AS n FROM agents").single().decode(Int.self, "n") == 0)
        let row = try await connection.query("SELECT agent_id FROM servers WHERE id = \(id)").single()
        #expect(try row.decode(UUID?.self, "agent_id") == nil)
    }

    @Test("an agent's first connection wakes the daemon; its heartbeats do not")
    func firstConnectionNotifies() async throws {
        let (url, connection) = try await migratedDatabase()
        let agent = UUID()
        try await connection.query("INSERT INTO agents (id, key_sha256) VALUES (\(agent), 'aa')")
        let listener = try await PostgresListener.start(
            url,
            channels: [Migration.notificationChannel],
            logger: .init(label: "test")
        )
        defer { listener.stop() }
        try await connection.query("UPDATE agents SET last_seen_at = now() WHERE id = \(agent)")
        try await connection.query("UPDATE agents SET connected_at = now(), last_seen_at = now() WHERE id = \(agent)")
        try await connection.query("UPDATE agents SET last_seen_at = now() WHERE id = \(agent)")
        try await connection.query("UPDATE agents SET connected_at = now() WHERE id = \(agent)")
        // A marker after them: everything before it has been delivered by the time it arrives.
        try await connection.query("SELECT pg_notify(\(Migration.notificationChannel), 'marker')")
        var payloads: [String] = []
        for await event in listener {
            guard case .notification(let notification) = event else { continue }
            if notification.payload == "marker" { break }
            payloads.append(notification.payload)
        }
        #expect(payloads == ["agent:\(agent.uuidString.lowercased())"])
    }

    private func credentialHash(_ connection: PostgresConnection, _ agent: UUID) async throws -> String? {
        try await connection.query("SELECT hub_credential_sha256 AS c FROM agents WHERE id = \(agent)").single()
            .decode(String?.self, "c")
    }

    private func keyHash(_ connection: PostgresConnection, _ agent: UUID) async throws -> String? {
        try await connection.query("SELECT key_sha256 FROM agents WHERE id = \(agent)").single().decode(
            String?.self,
            "key_sha256"
        )
    }
}
