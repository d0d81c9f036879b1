import CitrusTestKit
import Foundation
import Postgres
import Testing
import Timekeeping

@Suite("LISTEN/NOTIFY")
struct ListenerTests {
    @Test("a NOTIFY reaches the listener with channel, payload and pid")
    func notifyArrives() async throws {
        try await withTestDatabase { url in
            let listener = try await PostgresListener.start(url, channels: ["citrus_test", "Odd \"Channel\""])
            let recorder = NotificationRecorder(listener)
            let sender = try await PostgresConnection.connect(url)
            try await sender.query("SELECT pg_notify('citrus_test', \("hello 'world' 🍋"))")
            try await sender.query("SELECT pg_notify(\("Odd \"Channel\""), 'second')")
            let first = await recorder.first { $0.payload(on: "citrus_test") != nil }
            #expect(
                first?.entry.event
                    == .notification(
                        PostgresNotification(
                            channel: "citrus_test",
                            payload: "hello 'world' 🍋",
                            pid: await sender.backendPID
                        )
                    )
            )
            #expect(await recorder.first { $0.payload(on: "Odd \"Channel\"") == "second" } != nil)
            listener.stop()
        }
    }

    @Test("the listener reconnects after a server restart, says so, and receives again")
    func resumesAfterRestart() async throws {
        try await withPostgresCluster { cluster in
            let url = try await cluster.createDatabase()
            var configuration = PostgresListener.Configuration()
            configuration.reconnectBackoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(500))
            let listener = try await PostgresListener.start(
                url,
                channels: ["citrus_test"],
                configuration: configuration
            )
            let recorder = NotificationRecorder(listener)

            try await cluster.restart()
            let reconnected = await recorder.first(timeout: .seconds(30)) { $0 == .reconnected }
            #expect(reconnected != nil)

            let sender = try await PostgresConnection.connect(url)
            try await sender.query("NOTIFY citrus_test, 'after restart'")
            let after = await recorder.first(from: reconnected?.index ?? 0) {
                $0.payload(on: "citrus_test") == "after restart"
            }
            #expect(after != nil)
            listener.stop()
        }
    }

    @Test("the first connection failing is reported to the caller")
    func startFails() async throws {
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresListener.start("host=127.0.0.1 port=1 connect_timeout=2", channels: ["x"])
        }
        #expect(error?.code == .connectionFailed)
    }
}
