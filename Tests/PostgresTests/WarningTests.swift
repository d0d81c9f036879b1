import CitrusTestKit
import Foundation
import Postgres
import Testing

/// A session can ask that a statement the server answers with a WARNING fail: the leader's does,
/// because a commit whose wait for a synchronous standby was cancelled comes back as success
/// with a warning.
@Suite("Server warnings")
struct WarningTests {
    static let warn = PostgresQuery(unsafeSQL: "DO $$ BEGIN RAISE WARNING 'careful now'; END $$")

    @Test("with warningsFail, a statement answered with a WARNING throws it; notices are no warnings")
    func warningsFail() async throws {
        try await withTestDatabase { url in
            var configuration = PostgresConnection.Configuration()
            configuration.warningsFail = true
            let strict = try await PostgresConnection.connect(url, configuration: configuration)
            let error = await #expect(throws: PostgresError.self) { try await strict.query(Self.warn) }
            #expect(error?.message.contains("careful now") == true, "\(String(describing: error))")
            #expect(error?.sqlState == "01000")
            // The warning belongs to that statement alone, and a NOTICE is not a warning.
            try await strict.query("SELECT 1")
            try await strict.query(PostgresQuery(unsafeSQL: "DO $$ BEGIN RAISE NOTICE 'fyi'; END $$"))
            // Rows read one at a time too.
            try await strict.runScript(
                """
                CREATE FUNCTION citrus_warn() RETURNS int LANGUAGE plpgsql AS $$
                BEGIN RAISE WARNING 'streamed warning'; RETURN 1; END $$
                """
            )
            let streamed = await #expect(throws: PostgresError.self) {
                try await strict.query("SELECT citrus_warn() AS one") { try $0.decode(Int.self, "one") }
            }
            #expect(streamed?.message.contains("streamed warning") == true, "\(String(describing: streamed))")
            await strict.close()
        }
    }

    @Test("by default, a WARNING is not an error")
    func warningsPassByDefault() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query(Self.warn)
            await connection.close()
        }
    }
}
