import CitrusTestKit
import Foundation
import Postgres
import Testing
import Timekeeping

@Suite("Sessions, advisory locks and failure")
struct SessionTests {
    @Test("an advisory lock excludes a second session and is released when the holder's session ends")
    func advisoryLock() async throws {
        try await withTestDatabase { url in
            let holder = try await PostgresConnection.connect(url)
            let other = try await PostgresConnection.connect(url)
            let key: Int64 = 0x6369_7472_7573
            #expect(try await holder.tryAdvisoryLock(key))
            #expect(try await other.tryAdvisoryLock(key) == false)

            // Unlock and re-lock work within one session.
            #expect(try await holder.advisoryUnlock(key))
            #expect(try await other.tryAdvisoryLock(key))
            #expect(try await other.advisoryUnlock(key))
            #expect(try await holder.tryAdvisoryLock(key))

            // The server ends the holder's session: the lock goes with it, and the holder is told.
            let pid = await holder.backendPID
            try await other.query("SELECT pg_terminate_backend(\(pid))")
            var acquired = false
            for _ in 0..<200 where !acquired {
                acquired = try await other.tryAdvisoryLock(key)
                if !acquired { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(acquired)
            let lost = await #expect(throws: PostgresError.self) { try await holder.query("SELECT 1") }
            #expect(lost?.code == .connectionLost)
            // Calls keep failing until the caller reconnects on purpose.
            let still = await #expect(throws: PostgresError.self) { try await holder.tryAdvisoryLock(key) }
            #expect(still?.code == .connectionLost)
            let sessionBefore = await holder.sessionNumber
            try await holder.reconnect()
            #expect(await holder.sessionNumber == sessionBefore + 1)
            #expect(try await holder.tryAdvisoryLock(key) == false)
        }
    }

    @Test("a server restart surfaces as connectionLost, and reconnect() recovers")
    func restart() async throws {
        try await withPostgresCluster { cluster in
            let connection = try await PostgresConnection.connect(cluster.url())
            #expect(try await connection.query("SELECT 1 AS one").count == 1)
            try await cluster.restart()
            let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
            #expect(error?.code == .connectionLost)
            try await connection.reconnect()
            #expect(try await connection.query("SELECT 1 AS one").count == 1)
        }
    }

    @Test("reconnect() keeps trying while the server is down")
    func reconnectWaitsForServer() async throws {
        try await withPostgresCluster { cluster in
            var configuration = PostgresConnection.Configuration()
            configuration.reconnectBackoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
            let connection = try await PostgresConnection.connect(cluster.url(), configuration: configuration)
            try await cluster.stop()
            let reconnecting = Task { try await connection.reconnect() }
            try await Task.sleep(for: .seconds(1))
            try await cluster.start()
            try await reconnecting.value
            #expect(try await connection.query("SELECT 1 AS one").count == 1)
        }
    }

    @Test("connection errors never contain the password")
    func passwordsAreScrubbed() async throws {
        let port = try await PostgresCluster.shared().port
        let attempts = [
            "postgresql://citrus:Sup3rSecretPw@127.0.0.1:\(port)/nodb",
            "host=127.0.0.1 port=\(port) user=citrus password=Sup3rSecretPw dbname=nodb",
            "host=127.0.0.1 port=1 password='Sup3rSecretPw'",
            "host=127.0.0.1 password=Sup3rSecretPw bogus",
            "postgresql://citrus:Sup3rSecretPw@127.0.0.1:\(port)/nodb?password=Sup3rSecretPw&bogus=1",
        ]
        for attempt in attempts {
            let error = await #expect(throws: PostgresError.self) { _ = try await PostgresConnection.connect(attempt) }
            #expect(error?.description.contains("Sup3rSecret") == false, "\(error.map(String.init(describing:)) ?? "")")
            #expect(error?.message.contains("Sup3rSecret") == false)
        }
        let parsed = try ConnectionString("postgresql://citrus:Sup3rSecretPw@db.example:5432/app")
        #expect(parsed.redacted == "postgresql://citrus:***@db.example:5432/app")
        #expect(try ConnectionString("host=db password=Sup3rSecretPw").redacted == "host=db password=***")
        #expect(try ConnectionString(nil).redacted == "(libpq defaults)")
    }
}
