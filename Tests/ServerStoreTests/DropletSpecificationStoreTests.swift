import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import ServerStore
import Testing

/// The droplet specification columns (migration 15): what a row asks beyond name, region, size
/// and image, and what the daemon records of the droplet it made.
@Suite("Droplet specification columns")
struct DropletSpecificationStoreTests {
    @Test("a row's keys, VPC, tags and options are read as it wrote them; NULL is the default")
    func readsOptions() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let custom = try await connection.query(
            """
            INSERT INTO servers (name, ssh_keys, vpc_uuid, tags, ipv6, monitoring, backups, with_droplet_agent, project_id)
            VALUES ('web-1', ARRAY['512190', '3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'],
                    '5a4981aa-9653-4bd1-bef5-d6bff52042e4', ARRAY['env:prod', 'web'], false, NULL, true, false,
                    '4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679')
            RETURNING id
            """
        ).single().decode(UUID.self, "id")
        let plain = try await insertServer(connection, name: "web-2")
        let noKeys = try await connection.query(
            "INSERT INTO servers (name, ssh_keys) VALUES ('web-3', ARRAY[]::text[]) RETURNING id"
        ).single().decode(UUID.self, "id")
        let rows = Dictionary(uniqueKeysWithValues: try await store.fetchServers().map { ($0.id, $0) })
        #expect(
            rows[custom]?.options
                == DropletOptions(
                    sshKeys: ["512190", "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"],
                    vpcUUID: "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
                    tags: ["env:prod", "web"],
                    ipv6: false,
                    backups: true,
                    withDropletAgent: false,
                    projectID: "4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679"
                )
        )
        #expect(rows[plain]?.options == nil, "every column NULL: the defaults")
        #expect(rows[noKeys]?.options == DropletOptions(sshKeys: []), "an empty list is a choice, not NULL")
    }

    @Test("a row whose tags are no list of texts fails alone with a clear last_error; the others are read")
    func nestedArrayFailsAlone() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        try await insertServer(connection, name: "good")
        try await connection.query("INSERT INTO servers (name, tags) VALUES ('bad', '{{a,b},{c,d}}')")
        let rows = try await store.fetchServerRows()
        #expect(rows.count == 2)
        let bad = try #require(rows.first { $0.record.name == "bad" })
        #expect(bad.record.state.status == .failed)
        #expect(bad.problem?.contains("servers.tags") == true)
        #expect(rows.first { $0.record.name == "good" }?.problem == nil)
    }

    @Test("what the droplet was made with and its project are written and read back")
    func recordsCreation() async throws {
        let (_, connection) = try await migratedDatabase()
        let store = ServerStore(connection: connection)
        let id = try await insertServer(connection, name: "web-1")
        let record = try #require(try await store.fetchServers().first)
        var state = record.state
        state.createdWith = "ssh_keys [512190], vpc the region's default"
        state.projectAssigned = ProjectAssignment.record(dropletID: 7, projectID: "p")
        state.change = LiveChange(goal: .tag("env:prod"))
        _ = try #require(try await store.update(id: id, expectedRevision: record.revision, to: state))
        #expect(try await store.fetchServers().first?.state == state)
        state.change = LiveChange(goal: .backups(on: true))
        _ = try #require(try await store.update(id: id, expectedRevision: record.revision + 1, to: state))
        #expect(try await store.fetchServers().first?.state.change?.goal == .backups(on: true))
    }
}
